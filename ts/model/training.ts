/**
 * How a model is trained: optimizer (with its learning rate), schedule,
 * clipping. Checked here and translated to the core's `TrainingSpec` JSON
 * (`crates/core/src/model/trainer.rs`). Every rule is PyTorch's (`torch.optim`).
 */
import { OdysseyRangeError, OdysseyTypeError } from '../errors'
import { checkBoolean, checkFiniteNumber, checkObject, checkOneOf, checkOptionKeys } from '../validate'

export type OptimizerConfig =
  /** SGD; `nesterov` needs `momentum > 0` and `dampening = 0`. */
  | {
      type: 'sgd'
      learningRate: number
      momentum?: number
      dampening?: number
      nesterov?: boolean
      weightDecay?: number
    }
  /** Adam (`weightDecay` is an L2 penalty added to the gradient). Defaults betas [0.9, 0.999], eps 1e-8. */
  | { type: 'adam'; learningRate: number; betas?: [number, number]; eps?: number; weightDecay?: number }
  /** AdamW: decoupled weight decay (default 0.01). */
  | { type: 'adamw'; learningRate: number; betas?: [number, number]; eps?: number; weightDecay?: number }
  /** RMSProp. Defaults alpha 0.99, eps 1e-8. */
  | {
      type: 'rmsprop'
      learningRate: number
      alpha?: number
      eps?: number
      momentum?: number
      centered?: boolean
      weightDecay?: number
    }

/**
 * Learning-rate schedule over updates t (after `warmupSteps` of linear warmup):
 * `step`: lr·gamma^⌊t/stepSize⌋; `exponential`: lr·gamma^t; `cosine`: from lr down to `etaMin` over `tMax` updates.
 */
export type ScheduleConfig = (
  | { type: 'constant' }
  | { type: 'step'; stepSize: number; gamma: number }
  | { type: 'exponential'; gamma: number }
  | { type: 'cosine'; tMax: number; etaMin?: number }
) & {
  /** Updates during which the rate rises linearly to its base. Default 0. */
  warmupSteps?: number
}

/** Gradient clipping (SPEC §3), any combination: by value, by each tensor's L2 norm, by the global L2 norm. */
export interface ClipConfig {
  globalNorm?: number
  perTensorNorm?: number
  value?: number
}

/** Everything about training a model. */
export interface TrainingConfig {
  optimizer: OptimizerConfig
  schedule?: ScheduleConfig
  clip?: ClipConfig
  /** Clamp the error flowing back through every recurrence to [−v, v] at every step. */
  recurrentClip?: number
  /**
   * crossEntropy only: the weight of each class in the training loss, one per class, finite and ≥ 0
   * (PyTorch's `CrossEntropyLoss(weight=...)`: the loss is Σ w[y]·loss / Σ w[y]). Like Keras'
   * `class_weight` it shapes training only; `evaluate` and the validation loss weigh every class 1.
   */
  classWeights?: readonly number[]
}

export const TRAINING_KEYS = ['optimizer', 'schedule', 'clip', 'recurrentClip', 'classWeights'] as const

function checkAtLeast(name: string, value: unknown, low: number, inclusive = true): number {
  const v = checkFiniteNumber(name, value)
  if (inclusive ? v < low : v <= low)
    throw new OdysseyRangeError(
      'ODYSSEY_INVALID',
      `${name}: expected a number ${inclusive ? '>=' : '>'} ${low}, got ${v}`,
    )
  return v
}

function checkInteger(name: string, value: unknown, low: number): number {
  const v = checkAtLeast(name, value, low)
  if (!Number.isSafeInteger(v)) throw new OdysseyRangeError('ODYSSEY_INVALID', `${name}: expected an integer, got ${v}`)
  return v
}

function checkBetas(value: unknown): [number, number] {
  if (!Array.isArray(value) || value.length !== 2) {
    throw new OdysseyRangeError(
      'ODYSSEY_INVALID',
      `optimizer.betas: expected [beta1, beta2], got ${JSON.stringify(value)}`,
    )
  }
  return value.map((b, i) => {
    const beta = checkFiniteNumber(`optimizer.betas[${i}]`, b)
    if (!(beta >= 0 && beta < 1))
      throw new OdysseyRangeError('ODYSSEY_INVALID', `optimizer.betas[${i}]: expected a number in [0, 1), got ${beta}`)
    return beta
  }) as [number, number]
}

const OPTIMIZER_KEYS = {
  sgd: ['type', 'learningRate', 'momentum', 'dampening', 'nesterov', 'weightDecay'],
  adam: ['type', 'learningRate', 'betas', 'eps', 'weightDecay'],
  adamw: ['type', 'learningRate', 'betas', 'eps', 'weightDecay'],
  rmsprop: ['type', 'learningRate', 'alpha', 'eps', 'momentum', 'centered', 'weightDecay'],
} as const

/** The core's optimizer JSON, with the learning rate apart. */
function optimizerJson(value: unknown): { learningRate: number; optimizer: Record<string, unknown> } {
  const fields = checkObject('optimizer', value)
  // Unknown keys first (`{ lr }` is named as such, not reported as a missing learningRate);
  // without a known type, against every optimizer's keys.
  const known = Object.hasOwn(OPTIMIZER_KEYS, fields.type as string)
    ? OPTIMIZER_KEYS[fields.type as keyof typeof OPTIMIZER_KEYS]
    : [...new Set(Object.values(OPTIMIZER_KEYS).flat())]
  checkOptionKeys(fields, known, 'optimizer')
  const type = checkOneOf('optimizer.type', fields.type, ['sgd', 'adam', 'adamw', 'rmsprop'] as const)
  const learningRate = checkAtLeast('optimizer.learningRate', fields.learningRate, 0)
  const optional = (name: string, low: number) =>
    fields[name] === undefined ? {} : { [name]: checkAtLeast(`optimizer.${name}`, fields[name], low) }
  switch (type) {
    case 'sgd':
      if (fields.nesterov === true && !((fields.momentum as number) > 0 && (fields.dampening ?? 0) === 0)) {
        throw new OdysseyRangeError(
          'ODYSSEY_INVALID',
          `optimizer.nesterov: needs momentum > 0 and dampening = 0, got momentum ${fields.momentum} and dampening ${fields.dampening ?? 0}`,
        )
      }
      return {
        learningRate,
        optimizer: {
          type: 'sgd',
          ...optional('momentum', 0),
          ...optional('dampening', 0),
          ...optional('weightDecay', 0),
          ...(fields.nesterov === undefined ? {} : { nesterov: checkBoolean('optimizer.nesterov', fields.nesterov) }),
        },
      }
    case 'adam':
    case 'adamw':
      return {
        learningRate,
        optimizer: {
          type: 'adam',
          betas: fields.betas === undefined ? [0.9, 0.999] : checkBetas(fields.betas),
          eps: fields.eps === undefined ? 1e-8 : checkAtLeast('optimizer.eps', fields.eps, 0),
          weightDecay:
            fields.weightDecay === undefined
              ? type === 'adamw'
                ? 0.01
                : 0
              : checkAtLeast('optimizer.weightDecay', fields.weightDecay, 0),
          decoupledWeightDecay: type === 'adamw',
        },
      }
    case 'rmsprop':
      return {
        learningRate,
        optimizer: {
          type: 'rmsProp',
          ...optional('alpha', 0),
          ...optional('eps', 0),
          ...optional('momentum', 0),
          ...optional('weightDecay', 0),
          ...(fields.centered === undefined ? {} : { centered: checkBoolean('optimizer.centered', fields.centered) }),
        },
      }
  }
}

function scheduleJson(value: unknown): Record<string, unknown> {
  const fields = checkObject('schedule', value)
  const type = checkOneOf('schedule.type', fields.type, ['constant', 'step', 'exponential', 'cosine'] as const)
  const warmupSteps = checkInteger('schedule.warmupSteps', fields.warmupSteps ?? 0, 0)
  const gamma = () => checkAtLeast('schedule.gamma', fields.gamma, 0)
  const keys = (extra: string[]) => checkOptionKeys(fields, ['type', 'warmupSteps', ...extra], 'schedule')
  switch (type) {
    case 'constant':
      keys([])
      return { schedule: { type }, warmupSteps }
    case 'step':
      keys(['stepSize', 'gamma'])
      return {
        schedule: { type, stepSize: checkInteger('schedule.stepSize', fields.stepSize, 1), gamma: gamma() },
        warmupSteps,
      }
    case 'exponential':
      keys(['gamma'])
      return { schedule: { type, gamma: gamma() }, warmupSteps }
    case 'cosine':
      keys(['tMax', 'etaMin'])
      return {
        schedule: {
          type,
          tMax: checkInteger('schedule.tMax', fields.tMax, 1),
          etaMin: checkAtLeast('schedule.etaMin', fields.etaMin ?? 0, 0),
        },
        warmupSteps,
      }
  }
}

function clipJson(value: unknown): ClipConfig {
  const fields = checkObject('clip', value)
  checkOptionKeys(fields, ['globalNorm', 'perTensorNorm', 'value'], 'clip')
  const clip: ClipConfig = {}
  for (const key of ['globalNorm', 'perTensorNorm', 'value'] as const) {
    if (fields[key] !== undefined) clip[key] = checkAtLeast(`clip.${key}`, fields[key], 0, false)
  }
  return clip
}

/** Finite numbers (JSON has no NaN); their range, count and loss are the core's to check. */
function classWeightsJson(value: unknown): number[] {
  if (!Array.isArray(value))
    throw new OdysseyTypeError('ODYSSEY_TYPE', `classWeights: expected an array of numbers, one per class`)
  return value.map((w, k) => checkFiniteNumber(`classWeights[${k}]`, w))
}

/**
 * Checks a training configuration and returns the core's `TrainingSpec` JSON.
 * @throws OdysseyTypeError / OdysseyRangeError naming the offending option.
 */
export function trainingSpecJson(config: TrainingConfig): Record<string, unknown> {
  const { learningRate, optimizer } = optimizerJson(config.optimizer)
  const spec: Record<string, unknown> = { optimizer, learningRate }
  if (config.schedule !== undefined) spec.schedule = scheduleJson(config.schedule)
  if (config.clip !== undefined) spec.clip = clipJson(config.clip)
  if (config.recurrentClip !== undefined)
    spec.recurrentClip = checkAtLeast('recurrentClip', config.recurrentClip, 0, false)
  if (config.classWeights !== undefined) spec.classWeights = classWeightsJson(config.classWeights)
  return spec
}
