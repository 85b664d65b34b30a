/**
 * Digit reversal, the smallest sequence-to-sequence task: the source is a
 * string of digits, the target the same digits in reverse order. A decoder
 * that does not read the encoder's final state can only guess (one chance
 * in 10^length), so exact matches prove the state carries the whole source.
 *
 * Tokens: the digits 0–9 are ids 0–9, `start` is 10 and `stop` 11 (a
 * vocabulary of 12). The data is what `Model.fit` takes for an encoder–decoder
 * model with token inputs `src` and `dec` (the README's sequence-to-sequence
 * example): `dec` is `start` + the target (teacher forcing) and the classes
 * are the target + `stop`, both one step longer than the source.
 */
import { OdysseyRangeError } from '../errors'
import type { TokenTensor } from '../model/data'
import { mulberry32 } from '../util/random'
import { checkOptionKeys, checkSeed, checkSize } from '../validate'

/** The token the decoder starts from. */
export const REVERSAL_START = 10
/** The token that ends a target. */
export const REVERSAL_STOP = 11
/** Digits, start and stop. */
export const REVERSAL_VOCABULARY = 12

export interface DigitReversalOptions {
  /** Number of sequences. */
  n: number
  /** Shortest source. Default 3. */
  minDigits?: number
  /** Longest source, also the padded time axis of `src`. Default 8. */
  maxDigits?: number
  /** Default 0. Same seed, same data. */
  seed?: number
  /**
   * Sources never to draw (a drawn one is drawn again), e.g. a training set's `sources`, so
   * that a held-out set is held out.
   */
  exclude?: readonly ArrayLike<number>[]
}

export interface DigitReversal {
  /**
   * `src`: `[n, maxDigits]` digits, padded with `stop` beyond `lengths` (the digit count);
   * `dec`: `[n, maxDigits + 1]`, `start` then the reversed digits (teacher forcing), lengths + 1.
   */
  x: { src: TokenTensor & { ids: Uint32Array; lengths: Uint32Array }; dec: TokenTensor & { ids: Uint32Array } }
  /** `[n, maxDigits + 1]`: the reversed digits then `stop`; padded steps (beyond `dec`'s lengths) hold `stop` and are masked. */
  y: { classes: Uint32Array; shape: [number, number] }
  /** Each sequence's digits. */
  sources: Uint32Array[]
  /** Each sequence's reversed digits without `stop`: what `decode` should return. */
  targets: Uint32Array[]
}

/** Draws per sequence before giving up on finding one `exclude` does not hold. */
const MAX_DRAWS = 10_000

/** `n` seeded digit-reversal pairs (lengths uniform in minDigits..maxDigits), ready for `fit` and `decode`. */
export function digitReversal(options: DigitReversalOptions): DigitReversal {
  checkOptionKeys(options, ['n', 'minDigits', 'maxDigits', 'seed', 'exclude'], 'digitReversal')
  const n = checkSize('n', options.n)
  const minDigits = checkSize('minDigits', options.minDigits ?? 3)
  const maxDigits = checkSize('maxDigits', options.maxDigits ?? 8)
  if (maxDigits < minDigits)
    throw new OdysseyRangeError(
      'ODYSSEY_INVALID',
      `maxDigits: expected at least minDigits (${minDigits}), got ${maxDigits}`,
    )
  const random = mulberry32(checkSeed('seed', options.seed ?? 0))
  const excluded = new Set((options.exclude ?? []).map((source) => Array.from(source).join(',')))
  const draw = () => {
    const length = minDigits + Math.floor(random() * (maxDigits - minDigits + 1))
    return Uint32Array.from({ length }, () => Math.floor(random() * 10))
  }
  const time = maxDigits + 1
  const src = new Uint32Array(n * maxDigits).fill(REVERSAL_STOP)
  const dec = new Uint32Array(n * time).fill(REVERSAL_STOP)
  const classes = new Uint32Array(n * time).fill(REVERSAL_STOP)
  const srcLengths = new Uint32Array(n)
  const decLengths = new Uint32Array(n)
  const sources: Uint32Array[] = []
  const targets: Uint32Array[] = []
  for (let s = 0; s < n; s++) {
    let digits = draw()
    for (let draws = 1; excluded.has(digits.join(',')); draws++) {
      if (draws === MAX_DRAWS)
        throw new OdysseyRangeError(
          'ODYSSEY_INVALID',
          `exclude: holds (nearly) every source of ${minDigits}..${maxDigits} digits; ${MAX_DRAWS} draws found none outside it`,
        )
      digits = draw()
    }
    const length = digits.length
    const reversed = digits.slice().reverse()
    src.set(digits, s * maxDigits)
    dec[s * time] = REVERSAL_START
    dec.set(reversed, s * time + 1)
    classes.set(reversed, s * time)
    srcLengths[s] = length
    decLengths[s] = length + 1
    sources.push(digits)
    targets.push(reversed)
  }
  return {
    x: {
      src: { ids: src, shape: [n, maxDigits], lengths: srcLengths },
      dec: { ids: dec, shape: [n, time], lengths: decLengths },
    },
    y: { classes, shape: [n, time] },
    sources,
    targets,
  }
}

/** The fraction of `decoded` sequences equal to their `expected` one, token for token and in length. */
export function exactMatch(decoded: readonly ArrayLike<number>[], expected: readonly ArrayLike<number>[]): number {
  if (decoded.length !== expected.length || decoded.length === 0)
    throw new OdysseyRangeError(
      'ODYSSEY_INVALID',
      `decoded: expected ${expected.length} sequences (as many as expected, at least one), got ${decoded.length}`,
    )
  const equal = (a: ArrayLike<number>, b: ArrayLike<number>) =>
    a.length === b.length && Array.prototype.every.call(a, (v: number, k: number) => v === b[k])
  return decoded.filter((d, k) => equal(d, expected[k])).length / decoded.length
}
