'use strict'
/**
 * Issue #13's batch-size sweep: `predict` and one training step at S2's T, X and H
 * for each batch size of SWEEP_BATCHES, odyssey beside PyTorch (and onnxruntime for
 * predict), as a table (sequences per second and odyssey's ratio to the fastest
 * peer) and an SVG chart of sequences per second against the batch size.
 */
const { SWEEP_BATCHES } = require('./shapes')

/** The implementations of each sweep mode, odyssey first. */
const SWEEP_MODES = [
  { mode: 'forward', label: 'predict', impls: ['odyssey-native', 'onnxruntime', 'pytorch'] },
  { mode: 'train', label: 'training step', impls: ['odyssey-native', 'pytorch'] },
]
const SWEEP_IMPLS = [...new Set(SWEEP_MODES.flatMap((m) => m.impls))]
const COLORS = { 'odyssey-native': '#d62728', pytorch: '#1f77b4', onnxruntime: '#2ca02c' }

/** Sequences per second of a timed record (B sequences per median call), or undefined. */
function sequencesPerSecond(record) {
  return record?.medianMs === undefined ? undefined : record.B / (record.medianMs / 1000)
}

/** `lookup(mode, impl, B)`: the sweep record of that case in `records`, if any. */
function sweepLookup(records) {
  const sweep = records.filter((r) => r.suite === 'sweep')
  return (mode, impl, B) => sweep.find((r) => r.mode === mode && r.impl === impl && r.B === B)
}

function formatRate(rate) {
  if (rate === undefined) return '—'
  return rate >= 100 ? rate.toFixed(0) : rate.toPrecision(3)
}

/** odyssey's median against the fastest peer's at one (mode, B), as text. */
function ratioText(lookup, { mode, impls }, B) {
  const ours = sequencesPerSecond(lookup(mode, 'odyssey-native', B))
  const peers = impls
    .slice(1)
    .map((impl) => ({ impl, rate: sequencesPerSecond(lookup(mode, impl, B)) }))
    .filter((p) => p.rate !== undefined)
  if (ours === undefined || peers.length === 0) return '—'
  const best = peers.reduce((a, b) => (b.rate > a.rate ? b : a))
  return `${(ours / best.rate).toFixed(2)}× ${best.impl}`
}

/**
 * The sweep as Markdown rows: one per batch size, sequences/s of every implementation and
 * odyssey's ratio to the fastest peer, per mode; undefined when the run has no sweep records.
 */
function sweepTable(records) {
  if (!records.some((r) => r.suite === 'sweep')) return undefined
  const lookup = sweepLookup(records)
  const header = [
    'B',
    ...SWEEP_MODES.flatMap(({ label, impls }) => [
      ...impls.map((impl) => `${label}: ${impl}`),
      `${label}: odyssey vs best`,
    ]),
  ]
  const rows = SWEEP_BATCHES.map((B) => [
    String(B),
    ...SWEEP_MODES.flatMap((m) => [
      ...m.impls.map((impl) => formatRate(sequencesPerSecond(lookup(m.mode, impl, B)))),
      ratioText(lookup, m, B),
    ]),
  ])
  return { header, rows }
}

const escapeXml = (text) => text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;')

/** The powers of ten from below `low` to above `high`. */
function decades(low, high) {
  const out = []
  for (let e = Math.floor(Math.log10(low)); e <= Math.ceil(Math.log10(high)); e++) out.push(10 ** e)
  return out
}

/** One panel (a mode): log-log axes, batch size across, sequences/s up, a line per implementation. */
function panel(lookup, { mode, label, impls }, { left, top, width, height }, range) {
  const [low, high] = range
  const [first, last] = [SWEEP_BATCHES[0], SWEEP_BATCHES[SWEEP_BATCHES.length - 1]]
  const x = (B) => left + (width * Math.log(B / first)) / Math.log(last / first)
  const y = (rate) => top + height - (height * Math.log(rate / low)) / Math.log(high / low)
  const parts = [
    `<text x="${left + width / 2}" y="${top - 12}" text-anchor="middle" font-weight="bold">${escapeXml(label)}</text>`,
    `<rect x="${left}" y="${top}" width="${width}" height="${height}" fill="none" stroke="#888"/>`,
  ]
  for (const tick of decades(low, high).filter((t) => t >= low && t <= high)) {
    parts.push(
      `<line x1="${left}" x2="${left + width}" y1="${y(tick)}" y2="${y(tick)}" stroke="#ddd"/>`,
      `<text x="${left - 6}" y="${y(tick) + 4}" text-anchor="end">${tick >= 1000 ? `${tick / 1000}k` : tick}</text>`,
    )
  }
  for (const B of SWEEP_BATCHES) {
    parts.push(
      `<line x1="${x(B)}" x2="${x(B)}" y1="${top}" y2="${top + height}" stroke="#eee"/>`,
      `<text x="${x(B)}" y="${top + height + 16}" text-anchor="middle">${B}</text>`,
    )
  }
  parts.push(`<text x="${left + width / 2}" y="${top + height + 34}" text-anchor="middle">batch size B</text>`)
  for (const impl of impls) {
    const points = SWEEP_BATCHES.map((B) => [B, sequencesPerSecond(lookup(mode, impl, B))]).filter(
      ([, rate]) => rate !== undefined,
    )
    if (points.length === 0) continue
    const color = COLORS[impl]
    const path = points.map(([B, rate]) => `${x(B).toFixed(1)},${y(rate).toFixed(1)}`).join(' ')
    parts.push(`<polyline points="${path}" fill="none" stroke="${color}" stroke-width="2"/>`)
    for (const [B, rate] of points)
      parts.push(`<circle cx="${x(B).toFixed(1)}" cy="${y(rate).toFixed(1)}" r="3" fill="${color}"/>`)
  }
  return parts
}

/**
 * The chart as a standalone SVG document (two panels: predict, training step), or undefined when
 * the run timed no sweep case. `subtitle`: the run it comes from (commit, load).
 */
function sweepSvg(records, subtitle) {
  const lookup = sweepLookup(records)
  const rates = records
    .filter((r) => r.suite === 'sweep')
    .map(sequencesPerSecond)
    .filter((r) => r !== undefined)
  if (rates.length === 0) return undefined
  const range = [10 ** Math.floor(Math.log10(Math.min(...rates))), 10 ** Math.ceil(Math.log10(Math.max(...rates)))]
  const [width, height] = [860, 400]
  const box = { top: 70, width: 330, height: 250 }
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<title>odyssey-rnn batch-size sweep: sequences per second of predict and of a training step, B 1 to 128</title>`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">Sequences per second by batch size (LSTM, T 100, X 128, H 256, float32)</text>`,
    `<text x="${width / 2}" y="40" text-anchor="middle" fill="#555">${escapeXml(subtitle)}</text>`,
    `<text transform="translate(18 ${box.top + box.height / 2}) rotate(-90)" text-anchor="middle">sequences / s (log)</text>`,
    ...SWEEP_MODES.flatMap((m, i) => panel(lookup, m, { ...box, left: 80 + i * 420 }, range)),
  ]
  SWEEP_IMPLS.forEach((impl, i) => {
    const left = 80 + i * 200
    parts.push(
      `<line x1="${left}" x2="${left + 24}" y1="${height - 18}" y2="${height - 18}" stroke="${COLORS[impl]}" stroke-width="2"/>`,
      `<text x="${left + 30}" y="${height - 14}">${impl}</text>`,
    )
  })
  parts.push('</svg>')
  return `${parts.join('\n')}\n`
}

module.exports = { SWEEP_MODES, sweepTable, sweepSvg }
