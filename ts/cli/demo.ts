/**
 * `npm run demo`: an LSTM, a GRU and a simple RNN learn the adding problem side
 * by side (SPEC §2). The fits run at once, each on its own worker thread, while
 * this thread draws their progress; the gated models' loss falls far below the
 * constant-prediction baseline (≈ 0.167), the simple RNN's stays near it.
 * After every epoch the gradient flow of each is measured: how much of the
 * loss's gradient reaches each time step back.
 *
 * `runAddingDemo` is the reusable part; `main` chains the VQA demo (`vqa-demo.ts`) and the
 * sequence-to-sequence demo (`demo-seq2seq.ts`) after it and ends by writing the HTML report of
 * all runs (`demo-output/report.html`).
 */
import { join, resolve } from 'node:path'

import { ADDING_BASELINE_MSE, addingProblem } from '../data'
import { ReportDependencyError } from '../report/errors'
import { GradNormHistory, logGradientFlow, RunLogger, runLogCallbacks, runLogPath, writeReport } from '../report'
import { dense, gru, lstm, simpleRnn, type Layer } from '../model/layers'
import { sequential, type GradientFlow, type Model } from '../model'
import type { BatchLog, EpochLog, FitCallbacks } from '../model/fit'
import { runSeq2seqDemo } from './demo-seq2seq'
import { runVqaDemo } from './vqa-demo'

export interface AddingDemoOptions {
  /** Sequence length. Default 50. */
  time?: number
  /** Training sequences. Default 3000. */
  examples?: number
  epochs?: number
  hiddenSize?: number
  seed?: number
  /** Where the report goes. Default `process.stdout`. */
  out?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number }
  /**
   * When given, each model's run log (steps, epochs, the gradient flow before training and
   * after every epoch) is written to `<runLogDir>/adding-<model>/log.jsonl`.
   */
  runLogDir?: string
}

export interface AddingDemoResult {
  /** Validation MSE after every epoch. */
  lstm: number[]
  gru: number[]
  rnn: number[]
  baseline: number
  updates: number
  seconds: number
  /** The run logs written (empty without `runLogDir`). */
  runLogs: string[]
}

interface Contender {
  /** In the terminal's tables. */
  label: string
  /** In the run log and the report; its directory is `adding-<runLabel, kebab-case>`. */
  runLabel: string
  layer: Layer
  batch?: BatchLog
  epochs: EpochLog[]
  gradNorms: GradNormHistory
}

function contender(label: string, runLabel: string, layer: Layer): Contender {
  return { label, runLabel, layer, epochs: [], gradNorms: new GradNormHistory() }
}

/** Columns of each model's gradient-norm sparkline in the progress line. */
const SPARKLINE_WIDTH = 10

function progressLine(contenders: Contender[], epochs: number): string {
  return contenders
    .map(({ label, batch, gradNorms }) => {
      if (batch === undefined) return `${label}: starting`
      const position = `epoch ${batch.epoch + 1}/${epochs} (${String(batch.batch + 1).padStart(String(batch.batches).length)}/${batch.batches})`
      return `${label} ${position} loss ${batch.loss.toFixed(4)} ‖g‖ ${gradNorms.sparkline(SPARKLINE_WIDTH)}`
    })
    .join(' | ')
}

function epochRow(epoch: number, contenders: Contender[]): string {
  const cells = contenders.map(({ epochs }) => {
    const log = epochs[epoch]
    return log === undefined ? ''.padEnd(22) : `${log.loss.toFixed(4)} / ${log.valLoss!.toFixed(4)}`.padEnd(22)
  })
  return `  ${String(epoch + 1).padStart(5)}   ${cells.join('  ')}`
}

/**
 * Trains the three models on the same seeded data (`[examples, time, 2]`, target the sum of the two
 * marked values) and writes a live progress line, then the train / validation MSE of every epoch
 * side by side.
 */
export async function runAddingDemo(options: AddingDemoOptions = {}): Promise<AddingDemoResult> {
  const {
    time = 50,
    examples = 3000,
    epochs = 15,
    hiddenSize = 32,
    seed = 1,
    out = process.stdout,
    runLogDir,
  } = options
  const train = addingProblem({ n: examples, time, seed })
  const validationData = addingProblem({ n: 500, time, seed: seed + 1 })
  // The gradient flow is measured on a fixed batch the models never train on.
  const probe = addingProblem({ n: 64, time, seed: seed + 2 })
  const contenders = [
    contender('LSTM', 'LSTM', lstm({ hiddenSize, output: 'last', forgetBias: 1 })),
    contender('GRU', 'GRU', gru({ hiddenSize, output: 'last' })),
    contender('SimpleRNN', 'simple RNN', simpleRnn({ hiddenSize, output: 'last' })),
  ]
  out.write(`Adding problem, T = ${time}: ${examples} training sequences, 500 for validation.\n`)
  out.write(
    `Predicting the mean scores MSE ${ADDING_BASELINE_MSE.toFixed(3)}; below it a model remembers across up to ${time} steps.\n\n`,
  )
  let lastDrawn = 0
  const draw = (force = false) => {
    if (!out.isTTY || (!force && performance.now() - lastDrawn < 100)) return
    lastDrawn = performance.now()
    // A line longer than the terminal wraps, and `\r` would then redraw only its last part.
    out.write(`\r\x1b[2K${progressLine(contenders, epochs).slice(0, (out.columns ?? Infinity) - 1)}`)
  }
  const models = contenders.map((c) =>
    sequential({
      input: { kind: 'sequence', features: 2 },
      layers: [c.layer, dense({ units: 1 })],
      loss: 'mse',
      optimizer: { type: 'adam', learningRate: 1e-2 },
      clip: { globalNorm: 1 },
      seed,
    }),
  )
  const logs = runLogDir === undefined ? [] : contenders.map((c, k) => addingRunLog(runLogDir, c, models[k], time))
  // With logs, the flow of every model after every epoch; the last measurement is also the summary's.
  let flows: GradientFlow[][] = []
  const measureGradientFlow = (epoch: number) => {
    flows = logs.map((log, k) => logGradientFlow(log, models[k], probe, epoch))
  }
  const callbacksOf = (k: number): FitCallbacks => {
    const logged = logs[k] === undefined ? {} : runLogCallbacks(logs[k], models[k])
    return {
      onBatchEnd: (log, fit) => {
        contenders[k].batch = log
        contenders[k].gradNorms.add(log.gradNorm)
        logged.onBatchEnd?.(log, fit)
        draw()
      },
      onEpochEnd: (log, fit) => {
        contenders[k].epochs.push(log)
        logged.onEpochEnd?.(log, fit)
        if (!out.isTTY)
          out.write(
            `${contenders[k].label} epoch ${log.epoch + 1}/${epochs}: train ${log.loss.toFixed(4)}, validation ${log.valLoss!.toFixed(4)}\n`,
          )
      },
    }
  }
  const callbacks = models.map((_, k) => callbacksOf(k))
  const started = performance.now()
  measureGradientFlow(0)
  // One fit call per epoch (all models at once), so that the gradient flow is measured between epochs.
  for (let epoch = 0; epoch < epochs; epoch++) {
    await Promise.all(
      models.map((model, k) =>
        model.fit(train, {
          epochs: epoch + 1,
          initialEpoch: epoch,
          batchSize: 32,
          validationData,
          callbacks: callbacks[k],
        }),
      ),
    )
    measureGradientFlow(epoch)
  }
  const seconds = (performance.now() - started) / 1000
  logs.forEach((log) => {
    log.close()
  })
  draw(true)
  out.write(`\n\n  epoch   ${contenders.map((c) => `${c.label} train / val MSE`.padEnd(22)).join('  ')}\n`)
  for (let e = 0; e < epochs; e++) out.write(`${epochRow(e, contenders)}\n`)
  const [lstmLosses, gruLosses, rnnLosses] = contenders.map((c) => c.epochs.map((e) => e.valLoss!))
  const updates = models[0].stepCount
  out.write(`\n${updates} updates each in ${seconds.toFixed(1)} s (the ${contenders.length} models at once).\n`)
  const finals = contenders.map(({ label, epochs: logs }) => `${label} ${logs[logs.length - 1].valLoss!.toFixed(4)}`)
  out.write(`Validation MSE: ${finals.join(', ')} (baseline ${ADDING_BASELINE_MSE.toFixed(3)}).\n`)
  if (flows.length === 0) flows = models.map((model) => model.gradientFlow(probe))
  out.write(gradientFlowSummary(contenders, flows))
  models.forEach((m) => {
    m.dispose()
  })
  return {
    lstm: lstmLosses,
    gru: gruLosses,
    rnn: rnnLosses,
    baseline: ADDING_BASELINE_MSE,
    updates,
    seconds,
    runLogs: logs.map((log) => log.file),
  }
}

/**
 * The vanishing-gradient story in one line per model: the norm of the loss's gradient with
 * respect to the first step's state (‖∂J/∂c(0)‖ for the LSTM, ‖∂J/∂h(0)‖ for the GRU and the simple RNN)
 * as a fraction of that at the last step, from `flows` (per model, measured on the trained models).
 */
function gradientFlowSummary(contenders: readonly Contender[], flows: readonly GradientFlow[][]): string {
  const lines = flows.map(
    ([{ norms }], k) => `  ${contenders[k].label.padEnd(10)} ${(norms[0] / norms[norms.length - 1]).toExponential(1)}`,
  )
  return `Gradient norm at the first step as a fraction of the last (how much reaches back through time):\n${lines.join('\n')}\n`
}

function addingRunLog(dir: string, c: Contender, model: Model, time: number): RunLogger {
  return new RunLogger(runLogPath(join(dir, `adding-${c.runLabel.toLowerCase().replaceAll(' ', '-')}`)), {
    label: c.runLabel,
    task: `adding problem, T = ${time}`,
    config: { time, layers: model.graph.nodes, ...model.trainingSpec },
  })
}

/** Where `main` writes the run logs and the report, relative to the working directory. */
const DEMO_OUTPUT_DIR = 'demo-output'

export async function main(): Promise<void> {
  const runLogDir = resolve(DEMO_OUTPUT_DIR, 'runs')
  const adding = await runAddingDemo({ runLogDir })
  process.stdout.write('\n')
  const vqa = await runVqaDemo({ runLogDir })
  process.stdout.write('\n')
  const seq2seq = await runSeq2seqDemo({ runLogDir })
  await writeDemoReport(
    [...adding.runLogs, ...vqa.runLogs, ...seq2seq.runLogs],
    resolve(DEMO_OUTPUT_DIR, 'report.html'),
  )
}

/** Draws the report of the demo's runs and prints where it is (or why it could not be drawn). */
export async function writeDemoReport(
  runLogs: string[],
  file: string,
  out: NodeJS.WritableStream = process.stdout,
): Promise<void> {
  try {
    const { warnings } = await writeReport(runLogs, file, {
      title: 'odyssey-rnn demo: adding problem, VQA and digit reversal',
    })
    for (const warning of warnings) out.write(`report: ${warning}\n`)
    out.write(
      `\nReport (loss curves, gradient norms and clipping, gradient flow LSTM, GRU and simple RNN, VQA accuracy, seq2seq exact match): ${file}\n`,
    )
  } catch (error) {
    // The charting library is an optional peer dependency of the published package; the demo still did its work.
    if (!(error instanceof ReportDependencyError)) throw error
    out.write(`\nNo report drawn: ${error.message}\nThe run logs are in ${runLogs.map((f) => `\n  ${f}`).join('')}\n`)
  }
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error)
    process.exitCode = 1
  })
}
