'use strict'
/** One JSON record per (suite, implementation, shape, variant), from a case and what its child reported. */
const { caseFlops } = require('./flops')

/** A short name for what differs from the plain 1-layer LSTM. */
function variantOf(c) {
  if (c.variants !== undefined)
    return c.variants.map((v) => variantOf({ ...c, ...v, variants: undefined })).join(' vs ')
  if (c.model) return `${c.model} model`
  if (c.suite === 'sweep') return c.mode === 'forward' ? 'predict' : 'training step'
  if (c.layers > 1) return `${c.layers}-layer${c.bidirectional ? ' bidirectional' : ''}`
  if (c.cell === 'rnn') return 'simple RNN'
  if (c.cell === 'gru') return 'GRU'
  if (c.suite === 'peephole') return c.peepholes ? 'peepholes' : 'no peepholes'
  if (c.flatSteps !== undefined)
    return `RSS over ${c.flatSteps} ${c.mode === 'stream' ? 'streaming' : 'training'} steps`
  if (c.budget) return 'peak RSS vs required bytes'
  return ''
}

function statistics(timesMs) {
  const sorted = [...timesMs].sort((a, b) => a - b)
  const middle = sorted.length >> 1
  const medianMs = sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
  return { medianMs, minMs: sorted[0], maxMs: sorted[sorted.length - 1], reps: sorted.length }
}

function shapeFields(c) {
  if (c.suite === 'sgemm') return { n: c.n }
  const { B, T, X, H, cell, mode, layers, bidirectional, peepholes } = c
  return { B, T, X, H, cell, mode, layers, bidirectional, peepholes }
}

/** What the child measured, with the statistics and GFLOP/s derived from it. */
function measuredFields(c, result) {
  const fields = {
    threads: result.info?.threads,
    api: result.info?.api,
    version: result.info?.version,
    peakRssMiB: result.peakRssMiB,
    rssAfterSetupMiB: result.rssAfterSetupMiB,
  }
  if (result.timesMs !== undefined) {
    const stats = statistics(result.timesMs)
    const flops = result.flops ?? caseFlops(c)
    const gflops = flops / (stats.medianMs * 1e6)
    Object.assign(fields, stats, { warmup: result.warmup, flops, gflops, bestGflops: flops / (stats.minMs * 1e6) })
  }
  if (result.lossFirst !== undefined) Object.assign(fields, { lossFirst: result.lossFirst, lossLast: result.lossLast })
  if (result.memory !== undefined) fields.memory = result.memory
  if (result.flat !== undefined) fields.flat = result.flat
  if (result.info?.blas !== undefined) fields.blas = result.info.blas
  return fields
}

/**
 * @param {object} c the planned case
 * @param {object} result what the child wrote: timings, or `{ skipped }`, or `{ error }`
 * @param {number} loadBefore 1-minute load average when the case started
 */
function toRecord(c, result, loadBefore) {
  const base = { suite: c.suite, impl: c.impl, shape: c.shape, variant: variantOf(c), ...shapeFields(c), loadBefore }
  if (result.skipped !== undefined) return { ...base, skipped: result.skipped }
  if (result.error !== undefined) return { ...base, error: result.error }
  return { ...base, ...measuredFields(c, result) }
}

module.exports = { toRecord, variantOf }
