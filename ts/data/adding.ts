/**
 * The adding problem (Hochreiter & Schmidhuber 1997; the form of Le et al.
 * 2015): each step carries a value drawn from U[0, 1] and a marker; exactly
 * two steps are marked, one in each half of the sequence, and the target is
 * the sum of the two marked values. Predicting the mean (1) scores the
 * variance of that sum, 2/12 ≈ 0.167: a model below that has learnt to carry
 * information across up to `time` steps.
 */
import { OdysseyRangeError } from '../errors'
import { mulberry32 } from '../util/random'
import type { Dtype, FloatArray } from '../types'
import { checkOneOf, checkOptionKeys, checkSeed, checkSize, DTYPES } from '../validate'
import type { SequenceTensor } from '../model/data'

/** MSE of the best constant prediction: Var(U₁ + U₂) = 2/12. */
export const ADDING_BASELINE_MSE = 1 / 6

export interface AddingProblemOptions {
  /** Number of sequences. */
  n: number
  /** Steps per sequence (>= 2). */
  time: number
  /** Default 0. Same seed, same data. */
  seed?: number
  /** Default `'float32'`. */
  dtype?: Dtype
}

export interface AddingProblem {
  /** `[n, time, 2]`: feature 0 the value, feature 1 the marker (0 or 1). */
  x: SequenceTensor
  /** `[n, 1]`: the sum of the two marked values. */
  y: { data: FloatArray; shape: [number, number] }
}

/** `n` seeded sequences of the adding problem, ready for `fit` (`{ x, y }`). */
export function addingProblem(options: AddingProblemOptions): AddingProblem {
  checkOptionKeys(options, ['n', 'time', 'seed', 'dtype'], 'addingProblem')
  const n = checkSize('n', options.n)
  const time = checkSize('time', options.time)
  if (time < 2)
    throw new OdysseyRangeError('ODYSSEY_INVALID', `time: the adding problem needs at least 2 steps, got ${time}`)
  const random = mulberry32(checkSeed('seed', options.seed ?? 0))
  const Float = checkOneOf('dtype', options.dtype ?? 'float32', DTYPES) === 'float32' ? Float32Array : Float64Array
  const x = new Float(n * time * 2)
  const y = new Float(n)
  const half = Math.floor(time / 2)
  for (let s = 0; s < n; s++) {
    for (let t = 0; t < time; t++) x[(s * time + t) * 2] = random()
    const first = Math.floor(random() * half)
    const second = half + Math.floor(random() * (time - half))
    for (const t of [first, second]) {
      x[(s * time + t) * 2 + 1] = 1
      y[s] += x[(s * time + t) * 2]
    }
  }
  return { x: { data: x, shape: [n, time, 2] }, y: { data: y, shape: [n, 1] } }
}
