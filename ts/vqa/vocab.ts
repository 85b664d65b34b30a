/**
 * Vocabularies: question words → embedding rows, and the top-K answers →
 * softmax classes (SPEC §4: "a softmax over the K most frequent answers").
 * Both serialise to plain JSON so a trained model can ship them.
 */
import { OdysseyRangeError, OdysseyTypeError } from '../errors'
import { normalizeAnswer } from './answers'
import type { VqaAnnotation } from './files'
import { vqaAccuracy } from './metric'
import { tokenizeQuestion } from './tokenize'

/** Row of the padding token: steps past a question's length hold it. */
export const PAD_INDEX = 0
/** Row of every word the vocabulary does not know. */
export const UNK_INDEX = 1
/** Spellings of the reserved entries; the tokeniser splits off `<` and `>`, so no question word can collide. */
export const PAD_TOKEN = '<pad>'
export const UNK_TOKEN = '<unk>'

/** A padded batch of encoded questions, ready for an embedding layer and a recurrent layer's `lengths`. */
export interface EncodedQuestions {
  /** `[batch, time]`, row-major word indices; `PAD_INDEX` past each length. */
  tokens: Uint32Array
  /** `[batch]`, each in 1..time. */
  lengths: Uint32Array
  batch: number
  time: number
  /** How many questions had more than `time` tokens and were cut (their first `time` tokens are kept). */
  truncated: number
}

export interface QuestionVocabOptions {
  /** A word needs at least this many occurrences to get its own index (default 1: every word). */
  minCount?: number
}

export interface EncodeQuestionsOptions {
  /** Cut questions to at most this many tokens (the VQA baseline uses 26). Default: no limit. */
  maxLength?: number
  /** Pad to exactly this many steps instead of the longest question in the batch (after `maxLength`). */
  time?: number
}

/** JSON form of a `QuestionVocab`: `words[i]` is the word of index i, `words[0..1]` the reserved tokens. */
export interface QuestionVocabJSON {
  kind: 'odyssey-vqa-question-vocab'
  words: string[]
}

/** Question words ↔ indices, with `PAD_INDEX` = 0 and `UNK_INDEX` = 1 reserved. */
export class QuestionVocab {
  private readonly indices: ReadonlyMap<string, number>

  private constructor(readonly words: readonly string[]) {
    this.indices = new Map(words.map((word, index) => [word, index]))
  }

  /**
   * The words of `questions` (tokenised with `tokenizeQuestion`) that occur at
   * least `minCount` times, most frequent first (ties in code-point order, so
   * the same questions always give the same indices).
   */
  static build(questions: Iterable<string>, options: QuestionVocabOptions = {}): QuestionVocab {
    const minCount = options.minCount ?? 1
    requirePositiveInteger('minCount', minCount)
    const counts = new Map<string, number>()
    for (const question of questions) {
      for (const token of tokenizeQuestion(question)) counts.set(token, (counts.get(token) ?? 0) + 1)
    }
    const kept = [...counts].filter(([, count]) => count >= minCount)
    return new QuestionVocab([PAD_TOKEN, UNK_TOKEN, ...byCountThenText(kept)])
  }

  static fromJSON(json: unknown): QuestionVocab {
    const words = stringArrayField(json, 'odyssey-vqa-question-vocab', 'words')
    if (words[PAD_INDEX] !== PAD_TOKEN || words[UNK_INDEX] !== UNK_TOKEN) {
      throw new OdysseyRangeError(
        'ODYSSEY_INVALID',
        `QuestionVocab.fromJSON: words must start with "${PAD_TOKEN}", "${UNK_TOKEN}"`,
      )
    }
    return new QuestionVocab(uniqueEntries(words, 'QuestionVocab.fromJSON: words'))
  }

  toJSON(): QuestionVocabJSON {
    return { kind: 'odyssey-vqa-question-vocab', words: [...this.words] }
  }

  /** Number of rows an embedding over this vocabulary needs (reserved entries included). */
  get size(): number {
    return this.words.length
  }

  /** Index of a (tokenised, lowercase) word; `UNK_INDEX` if unknown. */
  indexOf(word: string): number {
    return this.indices.get(word) ?? UNK_INDEX
  }

  /** Word indices of one question, unpadded: `[tokens]`. */
  encode(question: string): Uint32Array {
    return Uint32Array.from(tokenizeQuestion(question), (token) => this.indexOf(token))
  }

  /**
   * A padded batch `[batch, time]` of `questions`. Throws `OdysseyRangeError`
   * (`ODYSSEY_LENGTH`) for a question without tokens, since a recurrent layer
   * needs every length in 1..time.
   */
  encodeBatch(questions: readonly string[], options: EncodeQuestionsOptions = {}): EncodedQuestions {
    const encoded = questions.map((question) => this.encode(question))
    encoded.forEach((indices, row) => {
      if (indices.length === 0) {
        throw new OdysseyRangeError(
          'ODYSSEY_LENGTH',
          `questions[${row}] = ${JSON.stringify(questions[row])} has no tokens`,
        )
      }
    })
    const time = paddedTime(encoded, options)
    const tokens = new Uint32Array(questions.length * time).fill(PAD_INDEX)
    const lengths = new Uint32Array(questions.length)
    let truncated = 0
    encoded.forEach((indices, row) => {
      lengths[row] = Math.min(indices.length, time)
      if (indices.length > time) truncated += 1
      tokens.set(indices.subarray(0, time), row * time)
    })
    return { tokens, lengths, batch: questions.length, time, truncated }
  }
}

/** Steps of the padded batch: `options.time`, else the longest question cut to `maxLength`. */
function paddedTime(encoded: readonly Uint32Array[], options: EncodeQuestionsOptions): number {
  if (options.maxLength !== undefined) requirePositiveInteger('maxLength', options.maxLength)
  if (options.time !== undefined) {
    requirePositiveInteger('time', options.time)
    return options.time
  }
  const longest = encoded.reduce((max, indices) => Math.max(max, indices.length), 1)
  return Math.min(longest, options.maxLength ?? longest)
}

export interface AnswerVocabOptions {
  /** Number of answer classes K (default 1000, as in Antol et al.). Fewer if the data has fewer distinct answers. */
  topK?: number
}

/** JSON form of an `AnswerVocab`: `answers[k]` is class k. */
export interface AnswerVocabJSON {
  kind: 'odyssey-vqa-answer-vocab'
  answers: string[]
}

/**
 * The K most frequent `multiple_choice_answer`s, normalised with
 * `normalizeAnswer` (so "Two" and "2" are one class), most frequent first.
 * Class indices are 0..K−1; questions whose answer is not among them get
 * label −1 (the VQA baseline drops them from training).
 */
export class AnswerVocab {
  private readonly indices: ReadonlyMap<string, number>

  private constructor(readonly answers: readonly string[]) {
    this.indices = new Map(answers.map((answer, index) => [answer, index]))
  }

  static build(
    annotations: Iterable<Pick<VqaAnnotation, 'multipleChoiceAnswer'>>,
    options: AnswerVocabOptions = {},
  ): AnswerVocab {
    const topK = options.topK ?? 1000
    requirePositiveInteger('topK', topK)
    const counts = new Map<string, number>()
    for (const { multipleChoiceAnswer } of annotations) {
      const answer = normalizeAnswer(multipleChoiceAnswer)
      counts.set(answer, (counts.get(answer) ?? 0) + 1)
    }
    return new AnswerVocab(byCountThenText([...counts]).slice(0, topK))
  }

  static fromJSON(json: unknown): AnswerVocab {
    const answers = stringArrayField(json, 'odyssey-vqa-answer-vocab', 'answers')
    return new AnswerVocab(uniqueEntries(answers, 'AnswerVocab.fromJSON: answers'))
  }

  toJSON(): AnswerVocabJSON {
    return { kind: 'odyssey-vqa-answer-vocab', answers: [...this.answers] }
  }

  /** K, the number of softmax classes. */
  get size(): number {
    return this.answers.length
  }

  /** Class of an answer after `normalizeAnswer`; −1 if it is not among the top K. */
  indexOf(answer: string): number {
    return this.indices.get(normalizeAnswer(answer)) ?? -1
  }

  /** The answer string of class `index` (what a model predicts, and what `evaluateVqa` scores). */
  answerAt(index: number): string {
    const answer = this.answers[index]
    if (answer === undefined) {
      throw new OdysseyRangeError('ODYSSEY_INVALID', `answer class ${index} is outside 0..${this.answers.length - 1}`)
    }
    return answer
  }

  /** Hard labels `[batch]`: the class of each `multiple_choice_answer`, −1 when outside the top K. */
  encodeLabels(annotations: readonly Pick<VqaAnnotation, 'multipleChoiceAnswer'>[]): Int32Array {
    return Int32Array.from(annotations, ({ multipleChoiceAnswer }) => this.indexOf(multipleChoiceAnswer))
  }

  /**
   * Soft targets `[batch, K]`: entry (b, k) is the official VQA accuracy that
   * predicting class k would score on question b. Rows are not
   * distributions: with disagreeing humans several classes can score, and a
   * row is all zero when no human answer is in the vocabulary.
   */
  scoreTargets(annotations: readonly Pick<VqaAnnotation, 'answers'>[]): Float32Array {
    const scores = new Float32Array(annotations.length * this.size)
    annotations.forEach(({ answers }, row) => {
      for (const human of new Set(answers)) {
        const index = this.indexOf(human)
        if (index >= 0) scores[row * this.size + index] = vqaAccuracy(this.answers[index] as string, answers)
      }
    })
    return scores
  }

  /** Fraction of `annotations` whose `multiple_choice_answer` is in the vocabulary (1 for an empty list). */
  coverage(annotations: readonly Pick<VqaAnnotation, 'multipleChoiceAnswer'>[]): number {
    if (annotations.length === 0) return 1
    const covered = annotations.filter(({ multipleChoiceAnswer }) => this.indexOf(multipleChoiceAnswer) >= 0)
    return covered.length / annotations.length
  }
}

/** Keys sorted by descending count, ties by code point, so builds are reproducible. */
function byCountThenText(counts: readonly (readonly [string, number])[]): string[] {
  return [...counts]
    .sort(([textA, countA], [textB, countB]) => countB - countA || (textA < textB ? -1 : textA > textB ? 1 : 0))
    .map(([text]) => text)
}

function requirePositiveInteger(name: string, value: number) {
  if (!Number.isInteger(value) || value < 1) {
    throw new OdysseyRangeError('ODYSSEY_INVALID', `${name} must be a positive integer, got ${value}`)
  }
}

/** `json[field]` as a string array, after checking `json.kind`. */
function stringArrayField(json: unknown, kind: string, field: string): string[] {
  const record = json as Record<string, unknown> | null
  const values = record?.[field]
  if (record?.kind !== kind || !Array.isArray(values) || !values.every((value) => typeof value === 'string')) {
    throw new OdysseyTypeError('ODYSSEY_TYPE', `expected {"kind": "${kind}", "${field}": [strings]}`)
  }
  return values as string[]
}

function uniqueEntries(values: string[], label: string): string[] {
  const seen = new Set<string>()
  for (const value of values) {
    if (seen.has(value)) throw new OdysseyRangeError('ODYSSEY_INVALID', `${label} lists ${JSON.stringify(value)} twice`)
    seen.add(value)
  }
  return values
}
