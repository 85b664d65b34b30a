import type { SequenceInput } from '../types'
import { toFloat64 } from './math'

/** A padded batch converted to float64, with lengths and initial states filled in. */
export interface PreparedBatch {
  batch: number
  time: number
  inputSize: number
  /** `[batch]`, each in 1..time. */
  lengths: Int32Array
  /** `[batch, time, inputSize]` */
  x: Float64Array
  /** Initial hidden output y(0) `[batch, hidden]` (zeros when not given). */
  h0: Float64Array
  /** Initial cell state c(0) `[batch, hidden]` (zeros when not given). */
  c0: Float64Array
}

export function prepareBatch(input: SequenceInput, hiddenSize: number): PreparedBatch {
  const [batch, time, inputSize] = input.shape
  const lengths = new Int32Array(batch).fill(time)
  if (input.lengths !== undefined) lengths.set(Array.from(input.lengths))
  const stateOrZeros = (state: ArrayLike<number> | undefined) =>
    state === undefined ? new Float64Array(batch * hiddenSize) : toFloat64(state)
  return {
    batch,
    time,
    inputSize,
    lengths,
    x: toFloat64(input.x),
    h0: stateOrZeros(input.h0),
    c0: stateOrZeros(input.c0),
  }
}

/** Row `index` of a flat array of rows of `width` elements (a view, not a copy). */
export function row(data: Float64Array, index: number, width: number): Float64Array {
  return data.subarray(index * width, (index + 1) * width)
}

/** The `width` elements at step t of sequence b in a flat `[batch, time, width]` array (a view). */
export function step(data: Float64Array, b: number, t: number, time: number, width: number): Float64Array {
  return row(data, b * time + t, width)
}

/** Element-wise square roots of per-step sums of squares: the `stepGradNorms` output. */
export function sqrtAll(sumsOfSquares: Float64Array): Float64Array {
  return sumsOfSquares.map(Math.sqrt)
}

/** Step t−1 of sequence b in a flat `[batch, time, width]` array, or row b of `initial` at t = 0 (a view). */
export function previousStep(
  data: Float64Array,
  initial: Float64Array,
  b: number,
  t: number,
  time: number,
  width: number,
): Float64Array {
  return t > 0 ? step(data, b, t - 1, time, width) : row(initial, b, width)
}
