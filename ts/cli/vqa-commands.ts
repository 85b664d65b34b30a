/**
 * The `odyssey vqa` subcommands: train, eval, predict, synth. Each takes its
 * parsed options and writes results to `io.stdout`, progress to `io.stderr`;
 * failures are thrown as the library's typed errors and reported by the
 * program (`odyssey.ts`) as one line.
 */
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'

import { SingleBar } from 'cli-progress'

import { OdysseyAbortError, OdysseyRangeError } from '../errors'
import { GradNormHistory, globalClipThreshold, logStep, logVqaEpoch, RunLogger, runLogPath } from '../report'
import type { LstmVariant } from '../types'
import { ImageFeatures } from '../vqa/features'
import type { VqaFusion } from '../vqa/graph'
import type { VqaEvaluation } from '../vqa/metric'
import { VqaModel, type VqaBatchLog, type VqaEpochLog } from '../vqa/model'
import { createVqaModel, openAnnotatedSplit, type AnnotatedSplit } from '../vqa/pipeline'
import { writeSyntheticVqa, type SceneEncoding } from '../vqa/synthetic'

/** Where a command writes: results to stdout, progress to stderr. */
export interface CommandIo {
  stdout: NodeJS.WritableStream
  stderr: NodeJS.WritableStream & { isTTY?: boolean }
}

interface SplitPaths {
  questions: string
  annotations: string
  features: string
}

export interface TrainCommandOptions extends SplitPaths {
  valQuestions?: string
  valAnnotations?: string
  valFeatures?: string
  fusion: VqaFusion
  epochs: number
  out: string
  glove?: string
  gloveFineTune: boolean
  topK: number
  batchSize: number
  lr: number
  embeddingDim?: number
  lstmHidden?: number
  lstmLayers?: number
  variant?: LstmVariant
  questionVector?: 'last' | 'states'
  hidden?: number
  denseLayers?: number
  dropout?: number
  maxLength?: number
  seed: number
}

/**
 * `odyssey vqa train`: trains, saves into `--out` after every epoch (so an interrupted run keeps
 * its last finished epoch), and logs the run to `<out>/log.jsonl` for `odyssey report`.
 */
export async function trainCommand(options: TrainCommandOptions, io: CommandIo, signal?: AbortSignal): Promise<void> {
  const validationPaths = validationSplitPaths(options)
  const train = await openAnnotatedSplit(filesOf(options))
  const validation =
    validationPaths === undefined ? undefined : await openAnnotatedSplit(filesOf(validationPaths), train.features.dim)
  try {
    const model = await createVqaModel(train, {
      topK: options.topK,
      ...(options.glove === undefined ? {} : { wordVectorsFile: options.glove }),
      model: modelSettings(options),
    })
    try {
      await trainAndSave(model, train, validation, options, io, signal)
    } finally {
      model.dispose()
    }
  } finally {
    await Promise.all([train.features.close(), validation?.features.close()])
  }
}

function modelSettings(options: TrainCommandOptions) {
  const defined = <T extends object>(fields: T) =>
    Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined)) as Partial<T>
  return {
    fusion: options.fusion,
    seed: options.seed,
    optimizer: { type: 'adam' as const, learningRate: options.lr },
    embedding: defined({
      dim: options.embeddingDim,
      frozen: options.glove === undefined ? undefined : !options.gloveFineTune,
    }),
    lstm: defined({
      hiddenSize: options.lstmHidden,
      numLayers: options.lstmLayers,
      variant: options.variant,
      questionVector: options.questionVector,
    }),
    ...defined({
      hiddenSize: options.hidden,
      denseLayers: options.denseLayers,
      dropout: options.dropout,
      maxQuestionLength: options.maxLength,
    }),
  }
}

/** The validation split's three paths, or undefined; giving only some of them is a usage error. */
function validationSplitPaths(options: TrainCommandOptions): SplitPaths | undefined {
  const { valQuestions, valAnnotations, valFeatures } = options
  const given = [valQuestions, valAnnotations, valFeatures].filter((path) => path !== undefined).length
  if (given === 0) return undefined
  if (given < 3) {
    throw new OdysseyRangeError(
      'ODYSSEY_INVALID',
      '--val-questions, --val-annotations and --val-features go together: give all three or none',
    )
  }
  return { questions: valQuestions!, annotations: valAnnotations!, features: valFeatures! }
}

function filesOf(paths: SplitPaths) {
  return { questionsFile: paths.questions, annotationsFile: paths.annotations, featuresFile: paths.features }
}

async function trainAndSave(
  model: VqaModel,
  train: AnnotatedSplit,
  validation: AnnotatedSplit | undefined,
  options: TrainCommandOptions,
  io: CommandIo,
  signal?: AbortSignal,
): Promise<void> {
  const { architecture } = model
  io.stdout.write(
    `${train.questions.length} training questions, ${model.questionVocab.size} words, ${model.answerVocab.size} answers, ` +
      `D = ${architecture.imageDim}, fusion ${architecture.fusion}\n`,
  )
  const log = new RunLogger(runLogPath(options.out), {
    label: `VQA ${architecture.fusion}`,
    task: 'visual question answering',
    config: { ...architecture },
  })
  const progress = new TrainingProgress(io, options.epochs)
  const clipThreshold = globalClipThreshold(model.model)
  try {
    const history = await model.fit(train, {
      epochs: options.epochs,
      batchSize: options.batchSize,
      seed: options.seed,
      signal,
      callbacks: {
        onBatchEnd: (batch) => {
          progress.batch(batch)
          logStep(log, batch, clipThreshold)
        },
        onEpochEnd: async (epoch) => {
          const scored = validation === undefined ? undefined : await model.score(validation)
          progress.epochDone(epoch, scored?.evaluation)
          logVqaEpoch(log, epoch, scored)
          await model.save(options.out)
        },
      },
    })
    if (history.skippedQuestions > 0) {
      io.stdout.write(
        `${history.skippedQuestions} training questions had an answer outside the top ${model.answerVocab.size} and were skipped\n`,
      )
    }
    io.stdout.write(`saved the model to ${options.out} (run log ${runLogPath(options.out)})\n`)
  } catch (error) {
    if (error instanceof OdysseyAbortError) {
      const finished = (error.result as { epochs?: unknown[] } | undefined)?.epochs?.length ?? 0
      const kept = finished > 0 ? `; ${options.out} holds the model after the last one` : ''
      throw new OdysseyAbortError(`interrupted after ${finished} finished epoch(s)${kept}`, error.result, {
        cause: error,
      })
    }
    throw error
  } finally {
    progress.stop()
    log.close()
  }
}

/** Columns of the progress bar's gradient-norm sparkline. */
const SPARKLINE_WIDTH = 16

/** A cli-progress bar over the batches of each epoch on a terminal; one line per epoch either way. */
class TrainingProgress {
  private readonly bar: SingleBar | undefined
  /** Pre-clip gradient norms of the last steps, drawn as the bar's sparkline across epochs. */
  private readonly gradNorms = new GradNormHistory()
  private started = false

  constructor(
    private readonly io: CommandIo,
    private readonly epochs: number,
  ) {
    this.bar = io.stderr.isTTY
      ? new SingleBar({
          stream: io.stderr,
          format:
            'epoch {epoch}/{epochs} [{bar}] {percentage}% | {value}/{total} batches | loss {loss} | ‖g‖ {gradNorm} {sparkline} | {rate} q/s | ETA {eta_formatted}',
          barsize: 20,
          hideCursor: true,
          clearOnComplete: true,
        })
      : undefined
  }

  batch(log: VqaBatchLog): void {
    this.gradNorms.add(log.gradNorm)
    const payload = {
      epoch: log.epoch + 1,
      epochs: this.epochs,
      loss: log.loss.toFixed(4),
      gradNorm: log.gradNorm.toPrecision(3),
      sparkline: this.gradNorms.sparkline(SPARKLINE_WIDTH),
      rate: Math.round(log.examplesPerSecond),
    }
    if (!this.started) {
      this.bar?.start(log.batches, 0, payload)
      this.started = true
    }
    this.bar?.update(log.batch + 1, payload)
  }

  epochDone(log: VqaEpochLog, evaluation: VqaEvaluation | undefined): void {
    this.stop()
    const validation = evaluation === undefined ? '' : `, validation VQA accuracy ${evaluation.overall.toFixed(2)}%`
    this.io.stdout.write(
      `epoch ${log.epoch + 1}/${this.epochs}: loss ${log.loss.toFixed(4)}${validation} (${log.seconds.toFixed(1)} s, ${Math.round(log.questionsPerSecond)} questions/s)\n`,
    )
  }

  stop(): void {
    if (this.started) this.bar?.stop()
    this.started = false
  }
}

export interface EvalCommandOptions extends SplitPaths {
  model: string
  json: boolean
  batchSize: number
}

/** `odyssey vqa eval`: official VQA accuracy overall, per question type and per answer type. */
export async function evalCommand(options: EvalCommandOptions, io: CommandIo): Promise<void> {
  await withSavedModel(options.model, async (model) => {
    const split = await openAnnotatedSplit(filesOf(options), model.architecture.imageDim)
    try {
      const evaluation = await model.evaluate(split, { batchSize: options.batchSize })
      io.stdout.write(options.json ? `${JSON.stringify(evaluation, null, 2)}\n` : formatEvaluation(evaluation))
    } finally {
      await split.features.close()
    }
  })
}

/** Runs `use` on the model saved in `dir`, disposing of it afterwards whatever happens. */
async function withSavedModel(dir: string, use: (model: VqaModel) => Promise<void>): Promise<void> {
  const model = await VqaModel.load(dir)
  try {
    await use(model)
  } finally {
    model.dispose()
  }
}

/** A plain-text table: overall, then each question type and answer type with its question count. */
export function formatEvaluation(evaluation: VqaEvaluation): string {
  const rows = (title: string, groups: VqaEvaluation['perQuestionType']) => {
    const entries = Object.entries(groups).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    if (entries.length === 0) return ''
    const width = Math.max(...entries.map(([name]) => name.length))
    const lines = entries.map(
      ([name, { accuracy, questions }]) =>
        `  ${name.padEnd(width)}  ${accuracy.toFixed(2).padStart(6)}%  (${questions})`,
    )
    return `${title}\n${lines.join('\n')}\n`
  }
  return (
    `VQA accuracy ${evaluation.overall.toFixed(2)}% over ${evaluation.questions} questions\n` +
    rows('per question type:', evaluation.perQuestionType) +
    rows('per answer type:', evaluation.perAnswerType)
  )
}

export interface PredictCommandOptions {
  model: string
  features: string
  imageId: number
  question: string
  top: number
  json: boolean
}

/** `odyssey vqa predict`: the answers to one question about one image, most probable first. */
export async function predictCommand(options: PredictCommandOptions, io: CommandIo): Promise<void> {
  await withSavedModel(options.model, async (model) => {
    const features = await ImageFeatures.open(options.features, { expectedDim: model.architecture.imageDim })
    try {
      const question = { questionId: 0, imageId: options.imageId, question: options.question }
      features.requireImages([question])
      const [answer] = await model.predict([question], features, { top: options.top })
      const { alternatives } = answer!
      io.stdout.write(
        options.json
          ? `${JSON.stringify(alternatives)}\n`
          : `${alternatives.map(({ answer: text, probability }) => `${text}\t${(100 * probability).toFixed(1)}%`).join('\n')}\n`,
      )
    } finally {
      await features.close()
    }
  })
}

export interface SynthCommandOptions {
  out: string
  seed: number
  images: number
  valImages: number
  featureDim: number
  encoding: SceneEncoding
}

/** `odyssey vqa synth`: writes the synthetic training and validation splits in the VQA v2 layout. */
export async function synthCommand(options: SynthCommandOptions, io: CommandIo): Promise<void> {
  await mkdir(options.out, { recursive: true })
  const shared = { featureDim: options.featureDim, sceneEncoding: options.encoding }
  const train = await writeSyntheticVqa(options.out, {
    ...shared,
    seed: options.seed,
    images: options.images,
    split: 'train',
  })
  const val = await writeSyntheticVqa(options.out, {
    ...shared,
    seed: options.seed + 1,
    images: options.valImages,
    firstImageId: 1 + options.images,
    split: 'val',
  })
  for (const [name, split] of [
    ['train', train],
    ['val', val],
  ] as const) {
    io.stdout.write(`${name}: ${split.data.questions.length} questions about ${split.data.imageIds.length} images\n`)
    for (const file of [split.questionsFile, split.annotationsFile, split.featuresFile]) io.stdout.write(`  ${file}\n`)
  }
  const path = (split: string, kind: string, extension = 'json') =>
    join(options.out, `synthetic_${split}_${kind}.${extension}`)
  io.stdout.write(
    `train with: odyssey vqa train --questions ${path('train', 'questions')} --annotations ${path('train', 'annotations')} ` +
      `--features ${path('train', 'features', 'safetensors')} --val-questions ${path('val', 'questions')} ` +
      `--val-annotations ${path('val', 'annotations')} --val-features ${path('val', 'features', 'safetensors')} --out <dir>\n`,
  )
}
