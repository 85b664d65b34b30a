'use strict'
/**
 * odyssey-rnn, native (the Rust core), the same core as WebAssembly (odyssey-wasm:
 * `ODYSSEY_BACKEND=wasm`, the Model API like native) or pure TypeScript (`backend: 'js'`),
 * loaded from the built package (`dist/`).
 *
 * Native cases use the Model API when the package has it (`sequential`: one
 * native call per training step, `model.step` for streaming). Otherwise, and
 * always for the js backend (the Model API is native-only), they go through the
 * layer API: forward, the MSE gradient and the SGD update in JavaScript,
 * backward, setWeights. The VQA model's js case runs the reference backend's
 * `ReferenceVqaModel`. Every record says which API ran.
 */
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const { makeBatch, uniform } = require('../lib/data')
const { LEARNING_RATE } = require('../lib/shapes')
const { SkipCase } = require('../lib/skip')
const { seq2seqBatch, seq2seqGraph } = require('./seq2seq-model')
const { referenceVqaModel, vqaBatch, vqaGraph } = require('./vqa-model')

const PACKAGE_ROOT = path.join(__dirname, '..', '..')
const WASM_BUILD = path.join(PACKAGE_ROOT, 'native', 'odyssey-rnn.wasm32-wasi.wasm')

function loadOdyssey() {
  try {
    return require(PACKAGE_ROOT)
  } catch (error) {
    throw new Error(
      `odyssey-rnn could not be loaded from ${PACKAGE_ROOT} (${/** @type {Error} */ (error).message}); run \`npm run build\` first`,
    )
  }
}

/** The recurrent layer of the case; the LSTM without peepholes unless the case asks for them (nn.LSTM's math). */
function createLayer(odyssey, spec, backend) {
  const sizes = { inputSize: spec.X, hiddenSize: spec.H, dtype: 'float32', backend }
  if (spec.cell === 'gru') return new odyssey.GRU(sizes)
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

// ---------------------------------------------------------------------------------------------
// Model API: the product's path, Rust does the whole step

const SGD = { type: 'sgd', learningRate: LEARNING_RATE }

/** A sequential model of one recurrent node (stacked / bidirectional as the case says) under MSE. */
function recurrentModel(odyssey, spec) {
  const options = { hiddenSize: spec.H, numLayers: spec.layers, bidirectional: spec.bidirectional }
  const layers = {
    lstm: () => odyssey.lstm({ ...options, peepholes: spec.peepholes }),
    gru: () => odyssey.gru(options),
    rnn: () => odyssey.simpleRnn(options),
  }
  const layer = layers[spec.cell]()
  const input = { kind: 'sequence', features: spec.X }
  return odyssey.sequential({ input, layers: [layer], loss: 'mse', optimizer: SGD, dtype: 'float32' })
}

function modelTrainingStep(odyssey, spec) {
  const { B, T, X, H } = spec
  const width = H * (spec.bidirectional ? 2 : 1)
  const { x, target } = makeBatch(spec, width)
  const model = recurrentModel(odyssey, spec)
  const batch = { x: { data: x, shape: [B, T, X] }, y: { data: target, shape: [B, T, width] } }
  return () => model.trainStep(batch).loss
}

function modelForwardPass(odyssey, spec) {
  const { B, T, X } = spec
  const model = recurrentModel(odyssey, spec)
  const x = { data: makeBatch(spec, spec.H).x, shape: [B, T, X] }
  return () => model.predict(x, { batchSize: B })
}

/** The streaming loop the API documents: the step's values alone, the output into a reused buffer. */
function modelStreamingStep(odyssey, spec) {
  const model = recurrentModel(odyssey, spec)
  const x = uniform(spec.X, 3)
  const out = new Float32Array(spec.H)
  return () => {
    model.step(x, { out })
  }
}

const MODEL_API = {
  train: ['Model API: model.trainStep (forward, loss, BPTT, SGD in one native call)', modelTrainingStep],
  forward: ['Model API: await model.predict (worker thread)', modelForwardPass],
  stream: ['Model API: model.step(x, { out }), one step of one sequence per call', modelStreamingStep],
}

// ---------------------------------------------------------------------------------------------
// The VQA model (SPEC §4): native, or the pure-TypeScript reference from the same initial weights

const VQA_API = {
  native: 'Model API: model.trainStep on Model.fromSpec(vqaGraph(...))',
  js: 'ReferenceVqaModel.trainStep (dist/vqa/reference-model): forward, loss, BPTT, SGD in TypeScript',
}

/** Both backends train the same float32 model on the same batch; the js one starts from the native one's weights. */
function prepareVqa(odyssey, spec, backend) {
  if (typeof odyssey.Model?.fromSpec !== 'function') throw new SkipCase('needs the Model API (not in this build)')
  const model = odyssey.Model.fromSpec({ ...vqaGraph(PACKAGE_ROOT, spec.vqa), optimizer: SGD, dtype: 'float32' })
  const batch = vqaBatch(spec.vqa)
  const info = { api: VQA_API[backend], threads: threadCount(backend) }
  if (backend === 'native') return { step: () => model.trainStep(batch).loss, info }
  const reference = referenceVqaModel(PACKAGE_ROOT, spec.vqa, model.getWeights(), LEARNING_RATE)
  model.dispose()
  return { step: () => reference.trainStep(batch), info }
}

/** The encoder–decoder training step (native Model API only). */
function prepareSeq2seq(odyssey, spec) {
  if (typeof odyssey.Model?.fromSpec !== 'function') throw new SkipCase('needs the Model API (not in this build)')
  const model = odyssey.Model.fromSpec({ ...seq2seqGraph(spec.seq2seq), optimizer: SGD, dtype: 'float32' })
  const batch = seq2seqBatch(spec.seq2seq)
  const api = 'Model API: model.trainStep on an embedding → LSTM encoder → LSTM decoder (initialState) → dense graph'
  return { step: () => model.trainStep(batch).loss, info: { api, threads: threadCount('native') } }
}

// ---------------------------------------------------------------------------------------------

function threadCount(backend) {
  if (backend === 'js') return 1
  return Number(process.env.RAYON_NUM_THREADS) || os.availableParallelism()
}

function prepareModelApi(odyssey, spec) {
  const [api, makeStep] = MODEL_API[spec.mode]
  return { step: makeStep(odyssey, spec), info: { api, threads: threadCount('native') } }
}

function prepareLayerApi(odyssey, spec, backend) {
  if (spec.layers > 1 || spec.bidirectional) {
    throw new SkipCase(
      backend === 'js'
        ? 'the Model API is native-only; the js backend has only single layers'
        : 'needs the Model API (not in this build)',
    )
  }
  const [api, makeStep] = LAYER_API[spec.mode]
  return { step: makeStep(createLayer(odyssey, spec, backend), spec), info: { api, threads: threadCount(backend) } }
}

/** @returns {Promise<{ step: () => unknown, info: object }>} */
async function prepare(spec) {
  // Read when the binding first loads: odyssey-wasm runs the WebAssembly build of the same core.
  if (spec.impl === 'odyssey-wasm') {
    if (!fs.existsSync(WASM_BUILD)) throw new SkipCase('no WebAssembly build (npm run build:wasm)')
    process.env.ODYSSEY_BACKEND = 'wasm'
  }
  const odyssey = loadOdyssey()
  const backend = spec.impl === 'odyssey-js' ? 'js' : 'native'
  if (spec.model === 'vqa') return prepareVqa(odyssey, spec, backend)
  if (spec.model === 'seq2seq') return prepareSeq2seq(odyssey, spec)
  const modelApi = backend === 'native' && typeof odyssey.sequential === 'function'
  return modelApi ? prepareModelApi(odyssey, spec) : prepareLayerApi(odyssey, spec, backend)
}

module.exports = { prepare, loadOdyssey, recurrentModel }
