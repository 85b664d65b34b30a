/**
 * The child process of __test__/wasm-backend.test.ts, on the built package (dist/ and whichever
 * build of the Rust core ODYSSEY_BACKEND selects): one fixed workload through the Model API and a
 * low-level layer, printed as one JSON line so that the parent can compare two backends.
 *
 *   node backend-child.cjs <scratch dir>
 *
 * Prints {"binding", "wasmModule", "staged", "rayonThreads", "layer", "losses", "batches", "predictions", "reloaded",
 * "aborted", "badInput", "streamed"}.
 */
'use strict'
const { join } = require('node:path')
const { addingProblem, dense, LSTM, lstm, Model, sequential } = require('../../dist')
const { loadedBindingKind } = require('../../dist/native')

const [scratch] = process.argv.slice(2)

/** A streaming LSTM of one sequence input (X 128, H 256: the step split over two threads where they run). */
function streamer(features, hidden, dtype) {
  return sequential({
    input: { kind: 'sequence', features },
    layers: [lstm({ hiddenSize: hidden })],
    loss: 'mse',
    optimizer: { type: 'sgd', learningRate: 0.1 },
    dtype,
    seed: 5,
  })
}

/**
 * Streaming steps of two models of other dtypes, sizes and batches, interleaved (the WebAssembly
 * build's one stage of x and output serves both in turn), into an output buffer and into new
 * arrays: every step's outputs, in order.
 */
function stream() {
  const big = streamer(128, 256, 'float32')
  const small = streamer(3, 8, 'float64')
  const outputs = []
  const out = new Float32Array(256)
  for (let t = 0; t < 12; t++) {
    const x = Float32Array.from({ length: 128 }, (_, i) => Math.sin(i * 0.1 + t))
    outputs.push(...(t % 2 === 0 ? big.step(x, { out }).data : big.step(x).data))
    outputs.push(...small.step(Float64Array.from({ length: 2 * 3 }, (_, i) => Math.cos(i + t))).data)
  }
  big.dispose()
  small.dispose()
  return outputs
}

function model() {
  return sequential({
    input: { kind: 'sequence', features: 2 },
    layers: [lstm({ hiddenSize: 8, output: 'last', forgetBias: 1 }), dense({ units: 1 })],
    loss: 'mse',
    optimizer: { type: 'adam', learningRate: 1e-2 },
    dtype: 'float32',
    seed: 3,
  })
}

async function main() {
  // A float32 LSTM layer, forward and backward: the kernels on their own.
  const layer = new LSTM({ inputSize: 3, hiddenSize: 5, dtype: 'float32', seed: 11 })
  const x = Float32Array.from({ length: 2 * 4 * 3 }, (_, i) => Math.sin(i))
  const forward = layer.forward({ x, shape: [2, 4, 3] })
  const backward = layer.backward({ dy: Float32Array.from(forward.y.data, (v) => 1 - v) })
  layer.dispose()

  // fit on its worker with progress, predict, save and load through the file system.
  const data = addingProblem({ n: 64, time: 8, seed: 4 })
  const trained = model()
  let batches = 0
  const history = await trained.fit(data, { epochs: 3, batchSize: 16, callbacks: { onBatchEnd: () => void batches++ } })
  const predictions = await trained.predict(data.x)
  const dir = join(scratch, 'checkpoint')
  await trained.save(dir)
  trained.dispose()
  const loaded = await Model.load(dir)
  const reloaded = await loaded.predict(data.x)

  // abort: stops before the next batch and rejects with the typed error.
  const controller = new AbortController()
  const aborted = await loaded
    .fit(data, {
      epochs: 50,
      batchSize: 16,
      signal: controller.signal,
      callbacks: { onBatchEnd: () => controller.abort() },
    })
    .then(
      () => 'finished',
      (error) => error.name,
    )

  // bad input: a typed error, not a crash.
  let badInput = 'accepted'
  try {
    await loaded.predict({ data: new Float32Array(5), shape: [1, 5, 1] })
  } catch (error) {
    badInput = `${error.name} ${error.code}`
  }
  loaded.dispose()

  const streamed = stream()

  const out = {
    binding: loadedBindingKind(),
    // The WebAssembly module the loader picked (scripts/wasm-relaxed-simd.cjs), and the pool size it was given.
    wasmModule: require('../../native/binding.cjs').__odysseyWasmModule ?? null,
    // Whether `model.step` has the module's memory for its stage (Node's loader exports it).
    staged: require('../../native/binding.cjs').__odysseyWasmMemory !== undefined,
    rayonThreads: process.env.RAYON_NUM_THREADS ?? null,
    layer: { y: [...forward.y.data], dx: [...backward.dx.data] },
    losses: history.loss,
    batches,
    predictions: [...predictions.data],
    reloaded: [...reloaded.data],
    aborted,
    badInput,
    streamed,
  }
  process.stdout.write(`${JSON.stringify(out)}\n`)
}

main().catch((error) => {
  process.stderr.write(`${error.stack}\n`)
  process.exit(1)
})
