/**
 * Encoder–decoder models against PyTorch: every fixture in `__test__/fixtures/seq2seq/` (written in
 * float64 by `make_seq2seq_fixtures.py`: `decoder(tgt, encoder(src)[1])`, a Linear head, masked mse)
 * is built with `Model.fromSpec` (`initialState: 'enc'`) in both dtypes. `predict` must give PyTorch's
 * prediction, and one `trainStep` with SGD at learning rate 1 must move every weight by exactly −grad:
 * the encoder's gradient reaches it only through the decoder's initial state.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, test } from 'vitest'

import { Model, type GraphSpec } from '../ts'
import type { Dtype } from '../ts/types'
import { expectClose, FIXTURE_DIR, type FixtureTensor, toTensor, typedArray } from './helpers/fixtures'

/** Absolute plus relative tolerance against the float64 reference. */
const TOLERANCE: Record<Dtype, number> = { float32: 1e-5, float64: 1e-9 }
const SEQ2SEQ_DIR = join(FIXTURE_DIR, 'seq2seq')

interface Seq2seqFixture {
  name: string
  description: string
  spec: GraphSpec
  weights: Record<string, FixtureTensor>
  src: FixtureTensor
  srcLengths: number[]
  tgt: FixtureTensor
  tgtLengths: number[]
  target: FixtureTensor
  expected: { prediction: FixtureTensor; loss: number; grads: Record<string, FixtureTensor> }
}

const fixtures: Seq2seqFixture[] = readdirSync(SEQ2SEQ_DIR)
  .filter((file) => file.endsWith('.json'))
  .sort()
  .map((file) => JSON.parse(readFileSync(join(SEQ2SEQ_DIR, file), 'utf8')) as Seq2seqFixture)

function modelOf(fixture: Seq2seqFixture, dtype: Dtype): Model {
  const model = Model.fromSpec({ ...fixture.spec, dtype, optimizer: { type: 'sgd', learningRate: 1 } })
  model.setWeights(Object.fromEntries(Object.entries(fixture.weights).map(([key, t]) => [key, toTensor(t, dtype)])))
  return model
}

function inputsOf(fixture: Seq2seqFixture, dtype: Dtype) {
  const sequence = (t: FixtureTensor, lengths: number[]) => ({
    data: typedArray(dtype, t.data),
    shape: t.shape as [number, number, number],
    lengths,
  })
  return { src: sequence(fixture.src, fixture.srcLengths), tgt: sequence(fixture.tgt, fixture.tgtLengths) }
}

test('the fixtures are there', () => {
  expect(fixtures.map((f) => f.name)).toEqual([
    'seq2seq_gru_2layer',
    'seq2seq_lstm_2layer',
    'seq2seq_rnn_bidirectional',
  ])
})

for (const fixture of fixtures) {
  for (const dtype of ['float64', 'float32'] as const) {
    describe(`${fixture.name} (${dtype}): ${fixture.description}`, () => {
      const tolerance = TOLERANCE[dtype]

      test('predict gives PyTorch’s prediction', async () => {
        const model = modelOf(fixture, dtype)
        const prediction = await model.predict(inputsOf(fixture, dtype))
        expect(prediction.shape).toEqual(fixture.expected.prediction.shape)
        expectClose('prediction', prediction.data, fixture.expected.prediction.data, tolerance)
        model.dispose()
      })

      test('trainStep with SGD at learning rate 1 moves every weight by −grad, the encoder’s too', () => {
        const model = modelOf(fixture, dtype)
        const before = model.getWeights()
        const report = model.trainStep({ x: inputsOf(fixture, dtype), y: toTensor(fixture.target, dtype) })
        expect(report.applied).toBe(true)
        expect(Math.abs(report.loss - fixture.expected.loss)).toBeLessThan(tolerance * (1 + fixture.expected.loss))
        const after = model.getWeights()
        expect(Object.keys(after).sort()).toEqual(Object.keys(fixture.expected.grads).sort())
        for (const [key, grad] of Object.entries(fixture.expected.grads)) {
          const step = Array.from(after[key].data, (w, k) => before[key].data[k] - w)
          expectClose(`${key}: w − w'`, step, grad.data, tolerance)
        }
        const encoderGrad = Object.entries(fixture.expected.grads)
          .filter(([key]) => key.startsWith('enc.'))
          .reduce((sum, [, g]) => sum + g.data.reduce((s, v) => s + v * v, 0), 0)
        expect(encoderGrad).toBeGreaterThan(1e-6)
        model.dispose()
      })
    })
  }
}
