'use strict'
/** Deterministic inputs, so every implementation sees the same numbers. */

// The package's own seeded generator (mulberry32).
const { mulberry32: prng } = require('../../dist/util/random')

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
