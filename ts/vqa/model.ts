/**
 * `VqaModel`: the visual-question-answering model of SPEC §4 on top of the
 * training API. This file only arranges data and bookkeeping; every number
 * of the network is computed by the native core (`Model`).
 *
 * ```ts
 * const train = await openVqaSplit({ questionsFile, annotationsFile, featuresFile })
 * const model = VqaModel.create({
 *   fusion: 'product',
 *   imageDim: train.features.dim,
 *   questionVocab: QuestionVocab.build(train.questions.map((q) => q.question)),
 *   answerVocab: AnswerVocab.build(train.annotations!, { topK: 1000 }),
 * })
 * await model.fit(train, { epochs: 10, validation: val, callbacks: { onEpochEnd: console.log } })
 * const [answer] = await model.predict([{ questionId: 1, imageId: 9, question: 'what color is it?' }], features)
 * await model.save('checkpoints/vqa')
 * ```
 */
import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'

import { OdysseyAbortError, OdysseyError, OdysseyRangeError } from '../errors'
import { Model } from '../model'
import type { Inputs } from '../model/data'
import type { BatchLog } from '../model/fit'
import type { ClipConfig, OptimizerConfig, ScheduleConfig } from '../model/training'
import { writeFileAtomic } from '../util/fs'
import { vqaConfusion, type VqaConfusion } from './confusion'
import { VqaFileError, VqaShapeError } from './errors'
import type { VqaAnnotation, VqaQuestion } from './files'
import { resolveArchitecture, vqaGraph, VQA_NAMES, type VqaArchitecture, type VqaArchitectureOptions } from './graph'
import { chunkInputs, indexQuestions, unknownWordRows, type FeatureSource, type UnknownWords } from './inputs'
import { evaluateVqa, type VqaEvaluation } from './metric'
import { SeededRandom } from '../util/random'
import { AnswerVocab, PAD_INDEX, QuestionVocab, UNK_INDEX } from './vocab'
import type { WordVectors } from './word-vectors'

/** Everything `VqaModel.create` needs: the architecture (sizes derived from the data), vocabularies, training. */
export interface VqaModelOptions
  extends Omit<VqaArchitectureOptions, 'imageDim' | 'vocabSize' | 'answers' | 'wordVectors' | 'embeddingDim'> {
  /** Image feature width D of the features files (VGG-16: 4096). */
  imageDim: number
  questionVocab: QuestionVocab
  answerVocab: AnswerVocab
  /** Word vectors: a trainable table of `dim` (default 300), or pretrained vectors (`readWordVectors`). */
  embedding?: { dim?: number; pretrained?: WordVectors; frozen?: boolean }
  /** Default Adam, learning rate 1e-3. */
  optimizer?: OptimizerConfig
  schedule?: ScheduleConfig
  /** Default: global norm 5. */
  clip?: ClipConfig
}

/** `VqaModel.score`: the official accuracy and the confusion among the most frequent answers. */
export interface VqaScore {
  evaluation: VqaEvaluation
  confusion: VqaConfusion
}

/** A split to train on or score: questions, their annotations, the features of their images. */
export interface VqaData {
  questions: readonly VqaQuestion[]
  /** `annotations[i]` belongs to `questions[i]`. */
  annotations: readonly VqaAnnotation[]
  features: FeatureSource
}

export interface VqaBatchLog extends BatchLog {
  /** Questions trained so far in this epoch. */
  questionsDone: number
  /** Questions the epoch trains on (those whose answer is among the K classes). */
  questionsPerEpoch: number
}

export interface VqaEpochLog {
  epoch: number
  /** Mean training loss over the epoch's batches, weighted by their size. */
  loss: number
  /** Training time of the epoch (feature gathering included, validation excluded) and its throughput. */
  seconds: number
  questionsPerSecond: number
  /** Updates applied since the model was created or loaded. */
  step: number
  /** Official VQA accuracy on the validation split, overall and per question and answer type. */
  validation?: VqaEvaluation
}

export interface VqaFitOptions {
  epochs: number
  /** Default 64. */
  batchSize?: number
  validation?: VqaData
  /** `onEpochEnd` may return a promise (to save a checkpoint, say); the next epoch waits for it. */
  callbacks?: { onBatchEnd?: (log: VqaBatchLog) => void; onEpochEnd?: (log: VqaEpochLog) => void | Promise<void> }
  signal?: AbortSignal
  /** Seed of the per-epoch question order. Default: the model's seed. */
  seed?: number
}

export interface VqaHistory {
  epochs: VqaEpochLog[]
  /** Training questions left out because their answer is not among the K classes (the VQA baseline's rule). */
  skippedQuestions: number
}

/** One answer with its softmax probability. */
export interface ScoredAnswer {
  answer: string
  probability: number
}

export interface VqaAnswer extends ScoredAnswer {
  questionId: number
  /** The `top` most probable answers, best first (the first is `answer`). */
  alternatives: ScoredAnswer[]
}

/** `vqa.json`: what a checkpoint directory holds besides the network. */
interface SavedVqaModel {
  kind: typeof SAVED_KIND
  version: 1
  architecture: VqaArchitecture
  questionVocab: unknown
  answerVocab: unknown
  /** Word rows without a pretrained vector (frozen pretrained vectors only). */
  unknownWords: number[]
}

const SAVED_KIND = 'odyssey-vqa-model'
export const VQA_CONFIG_FILE = 'vqa.json'
/** Features gathered per chunk of training or prediction: at most this many bytes. */
const CHUNK_FEATURE_BYTES = 64 * 2 ** 20

export class VqaModel {
  private constructor(
    /** The network; use it for `getWeights`, `gradientFlow`, ONNX export. */
    readonly model: Model,
    readonly architecture: VqaArchitecture,
    readonly questionVocab: QuestionVocab,
    readonly answerVocab: AnswerVocab,
    private readonly unknownWords: UnknownWords,
  ) {}

  /**
   * A freshly initialised model. With pretrained vectors the word table starts from them:
   * frozen, unknown words (UNK and words the file lacks) read a learned vector of their own
   * (see `vqaGraph`); fine-tuned, those rows start random with the pretrained vectors' scale.
   * @throws OdysseyTypeError / OdysseyRangeError naming the offending option.
   */
  static create(options: VqaModelOptions): VqaModel {
    const { questionVocab, answerVocab, embedding = {}, optimizer, schedule, clip, ...rest } = options
    const pretrained = embedding.pretrained
    const wordVectors =
      pretrained === undefined
        ? 'trainable'
        : embedding.frozen === false
          ? 'pretrained-fine-tuned'
          : 'pretrained-frozen'
    const architecture = resolveArchitecture({
      ...rest,
      vocabSize: questionVocab.size,
      answers: answerVocab.size,
      wordVectors,
      embeddingDim: pretrained?.dim ?? embedding.dim,
    })
    const model = Model.fromSpec({
      ...vqaGraph(architecture),
      optimizer: optimizer ?? { type: 'adam', learningRate: 1e-3 },
      ...(schedule === undefined ? {} : { schedule }),
      clip: clip ?? { globalNorm: 5 },
    })
    const known = new Set<number>()
    if (pretrained !== undefined && architecture.modality !== 'image') {
      model.setWeights(pretrainedWeights(architecture, questionVocab, pretrained, known))
    }
    const unknown =
      architecture.wordVectors === 'pretrained-frozen' ? unknownWordRows(questionVocab.size, known) : new Set<number>()
    return new VqaModel(model, architecture, questionVocab, answerVocab, unknown)
  }

  /** Restores a model written by `save`: network, optimizer state, vocabularies, architecture. */
  static async load(dir: string): Promise<VqaModel> {
    const saved = await readSavedConfig(join(dir, VQA_CONFIG_FILE))
    const questionVocab = QuestionVocab.fromJSON(saved.questionVocab)
    const answerVocab = AnswerVocab.fromJSON(saved.answerVocab)
    const architecture = resolveArchitecture(saved.architecture)
    const model = await Model.load(dir)
    const expected = JSON.stringify(vqaGraph(architecture).nodes.map((node) => node.name))
    if (JSON.stringify(model.graph.nodes.map((node) => node.name)) !== expected) {
      model.dispose()
      throw new OdysseyError(
        'ODYSSEY_CHECKPOINT',
        `${dir}: the checkpoint's graph is not the one ${VQA_CONFIG_FILE} describes`,
      )
    }
    return new VqaModel(model, architecture, questionVocab, answerVocab, new Set(saved.unknownWords))
  }

  /**
   * Trains on the questions of `train` whose answer is among the K classes. Each epoch
   * visits them in a new seeded order, in chunks whose features are gathered just before
   * their turn; with `validation`, the official VQA accuracy is measured after every epoch.
   * Aborting `signal` rejects with `OdysseyAbortError` whose `result` is the history so far.
   */
  async fit(train: VqaData, options: VqaFitOptions): Promise<VqaHistory> {
    this.checkFeatures(train.features, 'train')
    if (options.validation !== undefined) this.checkFeatures(options.validation.features, 'validation')
    const batchSize = options.batchSize ?? 64
    const encoded = indexQuestions(train.questions, this.questionVocab, this.architecture.maxQuestionLength)
    const labels = this.answerVocab.encodeLabels(train.annotations)
    const trainable = [...labels.keys()].filter((row) => (labels[row] as number) >= 0)
    if (trainable.length === 0)
      throw new OdysseyRangeError('ODYSSEY_INVALID', 'train: no question has an answer among the K classes')
    const history: VqaHistory = { epochs: [], skippedQuestions: labels.length - trainable.length }
    const order = new SeededRandom(options.seed ?? this.architecture.seed)
    const epoch = new EpochRunner(this.model, batchSize, chunkRows(train.features.dim, batchSize), options, {
      inputs: (rows) => chunkInputs(encoded, rows, train.features, this.architecture, this.unknownWords),
      labels: (rows) => Uint32Array.from(rows, (row) => labels[row] as number),
    })
    for (let index = 0; index < options.epochs; index++) {
      const log = await epoch.run(index, order.shuffled(trainable), history)
      if (options.validation !== undefined) log.validation = await this.evaluate(options.validation, { batchSize })
      history.epochs.push(log)
      await options.callbacks?.onEpochEnd?.(log)
    }
    return history
  }

  /**
   * The most probable answer of every question (and its `top` alternatives, default 1),
   * predicted in chunks. Throws `VqaLookupError` for an image the features do not have.
   */
  async predict(
    questions: readonly VqaQuestion[],
    features: FeatureSource,
    options: { batchSize?: number; top?: number } = {},
  ): Promise<VqaAnswer[]> {
    this.checkFeatures(features, 'features')
    const encoded = indexQuestions(questions, this.questionVocab, this.architecture.maxQuestionLength)
    const rows = [...questions.keys()]
    const answers: VqaAnswer[] = []
    for (const chunk of chunksOf(rows, chunkRows(features.dim, 1))) {
      const x = await chunkInputs(encoded, chunk, features, this.architecture, this.unknownWords)
      const { data } = await this.model.predict(x, { batchSize: options.batchSize ?? 256 })
      chunk.forEach((row, k) => {
        const logits = data.subarray(k * this.answerVocab.size, (k + 1) * this.answerVocab.size)
        answers.push(this.scoredAnswer(encoded.questionIds[row] as number, logits, options.top ?? 1))
      })
    }
    return answers
  }

  /** Official VQA accuracy of the model's answers on `data`, overall and per question and answer type. */
  async evaluate(data: VqaData, options: { batchSize?: number } = {}): Promise<VqaEvaluation> {
    return evaluateVqa(data.annotations, await this.answerMap(data, options))
  }

  /**
   * `evaluate`, and which answers the model confuses among the `confusionAnswers` (default 10)
   * most frequent reference answers of `data` — what a run log's `vqa` record holds.
   */
  async score(data: VqaData, options: { batchSize?: number; confusionAnswers?: number } = {}): Promise<VqaScore> {
    const answers = await this.answerMap(data, options)
    return {
      evaluation: evaluateVqa(data.annotations, answers),
      confusion: vqaConfusion(data.annotations, answers, options.confusionAnswers ?? 10),
    }
  }

  /** Question id → the model's answer, for every question of `data`. */
  private async answerMap(data: VqaData, options: { batchSize?: number }): Promise<Map<number, string>> {
    const answers = await this.predict(data.questions, data.features, options)
    return new Map(answers.map(({ questionId, answer }) => [questionId, answer]))
  }

  /** Writes the checkpoint into `dir` and `vqa.json` (architecture and vocabularies) beside it. */
  async save(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true })
    await this.model.save(dir, { kind: SAVED_KIND })
    const saved: SavedVqaModel = {
      kind: SAVED_KIND,
      version: 1,
      architecture: this.architecture,
      questionVocab: this.questionVocab.toJSON(),
      answerVocab: this.answerVocab.toJSON(),
      unknownWords: [...this.unknownWords],
    }
    await writeFileAtomic(join(dir, VQA_CONFIG_FILE), [`${JSON.stringify(saved, null, 2)}\n`])
  }

  /** Frees the native model. */
  dispose(): void {
    this.model.dispose()
  }

  private checkFeatures(features: FeatureSource, label: string): void {
    if (this.architecture.modality === 'question' || features.dim === this.architecture.imageDim) return
    const file = (features as { file?: string }).file ?? label
    throw new VqaShapeError(
      file,
      [this.architecture.imageDim],
      [features.dim],
      `features have D = ${features.dim}, the model was built for D = ${this.architecture.imageDim}`,
    )
  }

  private scoredAnswer(questionId: number, logits: ArrayLike<number>, top: number): VqaAnswer {
    const probabilities = softmax(logits)
    const alternatives = largest(probabilities, Math.max(1, top)).map((k) => ({
      answer: this.answerVocab.answerAt(k),
      probability: probabilities[k] as number,
    }))
    return { questionId, ...(alternatives[0] as ScoredAnswer), alternatives }
  }
}

/** Rows per chunk: whole batches whose features (`[rows, D]` floats) fit in `CHUNK_FEATURE_BYTES`. */
function chunkRows(dim: number, batchSize: number): number {
  const rows = Math.floor(CHUNK_FEATURE_BYTES / (4 * dim))
  return Math.max(batchSize, rows - (rows % batchSize))
}

/** The tensors of some rows of a split: the model inputs and the answer classes. */
interface ChunkSource {
  inputs(rows: readonly number[]): Promise<Inputs>
  labels(rows: readonly number[]): Uint32Array
}

/** One training epoch: chunks of the shuffled rows, each one `Model.fit` epoch, with progress in epoch terms. */
class EpochRunner {
  constructor(
    private readonly model: Model,
    private readonly batchSize: number,
    private readonly rowsPerChunk: number,
    private readonly options: VqaFitOptions,
    private readonly source: ChunkSource,
  ) {}

  async run(epoch: number, rows: number[], history: VqaHistory): Promise<VqaEpochLog> {
    const started = performance.now()
    const batches = Math.ceil(rows.length / this.batchSize)
    let lossSum = 0
    let done = 0
    for (const chunk of chunksOf(rows, this.rowsPerChunk)) {
      const firstBatch = done / this.batchSize
      const data = {
        x: await this.source.inputs(chunk),
        y: { classes: this.source.labels(chunk), shape: [chunk.length] },
      }
      const onBatchEnd = (log: BatchLog) => {
        lossSum += log.loss * log.examples
        const questionsDone = done + Math.min(chunk.length, (log.batch + 1) * this.batchSize)
        this.options.callbacks?.onBatchEnd?.({
          ...log,
          epoch,
          batch: firstBatch + log.batch,
          batches,
          questionsDone,
          questionsPerEpoch: rows.length,
        })
      }
      await this.fitChunk(data, onBatchEnd, history)
      done += chunk.length
    }
    const seconds = (performance.now() - started) / 1000
    return {
      epoch,
      loss: lossSum / rows.length,
      seconds,
      questionsPerSecond: rows.length / seconds,
      step: this.model.stepCount,
    }
  }

  private async fitChunk(data: Parameters<Model['fit']>[0], onBatchEnd: (log: BatchLog) => void, history: VqaHistory) {
    try {
      // The epoch's order is already shuffled; the chunk is trained in it, as a walk of its own.
      await this.model.fit(data, {
        epochs: 1,
        initialEpoch: 0,
        batchSize: this.batchSize,
        shuffle: false,
        callbacks: { onBatchEnd },
        signal: this.options.signal,
      })
    } catch (error) {
      if (error instanceof OdysseyAbortError) {
        throw new OdysseyAbortError(
          `VqaModel.fit was aborted after ${history.epochs.length} finished epoch(s)`,
          history,
          { cause: error.cause },
        )
      }
      throw error
    }
  }
}

function* chunksOf<T>(items: readonly T[], size: number): Generator<T[]> {
  for (let start = 0; start < items.length; start += size) yield items.slice(start, start + size)
}

/** Indices of the `count` largest values, largest first: `count` scans, cheaper than sorting K = 1000 per question. */
function largest(values: Float64Array, count: number): number[] {
  const chosen: number[] = []
  for (let pick = 0; pick < Math.min(count, values.length); pick++) {
    let best = -1
    values.forEach((value, k) => {
      if (!chosen.includes(k) && (best < 0 || value > (values[best] as number))) best = k
    })
    chosen.push(best)
  }
  return chosen
}

function softmax(logits: ArrayLike<number>): Float64Array {
  let max = -Infinity
  for (let k = 0; k < logits.length; k++) max = Math.max(max, logits[k] as number)
  const exps = Float64Array.from({ length: logits.length }, (_, k) => Math.exp((logits[k] as number) - max))
  const sum = exps.reduce((a, b) => a + b, 0)
  return exps.map((e) => e / sum)
}

/**
 * The initial word tables for pretrained vectors (`known` collects the rows that have one).
 * Rows without a vector: zero when frozen (their learned vector is the unknown-word table's
 * row 1), random with the vectors' standard deviation when fine-tuned.
 */
function pretrainedWeights(
  architecture: VqaArchitecture,
  vocab: QuestionVocab,
  pretrained: WordVectors,
  known: Set<number>,
): Record<string, { data: Float32Array; shape: number[] }> {
  const { embeddingDim: dim, vocabSize } = architecture
  const table = new Float32Array(vocabSize * dim)
  vocab.words.forEach((word, row) => {
    const vector = row === PAD_INDEX || row === UNK_INDEX ? undefined : pretrained.vectors.get(word)
    if (vector === undefined) return
    table.set(vector, row * dim)
    known.add(row)
  })
  const scale = standardDeviation(pretrained.vectors.values())
  const random = new SeededRandom(architecture.seed + 1)
  const frozen = architecture.wordVectors === 'pretrained-frozen'
  if (!frozen) {
    for (let row = 0; row < vocabSize; row++) {
      if (known.has(row)) continue
      for (let k = 0; k < dim; k++) table[row * dim + k] = scale * random.normal()
    }
    return { [`${VQA_NAMES.words}.weight`]: { data: table, shape: [vocabSize, dim] } }
  }
  const flags = new Float32Array(2 * dim)
  for (let k = 0; k < dim; k++) flags[dim + k] = scale * random.normal()
  return {
    [`${VQA_NAMES.words}.weight`]: { data: table, shape: [vocabSize, dim] },
    [`${VQA_NAMES.unknownWords}.weight`]: { data: flags, shape: [2, dim] },
  }
}

/** Standard deviation of all entries of the vectors (1 when there are none). */
function standardDeviation(vectors: Iterable<Float32Array>): number {
  let count = 0
  let sum = 0
  let squares = 0
  for (const vector of vectors) {
    for (const value of vector) {
      count += 1
      sum += value
      squares += value * value
    }
  }
  if (count < 2) return 1
  const mean = sum / count
  return Math.sqrt(Math.max(squares / count - mean * mean, 0)) || 1
}

async function readSavedConfig(file: string): Promise<SavedVqaModel> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (error) {
    throw new OdysseyError(
      'ODYSSEY_IO',
      `${file}: cannot read: ${(error as Error).message} (is this a directory written by VqaModel.save?)`,
      { cause: error },
    )
  }
  let saved: Partial<SavedVqaModel>
  try {
    saved = JSON.parse(text) as Partial<SavedVqaModel>
  } catch (error) {
    throw new VqaFileError(file, `malformed JSON: ${(error as Error).message}`, {}, { cause: error })
  }
  if (saved?.kind !== SAVED_KIND || saved.version !== 1 || !Array.isArray(saved.unknownWords)) {
    throw new VqaFileError(file, `expected {"kind": "${SAVED_KIND}", "version": 1, ...}`)
  }
  return saved as SavedVqaModel
}
