'use strict'
/**
 * brain.js 1.6.1 (`brain.recurrent.LSTMTimeStep` / `RNNTimeStep`), plain
 * JavaScript, one thread. What is and is not comparable (BENCHMARKS.md):
 * - it trains one sequence at a time (matrix–vector products) and updates the
 *   weights after every sequence (RMSProp-like with clipping), so one "step"
 *   here is `train(B sequences, { iterations: 1 })`: B updates, not one;
 * - its task is next-step prediction through an extra dense layer H → X
 *   (not counted in the FLOPs), not a fixed target [B, T, H];
 * - its LSTM multiplies the forget gate with the previous *output* instead of
 *   a cell state, so it is not the same recurrence.
 * The arithmetic per sequence step (4 gate blocks of H×(X+H)) is the same, so the
 * time per batch is a fair measure of what a user waits for.
 */
const { makeBatch } = require('../lib/data')
const { LEARNING_RATE } = require('../lib/shapes')
const { SkipCase } = require('../lib/skip')

/** brain.js's input format: B sequences of T plain arrays of X numbers. */
function sequences({ B, T, X }, x) {
  return Array.from({ length: B }, (_, b) =>
    Array.from({ length: T }, (_, t) => Array.from(x.subarray((b * T + t) * X, (b * T + t + 1) * X))),
  )
}

function createNet(spec) {
  const { recurrent } = require('brain.js')
  const Net = spec.cell === 'rnn' ? recurrent.RNNTimeStep : recurrent.LSTMTimeStep
  const options = { inputSize: spec.X, hiddenLayers: [spec.H], outputSize: spec.X, learningRate: LEARNING_RATE }
  // The constructor takes the training options too (learningRate); brain.js's .d.ts lists only the net's.
  return new Net(/** @type {import('brain.js').IRNNDefaultOptions} */ (options))
}

async function prepare(spec) {
  if (spec.mode === 'stream') throw new SkipCase('no stateful single-step call: run() replays the whole sequence')
  if (spec.layers > 1 || spec.bidirectional) throw new SkipCase('no bidirectional layers')
  const net = createNet(spec)
  const data = sequences(spec, makeBatch(spec, spec.H).x)
  if (spec.mode === 'train') {
    // errorThresh 0: never stop early; one pass over the B sequences.
    const step = () => net.train(data, { iterations: 1, errorThresh: 0, log: false }).error
    return {
      step,
      info: { api: 'recurrent.*TimeStep.train(B sequences, 1 iteration): B per-sequence updates', threads: 1 },
    }
  }
  net.train(data.slice(0, 1), { iterations: 1, errorThresh: 0, log: false }) // builds the model
  const step = () =>
    data.forEach((sequence) => {
      net.run(sequence)
    })
  return { step, info: { api: 'run() on each of the B sequences', threads: 1 } }
}

module.exports = { prepare }
