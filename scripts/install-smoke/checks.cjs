'use strict'
// What an installed odyssey-rnn must do, checked from a project that installed
// the packed tarballs (__test__/install.test.ts, the release workflow). Plain
// Node with no test runner, so it runs on every Node version in `engines`.
const assert = require('node:assert/strict')

// [batch, time, inputSize]; the second sequence is one step shorter (padding).
const SHAPE = [2, 3, 4]
const LENGTHS = [3, 2]
const HIDDEN_SIZE = 5
const LEARNING_RATE = 0.1

/** `[batch, time, inputSize]` of fixed, varied values. */
function sampleInput() {
  return Float32Array.from({ length: SHAPE[0] * SHAPE[1] * SHAPE[2] }, (_, i) => Math.sin(i + 1))
}

/** J = ½‖y‖², so ∂J/∂y = y. */
function halfSquaredNorm(values) {
  return 0.5 * values.reduce((sum, v) => sum + v * v, 0)
}

/** One plain SGD step on J = ½‖y‖² with the layer's own gradients; J before and after it. */
function sgdStep(layer, x) {
  const { y } = layer.forward({ x, shape: SHAPE, lengths: LENGTHS })
  assert.deepEqual(y.shape, [SHAPE[0], SHAPE[1], HIDDEN_SIZE])
  const { grads } = layer.backward({ dy: y.data })
  const weights = layer.getWeights()
  const stepped = Object.entries(grads).map(([name, grad]) => [
    name,
    { shape: grad.shape, data: weights[name].data.map((w, i) => w - LEARNING_RATE * grad.data[i]) },
  ])
  layer.setWeights(Object.fromEntries(stepped))
  const after = layer.forward({ x, shape: SHAPE, lengths: LENGTHS }).y
  return { before: halfSquaredNorm(y.data), after: halfSquaredNorm(after.data) }
}

function lstm(odyssey, backend) {
  return new odyssey.LSTM({ inputSize: SHAPE[2], hiddenSize: HIDDEN_SIZE, seed: 3, backend })
}

/** A forward pass and a training step on `layer`, which must run on `backend`. */
function checkTrains(layer, backend) {
  assert.equal(layer.config.backend, backend)
  const { before, after } = sgdStep(layer, sampleInput())
  assert.ok(after < before, `an SGD step on the ${backend} backend should lower J: ${before} -> ${after}`)
  return { before, after }
}

/** The addon loaded: native layers train and agree with the pure-TS reference. */
function withBinary(odyssey) {
  const x = sampleInput()
  const nativeLstm = lstm(odyssey, 'native')
  const referenceLstm = lstm(odyssey, 'js')
  // The backends draw their initial weights differently; compare them on the same weights.
  referenceLstm.setWeights(nativeLstm.getWeights())
  const native = nativeLstm.forward({ x, shape: SHAPE, lengths: LENGTHS }).y.data
  const reference = referenceLstm.forward({ x, shape: SHAPE, lengths: LENGTHS }).y.data
  native.forEach((v, i) => {
    assert.ok(Math.abs(v - reference[i]) < 1e-5, `y[${i}]: native ${v}, js ${reference[i]}`)
  })
  return checkTrains(lstm(odyssey), 'native')
}

/** No addon: a native layer throws a named error; `backend: 'js'` still trains. */
function withoutBinary(odyssey) {
  let failure
  assert.throws(
    () => lstm(odyssey),
    (error) => {
      failure = error
      return error instanceof odyssey.OdysseyError && error.code === 'ODYSSEY_NATIVE_LOAD'
    },
  )
  for (const fix of [
    `${process.platform}-${process.arch}`,
    'odyssey-rnn-wasm32-wasi',
    'ODYSSEY_BACKEND=js',
    "backend: 'js'",
  ]) {
    assert.ok(failure.message.includes(fix), `the error should mention ${fix}: ${failure.message}`)
  }
  return { ...checkTrains(lstm(odyssey, 'js'), 'js'), message: failure.message }
}

/**
 * Only the WebAssembly package (no native binary): the loader falls back to it, native layers
 * agree with the pure-TS reference and train, and a `Model` fits (on its worker) and predicts.
 */
async function withWasm(odyssey) {
  withBinary(odyssey)
  const data = odyssey.addingProblem({ n: 32, time: 6, seed: 1 })
  const model = odyssey.sequential({
    input: { kind: 'sequence', features: 2 },
    layers: [odyssey.lstm({ hiddenSize: 6, output: 'last' }), odyssey.dense({ units: 1 })],
    loss: 'mse',
    optimizer: { type: 'adam', learningRate: 0.02 },
    seed: 2,
  })
  const history = await model.fit(data, { epochs: 4, batchSize: 8 })
  const predictions = await model.predict(data.x)
  assert.deepEqual(predictions.shape, [32, 1])
  model.dispose()
  return { before: history.loss[0], after: history.loss[history.loss.length - 1] }
}

/** `ODYSSEY_BACKEND=js` in the environment: layers default to the pure-TS backend. */
function withJsByEnvironment(odyssey) {
  assert.equal(process.env.ODYSSEY_BACKEND, 'js')
  return checkTrains(lstm(odyssey), 'js')
}

const SCENARIOS = {
  'with-binary': withBinary,
  'without-binary': withoutBinary,
  'js-by-env': withJsByEnvironment,
  'with-wasm': withWasm,
}

/**
 * The root is the library alone; `odyssey-rnn/onnx`, `/report` and `/vqa` load (with or without
 * the addon) and share the root's copy of the library: their errors are its classes.
 */
function checkSubpaths(odyssey, { onnx, report, vqa }) {
  for (const name of ['vqa', 'exportOnnx', 'RunLogger'])
    assert.equal(odyssey[name], undefined, `the root exports ${name}`)
  assert.equal(typeof onnx.exportOnnx, 'function')
  assert.equal(typeof report.RunLogger, 'function')
  assert.equal(typeof vqa.VqaModel, 'function')
  assert.ok(onnx.OnnxUnsupportedError.prototype instanceof odyssey.OdysseyRangeError)
  assert.ok(report.RunLogError.prototype instanceof odyssey.OdysseyError)
  assert.ok(new vqa.VqaFileError('questions.json', 'not JSON') instanceof odyssey.OdysseyError)
}

/** Runs one scenario against the loaded modules (the root and its subpaths) and prints its outcome as JSON. */
module.exports = function runScenario(odyssey, subpaths, scenario, entryPoint) {
  const check = SCENARIOS[scenario]
  if (check === undefined) throw new Error(`unknown scenario ${scenario}; one of ${Object.keys(SCENARIOS)}`)
  checkSubpaths(odyssey, subpaths)
  return Promise.resolve(check(odyssey)).then((outcome) => {
    console.log(JSON.stringify({ entryPoint, scenario, ...outcome }))
  })
}
