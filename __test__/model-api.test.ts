/**
 * The Model facade: building (sequential and graphs), argument checks with
 * typed errors, predict/evaluate shapes, streaming `step` against `predict`,
 * weights by key, truncated BPTT over the whole sequence against full BPTT,
 * and disposal.
 */
import { describe, expect, it } from 'vitest'

import {
  dense,
  dropout,
  embedding,
  lstm,
  Model,
  OdysseyRangeError,
  OdysseyTypeError,
  sequential,
  simpleRnn,
} from '../ts'
import { fromNativeError } from '../ts/errors'
import { expectNear } from './helpers/layers'
import { lstmRegressor, runningSums, weightValues } from './helpers/models'

describe('building models', () => {
  it('sequential names nodes after their type and keys weights "{node}.{PyTorch name}"', () => {
    const model = sequential({
      input: { kind: 'sequence', features: 3 },
      layers: [
        lstm({ hiddenSize: 4, numLayers: 2 }),
        lstm({ hiddenSize: 5, output: 'last', variant: 'CIFG' }),
        dropout({ rate: 0.1 }),
        dense({ units: 2 }),
      ],
      loss: 'mse',
      optimizer: { type: 'sgd', learningRate: 0.1, momentum: 0.9, nesterov: true },
    })
    expect(model.graph.nodes.map((n) => n.name)).toEqual(['lstm', 'lstm_1', 'dropout', 'dense'])
    const shapes = Object.fromEntries(Object.entries(model.getWeights()).map(([k, t]) => [k, t.shape]))
    expect(shapes['lstm.weight_ih_l0']).toEqual([16, 3])
    expect(shapes['lstm.weight_ih_l1']).toEqual([16, 4])
    expect(shapes['lstm_1.weight_hh_l0']).toEqual([20, 5])
    expect(shapes['dense.weight']).toEqual([2, 5])
    expect(model.trainingSpec).toMatchObject({
      optimizer: { type: 'sgd', momentum: 0.9, nesterov: true },
      learningRate: 0.1,
    })
  })

  it('fromSpec builds a two-input graph (image vector × question tokens) that predicts one row per example', async () => {
    const model = Model.fromSpec({
      inputs: [
        { kind: 'vector', name: 'image', features: 6 },
        { kind: 'tokens', name: 'question' },
      ],
      nodes: [
        { name: 'words', inputs: ['question'], type: 'embedding', vocabSize: 10, dim: 4 },
        { name: 'q', inputs: ['words'], type: 'lstm', hiddenSize: 3, numLayers: 2, output: 'states' },
        { name: 'qd', inputs: ['q'], type: 'dense', units: 5, activation: 'tanh' },
        { name: 'norm', inputs: ['image'], type: 'l2Normalize' },
        { name: 'id', inputs: ['norm'], type: 'dense', units: 5, activation: 'tanh' },
        { name: 'fuse', inputs: ['qd', 'id'], type: 'multiply' },
        { name: 'answer', inputs: ['fuse'], type: 'dense', units: 7 },
      ],
      output: 'answer',
      loss: 'crossEntropy',
      optimizer: { type: 'adamw', learningRate: 1e-3 },
    })
    const x = {
      image: { data: Float32Array.from({ length: 12 }, (_, k) => k / 12), shape: [2, 6] as [number, number] },
      question: { ids: [1, 2, 3, 0, 4, 5, 9, 9], shape: [2, 4] as [number, number], lengths: [3, 4] },
    }
    const prediction = await model.predict(x)
    expect(prediction.shape).toEqual([2, 7])
    const evaluation = await model.evaluate({ x, y: { classes: [1, 6], shape: [2] } })
    expect(evaluation.examples).toBe(2)
    expect(evaluation.accuracy).toBeGreaterThanOrEqual(0)
    expect(evaluation.loss).toBeGreaterThan(0)
  })

  it('rejects bad configurations naming the option', () => {
    const base = {
      input: { kind: 'sequence' as const, features: 2 },
      layers: [dense({ units: 1 })],
      loss: 'mse' as const,
      optimizer: { type: 'adam' as const, learningRate: 1e-3 },
    }
    expect(() => lstm({ hiddenSize: 0 })).toThrow(OdysseyRangeError)
    expect(() => lstm({ hiddenSize: 4, variant: 'XYZ' as never })).toThrow(/lstm.variant: expected one of/)
    expect(() => simpleRnn({ hiddenSize: 4, activaton: 'relu' } as never)).toThrow(/unknown option 'activaton'/)
    expect(() => sequential({ ...base, optimizer: { type: 'adam', learningRate: -1 } })).toThrow(
      /optimizer.learningRate: expected a number >= 0/,
    )
    expect(() => sequential({ ...base, optimizer: { type: 'sgd', learningRate: 0.1, nesterov: true } })).toThrow(
      /nesterov: needs momentum > 0/,
    )
    expect(() => sequential({ ...base, clip: { globalNorm: 0 } })).toThrow(/clip.globalNorm: expected a number > 0/)
    expect(() => sequential({ ...base, schedule: { type: 'cosine', tMax: 0 } })).toThrow(/schedule.tMax/)
    expect(() => sequential({ ...base, layers: [embedding({ vocabSize: 5, dim: 2 })] })).toThrow(
      /an embedding reads token ids/,
    )
    expect(() =>
      sequential({ ...base, input: { kind: 'vector', features: 2 }, layers: [lstm({ hiddenSize: 2 })] }),
    ).toThrow(/reads sequences \[n, time, features\], got vectors \[n, 2\]/)
    expect(() =>
      Model.fromSpec({
        inputs: [{ kind: 'sequence', name: 'x', features: 2 }],
        nodes: [{ name: 'out', inputs: ['nope'], type: 'dense', units: 1 }],
        output: 'out',
        loss: 'mse',
        optimizer: { type: 'adam', learningRate: 1e-3 },
      }),
    ).toThrow(/nodes 'out': reads 'nope', which is neither a model input nor an earlier node/)
  })

  it('checks data against the model before any native call: dtype, features, lengths, targets', async () => {
    const model = lstmRegressor({ output: 'last' })
    const { x, y } = runningSums(4, 3, { total: true })
    await expect(model.predict({ ...x, data: Float64Array.from(x.data) })).rejects.toMatchObject({
      code: 'ODYSSEY_DTYPE',
      name: 'OdysseyTypeError',
    })
    await expect(model.predict({ data: x.data, shape: [4, 2, 3] })).rejects.toThrow(
      /x.shape: expected \[n, time, features=2\]/,
    )
    await expect(model.predict({ ...x, lengths: [3, 3, 0, 3] })).rejects.toMatchObject({ code: 'ODYSSEY_LENGTH' })
    await expect(model.evaluate({ x, y: { data: y.data, shape: [4, 2] } })).rejects.toThrow(
      /data.y.shape: expected \[n=4, width=1\] \(the model output's shape\), got \[4, 2\]/,
    )
    await expect(model.evaluate({ x, y: { classes: [0, 0, 0, 0], shape: [4] } })).rejects.toThrow(OdysseyTypeError)
    const nan = Float32Array.from(x.data)
    nan[5] = NaN
    // The core finds it; the message still names the argument and the value's coordinates.
    await expect(model.predict({ data: nan, shape: x.shape })).rejects.toMatchObject({
      code: 'ODYSSEY_NON_FINITE',
      message: expect.stringContaining('x.data: non-finite value NaN at index 5 = [n=0, time=2, features=1]'),
    })
    await expect(model.fit({ x, y }, { epochs: 1, batchSize: 0 })).rejects.toThrow(
      /batchSize: expected an integer in 1\.\./,
    )
    await expect(model.fit({ x, y }, { epochs: 1, initialEpoch: 1 })).rejects.toThrow(
      /epochs: must be greater than initialEpoch/,
    )
    await expect(model.fit({ x, y }, { epochs: 1, batchsize: 2 } as never)).rejects.toThrow(
      /unknown option 'batchsize'/,
    )
  })
})

describe('inference', () => {
  it('predict returns [n, time, width] for a many-to-many model and evaluate its mean loss', async () => {
    const model = lstmRegressor({ output: 'sequence', dtype: 'float64' })
    const data = runningSums(5, 4, { total: false, dtype: 'float64' })
    const prediction = await model.predict(data.x, { batchSize: 2 })
    expect(prediction.shape).toEqual([5, 4, 1])
    expect(prediction.data).toBeInstanceOf(Float64Array)
    let sum = 0
    prediction.data.forEach((p, k) => {
      sum += (p - data.y.data[k]) ** 2
    })
    const evaluation = await model.evaluate(data, { batchSize: 3 })
    expect(evaluation.loss).toBeCloseTo(sum / 20, 12)
    expect(evaluation.accuracy).toBeUndefined()
  })

  it('predict fills a fresh array of its own per call, every row of every batch, in both dtypes', async () => {
    for (const dtype of ['float32', 'float64'] as const) {
      const model = lstmRegressor({ output: 'sequence', dtype })
      const { x } = runningSums(7, 4, { total: false, dtype })
      const whole = await model.predict(x)
      const batched = await model.predict(x, { batchSize: 3 })
      expect(whole.data).toBeInstanceOf(dtype === 'float32' ? Float32Array : Float64Array)
      expect(whole.data.length).toBe(7 * 4)
      expect(whole.data.buffer.byteLength).toBe(whole.data.byteLength)
      expect(batched.data.buffer).not.toBe(whole.data.buffer)
      // Every row written: the last batch (one example) too. The arrays are not zero-filled
      // first, so a row left out would show what the memory held before.
      expect(batched.data).toEqual(whole.data)
      expect(whole.data.subarray(6 * 4).every((v) => v !== 0)).toBe(true)
      for (const batchSize of [1, 2, 4, 6]) expect((await model.predict(x, { batchSize })).data).toEqual(whole.data)
    }
  })

  it('the native predict refuses inputs whose data do not fill their shape, before writing anything', async () => {
    const model = lstmRegressor({ output: 'sequence' })
    const { x } = runningSums(2, 4, { total: false })
    const native = (model as unknown as { native: { predict: (d: unknown, b: number) => Promise<unknown> } }).native
    // An output of that shape could not be allocated: the data's length is checked first.
    const args = { inputs: [{ data: x.data, shape: [4_000_000_000, 4_000_000_000, 2] }] }
    const refused = await native.predict(args, 8).catch(fromNativeError)
    expect(refused).toMatchObject({ code: 'ODYSSEY_SHAPE', message: expect.stringContaining('x: expected shape') })
    expect((await model.predict(x)).shape).toEqual([2, 4, 1])
  })

  it('step() through a sequence one time step at a time gives exactly what predict gives', async () => {
    const model = sequential({
      input: { kind: 'sequence', features: 2 },
      layers: [lstm({ hiddenSize: 5, numLayers: 2 }), simpleRnn({ hiddenSize: 3 }), dense({ units: 2 })],
      loss: 'mse',
      optimizer: { type: 'adam', learningRate: 1e-3 },
      dtype: 'float64',
      seed: 4,
    })
    const [n, time] = [3, 7]
    const { x } = runningSums(n, time, { total: false, dtype: 'float64' })
    const whole = await model.predict(x)
    for (let pass = 0; pass < 2; pass++) {
      for (let t = 0; t < time; t++) {
        const stepInput = new Float64Array(n * 2)
        for (let s = 0; s < n; s++) stepInput.set(x.data.subarray((s * time + t) * 2, (s * time + t + 1) * 2), s * 2)
        const out = model.step({ data: stepInput, shape: [n, 2] })
        expect(out.shape).toEqual([n, 2])
        const expected = Array.from(
          { length: n * 2 },
          (_, k) => whole.data[(Math.floor(k / 2) * time + t) * 2 + (k % 2)],
        )
        expectNear(`pass ${pass}, step ${t}`, out.data, expected, 1e-12)
      }
      model.resetState()
    }
  })

  it('trainStep with tbptt k1 = k2 = time is exactly one full BPTT step', async () => {
    const data = runningSums(4, 6, { total: false, dtype: 'float64' })
    const full = lstmRegressor({ output: 'sequence', dtype: 'float64' })
    const truncated = lstmRegressor({ output: 'sequence', dtype: 'float64' })
    const report = full.trainStep(data)
    const reports = truncated.trainStep(data, { tbptt: { k1: 6, k2: 6 } })
    expect(reports).toEqual([report])
    expect(report.applied).toBe(true)
    expect(report.gradNorm).toBeGreaterThan(0)
    expect(weightValues(truncated)).toEqual(weightValues(full))
    expect(truncated.trainStep(data, { tbptt: { k1: 2, k2: 3 } })).toHaveLength(3)
    const padded = { ...data, x: { ...data.x, lengths: [6, 6, 5, 6] } }
    await expect(truncated.fit(padded, { epochs: 1, tbptt: { k1: 3, k2: 3 } })).rejects.toThrow(
      /lengths\[2\] = 5: truncated BPTT needs every sequence to fill the time axis/,
    )
  })
})

describe('weights and lifetime', () => {
  it('setWeights replaces tensors by key after checking every entry, and refuses NaN', async () => {
    const model = lstmRegressor({ output: 'last' })
    const { x } = runningSums(2, 3, { total: true })
    const before = await model.predict(x)
    const bias = model.getWeights()['dense.bias']
    model.setWeights({ 'dense.bias': { data: Float32Array.from(bias.data, (b) => b + 1), shape: bias.shape } })
    const after = await model.predict(x)
    expectNear(
      'shifted by the bias',
      after.data,
      Array.from(before.data, (p) => p + 1),
      1e-6,
    )
    const nan = new Float32Array(1).fill(NaN)
    expect(() => model.setWeights({ 'dense.bias': { data: nan, shape: [1] } })).toThrow(
      expect.objectContaining({ code: 'ODYSSEY_NON_FINITE' }),
    )
    expect(() => model.setWeights({ 'dense.wieght': { data: nan, shape: [1] } })).toThrow(
      expect.objectContaining({ code: 'ODYSSEY_KEY' }),
    )
    expect(() => model.setWeights({ 'dense.bias': { data: new Float32Array(2), shape: [2] } })).toThrow(
      expect.objectContaining({ code: 'ODYSSEY_SHAPE' }),
    )
    expectNear('unchanged by the refused calls', (await model.predict(x)).data, after.data, 0)
  })

  it('a disposed model refuses every call with ODYSSEY_STATE; disposing twice is fine', async () => {
    const model = lstmRegressor({ output: 'last' })
    const data = runningSums(2, 3, { total: true })
    model.dispose()
    model.dispose()
    const disposed = { code: 'ODYSSEY_STATE', message: expect.stringContaining('disposed') }
    expect(() => model.getWeights()).toThrow(expect.objectContaining(disposed))
    expect(() => model.trainStep(data)).toThrow(expect.objectContaining(disposed))
    await expect(model.predict(data.x)).rejects.toMatchObject(disposed)
    await expect(model.fit(data, { epochs: 1 })).rejects.toMatchObject(disposed)
  })
})
