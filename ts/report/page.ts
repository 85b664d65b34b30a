/**
 * The report page: one HTML file with its CSS and the charts' SVG inline, no
 * scripts, and a Content-Security-Policy that forbids loading anything, so
 * opening it never touches the network.
 */
import type { RunSummary } from './runs'

export interface RenderedFigure {
  id: string
  title: string
  caption: string
  svg: string
}

export interface RenderedSection {
  id: string
  heading: string
  figures: RenderedFigure[]
}

export interface PageContent {
  title: string
  /** ISO 8601. */
  generatedAt: string
  sources: string[]
  summaries: RunSummary[]
  sections: RenderedSection[]
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c])
}

const CSS = `
:root { color-scheme: light; --ink: #1e293b; --muted: #64748b; --line: #e2e8f0; --panel: #ffffff; --page: #f8fafc; --accent: #2563eb; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--page); color: var(--ink);
  font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header, main, footer { max-width: 1120px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 32px; padding-bottom: 8px; }
h1 { font-size: 26px; margin: 0 0 4px; letter-spacing: -0.01em; }
h2 { font-size: 19px; margin: 36px 0 12px; padding-bottom: 6px; border-bottom: 1px solid var(--line); }
h3 { font-size: 15px; margin: 0 0 4px; }
.meta { color: var(--muted); font-size: 13px; margin: 0; }
nav { margin: 12px 0 0; font-size: 14px; }
nav a { color: var(--accent); text-decoration: none; margin-right: 16px; }
table { border-collapse: collapse; width: 100%; background: var(--panel); border: 1px solid var(--line); border-radius: 8px; font-size: 14px; }
th, td { padding: 7px 10px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
thead th { color: var(--muted); font-weight: 500; font-size: 13px; white-space: normal; vertical-align: bottom; }
.table-scroll { overflow-x: auto; }
tbody tr:last-child td { border-bottom: none; }
figure.chart { margin: 0 0 20px; padding: 16px 18px 12px; background: var(--panel); border: 1px solid var(--line); border-radius: 10px; overflow-x: auto; }
figure.chart svg { display: block; max-width: 100%; height: auto; margin: 8px 0 4px; }
figcaption { color: var(--muted); font-size: 13.5px; max-width: 860px; }
footer { color: var(--muted); font-size: 12.5px; padding-top: 24px; padding-bottom: 40px; }
code { font: 12.5px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
`

function formatNumber(value: number | undefined, digits = 4): string {
  if (value === undefined) return '—'
  if (value !== 0 && (Math.abs(value) < 1e-3 || Math.abs(value) >= 1e6)) return value.toExponential(2)
  return Number(value.toPrecision(digits)).toString()
}

function formatPercent(value: number | undefined): string {
  return value === undefined ? '—' : `${(100 * value).toFixed(1)}%`
}

const SUMMARY_COLUMNS: readonly [heading: string, cell: (s: RunSummary) => string][] = [
  ['run', (s) => escapeHtml(s.label)],
  ['task', (s) => escapeHtml(s.task ?? '—')],
  ['steps', (s) => String(s.steps)],
  ['epochs', (s) => String(s.epochs)],
  ['final loss', (s) => formatNumber(s.finalLoss)],
  [
    'best validation loss',
    (s) =>
      s.bestValidationLoss === undefined
        ? '—'
        : `${formatNumber(s.bestValidationLoss.value)} (epoch ${s.bestValidationLoss.epoch})`,
  ],
  ['steps clipped', (s) => formatPercent(s.clippedFraction)],
  ['steps skipped', (s) => String(s.skippedSteps)],
  ['examples/s (median)', (s) => formatNumber(s.medianExamplesPerSecond, 3)],
  ['time', (s) => (s.seconds === undefined ? '—' : `${formatNumber(s.seconds, 3)} s`)],
  ['VQA accuracy', (s) => formatPercent(s.vqaAccuracy)],
]

function summaryTable(summaries: readonly RunSummary[]): string {
  // A column that is empty for every run says nothing.
  const columns = SUMMARY_COLUMNS.filter(([, cell], i) => i === 0 || summaries.some((s) => cell(s) !== '—'))
  const head = columns.map(([heading]) => `<th scope="col">${heading}</th>`).join('')
  const body = summaries.map((s) => `<tr>${columns.map(([, cell]) => `<td>${cell(s)}</td>`).join('')}</tr>`).join('\n')
  return `<div class="table-scroll"><table class="summary"><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table></div>`
}

function figure({ id, title, caption, svg }: RenderedFigure): string {
  return `<figure class="chart" id="chart-${escapeHtml(id)}" data-chart="${escapeHtml(id)}">
<h3>${escapeHtml(title)}</h3>
${svg}
<figcaption>${escapeHtml(caption)}</figcaption>
</figure>`
}

export function renderPage(content: PageContent): string {
  const nav = content.sections.map((s) => `<a href="#${s.id}">${escapeHtml(s.heading)}</a>`).join('')
  const sections = content.sections
    .map(
      (s) =>
        `<section id="${s.id}">\n<h2>${escapeHtml(s.heading)}</h2>\n${s.figures.map(figure).join('\n')}\n</section>`,
    )
    .join('\n')
  const sources = content.sources.map((s) => `<code>${escapeHtml(s)}</code>`).join(', ')
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>${escapeHtml(content.title)}</title>
<style>${CSS}</style>
</head>
<body>
<header>
<h1>${escapeHtml(content.title)}</h1>
<p class="meta">Generated ${escapeHtml(content.generatedAt)} by odyssey-rnn from ${sources}</p>
<nav><a href="#runs">Runs</a>${nav}</nav>
</header>
<main>
<section id="runs">
<h2>Runs</h2>
${summaryTable(content.summaries)}
</section>
${sections}
</main>
<footer>Charts: Vega-Lite, rendered to SVG when the report was written. This file loads nothing from the network.</footer>
</body>
</html>
`
}
