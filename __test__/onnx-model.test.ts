/**
 * `model.exportOnnx`: models trained for a few steps through the Model API, exported, and run
 * by onnxruntime, must give what `model.predict` gives (1e-5, float32), padded steps included.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'

import { dense, lstm, Model, type NodeSpec, sequential } from '../ts'
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

describe('model.exportOnnx of encoder–decoder graphs', () => {
  const [SRC_TIME, TGT_TIME] = [5, 4]
  const src = {
    data: randomArray('float32', BATCH * SRC_TIME * 2, 60) as Float32Array,
    shape: [BATCH, SRC_TIME, 2] as [number, number, number],
    lengths: [5, 2, 4, 3],
  }
  const tgt = {
    data: randomArray('float32', BATCH * TGT_TIME * 3, 61) as Float32Array,
    shape: [BATCH, TGT_TIME, 3] as [number, number, number],
    lengths: [4, 4, 1, 2],
  }
  const context = { data: randomArray('float32', BATCH * 3, 62) as Float32Array, shape: [BATCH, 3] as [number, number] }
  const seq2seqFeeds = {
    src: { data: src.data, dims: src.shape },
    src_lengths: { data: Int32Array.from(src.lengths), dims: [BATCH] },
    tgt: { data: tgt.data, dims: tgt.shape },
    tgt_lengths: { data: Int32Array.from(tgt.lengths), dims: [BATCH] },
    context: { data: context.data, dims: context.shape },
  }

  /** Trains one step, exports, and checks onnxruntime's output against `predict`. */
  async function expectExportMatchesPredict(nodes: NodeSpec[], seed: number, file: string) {
    const model = Model.fromSpec({
      inputs: [
        { kind: 'sequence', name: 'src', features: 2 },
        { kind: 'sequence', name: 'tgt', features: 3 },
        { kind: 'vector', name: 'context', features: 3 },
      ],
      nodes,
      output: 'head',
      loss: 'mse',
      seed,
      optimizer: { type: 'sgd', learningRate: 0.1 },
    })
    const x = { src, tgt, context }
    const targets = randomArray('float32', BATCH * TGT_TIME * 2, 57 + seed)
    model.trainStep({ x, y: { data: targets, shape: [BATCH, TGT_TIME, 2] } })
    const path = join(dir, file)
    await model.exportOnnx(path)
    const expected = await model.predict(x)
    expect(expected.shape).toEqual([BATCH, TGT_TIME, 2])
    const out = await runOnnx(path, seq2seqFeeds)
    expectNear('head', out.head, expected.data, TOLERANCE)
    model.dispose()
  }

  it('LSTM and bidirectional RNN decoders started from encoders, a context vector repeated over time: predict', async () => {
    await expectExportMatchesPredict(
      [
        { name: 'enc', inputs: ['src'], type: 'lstm', hiddenSize: 4, numLayers: 2, output: 'states', peepholes: false },
        { name: 'dec', inputs: ['tgt'], type: 'lstm', hiddenSize: 4, numLayers: 2, initialState: 'enc' },
        { name: 'init', inputs: ['context'], type: 'dense', units: 6, activation: 'tanh' },
        { name: 'each', inputs: ['context', 'tgt'], type: 'repeat' },
        { name: 'joined', inputs: ['dec', 'each'], type: 'concat' },
        { name: 'rnn', inputs: ['joined'], type: 'rnn', hiddenSize: 3, bidirectional: true, initialState: 'init' },
        { name: 'head', inputs: ['rnn'], type: 'dense', units: 2 },
      ],
      6,
      'seq2seq.onnx',
    )
  })

  it('GRU decoders started from a stacked GRU encoder and, bidirectional, from a learned vector: predict', async () => {
    await expectExportMatchesPredict(
      [
        { name: 'enc', inputs: ['src'], type: 'gru', hiddenSize: 4, numLayers: 2, output: 'states' },
        { name: 'dec', inputs: ['tgt'], type: 'gru', hiddenSize: 4, numLayers: 2, initialState: 'enc' },
        { name: 'init', inputs: ['context'], type: 'dense', units: 6, activation: 'tanh' },
        { name: 'caption', inputs: ['dec'], type: 'gru', hiddenSize: 3, bidirectional: true, initialState: 'init' },
        { name: 'head', inputs: ['caption'], type: 'dense', units: 2 },
      ],
      7,
      'gru-seq2seq.onnx',
    )
  })
})
