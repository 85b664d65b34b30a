/**
 * `model.exportOnnx`: models trained for a few steps through the Model API, exported, and run
 * by onnxruntime, must give what `model.predict` gives (1e-5, float32), padded steps included.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'

import { dense, lstm, Model, sequential } from '../ts'
import { expectNear, randomArray } from './helpers/layers'
import { runOnnx, softmaxRows } from './helpers/onnx'

const TOLERANCE = 1e-5
const [BATCH, TIME, INPUT] = [4, 6, 3]
const LENGTHS = [6, 3, 1, 5]
const x = {
  data: randomArray('float32', BATCH * TIME * INPUT, 50) as Float32Array,
  shape: [BATCH, TIME, INPUT] as [number, number, number],
  lengths: LENGTHS,
}
const feeds = {
  x: { data: x.data, dims: [BATCH, TIME, INPUT] },
  x_lengths: { data: Int32Array.from(LENGTHS), dims: [BATCH] },
}

const dir = mkdtempSync(join(tmpdir(), 'odyssey-onnx-model-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('model.exportOnnx', () => {
  it('a stacked bidirectional LSTM classifier: softmax of predict', async () => {
    const model = sequential({
      input: { kind: 'sequence', features: INPUT },
      layers: [lstm({ hiddenSize: 5, numLayers: 2, bidirectional: true, output: 'last' }), dense({ units: 3 })],
      loss: 'crossEntropy',
      optimizer: { type: 'adam', learningRate: 0.05 },
      seed: 3,
    })
    for (let step = 0; step < 3; step++) model.trainStep({ x, y: { classes: [0, 2, 1, 2], shape: [BATCH] } })
    const path = join(dir, 'classifier.onnx')
    await model.exportOnnx(path, { probabilities: true })
    const logits = await model.predict(x)
    expect(logits.shape).toEqual([BATCH, 3])
    const out = await runOnnx(path, feeds)
    expectNear('probabilities', out.dense, softmaxRows(Float32Array.from(logits.data), 3), TOLERANCE)
    model.dispose()
  })

  it('a many-to-many simple RNN (relu) with a per-step head and a float64 model: predict itself', async () => {
    const model = Model.fromSpec({
      inputs: [{ kind: 'sequence', name: 'x', features: INPUT }],
      nodes: [
        {
          name: 'rnn',
          inputs: ['x'],
          type: 'rnn',
          hiddenSize: 4,
          activation: 'relu',
          bidirectional: true,
          merge: 'sum',
        },
        { name: 'head', inputs: ['rnn'], type: 'dense', units: 2, activation: 'sigmoid' },
      ],
      output: 'head',
      loss: 'mse',
      dtype: 'float64',
      seed: 4,
      optimizer: { type: 'sgd', learningRate: 0.1 },
    })
    const x64 = { ...x, data: Float64Array.from(x.data) }
    model.trainStep({ x: x64, y: { data: randomArray('float64', BATCH * TIME * 2, 51), shape: [BATCH, TIME, 2] } })
    const path = join(dir, 'tagger.onnx')
    await model.exportOnnx(path)
    const expected = await model.predict(x64)
    expect(expected.shape).toEqual([BATCH, TIME, 2])
    const out = await runOnnx(path, feeds)
    expectNear('head', out.head, expected.data, TOLERANCE)
    model.dispose()
  })

  it('an NFG model is refused by name before anything is written', async () => {
    const model = sequential({
      input: { kind: 'sequence', features: INPUT },
      layers: [lstm({ hiddenSize: 2, variant: 'NFG' })],
      loss: 'mse',
      optimizer: { type: 'sgd', learningRate: 0.1 },
    })
    const path = join(dir, 'nfg.onnx')
    await expect(model.exportOnnx(path)).rejects.toMatchObject({
      code: 'ODYSSEY_UNSUPPORTED',
      feature: 'LSTM variant NFG',
    })
    expect(existsSync(path)).toBe(false)
    model.dispose()
  })
})
