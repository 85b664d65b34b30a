/**
 * Built-in callbacks of `Model.fit`, in the Keras tradition, composable as
 * `callbacks: [modelCheckpoint(..), earlyStopping(..), reduceLrOnPlateau(..)]`.
 * Each runs at epoch ends, in the callback window fit waits for (see
 * `FitCallbacks`), so it may save, read and replace weights and change the
 * learning rate; each writes what it did to a run log when given one
 * (`callback` records, see ts/report/log.ts).
 *
 * A callback object keeps its state (best value, patience) for one fit at a
 * time and starts afresh when another fit calls it.
 */
import { OdysseyRangeError } from '../errors'
import type { RunLogger } from '../report/log'
import { checkBoolean, checkFiniteNumber, checkObject, checkOneOf, checkOptionKeys, checkSeed } from '../validate'
import type { EpochLog, FitCallbacks, FitContext } from './fit'

/** The epoch-log quantities a callback can watch. */
export type Monitor = 'valLoss' | 'loss' | 'valAccuracy'
/** Whether lower (`'min'`) or higher (`'max'`) is better; `'auto'`: max for accuracies, min otherwise. */
export type Mode = 'min' | 'max' | 'auto'

const MONITORS: readonly Monitor[] = ['valLoss', 'loss', 'valAccuracy']
const MODES: readonly Mode[] = ['min', 'max', 'auto']

interface WatchOptions {
  /** Default `'valLoss'` (needs `validationData`). */
  monitor?: Monitor
  /** Default `'auto'`. */
  mode?: Mode
  /** An improvement smaller than this does not count. Default 0. */
  minDelta?: number
  /** Where to write what the callback did. */
  log?: RunLogger
}

/** Tracks the best value of the monitored quantity over one fit. */
class Watch {
  readonly monitor: Monitor
  private readonly sign: number
  private readonly minDelta: number
  private fit: FitContext | undefined
  best = Number.NaN
  /** Epochs since the last improvement. */
  wait = 0

  constructor(
    private readonly name: string,
    options: WatchOptions,
    private readonly log: RunLogger | undefined,
  ) {
    this.monitor = options.monitor === undefined ? 'valLoss' : checkOneOf(`${name}.monitor`, options.monitor, MONITORS)
    const mode = options.mode === undefined ? 'auto' : checkOneOf(`${name}.mode`, options.mode, MODES)
    this.sign = mode === 'max' || (mode === 'auto' && this.monitor === 'valAccuracy') ? -1 : 1
    this.minDelta = Math.abs(checkFiniteNumber(`${name}.minDelta`, options.minDelta ?? 0))
  }

  /** Starts afresh when a new fit calls; true when `log`'s value is the best so far (then `best` is it). */
  improved(log: EpochLog, fit: FitContext): boolean {
    if (this.fit !== fit) {
      this.fit = fit
      this.best = Number.NaN
      this.wait = 0
    }
    const value = this.value(log)
    const better = Number.isNaN(this.best)
      ? Number.isFinite(value)
      : this.sign * value < this.sign * this.best - this.minDelta
    if (better) {
      this.best = value
      this.wait = 0
    } else {
      this.wait += 1
    }
    return better
  }

  value(log: EpochLog): number {
    const value = log[this.monitor]
    if (value === undefined)
      throw new OdysseyRangeError(
        'ODYSSEY_INVALID',
        `${this.name}.monitor: the epoch log has no ${this.monitor} (${this.monitor.startsWith('val') ? 'pass validationData to fit' : 'a classification loss gives accuracy'})`,
      )
    return value
  }

  record(log: EpochLog, action: string, detail: string): void {
    const value = log[this.monitor]
    this.log?.callback({
      step: log.step,
      epoch: log.epoch,
      callback: this.name,
      action,
      monitor: this.monitor,
      value: value === undefined || !Number.isFinite(value) ? null : value,
      detail,
    })
  }
}

function options<T extends object>(name: string, value: unknown, keys: readonly string[]): Partial<T> {
  const fields = checkObject(`${name} options`, value ?? {})
  checkOptionKeys(fields, keys, name)
  return fields as Partial<T>
}

const WATCH_KEYS = ['monitor', 'mode', 'minDelta', 'log'] as const

export interface ModelCheckpointOptions extends WatchOptions {
  /** The checkpoint directory (`model.save(dir)`: crash-safe, one checkpoint replacing the last). */
  dir: string
  /** Save only when the monitored quantity improved, so `dir` holds the best epoch. Default false: every epoch. */
  saveBestOnly?: boolean
  /** Saved with the checkpoint. Default: the model's own `metadata` (kept from save to save). */
  metadata?: unknown
}

/**
 * Saves the model into `dir` at every epoch end, or with `saveBestOnly` only when the monitored
 * quantity improved. The checkpoint remembers the epoch, so `Model.load(dir)` + `fit` goes on
 * from it.
 */
export function modelCheckpoint(config: ModelCheckpointOptions): FitCallbacks {
  const fields = options<ModelCheckpointOptions>('modelCheckpoint', config, [
    'dir',
    'saveBestOnly',
    'metadata',
    ...WATCH_KEYS,
  ])
  if (typeof fields.dir !== 'string' || fields.dir === '')
    throw new OdysseyRangeError(
      'ODYSSEY_INVALID',
      `modelCheckpoint.dir: expected a directory path, got ${JSON.stringify(fields.dir)}`,
    )
  const dir = fields.dir
  const saveBestOnly = checkBoolean('modelCheckpoint.saveBestOnly', fields.saveBestOnly ?? false)
  const watch = new Watch('modelCheckpoint', fields, fields.log)
  return {
    onEpochEnd: async (log, fit) => {
      const improved = watch.improved(log, fit)
      if (saveBestOnly && !improved) return
      await fit.model.save(dir, 'metadata' in fields ? fields.metadata : fit.model.metadata)
      watch.record(log, 'saved', `${dir} after epoch ${log.epoch}${improved ? ' (best so far)' : ''}`)
    },
  }
}

export interface EarlyStoppingOptions extends WatchOptions {
  /** Epochs without improvement to wait before stopping. Default 0. */
  patience?: number
  /**
   * End with the weights of the best epoch — when the patience runs out and when the last
   * epoch is not the best (Keras restores only on stopping). Default false: the last weights.
   */
  restoreBestWeights?: boolean
}

/**
 * Stops fit once the monitored quantity has not improved for `patience` epochs: fit resolves
 * with the history so far and `stopped: true`.
 */
export function earlyStopping(config: EarlyStoppingOptions = {}): FitCallbacks {
  const fields = options<EarlyStoppingOptions>('earlyStopping', config, [
    'patience',
    'restoreBestWeights',
    ...WATCH_KEYS,
  ])
  const patience = checkSeed('earlyStopping.patience', fields.patience ?? 0)
  const restore = checkBoolean('earlyStopping.restoreBestWeights', fields.restoreBestWeights ?? false)
  const watch = new Watch('earlyStopping', fields, fields.log)
  let best: { epoch: number; weights: ReturnType<FitContext['model']['getWeights']> } | undefined
  return {
    onEpochEnd: (log, fit) => {
      const improved = watch.improved(log, fit)
      if (improved) best = restore ? { epoch: log.epoch, weights: fit.model.getWeights() } : undefined
      const stop = !improved && watch.wait >= patience
      if (stop) {
        watch.record(log, 'stopped', `no improvement of ${watch.monitor} for ${watch.wait} epochs (best ${watch.best})`)
        fit.stop()
      }
      const last = stop || log.epoch === fit.epochs - 1
      if (restore && last && best !== undefined && best.epoch !== log.epoch) {
        fit.model.setWeights(best.weights)
        watch.record(log, 'restoredBestWeights', `the weights of epoch ${best.epoch}`)
      }
    },
  }
}

export interface ReduceLrOnPlateauOptions extends WatchOptions {
  /** The learning rate is multiplied by this, in (0, 1). Default 0.1. */
  factor?: number
  /** Epochs without improvement before reducing. Default 10. */
  patience?: number
  /** Never below this. Default 0. */
  minLr?: number
  /** Epochs to wait after a reduction before counting again. Default 0. */
  cooldown?: number
}

/**
 * Multiplies the learning rate by `factor` (not below `minLr`) once the monitored quantity has
 * not improved for `patience` epochs; the fit trains its next batch with the new rate.
 */
export function reduceLrOnPlateau(config: ReduceLrOnPlateauOptions = {}): FitCallbacks {
  const fields = options<ReduceLrOnPlateauOptions>('reduceLrOnPlateau', config, [
    'factor',
    'patience',
    'minLr',
    'cooldown',
    ...WATCH_KEYS,
  ])
  const factor = checkFiniteNumber('reduceLrOnPlateau.factor', fields.factor ?? 0.1)
  if (!(factor > 0 && factor < 1))
    throw new OdysseyRangeError(
      'ODYSSEY_INVALID',
      `reduceLrOnPlateau.factor: expected a number in (0, 1), got ${factor}`,
    )
  const patience = checkSeed('reduceLrOnPlateau.patience', fields.patience ?? 10)
  const minLr = checkFiniteNumber('reduceLrOnPlateau.minLr', fields.minLr ?? 0)
  const cooldown = checkSeed('reduceLrOnPlateau.cooldown', fields.cooldown ?? 0)
  const watch = new Watch('reduceLrOnPlateau', fields, fields.log)
  let cooling = 0
  return {
    onEpochEnd: (log, fit) => {
      const improved = watch.improved(log, fit)
      if (cooling > 0) {
        cooling -= 1
        watch.wait = 0
        return
      }
      const old = fit.model.learningRate
      if (improved || watch.wait < patience || old <= minLr) return
      const rate = Math.max(old * factor, minLr)
      fit.model.setLearningRate(rate)
      watch.record(log, 'reducedLearningRate', `${old} -> ${rate} after ${watch.wait} epochs without improvement`)
      watch.wait = 0
      cooling = cooldown
    },
  }
}
