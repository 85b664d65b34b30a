/**
 * `generate` on token language models (greedy = the argmax of successive `step`
 * outputs, seeded sampling, topK / topP / stop, a char-level model trained on the
 * LICENSE the package ships) and `predict(x, { probabilities: true })`; bad
 * input is a typed error naming the argument or what the model lacks.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'

import { dense, embedding, lstm, type Model, OdysseyRangeError, OdysseyTypeError, sequential } from '../ts'
import { lstmRegressor, runningSums } from './helpers/models'

/** Embedding → LSTM (every step) → dense over the same `vocabulary`: a token language model. */
function languageModel(vocabulary: number, seed = 1): Model {
  return sequential({
    input: { kind: 'tokens' },
    layers: [
      embedding({ vocabSize: vocabulary, dim: 12 }),
      lstm({ hiddenSize: 48, output: 'sequence' }),
      dense({ units: vocabulary }),
    ],
    loss: 'crossEntropy',
    optimizer: { type: 'adam', learningRate: 1e-2 },
    seed,
  })
}

function argmax(row: ArrayLike<number>): number {
  let best = 0
  for (let k = 1; k < row.length; k++) if (row[k] > row[best]) best = k
  return best
}

describe('generate', () => {
  const model = languageModel(7)
  afterAll(() => model.dispose())

  it('at temperature 0 is the argmax of successive step outputs', () => {
    const [greedy] = model.generate({ prompt: [3, 1], steps: 12, temperature: 0 })
    model.resetState()
    model.step({ ids: [3], shape: [1] })
    let logits = model.step({ ids: [1], shape: [1] }).data
    const expected: number[] = []
    for (let s = 0; s < 12; s++) {
      expected.push(argmax(logits))
      logits = model.step({ ids: [expected[s]], shape: [1] }).data
    }
    expect([...greedy]).toEqual(expected)
    const batch = model.generate({ prompt: [3, 1], steps: 12, temperature: 0, batch: 3 })
    expect(batch.map((ids) => [...ids])).toEqual([expected, expected, expected])
    expect([...model.generate({ prompt: [3, 1], steps: 12, topK: 1, seed: 5 })[0]]).toEqual(expected)
    expect([...model.generate({ prompt: [3, 1], steps: 12, topP: 1e-9, seed: 5 })[0]]).toEqual(expected)
  })

  it('is deterministic for a seed, and the seed matters', () => {
    const draw = (seed: number) => model.generate({ prompt: [0], steps: 30, batch: 2, temperature: 1.5, seed })
    const first = draw(11)
    expect(draw(11)).toEqual(first)
    expect(draw(12)).not.toEqual(first)
    expect(first[0]).not.toEqual(first[1])
  })

  it('ends a sequence at stop (not returned) and keeps sampling the others', () => {
    const [greedy] = model.generate({ prompt: [2], steps: 20, temperature: 0 })
    const stop = greedy[4]
    const cut = greedy.indexOf(stop)
    const [stopped] = model.generate({ prompt: [2], steps: 20, temperature: 0, stop })
    expect([...stopped]).toEqual([...greedy.subarray(0, cut)])
    const sampled = model.generate({ prompt: [2], steps: 40, batch: 4, seed: 3, stop: 0 })
    for (const ids of sampled) expect(ids.includes(0)).toBe(false)
  })

  it('a char-level model trained on the LICENSE the package ships writes only its characters', async () => {
    const text = readFileSync(join(__dirname, '..', 'LICENSE'), 'utf8')
    const chars = [...new Set(text)].sort()
    const id = new Map(chars.map((c, k) => [c, k]))
    const window = 32
    const starts = Array.from({ length: Math.floor((text.length - 1) / window) }, (_, k) => k * window)
    const slice = (offset: number) =>
      Uint32Array.from(starts.flatMap((s) => [...text.slice(s + offset, s + offset + window)].map((c) => id.get(c)!)))
    const shape = [starts.length, window] as const
    const lm = languageModel(chars.length, 2)
    const history = await lm.fit({ x: { ids: slice(0), shape }, y: { classes: slice(1), shape } }, { epochs: 30 })
    expect(history.epochs.at(-1)!.loss).toBeLessThan(history.epochs[0].loss)
    const [ids] = lm.generate({
      prompt: [...'Permission '].map((c) => id.get(c)!),
      steps: 200,
      temperature: 0.7,
      seed: 1,
    })
    const written = Array.from(ids, (k) => chars[k]).join('')
    expect(written).toHaveLength(200)
    expect([...written].every((c) => chars.includes(c))).toBe(true)
    lm.dispose()
  })

  it('refuses a model that is not a token language model, naming what it lacks', () => {
    const regressor = lstmRegressor({ output: 'sequence' })
    expect(() => regressor.generate({ prompt: [0], steps: 3 })).toThrow(OdysseyTypeError)
    expect(() => regressor.generate({ prompt: [0], steps: 3 })).toThrow(
      /generate: the model is not a token language model.*inputs are 'x' \(sequence\)/,
    )
    regressor.dispose()
    const tagger = sequential({
      input: { kind: 'tokens' },
      layers: [embedding({ vocabSize: 5, dim: 3 }), lstm({ hiddenSize: 4 }), dense({ units: 3 })],
      loss: 'crossEntropy',
      optimizer: { type: 'sgd', learningRate: 0.1 },
    })
    expect(() => tagger.generate({ prompt: [0], steps: 3 })).toThrow(/3 classes for a vocabulary of 5/)
    tagger.dispose()
  })

  it('refuses bad options, naming them', () => {
    const bad = (options: object) => () => model.generate({ prompt: [0], steps: 3, ...options })
    expect(bad({ prompt: [] })).toThrow(/prompt: expected a non-empty array/)
    expect(bad({ prompt: [0, 7] })).toThrow(OdysseyRangeError)
    expect(bad({ prompt: [0, 7] })).toThrow(/prompt\[1\]: expected a token id in 0..6, got number 7/)
    expect(bad({ steps: 0 })).toThrow(/steps/)
    expect(bad({ temperature: -1 })).toThrow(/temperature: expected a number >= 0/)
    expect(bad({ topP: 0 })).toThrow(/topP: expected a number in \(0, 1\]/)
    expect(bad({ topK: 1.5 })).toThrow(/topK/)
    expect(bad({ stop: 9 })).toThrow(/stop: expected a token id/)
    expect(bad({ beams: 2 })).toThrow(/beams/)
  })
})

describe('predict with probabilities', () => {
  it('applies the softmax for crossEntropy and the sigmoid for binaryCrossEntropy; mse has none', async () => {
    const lm = languageModel(5)
    const x = { ids: [0, 1, 2, 3, 4, 0], shape: [2, 3] as const }
    const logits = await lm.predict(x)
    const p = await lm.predict(x, { probabilities: true })
    expect(p.shape).toEqual(logits.shape)
    for (let row = 0; row < 6; row++) {
      const z = logits.data.subarray(row * 5, row * 5 + 5)
      const q = p.data.subarray(row * 5, row * 5 + 5)
      const sum = Array.from(z).reduce((s, v) => s + Math.exp(v), 0)
      expect([...q].map((v, k) => v - Math.exp(z[k]) / sum).every((d) => Math.abs(d) < 1e-6)).toBe(true)
    }
    lm.dispose()

    const tagger = sequential({
      input: { kind: 'sequence', features: 2 },
      layers: [lstm({ hiddenSize: 4, output: 'last' }), dense({ units: 3 })],
      loss: 'binaryCrossEntropy',
      optimizer: { type: 'sgd', learningRate: 0.1 },
    })
    const { x: seq } = runningSums(3, 4, { total: true })
    const [z, q] = [await tagger.predict(seq), await tagger.predict(seq, { probabilities: true })]
    const sigmoid = [...z.data].map((v) => 1 / (1 + Math.exp(-v)))
    expect(sigmoid.every((v, k) => Math.abs(v - q.data[k]) < 1e-6)).toBe(true)
    tagger.dispose()

    const regressor = lstmRegressor({ output: 'last' })
    await expect(regressor.predict(seq, { probabilities: true })).rejects.toThrow(
      /probabilities: the mse loss has no probabilities/,
    )
    await expect(regressor.predict(seq, { probabilities: 'yes' as unknown as boolean })).rejects.toThrow(
      /probabilities: expected a boolean/,
    )
    regressor.dispose()
  })
})
