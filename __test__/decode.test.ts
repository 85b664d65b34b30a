/**
 * `Model.decode` through the addon: greedy follows the most likely token of a
 * teacher-forced `predict` at every step and reports its log-probability, beam
 * search is never less likely than greedy, `scores` are the model's
 * log-probabilities, and a model or option decoding cannot serve is a typed
 * error naming the argument. (The core's tests: crates/core/tests/suite/decode.rs.)
 */
import { afterAll, describe, expect, it } from 'vitest'

import { Model, OdysseyRangeError, OdysseyTypeError } from '../ts'
import { lstmRegressor } from './helpers/models'

const VOCABULARY = 6
const [START, STOP] = [4, 5]

/**
 * An encoder over `src` whose final states start the decoder (`dec` → embedding → LSTM → dense
 * over the vocabulary); with `initialState` false the decoder starts from zeros and `src` reaches
 * nothing but the encoder.
 */
function encoderDecoder(seed: number, initialState = true): Model {
  return Model.fromSpec({
    inputs: [
      { kind: 'tokens', name: 'src' },
      { kind: 'tokens', name: 'dec' },
    ],
    nodes: [
      { name: 'src_emb', type: 'embedding', inputs: ['src'], vocabSize: VOCABULARY, dim: 4 },
      { name: 'enc', type: 'lstm', inputs: ['src_emb'], hiddenSize: 8, output: 'states' },
      { name: 'dec_emb', type: 'embedding', inputs: ['dec'], vocabSize: VOCABULARY, dim: 4 },
      {
        name: 'decoder',
        type: 'lstm',
        inputs: ['dec_emb'],
        hiddenSize: 8,
        ...(initialState ? { initialState: 'enc' } : {}),
      },
      { name: 'out', type: 'dense', inputs: ['decoder'], units: VOCABULARY },
    ],
    output: 'out',
    loss: 'crossEntropy',
    optimizer: { type: 'sgd', learningRate: 0.1 },
    dtype: 'float64',
    seed,
  })
}

const src = { ids: [0, 1, 2, 3, 1, 1, 2, 0, 3, 3, 0, 2], shape: [4, 3] as const }
const row = (b: number) => ({ ids: src.ids.slice(b * 3, b * 3 + 3), shape: [1, 3] as const })

/** log P(ids, stop) by one teacher-forced pass, and whether each token was the argmax. */
async function teacherForced(model: Model, b: number, ids: Uint32Array, maxSteps: number) {
  const ended = ids.length < maxSteps
  const fed = [START, ...ids].slice(0, ended ? ids.length + 1 : ids.length)
  const targets = ended ? [...ids, STOP] : [...ids]
  const { data } = await model.predict({ src: row(b), dec: { ids: fed, shape: [1, fed.length] } })
  let logProb = 0
  let greedy = true
  targets.forEach((target, t) => {
    const z = Array.from(data.subarray(t * VOCABULARY, (t + 1) * VOCABULARY))
    const max = Math.max(...z)
    logProb += z[target] - max - Math.log(z.reduce((s, v) => s + Math.exp(v - max), 0))
    greedy &&= z[target] === max
  })
  return { logProb, greedy }
}

describe('decode', () => {
  const models = [1, 2, 3].map((seed) => encoderDecoder(seed))
  afterAll(() => {
    for (const m of models) m.dispose()
  })
  const options = { decoderInput: 'dec', start: START, stop: STOP, maxSteps: 7 }

  it('greedy takes the most likely token at every step; scores are the model’s log-probabilities', async () => {
    const model = models[0]
    const { ids, scores } = await model.decode({ src }, { ...options, scores: true })
    expect(ids).toHaveLength(4)
    expect(await model.decode({ src }, options)).toEqual(ids)
    for (let b = 0; b < 4; b++) {
      expect(ids[b].includes(STOP)).toBe(false)
      const { logProb, greedy } = await teacherForced(model, b, ids[b], 7)
      expect(greedy).toBe(true)
      expect(Math.abs(logProb - scores[b])).toBeLessThan(1e-10)
    }
  })

  it('beam search is never less likely than greedy', async () => {
    for (const model of models) {
      const greedy = await model.decode({ src }, { ...options, scores: true })
      const beam = await model.decode({ src }, { ...options, beamWidth: 4, scores: true })
      for (let b = 0; b < 4; b++) {
        expect(beam.scores[b]).toBeGreaterThanOrEqual(greedy.scores[b] - 1e-12)
        const { logProb } = await teacherForced(model, b, beam.ids[b], 7)
        expect(Math.abs(logProb - beam.scores[b])).toBeLessThan(1e-10)
      }
    }
  })

  it('refuses a model without a token decoder input and bad options, naming the argument', async () => {
    const model = models[0]
    await expect(model.decode({ src }, { ...options, decoderInput: 'enc' })).rejects.toThrow(OdysseyTypeError)
    await expect(model.decode({ src }, { ...options, decoderInput: 'enc' })).rejects.toThrow(
      /decoderInput: expected the name of the token input the decoder reads \(one of 'src', 'dec'\)/,
    )
    // Decoding from the encoder's input: the decoder would need the whole `dec` sequence at every step.
    await expect(model.decode({ dec: src }, { ...options, decoderInput: 'src' })).rejects.toThrow(
      /decoder: the decoder reads "dec_emb", a sequence over the source's time axis; step by step it can only read vectors of the encoder/,
    )
    await expect(model.decode({ src }, { ...options, start: 6 })).rejects.toThrow(
      /start.*token 6 is out of range for the output's 6 classes/,
    )
    await expect(model.decode({ src }, { ...options, stop: -1 })).rejects.toThrow(OdysseyRangeError)
    await expect(model.decode({ src }, { ...options, maxSteps: 0 })).rejects.toThrow(/maxSteps/)
    await expect(model.decode({ src }, { ...options, beamWidth: 1.5 })).rejects.toThrow(/beamWidth/)
    await expect(model.decode({ src }, { ...options, temperature: 1 } as never)).rejects.toThrow(/temperature/)
    await expect(model.decode({ dec: src } as never, options)).rejects.toThrow(/inputs: unknown input 'dec'/)

    const unconditioned = encoderDecoder(1, false)
    await expect(unconditioned.decode({ dec: src }, { ...options, decoderInput: 'src' })).rejects.toThrow(
      /decoderInput.*crossEntropy loss on a sequence output computed from it/,
    )
    unconditioned.dispose()

    const regressor = lstmRegressor({ output: 'sequence' })
    await expect(regressor.decode({}, options)).rejects.toThrow(/the model has no token input/)
    regressor.dispose()
  })
})
