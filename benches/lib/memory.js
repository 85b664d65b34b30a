'use strict'
/**
 * The memory a training step cannot do without, to compare the peak RSS
 * against: weights + gradients + optimizer state + the activations exact BPTT
 * must keep from the forward pass. All float32.
 */

const BYTES = 4
const MiB = 2 ** 20

/**
 * Parameter count of one layer, PyTorch layout (two bias vectors), plus peepholes p_i, p_f, p_o.
 * @param {{ cell: string, X: number, H: number, peepholes?: boolean }} layer
 */
function parameterCount({ cell, X, H, peepholes }) {
  const gates = cell === 'lstm' ? 4 : 1
  const peepholeCount = cell === 'lstm' && peepholes ? 3 * H : 0
  return gates * H * (X + H) + 2 * gates * H + peepholeCount
}

/**
 * Floats saved per (sequence, step): the LSTM keeps z, i, f, o, c(t) and y(t) (6H),
 * the simple RNN h(t) (H); everything else backward needs is recomputed from these.
 */
function savedPerStep({ cell, H }) {
  return cell === 'lstm' ? 6 * H : H
}

/**
 * @param {{ cell: string, B: number, T: number, X: number, H: number, peepholes?: boolean }} spec
 * @param {number} rssAfterSetupMiB RSS with the model and the batch allocated, before the first step
 * @param {number} peakRssMiB peak RSS of the process after all the steps
 */
function memoryBudget(spec, rssAfterSetupMiB, peakRssMiB) {
  const weightsMiB = (parameterCount(spec) * BYTES) / MiB
  const activationsMiB = (spec.B * spec.T * savedPerStep(spec) * BYTES) / MiB
  const optimizerMiB = 0 // plain SGD keeps no state
  const requiredMiB = 2 * weightsMiB + optimizerMiB + activationsMiB
  const growthMiB = peakRssMiB - rssAfterSetupMiB
  return {
    weightsMiB,
    gradientsMiB: weightsMiB,
    optimizerMiB,
    activationsMiB,
    requiredMiB,
    growthMiB,
    ratio: growthMiB / requiredMiB,
  }
}

module.exports = { memoryBudget, parameterCount }
