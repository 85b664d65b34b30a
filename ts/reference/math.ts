/**
 * Small numeric helpers of the reference backend. Everything here works on
 * Float64Array; matrices are flat row-major and their shapes follow from the
 * lengths of the vectors they are applied to, so callers pass views
 * (`subarray`) instead of offsets.
 */

import type { Dtype, FloatArray, Tensor } from '../types'

export function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x))
}

/** Clamps to [−limit, limit]; no limit means no clamping. */
export function clamp(value: number, limit: number | undefined): number {
  return limit === undefined ? value : Math.min(limit, Math.max(-limit, value))
}

/** out += W · v, with W `[out.length, v.length]`. */
export function addMatVec(out: Float64Array, w: Float64Array, v: Float64Array): void {
  const cols = v.length
  for (let r = 0; r < out.length; r++) {
    let sum = 0
    for (let c = 0; c < cols; c++) sum += w[r * cols + c] * v[c]
    out[r] += sum
  }
}

/** out += Wᵀ · v, with W `[v.length, out.length]`. */
export function addMatTVec(out: Float64Array, w: Float64Array, v: Float64Array): void {
  const cols = out.length
  for (let r = 0; r < v.length; r++) {
    const vr = v[r]
    for (let c = 0; c < cols; c++) out[c] += w[r * cols + c] * vr
  }
}

/** G += a ⊗ b, with G `[a.length, b.length]`. */
export function addOuter(g: Float64Array, a: Float64Array, b: Float64Array): void {
  const cols = b.length
  for (let r = 0; r < a.length; r++) {
    const ar = a[r]
    for (let c = 0; c < cols; c++) g[r * cols + c] += ar * b[c]
  }
}

/** out += v, elementwise. */
export function addInto(out: Float64Array, v: Float64Array): void {
  for (let j = 0; j < out.length; j++) out[j] += v[j]
}

/** A float64 copy of any float array (float32 values are exact in float64). */
export function toFloat64(data: ArrayLike<number>): Float64Array {
  return Float64Array.from(data)
}

/** Rounds to the storage precision of `dtype`, so float32 models hold float32 values. */
export function roundTo(dtype: Dtype, value: number): number {
  return dtype === 'float32' ? Math.fround(value) : value
}

/** A fresh output array of the caller's dtype with its shape. */
export function outputTensor(data: Float64Array, shape: number[], dtype: Dtype): Tensor {
  const out: FloatArray = dtype === 'float32' ? Float32Array.from(data) : Float64Array.from(data)
  return { data: out, shape: [...shape] }
}
