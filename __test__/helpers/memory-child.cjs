/**
 * The child process of __test__/memory.test.ts, on the built package: a plain synchronous loop
 * (the event loop never turns) over the arrays the native addon returns, printing the resident
 * memory once warmed up and the largest seen after that, as one JSON line.
 *
 *   node memory-child.cjs layer <iterations>   LSTM forward + getWeights (B 64, T 20, X 64, H 256)
 *   node memory-child.cjs model <iterations>   Model.step + getState + getWeights (batch 64, 64 features, H 256)
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
