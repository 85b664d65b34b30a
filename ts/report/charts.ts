/**
 * The report's charts as Vega-Lite specs, built from runs. Each builder returns null when the
 * runs hold nothing to draw, so the page shows only charts with data.
 */
import type { TopLevelSpec } from 'vega-lite'

import type { GradientFlowRecord, StepRecord } from './log'
import type { Run } from './runs'

export interface ChartDefinition {
  /** Stable id: the figure's `id` is `chart-<id>`. */
  id: string
  title: string
  /** One or two sentences on how to read the chart. */
  caption: string
  spec: TopLevelSpec
}

export interface ChartSection {
  id: string
  heading: string
  charts: ChartDefinition[]
}

const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif'
const INK = '#334155'
const MUTED = '#64748b'
const CLIP_RED = '#d62728'
const WIDE = 760
const PANEL = 360

const CONFIG = {
  font: FONT,
  background: 'white',
  padding: 8,
  view: { stroke: '#e2e8f0' },
  axis: {
    labelColor: MUTED,
    titleColor: INK,
    titleFontWeight: 500,
    gridColor: '#eef2f6',
    domainColor: '#94a3b8',
    tickColor: '#94a3b8',
    labelFontSize: 11,
    titleFontSize: 12,
  },
  legend: { labelColor: INK, titleColor: INK, titleFontWeight: 500, labelFontSize: 11, orient: 'top', labelLimit: 280 },
  header: { labelColor: INK, labelFontSize: 13, labelFontWeight: 600, titleColor: INK },
  range: { category: { scheme: 'tableau10' } },
} as const

/**
 * Log axes span many decades: 1e-7, not 0.0000001; but 0.01, not 1e-2. `datum.label` is Vega's
 * own label, empty for the minor ticks it leaves unlabelled.
 */
const LOG_AXIS = {
  format: '~g',
  labelExpr: "datum.value >= 0.001 || datum.label === '' ? datum.label : format(datum.value, '.0e')",
} as const

/** Legend of a strokeDash channel: dashed strokes (without a fill colour Vega-Lite hides their stroke). */
const DASH_LEGEND = {
  symbolType: 'stroke',
  symbolStrokeColor: INK,
  symbolFillColor: INK,
  symbolStrokeWidth: 2,
  symbolSize: 400,
} as const

function topLevel(spec: Record<string, unknown>): TopLevelSpec {
  return { config: CONFIG, ...spec } as TopLevelSpec
}

/** Log when every value is positive and they span two decades or more (losses and learning rates often do). */
export function valueScale(values: readonly number[]): 'log' | 'linear' {
  if (values.length === 0 || values.some((v) => v <= 0)) return 'linear'
  const low = values.reduce((a, b) => Math.min(a, b))
  const high = values.reduce((a, b) => Math.max(a, b))
  return high / low >= 100 ? 'log' : 'linear'
}

/** Scale and axis of a y encoding whose scale `valueScale` picks. */
function autoScaled(values: readonly number[]) {
  return valueScale(values) === 'log' ? { scale: { type: 'log' }, axis: LOG_AXIS } : { scale: { type: 'linear' } }
}

function isPresent(value: number | null | undefined): value is number {
  return value !== null && value !== undefined && Number.isFinite(value)
}

// ---------------------------------------------------------------------------------------------
// Steps, thinned for long runs

/** At most this many points per run in a per-step chart: more add bytes, not information, at 760 px. */
export const MAX_POINTS_PER_RUN = 1000

/** A step, or a group of consecutive steps when the run has more than `MAX_POINTS_PER_RUN`. */
export interface StepPoint {
  run: string
  /** The last step of the group. */
  step: number
  /** Mean of the group's finite losses. */
  loss: number | null
  /** The largest finite pre-clip norm of the group: a spike must survive thinning. */
  gradNorm: number | null
  clipThreshold: number | null
  /** How many steps of the group were clipped. */
  clipped: number
  learningRate: number
}

/** `steps` in groups of `ceil(n / maxPoints)` consecutive steps (groups of one when they fit). */
export function stepPoints(run: string, steps: readonly StepRecord[], maxPoints = MAX_POINTS_PER_RUN): StepPoint[] {
  const size = Math.max(1, Math.ceil(steps.length / maxPoints))
  const points: StepPoint[] = []
  for (let start = 0; start < steps.length; start += size) {
    const group = steps.slice(start, start + size)
    const last = group[group.length - 1]
    const losses = group.map((s) => s.loss).filter(isPresent)
    const norms = group.map((s) => s.gradNorm).filter(isPresent)
    points.push({
      run,
      step: last.step,
      loss: losses.length === 0 ? null : losses.reduce((a, b) => a + b) / losses.length,
      gradNorm: norms.length === 0 ? null : norms.reduce((a, b) => Math.max(a, b)),
      clipThreshold: last.clipThreshold,
      clipped: group.filter((s) => s.clipped).length,
      learningRate: last.learningRate,
    })
  }
  return points
}

function thinningNote(runs: readonly Run[]): string {
  const longest = Math.max(0, ...runs.map((r) => r.steps.length))
  const size = Math.ceil(longest / MAX_POINTS_PER_RUN)
  return size > 1 ? ` Long runs are drawn in groups of up to ${size} consecutive steps.` : ''
}

// ---------------------------------------------------------------------------------------------
// Training: loss, learning rate, gradient norm

const STEP_AXIS = { field: 'step', type: 'quantitative', title: 'step' } as const

export function lossChart(runs: readonly Run[]): ChartDefinition | null {
  const perStep = runs.flatMap((run) =>
    stepPoints(run.label, run.steps).flatMap((p) =>
      p.loss === null ? [] : [{ run: p.run, step: p.step, loss: p.loss }],
    ),
  )
  const perEpoch = runs.flatMap((run) =>
    run.epochs.flatMap((e) => [
      ...(isPresent(e.loss)
        ? [{ run: run.label, step: e.step, epoch: e.epoch, series: 'training (epoch)', loss: e.loss }]
        : []),
      ...(isPresent(e.validationLoss)
        ? [{ run: run.label, step: e.step, epoch: e.epoch, series: 'validation', loss: e.validationLoss }]
        : []),
    ]),
  )
  if (perStep.length === 0 && perEpoch.length === 0) return null
  const y = {
    field: 'loss',
    type: 'quantitative',
    title: 'loss',
    ...autoScaled([...perStep, ...perEpoch].map((r) => r.loss)),
  }
  // The per-step layer is faint; the legend should not be.
  const color = { field: 'run', type: 'nominal', title: 'run', legend: { symbolOpacity: 1 } }
  return {
    id: 'loss',
    title: 'Loss',
    caption:
      'Thin lines: training loss at every step. Lines with points: mean training loss of each epoch and the ' +
      `validation loss, drawn at the step where the epoch ended.${thinningNote(runs)}`,
    spec: topLevel({
      width: WIDE,
      height: 280,
      layer: [
        {
          data: { values: perStep },
          mark: { type: 'line', strokeWidth: 1, opacity: 0.45 },
          encoding: { x: STEP_AXIS, y, color },
        },
        {
          data: { values: perEpoch },
          mark: { type: 'line', strokeWidth: 2, point: true },
          encoding: {
            x: STEP_AXIS,
            y,
            color,
            strokeDash: { field: 'series', type: 'nominal', title: 'per epoch', legend: DASH_LEGEND },
          },
        },
      ],
    }),
  }
}

export function learningRateChart(runs: readonly Run[]): ChartDefinition | null {
  const rows = runs.flatMap((run) =>
    stepPoints(run.label, run.steps).map((p) => ({ run: p.run, step: p.step, learningRate: p.learningRate })),
  )
  if (rows.length === 0) return null
  return {
    id: 'learning-rate',
    title: 'Learning rate',
    caption: 'The learning rate the optimizer used at each step, after the schedule.',
    spec: topLevel({
      width: WIDE,
      height: 160,
      data: { values: rows },
      mark: { type: 'line', strokeWidth: 1.5, interpolate: 'step-after' },
      encoding: {
        x: STEP_AXIS,
        y: {
          field: 'learningRate',
          type: 'quantitative',
          title: 'learning rate',
          ...autoScaled(rows.map((r) => r.learningRate)),
        },
        color: { field: 'run', type: 'nominal', title: 'run' },
      },
    }),
  }
}

const NORM_SERIES = 'gradient norm (before clipping)'
const THRESHOLD_SERIES = 'clipping threshold'
const CLIPPED_SERIES = 'clipped step'

export function gradNormChart(runs: readonly Run[]): ChartDefinition | null {
  const rows = runs.flatMap((run) =>
    stepPoints(run.label, run.steps).flatMap((p) => {
      const drawn = p.gradNorm !== null && p.gradNorm > 0
      return [
        ...(drawn ? [{ run: p.run, step: p.step, series: NORM_SERIES, value: p.gradNorm }] : []),
        ...(p.clipThreshold !== null && p.clipThreshold > 0
          ? [{ run: p.run, step: p.step, series: THRESHOLD_SERIES, value: p.clipThreshold }]
          : []),
        ...(drawn && p.clipped > 0 ? [{ run: p.run, step: p.step, series: CLIPPED_SERIES, value: p.gradNorm }] : []),
      ]
    }),
  )
  if (rows.length === 0) return null
  const color = {
    field: 'series',
    type: 'nominal',
    title: null,
    scale: { domain: [NORM_SERIES, THRESHOLD_SERIES, CLIPPED_SERIES], range: ['#4c78a8', CLIP_RED, CLIP_RED] },
  }
  const x = STEP_AXIS
  const y = { field: 'value', type: 'quantitative', title: '‖g‖ (log scale)', scale: { type: 'log' }, axis: LOG_AXIS }
  return {
    id: 'grad-norm',
    title: 'Gradient norm before clipping',
    caption:
      'Global L2 norm of the gradient at each step, before clipping (SPEC §3), on a log scale. The dashed red line ' +
      `is the clipping threshold; red points mark the steps whose gradient was scaled down to it.${thinningNote(runs)}`,
    spec: topLevel({
      data: { values: rows },
      facet: {
        row: {
          field: 'run',
          type: 'nominal',
          title: null,
          header: { labelOrient: 'top', labelAngle: 0, labelAnchor: 'start' },
        },
      },
      spec: {
        width: WIDE,
        height: 170,
        layer: [
          {
            transform: [{ filter: `datum.series !== '${CLIPPED_SERIES}'` }],
            mark: { type: 'line', strokeWidth: 1.2 },
            encoding: {
              x,
              y,
              color,
              strokeDash: {
                field: 'series',
                type: 'nominal',
                legend: null,
                scale: {
                  domain: [NORM_SERIES, THRESHOLD_SERIES],
                  range: [
                    [1, 0],
                    [6, 4],
                  ],
                },
              },
            },
          },
          {
            transform: [{ filter: `datum.series === '${CLIPPED_SERIES}'` }],
            mark: { type: 'point', filled: true, size: 22, opacity: 0.9 },
            encoding: { x, y, color },
          },
        ],
      },
    }),
  }
}

// ---------------------------------------------------------------------------------------------
// Gradient flow (SPEC §2)

/** The measurements of one recurrent layer of one run, in log order (training progress). */
interface FlowSeries {
  /** The model, with its run's label when they differ: `LSTM`, `forget bias 1 (LSTM)`. */
  model: string
  /** The facet: the model and the quantity its norms measure, `LSTM: ‖∂J/∂c(k)‖`. */
  panel: string
  layer: string
  records: GradientFlowRecord[]
}

function flowSeries(runs: readonly Run[]): FlowSeries[] {
  const series = new Map<string, FlowSeries>()
  for (const run of runs) {
    for (const record of run.gradientFlow) {
      const model = run.label === record.model ? record.model : `${run.label} (${record.model})`
      const panel = `${model}: ‖∂J/∂${record.quantity}(k)‖`
      const key = JSON.stringify([panel, record.layer])
      const entry = series.get(key) ?? { model, panel, layer: record.layer, records: [] }
      entry.records.push(record)
      series.set(key, entry)
    }
  }
  return [...series.values()]
}

/** A norm at a distance from the loss: `distance = T − 1 − k` steps back from the last step. */
export interface FlowPoint {
  distance: number
  norm: number
}

/** The norms of a record by distance from the last step; zero and non-finite norms have no place on a log scale. */
export function flowPoints(record: GradientFlowRecord): FlowPoint[] {
  const last = record.norms.length - 1
  return record.norms.flatMap((norm, k) => (norm !== null && norm > 0 ? [{ distance: last - k, norm }] : []))
}

const FLOW_Y = {
  field: 'norm',
  type: 'quantitative',
  title: 'gradient norm (log scale)',
  scale: { type: 'log' },
  axis: LOG_AXIS,
} as const
const FLOW_X_TITLE = 'distance from the loss: T − 1 − k (steps)'

export function gradientFlowChart(runs: readonly Run[]): ChartDefinition | null {
  const series = flowSeries(runs)
  const rows = series.flatMap(({ panel, layer, records }) => {
    const ends = records.length === 1 ? [records[0]] : [records[0], records[records.length - 1]]
    return ends.flatMap((record, i) =>
      flowPoints(record).map((p) => ({
        panel,
        layer,
        measured: `${i === 0 ? 'first' : 'last'} measurement`,
        step: record.step,
        ...p,
      })),
    )
  })
  if (rows.length === 0) return null
  const panels = [...new Set(series.map((s) => s.panel))]
  const steps = series.map(
    ({ model, layer, records }) =>
      `${model} ${layer}: step ${[...new Set([records[0].step, records[records.length - 1].step])].join(' and ')}`,
  )
  return {
    id: 'gradient-flow',
    title: 'Gradient flow: LSTM, GRU and simple RNN',
    caption:
      'How much of the loss’s gradient reaches each time step k, against the distance from the loss, on a log ' +
      'scale. In the simple RNN each step back multiplies the error by Wᵀ·diag(g′(a)), so it falls (or grows) ' +
      'exponentially: a straight sloped line here. In the LSTM the factor ∂c(t)/∂c(t−1) is dominated by the ' +
      'forget gate, which the network learns (SPEC §2); in the GRU, h(t) = (1 − z)·n + z·h(t−1) gives the ' +
      `update gate z that role. Measured at ${steps.join('; ')}.`,
    spec: topLevel({
      data: { values: rows },
      facet: { column: { field: 'panel', type: 'nominal', title: null, sort: panels } },
      spec: {
        width: PANEL,
        height: 260,
        mark: { type: 'line', strokeWidth: 1.8, point: { size: 14 } },
        encoding: {
          x: { field: 'distance', type: 'quantitative', title: FLOW_X_TITLE },
          y: FLOW_Y,
          color: { field: 'layer', type: 'nominal', title: 'layer' },
          strokeDash: {
            field: 'measured',
            type: 'nominal',
            title: null,
            sort: ['last measurement', 'first measurement'],
            legend: DASH_LEGEND,
          },
        },
      },
    }),
  }
}

/** The heat map needs at least two measurements of one layer, or there is no training progress to show. */
export function gradientFlowHeatmap(runs: readonly Run[]): ChartDefinition | null {
  const series = flowSeries(runs).filter((s) => s.records.length >= 2)
  if (series.length === 0) return null
  // One facet per layer; the layer is named only where a model has more than one.
  const facetOf = ({ panel, layer }: FlowSeries) =>
    series.filter((s) => s.panel === panel).length > 1 ? `${panel}, ${layer}` : panel
  const rows = series.flatMap((s) =>
    s.records.flatMap((record, i, records) => {
      // Each measurement covers the steps up to the next one; the last repeats the gap before it.
      const next = records[i + 1]?.step ?? record.step + (record.step - records[i - 1].step)
      return flowPoints(record).map((p) => ({
        facet: facetOf(s),
        distance: p.distance,
        distanceEnd: p.distance + 1,
        step: record.step,
        stepEnd: next,
        norm: p.norm,
      }))
    }),
  )
  return {
    id: 'gradient-flow-heatmap',
    title: 'Gradient flow during training',
    caption:
      'The same norms for every measurement: distance from the loss across, training step down, colour on a log ' +
      'scale shared by all panels. Dark columns far from the loss are gradient that never arrives.',
    spec: topLevel({
      data: { values: rows },
      facet: { field: 'facet', type: 'nominal', title: null, sort: series.map(facetOf) },
      columns: 2,
      spec: {
        width: PANEL,
        height: 220,
        mark: { type: 'rect' },
        encoding: {
          x: { field: 'distance', type: 'quantitative', title: FLOW_X_TITLE },
          x2: { field: 'distanceEnd' },
          y: {
            field: 'step',
            type: 'quantitative',
            title: 'training step',
            scale: { reverse: true, nice: false, zero: false },
          },
          y2: { field: 'stepEnd' },
          color: {
            field: 'norm',
            type: 'quantitative',
            title: 'norm',
            scale: { type: 'log', scheme: 'viridis', nice: true },
            legend: LOG_AXIS,
          },
        },
      },
    }),
  }
}

// ---------------------------------------------------------------------------------------------
// Metrics of each epoch

export function metricsChart(runs: readonly Run[]): ChartDefinition | null {
  const rows = runs.flatMap((run) =>
    run.epochs.flatMap((e) =>
      Object.entries(e.metrics ?? {}).flatMap(([metric, value]) =>
        isPresent(value) ? [{ run: run.label, epoch: e.epoch, metric, value }] : [],
      ),
    ),
  )
  if (rows.length === 0) return null
  return {
    id: 'metrics',
    title: 'Metrics per epoch',
    caption: 'The metrics the run logged after each epoch.',
    spec: topLevel({
      data: { values: rows },
      facet: { field: 'metric', type: 'nominal', title: null },
      columns: 3,
      resolve: { scale: { y: 'independent' } },
      spec: {
        width: 230,
        height: 150,
        mark: { type: 'line', point: true, strokeWidth: 1.6 },
        encoding: {
          x: { field: 'epoch', type: 'quantitative', title: 'epoch', axis: { tickMinStep: 1 } },
          y: { field: 'value', type: 'quantitative', title: null, scale: { zero: false } },
          color: { field: 'run', type: 'nominal', title: 'run' },
        },
      },
    }),
  }
}

// ---------------------------------------------------------------------------------------------
// Visual question answering

export function vqaAccuracyChart(runs: readonly Run[]): ChartDefinition | null {
  const evaluated = runs.flatMap((run) => (run.vqa.length === 0 ? [] : [{ run, record: run.vqa[run.vqa.length - 1] }]))
  if (evaluated.length === 0) return null
  const rows = evaluated.flatMap(({ run, record }) =>
    Object.entries(record.accuracyByQuestionType).map(([questionType, accuracy]) => ({
      run: run.label,
      questionType,
      accuracy,
    })),
  )
  if (rows.length === 0) return null
  const overall = evaluated.map(
    ({ run, record }) => `${run.label} ${(100 * record.accuracy).toFixed(2)}% on ${record.split} (step ${record.step})`,
  )
  return {
    id: 'vqa-accuracy',
    title: 'VQA accuracy per question type',
    caption:
      'VQA accuracy, min(humans who gave the answer / 3, 1) averaged over questions, for each question type ' +
      `at the last evaluation. Overall: ${overall.join('; ')}.`,
    spec: topLevel({
      width: WIDE - 200,
      height: { step: evaluated.length > 1 ? 9 : 16 },
      data: { values: rows },
      mark: { type: 'bar', cornerRadiusEnd: 2 },
      encoding: {
        y: {
          field: 'questionType',
          type: 'nominal',
          title: null,
          sort: { op: 'mean', field: 'accuracy', order: 'descending' },
          axis: { labelLimit: 200 },
        },
        x: {
          field: 'accuracy',
          type: 'quantitative',
          title: 'VQA accuracy',
          scale: { domain: [0, 1] },
          axis: { format: '%' },
        },
        color: { field: 'run', type: 'nominal', title: 'run' },
        ...(evaluated.length > 1 ? { yOffset: { field: 'run', type: 'nominal' } } : {}),
      },
    }),
  }
}

/** One confusion chart per evaluated run: its answer set is its own. */
export function confusionCharts(runs: readonly Run[]): ChartDefinition[] {
  return runs.flatMap((run, index) => {
    const record = run.vqa[run.vqa.length - 1]
    if (record === undefined) return []
    const { answers, counts } = record.confusion
    const rows = answers.flatMap((truth, i) => {
      const total = counts[i].reduce((a, b) => a + b, 0)
      return answers.map((predicted, j) => ({
        truth,
        predicted,
        count: counts[i][j],
        share: total === 0 ? 0 : counts[i][j] / total,
      }))
    })
    const axis = (field: string, title: string) => ({
      field,
      type: 'nominal',
      title,
      sort: answers,
      axis: { labelLimit: 140 },
    })
    return [
      {
        id: `confusion-${index}`,
        title: `Top answers: reference against prediction — ${run.label}`,
        caption:
          `The ${answers.length} most frequent reference answers of ${record.split}; each row counts what the model ` +
          'answered to questions with that reference answer (colour: share of the row). The diagonal is right.',
        spec: topLevel({
          data: { values: rows },
          width: { step: 34 },
          height: { step: 26 },
          encoding: {
            x: { ...axis('predicted', 'predicted answer'), axis: { labelAngle: -40, labelLimit: 140 } },
            y: axis('truth', 'reference answer'),
          },
          layer: [
            {
              mark: { type: 'rect' },
              encoding: {
                color: {
                  field: 'share',
                  type: 'quantitative',
                  title: 'share of row',
                  scale: { scheme: 'blues', domain: [0, 1] },
                },
              },
            },
            {
              mark: { type: 'text', fontSize: 10 },
              encoding: {
                text: { field: 'count', type: 'quantitative' },
                color: { condition: { test: 'datum.share > 0.5', value: 'white' }, value: INK },
              },
            },
          ],
        }),
      },
    ]
  })
}

// ---------------------------------------------------------------------------------------------

/** Every chart the runs have data for, grouped as the page shows them. Empty sections are left out. */
export function reportSections(runs: readonly Run[]): ChartSection[] {
  const present = (charts: (ChartDefinition | null)[]) => charts.filter((c): c is ChartDefinition => c !== null)
  const sections: ChartSection[] = [
    {
      id: 'training',
      heading: 'Training',
      charts: present([lossChart(runs), learningRateChart(runs), gradNormChart(runs), metricsChart(runs)]),
    },
    {
      id: 'gradient-flow',
      heading: 'Gradient flow',
      charts: present([gradientFlowChart(runs), gradientFlowHeatmap(runs)]),
    },
    {
      id: 'vqa',
      heading: 'Visual question answering',
      charts: present([vqaAccuracyChart(runs), ...confusionCharts(runs)]),
    },
  ]
  return sections.filter((s) => s.charts.length > 0)
}
