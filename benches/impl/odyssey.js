'use strict'
/**
 * odyssey-rnn, native (`backend: 'native'`, the Rust core) or pure TypeScript
 * (`backend: 'js'`), loaded from the built package (`dist/`).
 *
 * The training step goes through the public layer API until the Model API
 * lands: LSTM.forward, then the MSE gradient and the SGD update in JavaScript,
 * LSTM.backward, setWeights. The records say which API ran.
 */
const os = require('node:os')
const path = require('node:path')

const { makeBatch, uniform } = require('../lib/data')
const { LEARNING_RATE } = require('../lib/shapes')
const { SkipCase } = require('../lib/skip')

const PACKAGE_ROOT = path.join(__dirname, '..', '..')

function loadOdyssey() {
  try {
    return require(PACKAGE_ROOT)
  } catch (error) {
    throw new Error(`odyssey-rnn could not be loaded from ${PACKAGE_ROOT} (${error.message}); run \`npm run build\` first`)
  }
}

/** The recurrent layer of the case; the LSTM without peepholes unless the case asks for them (nn.LSTM's math). */
function createLayer(odyssey, spec, backend) {
  const sizes = { inputSize: spec.X, hiddenSize: spec.H, dtype: 'float32', backend }
  return spec.cell === 'rnn' ? new odyssey.SimpleRNN(sizes) : new odyssey.LSTM({ ...sizes, peepholes: spec.peepholes })
}

/**
 * Mean squared error over every element and its gradient, written into `dy`.
 * @param {Float32Array} y `[B, T, H]`
 * @param {Float32Array} target `[B, T, H]`
 * @param {Float32Array} dy `[B, T, H]`, overwritten with ∂loss/∂y = 2(y − target)/N
 */
function mseLossAndGrad(y, target, dy) {
  const scale = 2 / y.length
  let sum = 0
  for (let i = 0; i < y.length; i++) {
    const diff = y[i] - target[i]
    sum += diff * diff
    dy[i] = scale * diff
  }
  return sum / y.length
}

/** Plain SGD on every parameter, in place: w ← w − lr·g. */
function sgdUpdate(weights, grads) {
  for (const [name, { data }] of Object.entries(weights)) {
    const grad = grads[name].data
    for (let i = 0; i < data.length; i++) data[i] -= LEARNING_RATE * grad[i]
  }
}

function layerTrainingStep(layer, spec) {
  const { B, T, X, H } = spec
  const { x, target } = makeBatch(spec, H)
  const dy = new Float32Array(B * T * H)
  const weights = layer.getWeights()
  return () => {
    const { y } = layer.forward({ x, shape: [B, T, X] })
    const loss = mseLossAndGrad(y.data, target, dy)
    const { grads } = layer.backward({ dy })
    sgdUpdate(weights, grads)
    layer.setWeights(weights)
    return loss
  }
}

function layerForwardPass(layer, spec) {
  const { B, T, X } = spec
  const { x } = makeBatch(spec, spec.H)
  return () => {
    layer.forward({ x, shape: [B, T, X] })
  }
}

/** One step of one sequence, the state carried in JavaScript: forward with T = 1, h0/c0 in, hN/cN out. */
function layerStreamingStep(layer, spec) {
  const x = uniform(spec.X, 3)
  let h = new Float32Array(spec.H)
  let c = new Float32Array(spec.H)
  return () => {
    const { hN, cN } = layer.forward({ x, shape: [1, 1, spec.X], h0: h, c0: c })
    h = hN.data
    c = cN.data
  }
}

const LAYER_API = {
  train: ['layer API: forward → MSE gradient in JS → backward → SGD in JS → setWeights', layerTrainingStep],
  forward: ['layer API: forward (also keeps the cache for backward)', layerForwardPass],
  stream: ['layer API proxy for step(): LSTM.forward with T = 1, state passed as h0/c0', layerStreamingStep],
}

function threadCount(backend) {
  if (backend === 'js') return 1
  return Number(process.env.RAYON_NUM_THREADS) || os.availableParallelism()
}

/** @returns {Promise<{ step: () => unknown, info: object }>} */
async function prepare(spec) {
  if (spec.layers > 1 || spec.bidirectional || spec.model) {
    throw new SkipCase('needs the Model API (sequential / trainStep), not merged yet')
  }
  const odyssey = loadOdyssey()
  const backend = spec.impl === 'odyssey-js' ? 'js' : 'native'
  const layer = createLayer(odyssey, spec, backend)
  const [api, makeStep] = LAYER_API[spec.mode]
  return { step: makeStep(layer, spec), info: { api, threads: threadCount(backend) } }
}

module.exports = { prepare }
