/**
 * The HTML report without a browser: which charts appear for which data, the
 * numbers the charts are drawn from (thinning of long runs, distances of the
 * gradient flow), a page that loads nothing, and the errors of bad input.
 */
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { afterAll, describe, expect, it } from 'vitest'

import {
  buildReport,
  RunLogger,
  RunRecordError,
  writeReport,
  type RunHeaderRecord,
  type RunLogRecord,
  type StepRecord,
} from '../ts/report'
import {
  flowPoints,
  gradientFlowChart,
  MAX_POINTS_PER_RUN,
  reportSections,
  stepPoints,
  valueScale,
} from '../ts/report/charts'
import { collectRuns } from '../ts/report/runs'
import { syntheticComparison, syntheticRun } from './helpers/report-records'

const work = mkdtempSync(join(tmpdir(), 'odyssey-report-html-'))
afterAll(() => rmSync(work, { recursive: true, force: true }))

function step(step: number, fields: Partial<StepRecord> = {}): StepRecord {
  return {
    type: 'step',
    step,
    epoch: 0,
    loss: 1,
    gradNorm: 0.5,
    clipThreshold: 1,
    clipped: false,
    applied: true,
    learningRate: 0.1,
    examplesPerSecond: 100,
    ...fields,
  }
}

const header = (label: string): RunHeaderRecord => ({ type: 'run', format: 'odyssey-run-log', version: 1, label })

describe('chart data', () => {
  it('keeps every step of a short run', () => {
    const steps = [step(0), step(1, { clipped: true, gradNorm: 2 })]
    expect(stepPoints('r', steps)).toEqual([
      { run: 'r', step: 0, loss: 1, gradNorm: 0.5, clipThreshold: 1, clipped: 0, learningRate: 0.1 },
      { run: 'r', step: 1, loss: 1, gradNorm: 2, clipThreshold: 1, clipped: 1, learningRate: 0.1 },
    ])
  })

  it('thins a long run into groups that keep the mean loss, the largest norm and every clipped step', () => {
    const steps = Array.from({ length: 2500 }, (_, i) =>
      step(i, { loss: i % 2 === 0 ? 1 : 3, gradNorm: i === 1234 ? 40 : 0.5, clipped: i % 10 === 0 }),
    )
    const points = stepPoints('r', steps)
    expect(points.length).toBeLessThanOrEqual(MAX_POINTS_PER_RUN)
    expect(points).toHaveLength(834) // groups of 3
    expect(points[0]).toMatchObject({ step: 2, loss: 5 / 3, clipped: 1 })
    expect(Math.max(...points.map((p) => p.gradNorm ?? 0))).toBe(40)
    expect(points.reduce((sum, p) => sum + p.clipped, 0)).toBe(250)
    expect(points.at(-1)?.step).toBe(2499)
  })

  it('leaves non-finite losses out of a group mean, and a group of only those empty', () => {
    const points = stepPoints(
      'r',
      [step(0, { loss: null }), step(1, { loss: 2 }), step(2, { loss: null, gradNorm: null })],
      2,
    )
    expect(points.map((p) => [p.loss, p.gradNorm])).toEqual([
      [2, 0.5],
      [null, null],
    ])
  })

  it('measures the gradient flow by distance from the last step, leaving out zero and non-finite norms', () => {
    const record = {
      type: 'gradientFlow',
      step: 0,
      epoch: 0,
      model: 'LSTM',
      layer: 'l0',
      quantity: 'c',
      norms: [0.1, 0, null, 0.4, 0.8],
    } as const
    expect(flowPoints({ ...record, norms: [...record.norms] })).toEqual([
      { distance: 4, norm: 0.1 },
      { distance: 1, norm: 0.4 },
      { distance: 0, norm: 0.8 },
    ])
  })

  it('draws the first and last measurement of each model, one facet per model', () => {
    const chart = gradientFlowChart(collectRuns([{ source: 'records', records: syntheticComparison() }]))
    const rows = (chart!.spec as { data: { values: { panel: string; measured: string; step: number }[] } }).data.values
    expect(new Set(rows.map((r) => r.panel))).toEqual(new Set(['LSTM: ‖∂J/∂c(k)‖', 'simple RNN: ‖∂J/∂h(k)‖']))
    expect(new Set(rows.map((r) => `${r.measured} ${r.step}`))).toEqual(
      new Set(['first measurement 40', 'last measurement 240']),
    )
    expect(rows).toHaveLength(2 * 2 * 30)
  })

  it('chooses a log scale only for positive values spanning two decades', () => {
    expect(valueScale([0.001, 0.5])).toBe('log')
    expect(valueScale([0.2, 0.5])).toBe('linear')
    expect(valueScale([0, 0.001, 0.5])).toBe('linear')
    expect(valueScale([])).toBe('linear')
  })
})

describe('which charts a report has', () => {
  const ids = (records: RunLogRecord[]) =>
    reportSections(collectRuns([{ source: 'records', records }])).map((s) => [s.id, s.charts.map((c) => c.id)])

  it('draws every chart for runs with steps, epochs, gradient flow and a VQA evaluation', () => {
    expect(ids(syntheticComparison())).toEqual([
      ['training', ['loss', 'learning-rate', 'grad-norm', 'metrics']],
      ['gradient-flow', ['gradient-flow', 'gradient-flow-heatmap']],
      ['vqa', ['vqa-accuracy', 'confusion-0']],
    ])
  })

  it('leaves out the sections a run has no data for, and the heat map with one measurement', () => {
    const oneFlow = syntheticRun({ label: 'LSTM', quantity: 'c', decay: 0.9, seed: 1, epochs: 1 })
    expect(ids(oneFlow)).toEqual([
      ['training', ['loss', 'learning-rate', 'grad-norm', 'metrics']],
      ['gradient-flow', ['gradient-flow']],
    ])
    expect(ids([header('steps only'), step(0), step(1)])).toEqual([
      ['training', ['loss', 'learning-rate', 'grad-norm']],
    ])
    expect(ids([header('nothing yet')])).toEqual([])
  })

  it('keeps runs with the same label apart', () => {
    const runs = collectRuns([
      { source: 'a.jsonl', records: [header('LSTM'), step(0)] },
      { source: 'b.jsonl', records: [header('LSTM'), step(0)] },
    ])
    expect(runs.map((r) => [r.label, r.source])).toEqual([
      ['LSTM', 'a.jsonl'],
      ['LSTM (2)', 'b.jsonl'],
    ])
  })
})

describe('buildReport and writeReport', () => {
  it('draws every chart without a warning into a page that loads nothing', async () => {
    const { html, warnings } = await buildReport(syntheticComparison())
    expect(warnings).toEqual([])
    for (const id of [
      'loss',
      'learning-rate',
      'grad-norm',
      'metrics',
      'gradient-flow',
      'gradient-flow-heatmap',
      'vqa-accuracy',
      'confusion-0',
    ]) {
      expect(html).toMatch(
        new RegExp(`<figure class="chart" id="chart-${id}" data-chart="${id}">\\s*<h3>[^<]+</h3>\\s*<svg `),
      )
    }
    // References inside the page (`url(#clip1)`, `href="#training"`) are all there may be.
    expect(html).not.toMatch(/<script|<link|<img|<iframe|@import|url\((?!#)/i)
    expect(html).not.toMatch(/(src|href)="(?!#)/)
    // Every chart is its own SVG; their clip paths and gradients must not share ids.
    const ids = [...html.matchAll(/ id="([^"]+)"/g)].map((m) => m[1])
    expect(ids.length).toBeGreaterThan(10)
    expect(new Set(ids).size).toBe(ids.length)
    expect(html).toContain(`content="default-src 'none'; style-src 'unsafe-inline'; img-src data:"`)
  })

  it('escapes labels in the page and in the charts', async () => {
    const label = '<img src=x onerror=alert(1)> & "LSTM"'
    const { html } = await buildReport([{ ...header(label), task: '<b>' }, step(0)])
    expect(html).not.toContain('<img')
    expect(html).not.toContain('<b>')
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt; &amp; &quot;LSTM&quot;')
  })

  it('writes the report of run-log files, one run per file', async () => {
    const paths = ['lstm', 'rnn'].map((name, i) => {
      const file = join(work, name, 'log.jsonl')
      const log = new RunLogger(file, { label: name === 'lstm' ? 'LSTM' : 'simple RNN' })
      for (const record of syntheticRun({ label: name, quantity: 'c', decay: 0.9, seed: i, epochs: 2 }).slice(1))
        log.write(record)
      log.close()
      return file
    })
    const out = join(work, 'reports', 'nested', 'report.html')
    const { warnings } = await writeReport(paths, out, { title: 'Two runs' })
    expect(warnings).toEqual([])
    const html = readFileSync(out, 'utf8')
    expect(html).toContain('<title>Two runs</title>')
    expect(html).toContain(`<code>${paths[0]}</code>, <code>${paths[1]}</code>`)
    expect(html).toMatch(/<td>LSTM<\/td>[\s\S]*<td>simple RNN<\/td>/)
  })

  it('refuses records given in code that do not start with a run header or are malformed', async () => {
    await expect(buildReport([step(0)])).rejects.toThrow(
      /^records\[0\]\.type: the first record must be a run header, got "step"$/,
    )
    await expect(buildReport([header('x'), step(0, { learningRate: NaN })])).rejects.toThrow(RunRecordError)
    await expect(buildReport([header('x'), step(0, { learningRate: NaN })])).rejects.toThrow(
      /^records\[1\]\.learningRate: expected a finite number >= 0/,
    )
    await expect(buildReport([])).rejects.toThrow(/no run logs given/)
  })

  it('names the file and line of a malformed log, and the file it cannot write', async () => {
    const file = join(work, 'broken.jsonl')
    const log = new RunLogger(file, { label: 'x' })
    log.close()
    appendFileSync(file, '{"type":"step"}\n')
    await expect(writeReport([file], join(work, 'never.html'))).rejects.toThrow(
      `${file}:2: step: expected an integer >= 0, got undefined`,
    )
    await expect(writeReport(syntheticComparison(), join(file, 'report.html'))).rejects.toThrow(
      /report\.html: cannot write/,
    )
  })
})
