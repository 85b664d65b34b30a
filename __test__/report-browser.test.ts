/// <reference lib="dom" />
/**
 * Proof in a real browser: a report drawn from real run logs — an LSTM, a GRU
 * and a simple RNN trained on the adding problem through the Model API, plus a VQA
 * run from synthetic records — opened from disk in headless Chromium (Debian's
 * `chromium`, driven by playwright-core). Every chart must render its marks,
 * the console must stay free of errors, and the page must request nothing but
 * itself. Screenshots land in `__test__/artifacts/` (gitignored).
 *
 * Without `/usr/bin/chromium` it is skipped, saying so, so that `npm test` passes on a machine
 * set up as the README says; `ODYSSEY_REQUIRE_BROWSER=1` (set by .ci/run, which installs
 * chromium) makes a missing browser a failure instead. `ODYSSEY_SKIP_BROWSER=1` skips it always.
 * `ODYSSEY_UPDATE_DOCS=1` also copies the gradient-flow screenshot to `docs/gradient-flow.png`.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'

import { chromium, type BrowserContext, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { RunLogger, runLogPath, writeReport } from '../ts/report'
import { syntheticVqaRun } from './helpers/report-records'
import { trainAddingComparison, type AddingComparisonOptions } from './helpers/report-runs'

const CHROMIUM = '/usr/bin/chromium'
const ARTIFACTS = resolve(__dirname, 'artifacts')
const UPDATE_DOCS = process.env.ODYSSEY_UPDATE_DOCS === '1'
/** Long enough for the LSTM to learn T = 30 (validation MSE ≈ 0.002; the simple RNN stays near 0.167), ≈ 15 s. */
const RUN: AddingComparisonOptions = { time: 30, n: 2000, epochs: 10 }

/** The Vega mark types (`g.mark-<type>.role-mark`) each chart must draw at least one of. */
const EXPECTED_MARKS: Record<string, string[]> = {
  loss: ['line', 'symbol'],
  'learning-rate': ['line'],
  'grad-norm': ['line', 'symbol'],
  metrics: ['line', 'symbol'],
  'gradient-flow': ['line', 'symbol'],
  'gradient-flow-heatmap': ['rect'],
  'vqa-accuracy': ['rect'],
  'confusion-3': ['rect', 'text'],
}

interface RenderedChart {
  id: string
  width: number
  height: number
  /** Mark type → elements drawn (paths of lines, symbols and rects; text elements). */
  marks: Record<string, number>
}

const REQUIRE_BROWSER = process.env.ODYSSEY_REQUIRE_BROWSER === '1'
const NO_BROWSER = !existsSync(CHROMIUM) && !REQUIRE_BROWSER
if (NO_BROWSER) {
  console.warn(
    `report-browser.test.ts skipped: ${CHROMIUM} is missing (apt-get install chromium runs it; ` +
      'ODYSSEY_REQUIRE_BROWSER=1 makes a missing browser a failure).',
  )
}

describe.skipIf(process.env.ODYSSEY_SKIP_BROWSER === '1' || NO_BROWSER)('the report in headless Chromium', () => {
  const work = mkdtempSync(join(tmpdir(), 'odyssey-report-browser-'))
  const reportFile = join(work, 'report.html')
  const reportUrl = pathToFileURL(reportFile).href
  const requests: string[] = []
  const consoleErrors: string[] = []
  let context: BrowserContext
  let page: Page

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(
        `${CHROMIUM} is missing and ODYSSEY_REQUIRE_BROWSER=1 asks for it: this test drives Debian's ` +
          'chromium, which .ci/run installs (apt-get install chromium).',
      )
    }
    const logs = await trainAddingComparison(join(work, 'runs'), RUN)
    const vqaLog = new RunLogger(runLogPath(join(work, 'runs', 'vqa')), {
      label: 'VQA',
      task: 'VQA (synthetic records)',
    })
    for (const record of syntheticVqaRun('VQA').slice(1)) vqaLog.write(record)
    vqaLog.close()
    const { warnings } = await writeReport([...logs, vqaLog.file], reportFile)
    expect(warnings).toEqual([])

    context = await chromium.launchPersistentContext(join(work, 'chromium-profile'), {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
      viewport: { width: 1200, height: 900 },
      serviceWorkers: 'block',
    })
    context.on('request', (request) => requests.push(request.url()))
    // Anything but the file itself is refused before it leaves the browser (and recorded above).
    await context.route('**/*', (route) => (route.request().url() === reportUrl ? route.continue() : route.abort()))
    page = context.pages()[0] ?? (await context.newPage())
    page.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push(message.text())
    })
    page.on('pageerror', (error) => consoleErrors.push(error.message))
    await page.goto(reportUrl, { waitUntil: 'load' })
  }, 180_000)

  afterAll(async () => {
    await context?.close()
    rmSync(work, { recursive: true, force: true })
  })

  it('renders every chart with its marks, at a visible size', async () => {
    const charts = await page.$$eval('figure[data-chart]', (figures) =>
      figures.map((figure): RenderedChart => {
        const box = figure.querySelector('svg')?.getBoundingClientRect()
        const marks: Record<string, number> = {}
        for (const type of ['line', 'symbol', 'rect', 'text']) {
          marks[type] = figure.querySelectorAll(
            `svg g.mark-${type}.role-mark > path, svg g.mark-${type}.role-mark > text`,
          ).length
        }
        return {
          id: (figure as HTMLElement).dataset.chart ?? '',
          width: box?.width ?? 0,
          height: box?.height ?? 0,
          marks,
        }
      }),
    )
    expect(charts.map((c) => c.id)).toEqual(Object.keys(EXPECTED_MARKS))
    for (const chart of charts) {
      expect(chart.width, chart.id).toBeGreaterThan(200)
      expect(chart.height, chart.id).toBeGreaterThan(100)
      for (const type of EXPECTED_MARKS[chart.id])
        expect(chart.marks[type], `${chart.id}: ${type} marks`).toBeGreaterThan(0)
    }
    // One heat-map cell per (measurement, time step) of each of the three models: (epochs + 1) × T × 3.
    const heatmap = charts.find((c) => c.id === 'gradient-flow-heatmap')
    expect(heatmap?.marks.rect).toBe((RUN.epochs + 1) * RUN.time * 3)
  })

  it('fits the page to the window: no horizontal scrolling at 1200 px', async () => {
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(1200)
  })

  it('shows the LSTM, the GRU and the simple RNN side by side in the gradient-flow chart', async () => {
    const headers = await page.$$eval('#chart-gradient-flow svg g.role-column-header text', (texts) =>
      texts.map((t) => t.textContent),
    )
    expect(headers).toEqual(['LSTM: ‖∂J/∂c(k)‖', 'GRU: ‖∂J/∂h(k)‖', 'simple RNN: ‖∂J/∂h(k)‖'])
  })

  it('logs no console errors and requests nothing but the file itself', () => {
    expect(consoleErrors).toEqual([])
    expect(requests).toEqual([reportUrl])
  })

  it('saves screenshots of the page and of the gradient-flow chart', async () => {
    mkdirSync(ARTIFACTS, { recursive: true })
    const wholePage = join(ARTIFACTS, 'report.png')
    const flow = join(ARTIFACTS, 'gradient-flow.png')
    await page.screenshot({ path: wholePage, fullPage: true })
    await page.locator('#chart-gradient-flow').screenshot({ path: flow })
    expect(existsSync(wholePage) && existsSync(flow)).toBe(true)
    if (UPDATE_DOCS) {
      const docs = resolve(__dirname, '..', 'docs')
      mkdirSync(docs, { recursive: true })
      copyFileSync(flow, join(docs, 'gradient-flow.png'))
    }
  })
})
