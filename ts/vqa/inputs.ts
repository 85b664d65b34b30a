/**
 * From VQA records to the model's input tensors. Questions are tokenised and
 * looked up once per split (`indexQuestions`); each chunk of training or
 * prediction then pads its rows and gathers its image features, so only one
 * chunk of features (`[rows, D]`) is in memory at a time.
 */
import { OdysseyRangeError } from '../errors'
import type { InputTensor } from '../model/data'
import { VqaLookupError } from './errors'
import type { ImageFeaturesData } from './features'
import type { VqaQuestion } from './files'
import type { VqaArchitecture } from './graph'
import { VQA_NAMES } from './graph'
import { PAD_INDEX, UNK_INDEX, type QuestionVocab } from './vocab'

/** Where image features come from: an open `ImageFeatures`, or anything with its `gather`. */
export interface FeatureSource {
  /** Feature width D. */
  readonly dim: number
  /** `[ids.length, D]` features of these image ids. */
  gather(imageIds: ArrayLike<number>): Promise<Float32Array>
}

/** Features held in memory (a generated synthetic set, say), looked up by image id like a features file. */
export class MemoryFeatures implements FeatureSource {
  readonly dim: number
  private readonly rows: ReadonlyMap<number, number>
  private readonly matrix: Float32Array

  /** `data.features` `[N, D]` row i belongs to `data.imageIds[i]`. */
  constructor(data: ImageFeaturesData) {
    if (data.features.length !== data.imageIds.length * data.dim) {
      throw new OdysseyRangeError(
        'ODYSSEY_SHAPE',
        `MemoryFeatures: features has ${data.features.length} values, expected [${data.imageIds.length}, ${data.dim}]`,
      )
    }
    this.dim = data.dim
    this.matrix = data.features
    this.rows = new Map(Array.from(data.imageIds, (imageId, row) => [imageId, row]))
  }

  /** Throws `VqaLookupError` for an id without features. */
  async gather(imageIds: ArrayLike<number>): Promise<Float32Array> {
    const out = new Float32Array(imageIds.length * this.dim)
    Array.from(imageIds).forEach((imageId, k) => {
      const row = this.rows.get(imageId)
      if (row === undefined) throw new VqaLookupError(imageId, `no features for image_id ${imageId} in memory`)
      out.set(this.matrix.subarray(row * this.dim, (row + 1) * this.dim), k * this.dim)
    })
    return out
  }
}

/** A split's questions as word indices, cut to the model's maximum length. */
export interface IndexedQuestions {
  questionIds: number[]
  imageIds: number[]
  /** `[n][length]` word indices, unpadded, each length in 1..maxQuestionLength. */
  words: Uint32Array[]
}

/**
 * Tokenises and indexes every question. Throws `OdysseyRangeError`
 * (`ODYSSEY_LENGTH`) naming the question_id of a question without tokens.
 */
export function indexQuestions(
  questions: readonly VqaQuestion[],
  vocab: QuestionVocab,
  maxQuestionLength: number,
): IndexedQuestions {
  const words = questions.map(({ question, questionId }) => {
    const indices = vocab.encode(question)
    if (indices.length === 0) {
      throw new OdysseyRangeError(
        'ODYSSEY_LENGTH',
        `question_id ${questionId}: ${JSON.stringify(question)} has no tokens`,
      )
    }
    return indices.subarray(0, maxQuestionLength)
  })
  return {
    questionIds: questions.map(({ questionId }) => questionId),
    imageIds: questions.map(({ imageId }) => imageId),
    words,
  }
}

/** Word rows the model treats as unknown: UNK itself, and words the pretrained file has no vector for. */
export type UnknownWords = ReadonlySet<number>

/**
 * The model inputs of `rows` of `encoded`: image features `[n, D]`, question tokens
 * `[n, time]` (time = the longest question of the chunk) with lengths, and for frozen
 * pretrained vectors the unknown-word flags `[n, time]`.
 */
export async function chunkInputs(
  encoded: IndexedQuestions,
  rows: readonly number[],
  features: FeatureSource,
  architecture: VqaArchitecture,
  unknownWords: UnknownWords,
): Promise<Record<string, InputTensor>> {
  const inputs: Record<string, InputTensor> = {}
  if (architecture.modality !== 'question') {
    const data = await features.gather(rows.map((row) => encoded.imageIds[row] as number))
    inputs[VQA_NAMES.image] = { data, shape: [rows.length, features.dim] }
  }
  if (architecture.modality !== 'image') {
    const { ids, lengths, time } = padWords(rows.map((row) => encoded.words[row] as Uint32Array))
    inputs[VQA_NAMES.question] = { ids, shape: [rows.length, time], lengths }
    if (architecture.wordVectors === 'pretrained-frozen') {
      const flags = ids.map((id) => (unknownWords.has(id) ? 1 : 0))
      inputs[VQA_NAMES.unknownFlags] = { ids: flags, shape: [rows.length, time], lengths }
    }
  }
  return inputs
}

/** `[n, time]` ids padded with `PAD_INDEX`, and `[n]` lengths. */
function padWords(questions: readonly Uint32Array[]): { ids: Uint32Array; lengths: Uint32Array; time: number } {
  const time = questions.reduce((longest, words) => Math.max(longest, words.length), 1)
  const ids = new Uint32Array(questions.length * time).fill(PAD_INDEX)
  questions.forEach((words, row) => {
    ids.set(words, row * time)
  })
  return { ids, lengths: Uint32Array.from(questions, (words) => words.length), time }
}

/** The unknown word rows for a vocabulary of which only `known` rows have pretrained vectors. */
export function unknownWordRows(vocabSize: number, known: ReadonlySet<number>): Set<number> {
  const unknown = new Set<number>([UNK_INDEX])
  for (let row = 0; row < vocabSize; row++) if (row !== PAD_INDEX && !known.has(row)) unknown.add(row)
  return unknown
}
