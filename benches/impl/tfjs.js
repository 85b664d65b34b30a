'use strict'
/**
 * TensorFlow.js 4.x with the WebAssembly backend (XNNPACK, SIMD; single-threaded
 * in Node, which has no worker-based wasm threads here) or the plain JavaScript
 * CPU backend.
 *
 * The faithful equivalent of the training step is what a tfjs user writes:
 * `tf.layers.lstm({ returnSequences: true, recurrentActivation: 'sigmoid' })`
 * in a sequential model compiled with SGD and 'meanSquaredError', one
 * `trainOnBatch(x, target)`. recurrentActivation is set to 'sigmoid' because
 * tfjs defaults to 'hardSigmoid'; with it the cell is nn.LSTM's (no peepholes).
 * The recurrent initializer is glorotUniform instead of the default orthogonal,
 * which only changes set-up time.
 */
const { makeBatch, uniform } = require('../lib/data')
const { LEARNING_RATE } = require('../lib/shapes')

async function loadTf(backendName) {
  const tf = require('@tensorflow/tfjs-core')
  require('@tensorflow/tfjs-backend-cpu')
  require('@tensorflow/tfjs-backend-wasm')
  const tfl = require('@tensorflow/tfjs-layers')
  if (!(await tf.setBackend(backendName))) throw new Error(`tfjs backend '${backendName}' did not initialise`)
  await tf.ready()
  return { tf, tfl }
}

function recurrentLayer(tfl, spec, options) {
  const common = { units: spec.H, recurrentInitializer: 'glorotUniform', ...options }
  return spec.cell === 'rnn'
    ? tfl.layers.simpleRNN({ ...common, activation: 'tanh' })
    : tfl.layers.lstm({ ...common, recurrentActivation: 'sigmoid' })
}

/** `[B, T, X]` → `[B, T, H·directions]`, every step returned; stacked and optionally bidirectional (concat). */
function sequenceModel(tfl, spec) {
  const model = tfl.sequential()
  for (let layer = 0; layer < spec.layers; layer++) {
    const inputShape = layer === 0 ? { inputShape: [spec.T, spec.X] } : {}
    const cell = recurrentLayer(tfl, spec, { returnSequences: true, ...(spec.bidirectional ? {} : inputShape) })
    model.add(spec.bidirectional ? tfl.layers.bidirectional({ layer: cell, mergeMode: 'concat', ...inputShape }) : cell)
  }
  return model
}

function batchTensors(tf, spec) {
  const { B, T, X, H } = spec
  const width = H * (spec.bidirectional ? 2 : 1)
  const { x, target } = makeBatch(spec, width)
  return { xs: tf.tensor3d(x, [B, T, X]), ys: tf.tensor3d(target, [B, T, width]) }
}

function trainingStep(tf, tfl, spec) {
  const model = sequenceModel(tfl, spec)
  model.compile({ optimizer: tf.train.sgd(LEARNING_RATE), loss: 'meanSquaredError' })
  const { xs, ys } = batchTensors(tf, spec)
  return async () => model.trainOnBatch(xs, ys)
}

function forwardPass(tf, tfl, spec) {
  const model = sequenceModel(tfl, spec)
  const { xs } = batchTensors(tf, spec)
  return () => {
    const y = model.predict(xs)
    y.dataSync()
    y.dispose()
  }
}

/** A stateful LSTM of batch 1 fed one step per predict(); the state stays in the layer. */
function streamingStep(tf, tfl, spec) {
  const model = tfl.sequential()
  model.add(recurrentLayer(tfl, spec, { stateful: true, batchInputShape: [1, 1, spec.X] }))
  const x = tf.tensor3d(uniform(spec.X, 3), [1, 1, spec.X])
  return () => {
    const y = model.predict(x)
    y.dataSync()
    y.dispose()
  }
}

const STEPS = {
  train: ['tf.layers LSTM/simpleRNN, model.trainOnBatch (SGD, meanSquaredError)', trainingStep],
  forward: ['tf.layers, model.predict + dataSync', forwardPass],
  stream: ['stateful tf.layers.lstm, batch 1, predict per step + dataSync', streamingStep],
}

async function prepare(spec) {
  const backendName = spec.impl === 'tfjs-wasm' ? 'wasm' : 'cpu'
  const { tf, tfl } = await loadTf(backendName)
  const [api, makeStep] = STEPS[spec.mode]
  const wasmThreads = backendName === 'wasm' && tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT') ? 'multi' : 1
  return { step: makeStep(tf, tfl, spec), info: { api, threads: wasmThreads, version: tf.version_core } }
}

module.exports = { prepare }
