/**
 * The child process of __test__/memory.test.ts, on the built package: a plain synchronous loop
 * (the event loop never turns) over the arrays the native addon returns, printing the resident
 * memory once warmed up and the largest seen after that, as one JSON line.
 *
 *   node memory-child.cjs layer <iterations>   LSTM forward + getWeights (B 64, T 20, X 64, H 256)
 *   node memory-child.cjs model <iterations>   Model.step + getState + getWeights (batch 64, 64 features, H 256)
 *   node memory-child.cjs train <iterations>   Model.trainStep at the bench's S2 (B 64, T 100, X 128, H 256, MSE,
 *                                              SGD): `start` before the first step, `largest` the peak RSS after the last
 */
'use strict'
const { LSTM, dense, lstm, sequential } = require('../../dist')

const [what, iterations] = [process.argv[2], Number(process.argv[3])]
const [B, T, X, H] = [64, 20, 64, 256]

function filled(length) {
  const values = new Float32Array(length)
  for (let i = 0; i < length; i++) values[i] = Math.sin(i)
  return values
}

function layerCall() {
  const layer = new LSTM({ inputSize: X, hiddenSize: H })
  const input = { x: filled(B * T * X), shape: [B, T, X] }
  return () => {
    layer.forward(input)
    layer.getWeights()
  }
}

function modelCall() {
  const model = sequential({
    input: { kind: 'sequence', features: X },
    layers: [lstm({ hiddenSize: H }), dense({ units: X })],
    loss: 'mse',
    optimizer: { type: 'adam', learningRate: 1e-3 },
  })
  const x = { data: filled(B * X), shape: [B, X] }
  return () => {
    model.step(x)
    model.getState()
    model.getWeights()
  }
}

/** One training step of an LSTM under MSE and SGD (no optimizer state) on one fixed batch. */
function trainCall([B, T, X, H]) {
  const model = sequential({
    input: { kind: 'sequence', features: X },
    layers: [lstm({ hiddenSize: H })],
    loss: 'mse',
    optimizer: { type: 'sgd', learningRate: 0.01 },
  })
  const batch = { x: { data: filled(B * T * X), shape: [B, T, X] }, y: { data: filled(B * T * H), shape: [B, T, H] } }
  return () => model.trainStep(batch)
}

if (what === 'train') {
  // The growth of the peak over the RSS with the model and the batch allocated, as the bench measures it.
  const call = trainCall([64, 100, 128, 256])
  const start = process.memoryUsage().rss
  for (let i = 0; i < iterations; i++) call()
  const largest = process.resourceUsage().maxRSS * 1024
  process.stdout.write(`${JSON.stringify({ start, largest })}\n`)
  process.exit(0)
}

const call = what === 'layer' ? layerCall() : modelCall()
const WARM_UP = 20
for (let i = 0; i < WARM_UP; i++) call()
const start = process.memoryUsage().rss
let largest = start
for (let i = 0; i < iterations; i++) {
  call()
  if (i % 50 === 0) largest = Math.max(largest, process.memoryUsage().rss)
}
largest = Math.max(largest, process.memoryUsage().rss)
process.stdout.write(`${JSON.stringify({ start, largest })}\n`)
