/** Seeded inputs and comparisons for the layer tests (layers, validation, native-vs-reference). */
import { expect } from 'vitest'

import type { Dtype, FloatArray } from '../../ts'
import { mulberry32 } from '../../ts/util/random'

/** A seeded uniform generator in [0, 1) (mulberry32), so every test input is reproducible. */
export const seededRandom = mulberry32

/** `length` values uniform in [−scale, scale) in the typed array of `dtype`. */
export function randomArray(dtype: Dtype, length: number, seed: number, scale = 1): FloatArray {
  const random = seededRandom(seed)
  const values = Array.from({ length }, () => (2 * random() - 1) * scale)
  return dtype === 'float32' ? Float32Array.from(values) : Float64Array.from(values)
}

export function zeros(dtype: Dtype, length: number): FloatArray {
  return dtype === 'float32' ? new Float32Array(length) : new Float64Array(length)
}

/**
 * Every element within `tolerance · (1 + |expected|)`; the failure message names the first
 * element that is not. NaN never passes.
 */
export function expectNear(label: string, actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number) {
  expect(actual.length, `${label}: length`).toBe(expected.length)
  for (let k = 0; k < expected.length; k++) {
    const error = Math.abs(actual[k] - expected[k])
    if (!(error <= tolerance * (1 + Math.abs(expected[k])))) {
      expect.fail(`${label}[${k}]: ${actual[k]} vs ${expected[k]} (tolerance ${tolerance})`)
    }
  }
}

/** `[batch, time, width]` element (b, t, j) of a flat array. */
export function at(data: ArrayLike<number>, time: number, width: number, b: number, t: number, j: number): number {
  return data[(b * time + t) * width + j]
}
