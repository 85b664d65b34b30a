/**
 * ONNX export: onnxruntime runs the exported graph and must reproduce odyssey's own forward
 * pass (the layers run by hand, heads in plain arithmetic) to 1e-5 in float32, for the
 * LSTM with and without peepholes, the variants ONNX can express, stacked bidirectional
 * stacks over variable lengths with a softmax head, the simple RNN and an embedding front
 * end; the variants it cannot express are refused by name.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'

import { OnnxUnsupportedError, exportOnnx, toOnnx, type LstmVariant, type OnnxModelSpec, type Tensor } from '../ts'
import { expectNear, randomArray } from './helpers/layers'
import { denseForward, denseWeights, lastOutput, makeStack, runOnnx, runStack, softmaxRows, stackWeights } from './helpers/onnx'

const TOLERANCE = 1e-5
const [BATCH, TIME, INPUT, HIDDEN] = [3, 5, 4, 6]
const LENGTHS = [5, 2, 4]
const DIMS = { batch: BATCH, time: TIME, width: INPUT }

const x = randomArray('float32', BATCH * TIME * INPUT, 1) as Float32Array
const lengthsFeed = { data: Int32Array.from(LENGTHS), dims: [BATCH] }
const xFeed = { data: x, dims: [BATCH, TIME, INPUT] }

function sequenceModel(node: OnnxModelSpec['nodes'][number], extra: OnnxModelSpec['nodes'] = []): OnnxModelSpec {
  const nodes = [node, ...extra]
  return { inputs: [{ kind: 'sequence', name: 'x', features: INPUT }], nodes, output: nodes[nodes.length - 1].name, loss: 'mse' }
}

describe('single-layer LSTM, every step, variable lengths, initial state in and final state out', () => {
  const variants: LstmVariant[] = ['vanilla', 'NP', 'NIAF', 'NOAF', 'CIFG']
  for (const variant of variants) {
    it(`${variant}${variant === 'NP' ? '' : ' with peepholes'}`, async () => {
      const stack = makeStack('lstm', INPUT, HIDDEN, { layers: 1, bidirectional: false }, { variant, forgetBias: 0.5 })
      const h0 = randomArray('float32', BATCH * HIDDEN, 2, 0.5) as Float32Array
      const c0 = randomArray('float32', BATCH * HIDDEN, 3, 0.5) as Float32Array
      const expected = runStack(stack, x, DIMS, LENGTHS, [{ h0, c0 }])
      const spec = sequenceModel({ name: 'lstm', inputs: ['x'], type: 'lstm', hiddenSize: HIDDEN, variant })
      const onnx = toOnnx(spec, stackWeights(stack), { state: true })
      const state = { dims: [1, BATCH, HIDDEN] }
      const out = await runOnnx(onnx, { x: xFeed, x_lengths: lengthsFeed, lstm_h0: { ...state, data: h0 }, lstm_c0: { ...state, data: c0 } })
      expectNear('y', out.lstm, expected.y, TOLERANCE)
      expectNear('hN', out.lstm_hN, expected.finals[0].h, TOLERANCE)
      expectNear('cN', out.lstm_cN, expected.finals[0].c!, TOLERANCE)
    })
  }
})
