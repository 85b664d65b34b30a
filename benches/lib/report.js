'use strict'
/** The results as an aligned table for the terminal and as the Markdown section of BENCHMARKS.md. */
const { sweepTable } = require('./sweep')

const HEADER = [
  'suite',
  'shape',
  'implementation',
  'variant',
  'thr',
  'median',
  'min',
  'max',
  'reps',
  'GFLOP/s',
  'peak RSS',
  'note',
]
const MARK_START = '<!-- bench:results:start -->'
const MARK_END = '<!-- bench:results:end -->'

function formatTime(ms) {
  if (ms === undefined) return ''
  if (ms < 1) return `${(ms * 1000).toFixed(1)} µs`
  if (ms < 100) return `${ms.toFixed(2)} ms`
  if (ms < 10_000) return `${ms.toFixed(0)} ms`
  return `${(ms / 1000).toFixed(1)} s`
}

function noteOf(record) {
  if (record.skipped !== undefined) return `skipped: ${record.skipped}`
  if (record.error !== undefined) return `ERROR: ${record.error.split('\n')[0].slice(0, 160)}`
  if (record.memory !== undefined) {
    const m = record.memory
    return `grew ${m.growthMiB.toFixed(1)} MiB vs ${m.requiredMiB.toFixed(1)} MiB required (${m.ratio.toFixed(2)}×)`
  }
  if (record.flat !== undefined) {
    const samples = record.flat.rssMiB
    return `RSS MiB every ${record.flat.every} steps: ${samples.map((s) => s.toFixed(1)).join(' ')}`
  }
  if (record.suite === 'vqa' && record.medianMs !== undefined)
    return `${questionsPerSecond(record).toFixed(0)} questions/s`
  return ''
}

/** A VQA record's training throughput: B questions per median step. */
function questionsPerSecond(record) {
  return record.B / (record.medianMs / 1000)
}

function rowOf(r) {
  const gflops = r.gflops === undefined ? '' : r.gflops.toFixed(r.gflops < 1 ? 3 : 1)
  const rss = r.peakRssMiB === undefined ? '' : `${r.peakRssMiB.toFixed(0)} MiB`
  return [
    r.suite,
    r.shape,
    r.impl,
    r.variant,
    String(r.threads ?? ''),
    formatTime(r.medianMs),
    formatTime(r.minMs),
    formatTime(r.maxMs),
    String(r.reps ?? ''),
    gflops,
    rss,
    noteOf(r),
  ]
}

/** Space-aligned columns; the note column runs free. */
function textTable(records) {
  const rows = [HEADER, ...records.map(rowOf)]
  const widths = HEADER.map((_, i) => Math.max(...rows.map((row) => row[i].length)))
  return rows
    .map((row) =>
      row
        .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i])))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')
}

/** Columns padded to their widest cell, as Biome formats Markdown (so `npm run lint` passes on a refreshed page). */
function markdownTable(header, rows) {
  const cells = [header, ...rows].map((row) => row.map((cell) => cell.replaceAll('|', '\\|')))
  const widths = header.map((_, i) => Math.max(3, ...cells.map((row) => row[i].length)))
  const line = (row) => `| ${row.map((cell, i) => cell.padEnd(widths[i])).join(' | ')} |`
  return [line(cells[0]), line(widths.map((w) => '-'.repeat(w))), ...cells.slice(1).map(line)].join('\n')
}

/** A target with a threshold is met or not; a measured one without is only reported. */
function verdict({ met, reported }) {
  if (reported) return 'reported'
  if (met === null) return '—'
  return met ? 'met' : 'NOT met'
}

/** The issues the targets belong to, in order (runs saved before targets had an issue count as #5's). */
function byIssue(targets) {
  const groups = new Map()
  for (const t of targets) {
    const issue = t.issue ?? '#5 Performance'
    groups.set(issue, [...(groups.get(issue) ?? []), t])
  }
  return [...groups]
}

function targetsText(targets) {
  return byIssue(targets)
    .map(
      ([issue, group]) =>
        `Targets of issue ${issue}:\n${group.map((t) => `${verdict(t).padEnd(8)} ${t.target}: ${t.text}`).join('\n')}`,
    )
    .join('\n\n')
}

function blasLine(blas) {
  const library = blas?.libraries?.[0]
  if (library !== undefined)
    return `${library.config ?? library.path}, kernel ${library.corename}, ${library.threads} threads`
  return blas?.threadpoolctl ? JSON.stringify(blas.threadpoolctl) : 'unknown'
}

/** The environment lines: machine, command, load, and what each implementation ran on. */
function environmentLines({ machine, command, loadStart, loadEnd, pytorch, records }) {
  const sgemm = records.find((r) => r.suite === 'sgemm' && r.api !== undefined)
  const apis = [...new Set(records.filter((r) => r.api).map((r) => `${r.impl}: ${r.api}`))]
  return [
    `- Date: ${machine.date}; commit ${machine.commit}`,
    `- Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB; Node ${machine.node} (${machine.platform})`,
    `- Command: \`${command}\``,
    `- 1-minute load average: ${loadStart} at the start, ${loadEnd} at the end (the machine is shared; other work inflates the numbers)`,
    `- PyTorch: ${pytorch.error ? `not available (${pytorch.error})` : `${pytorch.torch}, ${pytorch.threads} threads, BLAS ${blasLine(pytorch.blas)}`}`,
    `- sgemm peak: ${sgemm ? `${sgemm.api}, BLAS ${blasLine(sgemm.blas)}` : 'not measured'}`,
    ...apis.map((line) => `- ${line}`),
  ]
}

/** The batch-size sweep as Markdown lines (a heading and a table), none when the run has no sweep. */
function sweepLines(records) {
  const table = sweepTable(records)
  if (table === undefined) return []
  return ['', '#### Batch-size sweep (sequences/s)', '', markdownTable(table.header, table.rows)]
}

/** The batch-size sweep as aligned text, or '' when the run has no sweep. */
function sweepText(records) {
  const table = sweepTable(records)
  if (table === undefined) return ''
  const rows = [table.header, ...table.rows]
  const widths = table.header.map((_, i) => Math.max(...rows.map((row) => row[i].length)))
  const lines = rows.map((row) =>
    row
      .map((cell, i) => cell.padEnd(widths[i]))
      .join('  ')
      .trimEnd(),
  )
  return `Batch-size sweep (sequences/s):\n${lines.join('\n')}`
}

function markdownSection(run) {
  const targetRows = byIssue(run.targets).flatMap(([issue, group]) =>
    group.map((t) => [issue, t.target, t.text, verdict(t)]),
  )
  return [
    MARK_START,
    '### Latest run',
    '',
    ...environmentLines(run),
    '',
    '#### Targets',
    '',
    markdownTable(['issue', 'target', 'measured', ''], targetRows),
    ...sweepLines(run.records),
    '',
    '#### Every record',
    '',
    markdownTable(HEADER, run.records.map(rowOf)),
    MARK_END,
  ].join('\n')
}

/** `document` with its results section replaced (or appended when it has none). */
function replaceResults(document, section) {
  const start = document.indexOf(MARK_START)
  const end = document.indexOf(MARK_END)
  if (start === -1 || end === -1) return `${document.trimEnd()}\n\n${section}\n`
  return document.slice(0, start) + section + document.slice(end + MARK_END.length)
}

module.exports = {
  textTable,
  targetsText,
  sweepText,
  environmentLines,
  markdownSection,
  replaceResults,
  questionsPerSecond,
}
