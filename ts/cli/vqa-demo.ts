/**
 * The VQA part of `npm run demo`: the synthetic set is generated (in memory
 * by default; `odyssey vqa synth` writes the files), the VQA-paper model (LSTM question
 * vector × L2-normalised image, elementwise product, MLP) trains on it, and
 * its official VQA accuracy per question type is printed beside a
 * question-only and an image-only model of the same shape. Only the fused
 * model can answer: the question says what is asked, the image what is there.
 */
import { join } from 'node:path'

import { SingleBar } from 'cli-progress'

import {
  GradNormHistory,
  globalClipThreshold,
  logStep,
  logVqaEpoch,
  logVqaEvaluation,
  RunLogger,
  runLogPath,
} from '../report'
import type { VqaModality } from '../vqa/graph'
import type { VqaBatchLog, VqaEpochLog, VqaModel } from '../vqa/model'
import { runVqaExperiment, type VqaModelSettings, type VqaRun } from '../vqa/pipeline'
import type { SceneEncoding } from '../vqa/synthetic'

export interface VqaDemoOptions {
  /** Training images, about five questions each. Default 16000. */
  images?: number
  validationImages?: number
  featureDim?: number
  sceneEncoding?: SceneEncoding
  epochs?: number
  /** Epochs of each single-modality model (they stop improving almost at once). Default 1. */
  baselineEpochs?: number
  batchSize?: number
  seed?: number
  /** Write the set to disk and read it back through the loaders (as the CLI does). Default false: in memory. */
  throughFiles?: boolean
  /** Where the report goes. Default `process.stdout`. */
  out?: NodeJS.WritableStream & { isTTY?: boolean }
  /** When given, each model's run log is written to `<runLogDir>/vqa-<modality>/log.jsonl` (for `writeReport`). */
  runLogDir?: string
}

export interface VqaDemoResult {
  runs: VqaRun[]
  /** The run logs written (empty without `runLogDir`). */
  runLogs: string[]
  /** Mean VQA accuracy (%) of each model over the non-relational question types. */
  nonRelational: Record<VqaModality, number>
  seconds: number
}

/** Small sizes of the VQA paper's shape: about 80 s of CPU time for the demo's 4 epochs of 80 000 questions. */
export const DEMO_MODEL: VqaModelSettings = {
  fusion: 'product',
  embedding: { dim: 32 },
  lstm: { hiddenSize: 32, numLayers: 1, questionVector: 'states' },
  hiddenSize: 256,
  denseLayers: 1,
  dropout: 0.1,
  optimizer: { type: 'adam', learningRate: 4e-3 },
}

const LABELS: Record<VqaModality, string> = { both: 'fused', question: 'question only', image: 'image only' }
const SPARKLINE_WIDTH = 16
const RELATIONAL_TYPES = new Set(['relation'])

/** A progress bar over each model's batches on a terminal, one line per epoch otherwise. */
class DemoProgress {
  private bar: SingleBar | undefined
  private label = ''
  private gradNorms = new GradNormHistory()

  constructor(private readonly out: NodeJS.WritableStream & { isTTY?: boolean }) {}

  start(modality: VqaModality, epochs: number): void {
    this.stop()
    this.label = LABELS[modality]
    this.gradNorms = new GradNormHistory()
    this.out.write(`Training the ${this.label} model (${epochs} epoch${epochs === 1 ? '' : 's'})\n`)
    if (this.out.isTTY) {
      this.bar = new SingleBar({
        stream: this.out,
        format: `  ${this.label.padEnd(13)} [{bar}] {percentage}% | epoch {epoch} | loss {loss} | ‖g‖ {sparkline} | {rate} questions/s`,
        barsize: 20,
        hideCursor: true,
        clearOnComplete: true,
      })
    }
  }

  batch(log: VqaBatchLog, epochs: number): void {
    this.gradNorms.add(log.gradNorm)
    const payload = {
      epoch: `${log.epoch + 1}/${epochs}`,
      loss: log.loss.toFixed(3),
      sparkline: this.gradNorms.sparkline(SPARKLINE_WIDTH),
      rate: Math.round(log.examplesPerSecond),
    }
    const total = log.questionsPerEpoch * epochs
    const done = log.questionsPerEpoch * log.epoch + log.questionsDone
    if (this.bar?.isActive === false) this.bar.start(total, done, payload)
    else this.bar?.update(done, payload)
  }

  epoch(log: VqaEpochLog, epochs: number): void {
    if (this.out.isTTY) return
    this.out.write(
      `  epoch ${log.epoch + 1}/${epochs}: loss ${log.loss.toFixed(4)} (${log.seconds.toFixed(1)} s, ${Math.round(log.questionsPerSecond)} questions/s)\n`,
    )
  }

  stop(): void {
    this.bar?.stop()
    this.bar = undefined
  }
}

function accuracyTable(runs: readonly VqaRun[]): string {
  const types = Object.keys(runs[0]!.evaluation.perQuestionType).sort()
  const header = `  ${'question type'.padEnd(14)}${'questions'.padStart(10)}${runs.map((r) => LABELS[r.modality].padStart(15)).join('')}`
  const row = (name: string, count: number, values: number[]) =>
    `  ${name.padEnd(14)}${String(count).padStart(10)}${values.map((v) => v.toFixed(1).padStart(15)).join('')}`
  const lines = types.map((type) =>
    row(
      type,
      runs[0]!.evaluation.perQuestionType[type]!.questions,
      runs.map((r) => r.evaluation.perQuestionType[type]!.accuracy),
    ),
  )
  lines.push(
    row(
      'overall',
      runs[0]!.evaluation.questions,
      runs.map((r) => r.evaluation.overall),
    ),
  )
  return [header, ...lines].join('\n')
}

/** Mean accuracy over the question types that ask about one object or the whole scene, not a relation. */
function nonRelationalAccuracy(run: VqaRun): number {
  const accuracies = Object.entries(run.evaluation.perQuestionType)
    .filter(([type]) => !RELATIONAL_TYPES.has(type))
    .map(([, group]) => group.accuracy)
  return accuracies.reduce((a, b) => a + b, 0) / accuracies.length
}

/** Trains the three models on the synthetic set and prints their accuracy per question type side by side. */
export async function runVqaDemo(options: VqaDemoOptions = {}): Promise<VqaDemoResult> {
  const {
    images = 16_000,
    validationImages = 500,
    featureDim = 1024,
    sceneEncoding = 'objects',
    epochs = 4,
    baselineEpochs = 1,
    batchSize = 256,
    seed = 1,
    throughFiles = false,
    out = process.stdout,
    runLogDir,
  } = options
  out.write(
    `Visual question answering: coloured shapes on a 3x3 grid, six question types, ${images} training images ` +
      `(~${5 * images} questions) and ${validationImages} validation images, features D = ${featureDim} (${sceneEncoding} encoding), ` +
      `${throughFiles ? 'written to disk and read back' : 'generated in memory'}.\n` +
      "The fused model is the VQA paper's shape (LSTM question vector x L2-normalised image, product, MLP), at small sizes.\n\n",
  )
  const started = performance.now()
  const progress = new DemoProgress(out)
  const logs = new RunLogs(runLogDir)
  let current = epochs
  const runs = await runVqaExperiment({
    synthetic: { seed, images, featureDim, sceneEncoding },
    throughFiles,
    validationImages,
    model: { ...DEMO_MODEL, seed },
    fit: {
      epochs,
      batchSize,
      callbacks: {
        onBatchEnd: (log) => {
          progress.batch(log, current)
          logs.step(log)
        },
        onEpochEnd: (log) => {
          progress.epoch(log, current)
          logs.epoch(log)
        },
      },
    },
    baselineEpochs,
    onModelStart: (modality, model) => {
      current = modality === 'both' ? epochs : baselineEpochs
      progress.start(modality, current)
      logs.start(modality, model)
    },
  })
  progress.stop()
  const runLogs = logs.finish(runs)
  const seconds = (performance.now() - started) / 1000
  out.write(`\nVQA accuracy (%) on the ${validationImages} validation images:\n${accuracyTable(runs)}\n\n`)
  const nonRelational = Object.fromEntries(runs.map((run) => [run.modality, nonRelationalAccuracy(run)])) as Record<
    VqaModality,
    number
  >
  out.write(
    `Non-relational types (all but 'relation'), mean: ${runs.map((r) => `${LABELS[r.modality]} ${nonRelational[r.modality].toFixed(1)}%`).join(', ')}.\n`,
  )
  for (const run of runs) {
    out.write(
      `${LABELS[run.modality]}: ${run.history.epochs.length} epoch(s) in ${run.seconds.toFixed(1)} s, ${Math.round(run.questionsPerSecond)} questions/s\n`,
    )
  }
  out.write(`VQA demo: ${seconds.toFixed(1)} s in all (data generation and validation included).\n`)
  return { runs, runLogs, nonRelational, seconds }
}

/** One run log per model when a directory is given; the validation scores are logged once all have trained. */
class RunLogs {
  private readonly open = new Map<VqaModality, RunLogger>()
  private current: { log: RunLogger; clipThreshold: number | null } | undefined

  constructor(private readonly dir: string | undefined) {}

  start(modality: VqaModality, model: VqaModel): void {
    if (this.dir === undefined) return
    const log = new RunLogger(runLogPath(join(this.dir, `vqa-${modality}`)), {
      label: `VQA ${LABELS[modality]}`,
      task: 'visual question answering (synthetic)',
      config: { ...model.architecture },
    })
    this.open.set(modality, log)
    this.current = { log, clipThreshold: globalClipThreshold(model.model) }
  }

  step(batch: VqaBatchLog): void {
    if (this.current !== undefined) logStep(this.current.log, batch, this.current.clipThreshold)
  }

  epoch(epoch: VqaEpochLog): void {
    if (this.current !== undefined) logVqaEpoch(this.current.log, epoch, undefined)
  }

  /** Logs each run's validation score after its last epoch, closes the logs and returns their paths. */
  finish(runs: readonly VqaRun[]): string[] {
    const files = runs.flatMap((run) => {
      const log = this.open.get(run.modality)
      if (log === undefined) return []
      const last = run.history.epochs[run.history.epochs.length - 1]!
      logVqaEvaluation(log, { step: last.step, epoch: last.epoch, split: 'val' }, run)
      log.close()
      return [log.file]
    })
    this.open.clear()
    this.current = undefined
    return files
  }
}
