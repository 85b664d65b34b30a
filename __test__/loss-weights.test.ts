/**
 * Weights in the loss (`Dataset.weights` per example or per step, `classWeights`)
 * against PyTorch: `__test__/fixtures/loss-weights/loss_weights.json`, written by
 * `make_loss_weight_fixtures.py` (Debian's python3-torch), holds for three small
 * models the weighted loss Σ w·ℓ / Σ w and every weight's gradient; one
 * `trainStep` with SGD at learning rate 1 must move each weight by −grad
 * (float64 to 1e-9, float32 to 1e-5). Bad weights are typed errors naming them.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

import {
  dense,
  embedding,
  lstm,
  OdysseyRangeError,
  OdysseyTypeError,
  sequential,
  type Dataset,
  type Dtype,
  type Layer,
  type Loss,
  type Model,
} from '../ts'
import { lstmRegressor, runningSums } from './helpers/models'

interface Tensor {
  shape: number[]
  data: number[]
}

interface WeightCase {
  name: string
  config: Record<string, number>
  parameters: Record<string, Tensor>
  x: { ids?: number[]; data?: Tensor; shape?: number[]; lengths: number[] | null }
  target: { classes?: number[]; data?: Tensor; shape?: number[] }
  weights: Tensor
  classWeights: number[] | null
  expected: { loss: number; grads: Record<string, Tensor> }
}

const fixture = JSON.parse(readFileSync(join(__dirname, 'fixtures', 'loss-weights', 'loss_weights.json'), 'utf8')) as {
  cases: WeightCase[]
}

const LOSSES: Record<string, Loss> = {
  crossEntropy_steps: 'crossEntropy',
  mse_examples: 'mse',
  binaryCrossEntropy_steps: 'binaryCrossEntropy',
}

/** The case's model, as the fixture script builds it in PyTorch, with its weights. */
function modelFor(c: WeightCase, dtype: Dtype): Model {
  const { config } = c
  const tokens = c.x.ids !== undefined
  const layers: Layer[] = [
    ...(tokens ? [embedding({ vocabSize: config.vocab, dim: config.dim })] : []),
    lstm({ hiddenSize: config.hidden, peepholes: false, output: c.name === 'mse_examples' ? 'last' : 'sequence' }),
    dense({ units: config.classes ?? config.units }),
  ]
  const model = sequential({
    input: tokens ? { kind: 'tokens' } : { kind: 'sequence', features: config.features },
    layers,
    loss: LOSSES[c.name],
    optimizer: { type: 'sgd', learningRate: 1 },
    ...(c.classWeights === null ? {} : { classWeights: c.classWeights }),
    dtype,
  })
  const Float = dtype === 'float32' ? Float32Array : Float64Array
  model.setWeights(
    Object.fromEntries(
      Object.entries(c.parameters).map(([name, t]) => [name, { data: Float.from(t.data), shape: t.shape }]),
    ),
  )
  return model
}

function datasetFor(c: WeightCase, dtype: Dtype): Dataset {
  const Float = dtype === 'float32' ? Float32Array : Float64Array
  const lengths = c.x.lengths ?? undefined
  const x =
    c.x.ids !== undefined
      ? { ids: c.x.ids, shape: c.x.shape as [number, number], lengths }
      : { data: Float.from(c.x.data!.data), shape: c.x.data!.shape as [number, number, number], lengths }
  const y =
    c.target.classes !== undefined
      ? { classes: c.target.classes, shape: c.target.shape! }
      : { data: Float.from(c.target.data!.data), shape: c.target.data!.shape }
  return { x, y, weights: { data: c.weights.data, shape: c.weights.shape as [number] | [number, number] } }
}

describe.each(fixture.cases)('weighted $name against PyTorch', (c) => {
  it.each([
    ['float64', 1e-9],
    ['float32', 1e-5],
  ] as const)('%s: the loss and every weight step of SGD(lr 1) are −grad', (dtype, tolerance) => {
    const model = modelFor(c, dtype)
    const before = model.getWeights()
    const report = model.trainStep(datasetFor(c, dtype))
    expect(Math.abs(report.loss - c.expected.loss)).toBeLessThan(tolerance * (1 + Math.abs(c.expected.loss)))
    const after = model.getWeights()
    for (const [name, grad] of Object.entries(c.expected.grads)) {
      const step = Array.from(before[name].data, (w, k) => w - after[name].data[k])
      const worst = Math.max(...step.map((s, k) => Math.abs(s - grad.data[k])))
      expect(worst, name).toBeLessThan(tolerance * (1 + Math.max(...grad.data.map(Math.abs))))
    }
    model.dispose()
  })

  it('evaluate reports the same weighted mean across batches (class weights shape training only)', async () => {
    if (c.classWeights !== null) return
    const model = modelFor(c, 'float64')
    const { loss } = await model.evaluate(datasetFor(c, 'float64'), { batchSize: 2 })
    expect(Math.abs(loss - c.expected.loss)).toBeLessThan(1e-12)
    model.dispose()
  })
})

describe('loss weights', () => {
  const data = runningSums(4, 3, { total: false, dtype: 'float64', seed: 5 })

  it('weights of 1 change nothing, and a weight of 2 counts an example twice', () => {
    const plain = lstmRegressor({ output: 'sequence', dtype: 'float64' })
    const weighted = lstmRegressor({ output: 'sequence', dtype: 'float64' })
    const ones = weighted.trainStep({ ...data, weights: { data: [1, 1, 1, 1], shape: [4] } })
    expect(ones.loss).toBe(plain.trainStep(data).loss)

    const twice = lstmRegressor({ output: 'sequence', dtype: 'float64' })
    const doubled = twice.trainStep({ ...data, weights: { data: [2, 1, 1, 1], shape: [4] } })
    const repeated = lstmRegressor({ output: 'sequence', dtype: 'float64' })
    const x = data.x.data
    const withCopy = {
      x: { data: Float64Array.from([...x.slice(0, 6), ...x]), shape: [5, 3, 2] as const },
      y: { data: Float64Array.from([...data.y.data.slice(0, 3), ...data.y.data]), shape: [5, 3, 1] },
    }
    expect(Math.abs(doubled.loss - repeated.trainStep(withCopy).loss)).toBeLessThan(1e-12)
    for (const m of [plain, weighted, twice, repeated]) m.dispose()
  })

  it('refuses weights of the wrong shape, negative or NaN, and misplaced class weights, naming them', () => {
    const model = lstmRegressor({ output: 'sequence', dtype: 'float64' })
    const bad = (weights: unknown) => () => model.trainStep({ ...data, weights } as Dataset)
    expect(bad({ data: [1, 1, 1], shape: [3] })).toThrow(OdysseyRangeError)
    expect(bad({ data: [1, 1, 1], shape: [3] })).toThrow(/weights.*\[4\] \(per example\) or \[4, 3\] \(per step\)/)
    expect(bad({ data: new Float64Array(8), shape: [4, 2] })).toThrow(/weights/)
    expect(bad({ data: [1, -1, 1, 1], shape: [4] })).toThrow(/weights\[1\].*finite and >= 0, got -1/)
    expect(bad({ data: [1, 1, NaN, 1], shape: [4] })).toThrow(/weights\[2\].*NaN/)
    expect(bad({ data: [1, 1, 1, 1], shape: 4 })).toThrow(OdysseyTypeError)
    expect(bad({ data: 'heavy', shape: [4] })).toThrow(/weights.data/)
    model.dispose()

    const vector = lstmRegressor({ output: 'last', dtype: 'float64' })
    const totals = runningSums(4, 3, { total: true, dtype: 'float64' })
    expect(() => vector.trainStep({ ...totals, weights: { data: new Float64Array(12), shape: [4, 3] } })).toThrow(
      /weights.*per-step weights need a sequence output/,
    )
    vector.dispose()

    const classifier = (classWeights: unknown, loss: Loss = 'crossEntropy') =>
      sequential({
        input: { kind: 'tokens' },
        layers: [embedding({ vocabSize: 4, dim: 2 }), lstm({ hiddenSize: 3, output: 'last' }), dense({ units: 3 })],
        loss,
        optimizer: { type: 'sgd', learningRate: 0.1 },
        classWeights: classWeights as number[],
      })
    expect(() => classifier([1, -2, 1])).toThrow(/classWeights\[1\].*finite and >= 0/)
    expect(() => classifier([1, NaN, 1])).toThrow(/classWeights\[1\]: expected a finite number/)
    expect(() => classifier('balanced')).toThrow(/classWeights: expected an array/)
    expect(() => classifier([1, 1, 1], 'mse')).toThrow(/classWeights.*only the crossEntropy loss/)
    const wrongCount = classifier([1, 1])
    const batch = { x: { ids: [0, 1, 2, 3], shape: [2, 2] as const }, y: { classes: [0, 2], shape: [2] } }
    expect(() => wrongCount.trainStep(batch)).toThrow(/classWeights.*\[3\] \(one per class\)/)
    wrongCount.dispose()
  })
})
