/**
 * Sequence to sequence, learnt: an LSTM encoder whose final states start an
 * LSTM decoder (`initialState: 'enc'`) learns to reverse 3–8 digits, and
 * `decode` greedy writes the exact reversal of held-out sources (never seen
 * in training). A decoder that ignores the encoder's states cannot do this
 * (it can only guess digits); neither can one whose gradient does not reach
 * the encoder. On the trained model, beam search is never less likely than
 * greedy, and the scores `decode` reports are the model's log-probabilities
 * of what it returns (one teacher-forced `predict`). Seeded throughout:
 * the same numbers on every run.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { REVERSAL_BATCH, REVERSAL_DECODE, reversalModel } from '../ts/cli/demo-seq2seq'
import {
  digitReversal,
  exactMatch,
  OdysseyRangeError,
  OdysseyTypeError,
  REVERSAL_START,
  REVERSAL_STOP,
  REVERSAL_VOCABULARY,
} from '../ts'

/** The demo's model (`reversalModel`) and training, on other held-out pairs. */
const TRAIN = 8000
const EPOCHS = 10
const HELD_OUT = 400

describe('digitReversal', () => {
  it('gives teacher-forced encoder–decoder data, padded with lengths, seeded', () => {
    const data = digitReversal({ n: 50, seed: 3 })
    expect(digitReversal({ n: 50, seed: 3 })).toEqual(data)
    expect(digitReversal({ n: 50, seed: 4 }).sources).not.toEqual(data.sources)
    const { src, dec } = data.x
    expect(src.shape).toEqual([50, 8])
    expect(dec.shape).toEqual([50, 9])
    expect(data.y.shape).toEqual([50, 9])
    const lengths = new Set<number>()
    data.sources.forEach((digits, s) => {
      const length = digits.length
      lengths.add(length)
      expect(length).toBeGreaterThanOrEqual(3)
      expect(length).toBeLessThanOrEqual(8)
      expect(src.lengths[s]).toBe(length)
      expect(dec.lengths?.[s]).toBe(length + 1)
      expect([...src.ids.subarray(s * 8, s * 8 + length)]).toEqual([...digits])
      expect([...data.targets[s]]).toEqual([...digits].reverse())
      expect([...dec.ids.subarray(s * 9, s * 9 + length + 1)]).toEqual([REVERSAL_START, ...data.targets[s]])
      expect([...data.y.classes.subarray(s * 9, s * 9 + length + 1)]).toEqual([...data.targets[s], REVERSAL_STOP])
    })
    expect([...lengths].sort()).toEqual([3, 4, 5, 6, 7, 8])
    const short = digitReversal({ n: 5, minDigits: 2, maxDigits: 2 })
    expect(short.x.src.shape).toEqual([5, 2])
    expect(short.sources.every((digits) => digits.length === 2)).toBe(true)
  })

  it('leaves out the sources it is told to exclude, and refuses to when it cannot', () => {
    const train = digitReversal({ n: 500, minDigits: 2, maxDigits: 3, seed: 1 })
    const seen = new Set(train.sources.map((digits) => digits.join()))
    const heldOut = digitReversal({ n: 200, minDigits: 2, maxDigits: 3, seed: 2, exclude: train.sources })
    expect(heldOut.sources.some((digits) => seen.has(digits.join()))).toBe(false)
    const everyPair = Array.from({ length: 100 }, (_, k) => [Math.floor(k / 10), k % 10])
    expect(() => digitReversal({ n: 1, minDigits: 2, maxDigits: 2, exclude: everyPair })).toThrow(
      /exclude: holds \(nearly\) every source of 2\.\.2 digits/,
    )
  })

  it('refuses bad options, naming them', () => {
    expect(() => digitReversal({ n: 0 })).toThrow(OdysseyRangeError)
    expect(() => digitReversal({ n: 4, minDigits: 5, maxDigits: 4 })).toThrow(
      /maxDigits: expected at least minDigits \(5\)/,
    )
    expect(() => digitReversal({ n: 4, digits: 3 } as never)).toThrow(OdysseyTypeError)
    expect(() => exactMatch([[1]], [])).toThrow(/decoded: expected 0 sequences/)
  })
})

describe('digit reversal, LSTM encoder → LSTM decoder (initialState)', () => {
  const train = digitReversal({ n: TRAIN, seed: 1 })
  const heldOut = digitReversal({ n: HELD_OUT, seed: 7, exclude: train.sources })
  const src = heldOut.x.src
  const options = REVERSAL_DECODE
  const model = reversalModel({ seed: 1, updates: EPOCHS * Math.ceil(TRAIN / REVERSAL_BATCH) })
  beforeAll(async () => {
    await model.fit({ x: train.x, y: train.y }, { epochs: EPOCHS, batchSize: REVERSAL_BATCH })
  }, 600_000)
  afterAll(() => model.dispose())

  it('decode greedy writes the exact reversal of ≥ 95 % of held-out sources', async () => {
    const decoded = await model.decode({ src }, options)
    expect(exactMatch(decoded, heldOut.targets)).toBeGreaterThanOrEqual(0.95)
  })

  it('beam search is never less likely than greedy; the scores are the model’s log-probabilities', async () => {
    const greedy = await model.decode({ src }, { ...options, scores: true })
    const beam = await model.decode({ src }, { ...options, beamWidth: 4, scores: true })
    expect(exactMatch(beam.ids, heldOut.targets)).toBeGreaterThanOrEqual(0.95)
    for (let s = 0; s < HELD_OUT; s++) expect(beam.scores[s]).toBeGreaterThanOrEqual(greedy.scores[s])
    // The scores are what one teacher-forced pass over the returned tokens gives.
    const fed = (ids: Uint32Array) => [REVERSAL_START, ...ids]
    for (const { ids, scores } of [greedy, beam]) {
      const time = Math.max(...ids.map((d) => d.length)) + 1
      const dec = new Uint32Array(HELD_OUT * time)
      for (const [s, d] of ids.entries()) dec.set(fed(d), s * time)
      const lengths = ids.map((d) => d.length + 1)
      const { data } = await model.predict(
        { src, dec: { ids: dec, shape: [HELD_OUT, time], lengths } },
        { probabilities: true },
      )
      ids.forEach((d, s) => {
        const tokens = [...d, REVERSAL_STOP]
        const logProb = tokens.reduce(
          (sum, token, t) => sum + Math.log(data[(s * time + t) * REVERSAL_VOCABULARY + token]),
          0,
        )
        expect(Math.abs(logProb - scores[s])).toBeLessThan(1e-3)
      })
    }
  })
})
