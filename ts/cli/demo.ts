/**
 * `npm run demo`: an LSTM and a simple RNN learn the adding problem side by
 * side (SPEC §2). Both fits run at once, each on its own worker thread, while
 * this thread draws their progress; the LSTM's loss falls far below the
 * constant-prediction baseline (≈ 0.167), the simple RNN's stays near it.
 *
 * `runAddingDemo` is the reusable part; `main` chains the VQA demo (`vqa-demo.ts`) after it.
 */
import { ADDING_BASELINE_MSE, addingProblem } from '../data'
import { dense, lstm, simpleRnn, type Layer } from '../model/layers'
import { sequential } from '../model'
import type { BatchLog, EpochLog } from '../model/fit'
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
  out?: NodeJS.WritableStream & { isTTY?: boolean }
}

export interface AddingDemoResult {
  /** Validation MSE after every epoch. */
  lstm: number[]
  rnn: number[]
  baseline: number
  updates: number
  seconds: number
}

interface Contender {
  label: string
  layer: Layer
  batch?: BatchLog
  epochs: EpochLog[]
}

function contender(label: string, layer: Layer): Contender {
  return { label, layer, epochs: [] }
}

function progressLine(contenders: Contender[], epochs: number): string {
  return contenders
    .map(({ label, batch }) => {
      if (batch === undefined) return `${label}: starting`
      const position = `epoch ${batch.epoch + 1}/${epochs} batch ${String(batch.batch + 1).padStart(3)}/${batch.batches}`
      return `${label}: ${position} loss ${batch.loss.toFixed(4)} (${Math.round(batch.examplesPerSecond)} seq/s)`
    })
    .join('   ')
}

function epochRow(epoch: number, contenders: Contender[]): string {
  const cells = contenders.map(({ epochs }) => {
    const log = epochs[epoch]
    return log === undefined ? ''.padEnd(22) : `${log.loss.toFixed(4)} / ${log.valLoss!.toFixed(4)}`.padEnd(22)
  })
  return `  ${String(epoch + 1).padStart(5)}   ${cells.join('  ')}`
}

/**
 * Trains both models on the same seeded data (`[examples, time, 2]`, target the sum of the two
 * marked values) and writes a live progress line, then the train / validation MSE of every epoch
 * side by side.
 */
export async function runAddingDemo(options: AddingDemoOptions = {}): Promise<AddingDemoResult> {
  const { time = 50, examples = 3000, epochs = 15, hiddenSize = 32, seed = 1, out = process.stdout } = options
  const train = addingProblem({ n: examples, time, seed })
  const validationData = addingProblem({ n: 500, time, seed: seed + 1 })
  const contenders = [
    contender('LSTM', lstm({ hiddenSize, output: 'last', forgetBias: 1 })),
    contender('SimpleRNN', simpleRnn({ hiddenSize, output: 'last' })),
  ]
  out.write(`Adding problem, T = ${time}: ${examples} training sequences, 500 for validation.\n`)
  out.write(`Predicting the mean scores MSE ${ADDING_BASELINE_MSE.toFixed(3)}; below it a model remembers across up to ${time} steps.\n\n`)
  let lastDrawn = 0
  const draw = (force = false) => {
    if (!out.isTTY || (!force && performance.now() - lastDrawn < 100)) return
    lastDrawn = performance.now()
    out.write(`\r\x1b[2K${progressLine(contenders, epochs)}`)
  }
  const started = performance.now()
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
  await Promise.all(
    models.map((model, k) =>
      model.fit(train, {
        epochs,
        batchSize: 32,
        validationData,
        callbacks: {
          onBatchEnd: (log) => {
            contenders[k].batch = log
            draw()
          },
          onEpochEnd: (log) => {
            contenders[k].epochs.push(log)
            if (!out.isTTY) out.write(`${contenders[k].label} epoch ${log.epoch + 1}/${epochs}: train ${log.loss.toFixed(4)}, validation ${log.valLoss!.toFixed(4)}\n`)
          },
        },
      }),
    ),
  )
  const seconds = (performance.now() - started) / 1000
  draw(true)
  out.write(`\n\n  epoch   ${contenders.map((c) => `${c.label} train / val MSE`.padEnd(22)).join('  ')}\n`)
  for (let e = 0; e < epochs; e++) out.write(`${epochRow(e, contenders)}\n`)
  const [lstmLosses, rnnLosses] = contenders.map((c) => c.epochs.map((e) => e.valLoss!))
  const updates = models[0].stepCount
  out.write(`\n${updates} updates each in ${seconds.toFixed(1)} s (both models at once).\n`)
  out.write(`LSTM validation MSE ${lstmLosses[lstmLosses.length - 1].toFixed(4)}, SimpleRNN ${rnnLosses[rnnLosses.length - 1].toFixed(4)} (baseline ${ADDING_BASELINE_MSE.toFixed(3)}).\n`)
  models.forEach((m) => m.dispose())
  return { lstm: lstmLosses, rnn: rnnLosses, baseline: ADDING_BASELINE_MSE, updates, seconds }
}

export async function main(): Promise<void> {
  await runAddingDemo()
  process.stdout.write('\n')
  await runVqaDemo()
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error)
    process.exitCode = 1
  })
}
