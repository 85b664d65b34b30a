/**
 * `writeReport`: run logs in, one self-contained HTML file out.
 */
import { mkdir } from 'node:fs/promises'
import { dirname } from 'node:path'

import { OdysseyRangeError } from '../errors'
import { writeFileAtomic } from '../util/fs'
import { reportSections } from './charts'
import { readRunLog, type RunLogRecord } from './log'
import { renderPage, type RenderedSection } from './page'
import { renderSvg } from './render'
import { checkRecords, collectRuns, summarize, type RunLogSource } from './runs'

/** Paths of run logs (`log.jsonl`), or records given in code (each run starting with its `run` record). */
export type ReportInput = readonly string[] | readonly RunLogRecord[]

export interface ReportOptions {
  /** Default: "Training report: " and the run labels. */
  title?: string
}

export interface Report {
  html: string
  /** What Vega-Lite or Vega warned about while drawing, prefixed with the chart id. Empty when all went well. */
  warnings: string[]
}

function sourcesOf(input: ReportInput): RunLogSource[] {
  if (input.length === 0) throw new OdysseyRangeError('ODYSSEY_INVALID', 'report: no run logs given')
  if (input.every((item) => typeof item === 'string')) {
    return (input as readonly string[]).map((file) => ({ source: file, records: readRunLog(file) }))
  }
  return [{ source: 'records', records: checkRecords(input) }]
}

/**
 * The report's HTML for the runs in `input`.
 * @throws RunLogError (a log file unreadable or malformed, naming the line), RunRecordError (a record
 *   given in code), ReportDependencyError (vega / vega-lite not installed).
 */
export async function buildReport(input: ReportInput, options: ReportOptions = {}): Promise<Report> {
  const sources = sourcesOf(input)
  const runs = collectRuns(sources)
  const warnings: string[] = []
  const sections: RenderedSection[] = []
  for (const section of reportSections(runs)) {
    const figures = []
    for (const chart of section.charts) {
      const rendered = await renderSvg(chart.spec)
      warnings.push(...rendered.warnings.map((w) => `${chart.id}: ${w}`))
      figures.push({ id: chart.id, title: chart.title, caption: chart.caption, svg: rendered.svg })
    }
    sections.push({ id: section.id, heading: section.heading, figures })
  }
  const html = renderPage({
    title: options.title ?? `Training report: ${runs.map((r) => r.label).join(', ')}`,
    generatedAt: new Date().toISOString(),
    sources: sources.map((s) => s.source),
    summaries: runs.map(summarize),
    sections,
  })
  return { html, warnings }
}

/**
 * Writes the report of `input` to `outPath` (atomically: a reader never sees half a file) and
 * returns what the chart library warned about.
 * @throws as `buildReport`, and OdysseyError `ODYSSEY_IO` when `outPath` cannot be written.
 */
export async function writeReport(input: ReportInput, outPath: string, options: ReportOptions = {}): Promise<Report> {
  const report = await buildReport(input, options)
  // A directory that cannot be made shows up as the write's error, which names the file.
  await mkdir(dirname(outPath), { recursive: true }).catch(() => undefined)
  await writeFileAtomic(outPath, [report.html])
  return report
}
