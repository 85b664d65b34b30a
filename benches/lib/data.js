'use strict'
/** Deterministic inputs, so every implementation sees the same numbers. */

/** mulberry32: a tiny seeded PRNG; uniform in [0, 1). */
function prng(seed) {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** @returns {Float32Array} `length` values uniform in [−1, 1) */
function uniform(length, seed) {
  const next = prng(seed)
  const out = new Float32Array(length)
  for (let i = 0; i < length; i++) out[i] = 2 * next() - 1
  return out
}

/**
 * A training batch: x `[B, T, X]` and the fixed regression target `[B, T, outWidth]`, flat.
 * @param {{ B: number, T: number, X: number }} shape
 * @param {number} outWidth H (or 2H for a bidirectional top layer)
 */
function makeBatch({ B, T, X }, outWidth) {
  return { x: uniform(B * T * X, 1), target: uniform(B * T * outWidth, 2) }
}

module.exports = { uniform, makeBatch }
