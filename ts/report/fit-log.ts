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
import type { FitCallbacks } from '../model/fit'
import type { RunLogger } from './log'

/** The global-norm clipping threshold the model trains with, or null: `gradNorm` is a global norm. */
function globalClipThreshold(model: Model): number | null {
  const clip = model.trainingSpec.clip as { globalNorm?: number | null } | undefined
  return clip?.globalNorm ?? null
}

/** `fit` callbacks that append one `step` record per batch and one `epoch` record per epoch to `log`. */
export function runLogCallbacks(log: RunLogger, model: Model): FitCallbacks {
  const clipThreshold = globalClipThreshold(model)
  return {
    onBatchEnd: ({ step, epoch, loss, gradNorm, clipped, applied, learningRate, examplesPerSecond }) =>
      log.step({ step, epoch, loss, gradNorm, clipThreshold, clipped, applied, learningRate, examplesPerSecond }),
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
export function logGradientFlow(log: RunLogger, model: Model, batch: Dataset, epoch: number): GradientFlow[] {
  const step = model.stepCount
  const flows = model.gradientFlow(batch)
  for (const { node, layer, norms } of flows) {
    const isLstm = model.graph.nodes.find((n) => n.name === node)?.type === 'lstm'
    log.gradientFlow({
      step,
      epoch,
      model: isLstm ? 'LSTM' : 'simple RNN',
      layer: `${node}.${layer}`,
      quantity: isLstm ? 'c' : 'h',
      norms: Array.from(norms),
    })
  }
  return flows
}
