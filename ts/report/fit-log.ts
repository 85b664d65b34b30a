/**
 * From `Model.fit` to a run log: callbacks that append a `step` record per batch
 * and an `epoch` record per epoch, and the gradient-flow measurement, which runs
 * between fits (a model does one operation at a time).
 *
 *     const log = new RunLogger(runLogPath(dir), { label: 'LSTM', task: 'adding problem' })
 *     logGradientFlow(log, model, probe, 0)
 *     for (let epoch = 0; epoch < epochs; epoch++) {
 *       await model.fit(train, { epochs: epoch + 1, initialEpoch: epoch, callbacks: runLogCallbacks(log, model) })
 *       logGradientFlow(log, model, probe, epoch)
 *     }
 *     log.close()
 */
import type { GradientFlow, Model } from '../model'
import type { Dataset } from '../model/data'
import type { BatchLog, FitCallbacks } from '../model/fit'
import type { VqaEpochLog, VqaScore } from '../vqa/model'
import type { RunLogger } from './log'

/** What the step, epoch and gradient-flow writers need of a log: a `RunLogger`, or records kept in memory (a browser page). */
export type RunRecordSink = Pick<RunLogger, 'step' | 'epoch' | 'gradientFlow'>

/** The global-norm clipping threshold the model trains with, or null: `gradNorm` is a global norm. */
export function globalClipThreshold(model: Model): number | null {
  const clip = model.trainingSpec.clip as { globalNorm?: number | null } | undefined
  return clip?.globalNorm ?? null
}

/** Appends the `step` record of one finished batch. */
export function logStep(log: RunRecordSink, batch: BatchLog, clipThreshold: number | null): void {
  const { step, epoch, loss, gradNorm, clipped, applied, learningRate, examplesPerSecond } = batch
  log.step({ step, epoch, loss, gradNorm, clipThreshold, clipped, applied, learningRate, examplesPerSecond })
}

/** `fit` callbacks that append one `step` record per batch and one `epoch` record per epoch to `log`. */
export function runLogCallbacks(log: RunRecordSink, model: Model): FitCallbacks {
  const clipThreshold = globalClipThreshold(model)
  return {
    onBatchEnd: (batch) => logStep(log, batch, clipThreshold),
    onEpochEnd: ({ epoch, step, loss, valLoss, valAccuracy, seconds }) =>
      log.epoch({
        epoch,
        step,
        loss,
        ...(valLoss === undefined ? {} : { validationLoss: valLoss }),
        metrics: valAccuracy === undefined ? {} : { 'validation accuracy': valAccuracy },
        seconds,
      }),
  }
}

/**
 * Measures how the loss's gradient on `batch` reaches back through time in every recurrent
 * layer of `model` (`Model.gradientFlow`, weights untouched) and appends one `gradientFlow`
 * record per layer entry, at the model's current step; `epoch` is the epoch just finished (or
 * 0 before training). Returns the measurement.
 */
export function logGradientFlow(log: RunRecordSink, model: Model, batch: Dataset, epoch: number): GradientFlow[] {
  const step = model.stepCount
  const flows = model.gradientFlow(batch)
  for (const { node, layer, norms } of flows) {
    const type = model.graph.nodes.find((n) => n.name === node)?.type
    log.gradientFlow({
      step,
      epoch,
      model: type === 'lstm' ? 'LSTM' : type === 'gru' ? 'GRU' : 'simple RNN',
      layer: `${node}.${layer}`,
      // The LSTM's long path runs through its cell c; the GRU and the simple RNN carry only h.
      quantity: type === 'lstm' ? 'c' : 'h',
      norms: Array.from(norms),
    })
  }
  return flows
}

/**
 * Appends the `vqa` record of one scoring of a split: accuracies in percent (as `evaluateVqa`
 * gives them) are stored as fractions, as the run log format wants.
 */
export function logVqaEvaluation(
  log: RunLogger,
  at: { step: number; epoch: number; split: string },
  { evaluation, confusion }: VqaScore,
): void {
  const groups = Object.entries(evaluation.perQuestionType)
  log.vqa({
    ...at,
    accuracy: evaluation.overall / 100,
    accuracyByQuestionType: Object.fromEntries(groups.map(([type, group]) => [type, group.accuracy / 100])),
    questionsByType: Object.fromEntries(groups.map(([type, group]) => [type, group.questions])),
    confusion,
  })
}

/** A VQA epoch's `epoch` record and, when the epoch was scored on a validation split, its `vqa` record. */
export function logVqaEpoch(log: RunLogger, epoch: VqaEpochLog, scored: VqaScore | undefined): void {
  log.epoch({
    epoch: epoch.epoch,
    step: epoch.step,
    loss: epoch.loss,
    metrics: scored === undefined ? {} : { 'VQA accuracy': scored.evaluation.overall / 100 },
    seconds: epoch.seconds,
  })
  if (scored !== undefined) logVqaEvaluation(log, { step: epoch.step, epoch: epoch.epoch, split: 'val' }, scored)
}
