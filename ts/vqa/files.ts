/**
 * Readers and writers of the real VQA v2 files:
 * - questions   `{"questions": [{"image_id", "question", "question_id"}, …], …}`
 * - annotations `{"annotations": [{"question_id", "image_id", "question_type",
 *   "answer_type", "multiple_choice_answer", "answers": [{"answer",
 *   "answer_confidence", "answer_id"} ×10]}, …], …}`
 * Records are streamed (see json-stream.ts) and validated one by one; every
 * error names the file, the record's index and, once read, its question_id.
 * Only the fields the library uses are kept in memory.
 */
import { writeFileAtomic } from '../util/fs'
import { VqaFileError, type VqaRecordRef } from './errors'
import { streamJsonArray } from './json-stream'

/** One question of a questions file. */
export interface VqaQuestion {
  questionId: number
  imageId: number
  question: string
}

/** One record of an annotations file. `answers` are the raw human answers (`[n]`, n = 10 in VQA). */
export interface VqaAnnotation {
  questionId: number
  imageId: number
  /** E.g. "what color is the"; absent in files that do not have it. */
  questionType?: string
  /** "yes/no", "number" or "other" in VQA. */
  answerType?: string
  multipleChoiceAnswer: string
  answers: string[]
}

/** A question joined with its annotation. */
export type VqaExample = VqaQuestion & VqaAnnotation

/** Reads a questions file. Throws `VqaFileError` for malformed JSON, bad or missing fields, duplicate ids. */
export async function readVqaQuestions(file: string): Promise<VqaQuestion[]> {
  const questions: VqaQuestion[] = []
  const firstIndex = new Map<number, number>()
  await streamJsonArray(file, 'questions', (value, index) => {
    const record = new RecordReader(file, value, index)
    const questionId = record.questionId()
    const question = { questionId, imageId: record.id('image_id'), question: record.nonEmptyString('question') }
    rejectDuplicate(record, firstIndex, questionId)
    questions.push(question)
  })
  return questions
}

/**
 * Reads an annotations file. Throws `VqaFileError` for malformed JSON, bad or
 * missing fields, an empty `answers` list, duplicate question ids. Repeated
 * strings (answers, types) share one copy, which is most of the memory saved.
 */
export async function readVqaAnnotations(file: string): Promise<VqaAnnotation[]> {
  const annotations: VqaAnnotation[] = []
  const firstIndex = new Map<number, number>()
  const intern = stringInterner()
  await streamJsonArray(file, 'annotations', (value, index) => {
    const record = new RecordReader(file, value, index)
    const questionId = record.questionId()
    const annotation: VqaAnnotation = {
      questionId,
      imageId: record.id('image_id'),
      multipleChoiceAnswer: intern(record.string('multiple_choice_answer')),
      answers: record.answers().map(intern),
    }
    const questionType = record.optionalString('question_type')
    const answerType = record.optionalString('answer_type')
    if (questionType !== undefined) annotation.questionType = intern(questionType)
    if (answerType !== undefined) annotation.answerType = intern(answerType)
    rejectDuplicate(record, firstIndex, questionId)
    annotations.push(annotation)
  })
  return annotations
}

/** Where the two lists came from, for messages. */
export interface VqaFilePair {
  questionsFile: string
  annotationsFile: string
}

/**
 * Joins questions with their annotations by question_id, in the questions'
 * order. Throws `VqaFileError` for a question without annotation, an
 * annotation without question, or the two disagreeing on image_id.
 */
export function joinVqa(
  questions: readonly VqaQuestion[],
  annotations: readonly VqaAnnotation[],
  files: VqaFilePair,
): VqaExample[] {
  const annotationIndex = new Map(annotations.map((annotation, index) => [annotation.questionId, index]))
  const examples = questions.map((question, index) => {
    const record = { index, questionId: question.questionId }
    const annotationAt = annotationIndex.get(question.questionId)
    if (annotationAt === undefined) {
      throw new VqaFileError(files.questionsFile, `question has no annotation in ${files.annotationsFile}`, { record })
    }
    const annotation = annotations[annotationAt] as VqaAnnotation
    if (annotation.imageId !== question.imageId) {
      const source = `its annotation (record ${annotationAt} of ${files.annotationsFile})`
      const problem = `image_id ${question.imageId}, but ${source} says ${annotation.imageId}`
      throw new VqaFileError(files.questionsFile, problem, { record })
    }
    annotationIndex.delete(question.questionId)
    return { ...annotation, ...question }
  })
  // What is left in the index are annotations no question claimed.
  const unmatched = annotationIndex.entries().next()
  if (!unmatched.done) {
    const [questionId, index] = unmatched.value
    const problem = `annotation has no question in ${files.questionsFile}`
    throw new VqaFileError(files.annotationsFile, problem, { record: { index, questionId } })
  }
  return examples
}

/** Reads and joins a questions file and its annotations file (train/val splits). */
export async function readVqaExamples(files: VqaFilePair): Promise<VqaExample[]> {
  // One after the other: parsing is CPU-bound on this thread, so reading both at once would not be faster.
  const questions = await readVqaQuestions(files.questionsFile)
  const annotations = await readVqaAnnotations(files.annotationsFile)
  return joinVqa(questions, annotations, files)
}

/** Top-level fields written before the records, as the real files have ("info", "license", "data_subtype", …). */
export type VqaFileHeader = Record<string, unknown>

/** Writes a questions file in the VQA v2 layout, atomically. */
export async function writeVqaQuestions(
  file: string,
  questions: readonly VqaQuestion[],
  header: VqaFileHeader = {},
): Promise<void> {
  const records = questions.map(({ questionId, imageId, question }) => ({
    image_id: imageId,
    question,
    question_id: questionId,
  }))
  await writeFileAtomic(file, [JSON.stringify({ ...header, questions: records })])
}

/**
 * Writes an annotations file in the VQA v2 layout, atomically. Answers get
 * `answer_id` 1..n and `answer_confidence` "yes" (the library does not use
 * either); `question_type` / `answer_type` are written when present.
 */
export async function writeVqaAnnotations(
  file: string,
  annotations: readonly VqaAnnotation[],
  header: VqaFileHeader = {},
): Promise<void> {
  const records = annotations.map((annotation) => ({
    question_id: annotation.questionId,
    image_id: annotation.imageId,
    ...(annotation.questionType === undefined ? {} : { question_type: annotation.questionType }),
    ...(annotation.answerType === undefined ? {} : { answer_type: annotation.answerType }),
    multiple_choice_answer: annotation.multipleChoiceAnswer,
    answers: annotation.answers.map((answer, index) => ({ answer, answer_confidence: 'yes', answer_id: index + 1 })),
  }))
  await writeFileAtomic(file, [JSON.stringify({ ...header, annotations: records })])
}

function rejectDuplicate(record: RecordReader, firstIndex: Map<number, number>, questionId: number) {
  const first = firstIndex.get(questionId)
  if (first !== undefined) record.fail(`duplicate question_id ${questionId} (first at record ${first})`)
  firstIndex.set(questionId, record.ref.index)
}

/** One copy of each distinct string, so 4 million answers "yes" cost one string. */
function stringInterner(): (text: string) => string {
  const pool = new Map<string, string>()
  return (text) => {
    const pooled = pool.get(text)
    if (pooled !== undefined) return pooled
    pool.set(text, text)
    return text
  }
}

/** Typed access to the fields of one JSON record, failing with the file and record in the message. */
class RecordReader {
  readonly ref: VqaRecordRef
  private readonly fields: Record<string, unknown>

  constructor(
    private readonly file: string,
    value: unknown,
    index: number,
  ) {
    this.ref = { index }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      this.fail(`expected an object, got ${describe(value)}`)
    }
    this.fields = value as Record<string, unknown>
  }

  fail(problem: string): never {
    throw new VqaFileError(this.file, problem, { record: this.ref })
  }

  /** Reads question_id first, so later messages can name it. */
  questionId(): number {
    const questionId = this.id('question_id')
    this.ref.questionId = questionId
    return questionId
  }

  /** A non-negative integer id, exactly representable in a double (VQA ids are < 2^53). */
  id(name: string): number {
    const value = this.required(name)
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
      this.fail(`field "${name}" must be a non-negative integer, got ${describe(value)}`)
    }
    return value
  }

  string(name: string): string {
    const value = this.required(name)
    if (typeof value !== 'string') this.fail(`field "${name}" must be a string, got ${describe(value)}`)
    return value
  }

  nonEmptyString(name: string): string {
    const value = this.string(name)
    if (value.trim() === '') this.fail(`field "${name}" is empty`)
    return value
  }

  optionalString(name: string): string | undefined {
    return this.fields[name] === undefined ? undefined : this.string(name)
  }

  /** The `answer` of each entry of `answers`, which must be a non-empty array. */
  answers(): string[] {
    const value = this.required('answers')
    if (!Array.isArray(value)) this.fail(`field "answers" must be an array, got ${describe(value)}`)
    if (value.length === 0) this.fail('field "answers" is empty: VQA accuracy needs human answers')
    return value.map((entry: unknown, position) => {
      const answer = (entry as { answer?: unknown } | null)?.answer
      if (typeof answer !== 'string') this.fail(`answers[${position}].answer must be a string, got ${describe(answer)}`)
      return answer
    })
  }

  private required(name: string): unknown {
    const value = this.fields[name]
    if (value === undefined) this.fail(`field "${name}" is missing`)
    return value
  }
}

/** A short description of a JSON value for messages. */
function describe(value: unknown): string {
  if (value === undefined) return 'nothing'
  const text = JSON.stringify(value)
  return text.length > 40 ? `${text.slice(0, 37)}...` : text
}
