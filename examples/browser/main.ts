/**
 * The page: trains the adding problem's LSTM and simple RNN side by side with adding.ts (the
 * README's code), draws the loss and the gradient flow with the report's Vega-Lite charts,
 * and offers each trained model's weights as a safetensors download (a checkpoint's
 * `model.safetensors`, which `Model.load` reads).
 * What happened is also kept in `window.odysseyExample` for __test__/browser-example.test.ts.
 */
import { ADDING_BASELINE_MSE, type Model } from 'odyssey-rnn'
import { parse, View } from 'vega'
import { compile } from 'vega-lite'

import { gradientFlowChart, lossChart, type ChartDefinition } from '../../ts/report/charts'
import { logGradientFlow, runLogCallbacks, type RunRecordSink } from '../../ts/report/fit-log'
import type { RunLogRecord } from '../../ts/report/log'
import { collectRuns } from '../../ts/report/runs'
import { ADDING_EPOCHS, ADDING_KINDS, addingData, addingModel, fitAdding, type AddingKind } from './adding'
import { loadWebAssembly } from './shims/native'

interface KindResult {
  valLoss: number
  /** The validation set's predictions, [200, 1] flattened. */
  predictions: number[]
  download: string
}

interface ExampleState {
  state: 'training' | 'done' | 'failed'
  error?: string
  epochs: number
  baseline: number
  /** Wall-clock seconds both trainings took, side by side. */
  seconds?: number
  results: Partial<Record<AddingKind, KindResult>>
}

declare global {
  interface Window {
    odysseyExample: ExampleState
  }
}

const example: ExampleState = { state: 'training', epochs: ADDING_EPOCHS, baseline: ADDING_BASELINE_MSE, results: {} }
window.odysseyExample = example
const status = document.getElementById('status') as HTMLElement

/** A run log kept in memory: the records `RunLogger` would write to a file. */
class RunRecords implements RunRecordSink {
  readonly records: RunLogRecord[]
  constructor(label: AddingKind) {
    this.records = [{ type: 'run', format: 'odyssey-run-log', version: 1, label, task: 'adding problem, T = 20' }]
  }
  step(record: Parameters<RunRecordSink['step']>[0]): void {
    this.records.push({ type: 'step', ...record })
  }
  epoch(record: Parameters<RunRecordSink['epoch']>[0]): void {
    this.records.push({ type: 'epoch', ...record })
  }
  gradientFlow(record: Parameters<RunRecordSink['gradientFlow']>[0]): void {
    this.records.push({ type: 'gradientFlow', ...record })
  }
}

const logs = new Map(ADDING_KINDS.map((kind) => [kind, new RunRecords(kind)]))
const views = new Map<string, View>()

/** Draws one chart into its figure, replacing the previous drawing. */
async function draw(chart: ChartDefinition | null): Promise<void> {
  if (chart === null) return
  const figure = document.getElementById(`chart-${chart.id}`) as HTMLElement
  ;(figure.querySelector('figcaption') as HTMLElement).textContent = `${chart.title}. ${chart.caption}`
  views.get(chart.id)?.finalize()
  const view = new View(parse(compile(chart.spec).spec), {
    renderer: 'svg',
    container: figure.querySelector('.view') as HTMLElement,
  })
  views.set(chart.id, view)
  await view.runAsync()
}

let drawing: Promise<void> = Promise.resolve()
/** Redraws the charts from every record so far, one drawing at a time (training goes on meanwhile). */
function redraw(): Promise<void> {
  drawing = drawing.then(async () => {
    const runs = collectRuns([...logs].map(([kind, log]) => ({ source: kind, records: log.records })))
    await draw(lossChart(runs))
    await draw(gradientFlowChart(runs))
  })
  return drawing
}

function showEpoch(kind: AddingKind, epoch: number, valLoss: number | undefined): void {
  const body = document.querySelector('#progress tbody') as HTMLElement
  let row = body.querySelector<HTMLTableRowElement>(`tr[data-epoch="${epoch}"]`)
  if (row === null) {
    row = document.createElement('tr')
    row.dataset.epoch = String(epoch)
    row.innerHTML = `<td>${epoch + 1}</td><td></td><td></td>`
    body.append(row)
  }
  row.cells[1 + ADDING_KINDS.indexOf(kind)].textContent = valLoss?.toFixed(4) ?? ''
}

function offerDownload(kind: AddingKind, model: Model): string {
  const name = `adding-${kind === 'LSTM' ? 'lstm' : 'simple-rnn'}.safetensors`
  const link = document.createElement('a')
  // A fresh array on an ArrayBuffer (never a SharedArrayBuffer), which is what Blob takes.
  const bytes = model.toSafetensors() as Uint8Array<ArrayBuffer>
  link.href = URL.createObjectURL(new Blob([bytes], { type: 'application/octet-stream' }))
  link.download = name
  link.textContent = `${kind} weights (${name})`
  document.getElementById('downloads')?.append(link)
  return name
}

async function train(kind: AddingKind): Promise<void> {
  const data = addingData()
  const model = addingModel(kind)
  const log = logs.get(kind) as RunRecords
  logGradientFlow(log, model, data.validation, 0)
  const history = await fitAdding(model, data, {
    callbacks: [
      runLogCallbacks(log, model),
      {
        onEpochEnd: (e) => {
          showEpoch(kind, e.epoch, e.valLoss)
          void redraw()
        },
      },
    ],
  })
  logGradientFlow(log, model, data.validation, ADDING_EPOCHS - 1)
  const { data: predictions } = await model.predict(data.validation.x)
  example.results[kind] = {
    valLoss: history.valLoss[history.valLoss.length - 1],
    predictions: Array.from(predictions),
    download: offerDownload(kind, model),
  }
}

async function main(): Promise<void> {
  await loadWebAssembly()
  status.textContent = `Training both models for ${ADDING_EPOCHS} epochs…`
  const start = performance.now()
  await Promise.all(ADDING_KINDS.map(train))
  example.seconds = (performance.now() - start) / 1000
  await redraw()
  const mse = ADDING_KINDS.map((kind) => `${kind} ${example.results[kind]?.valLoss.toFixed(4)}`).join(', ')
  status.textContent =
    `Trained in ${example.seconds.toFixed(1)} s: validation MSE ${mse} ` +
    `(baseline ${ADDING_BASELINE_MSE.toFixed(3)}).`
  example.state = 'done'
}

main().catch((error: unknown) => {
  example.state = 'failed'
  example.error = error instanceof Error ? `${error.name}: ${error.message}` : String(error)
  status.textContent = `Failed: ${example.error}`
  status.classList.add('failed')
})
