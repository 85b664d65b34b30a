/**
 * Errors of the VQA data path. They extend the library's classes (so
 * `isOdysseyError` and `error.code` work as everywhere else) and add the
 * file, record and value a user needs to find the problem in a data set of
 * hundreds of thousands of records.
 */
import { OdysseyFileError, OdysseyRangeError } from '../errors'

/** Which record of a data file an error is about: its index in the file's array and, once known, its id. */
export interface VqaRecordRef {
  /** 0-based index in the file's `questions` / `annotations` array. */
  index: number
  questionId?: number
}

export interface VqaFileErrorDetails {
  record?: VqaRecordRef
  /** Byte offset in the file where the problem was found (malformed JSON, a bad header). */
  byteOffset?: number
}

/**
 * A data file that cannot be used as what it claims to be: malformed JSON, a
 * record with a missing or mistyped field, a duplicate id, a question without
 * an annotation, a corrupt safetensors header. Code `ODYSSEY_FORMAT`. The message
 * starts with the file path and, when there is one, the record.
 */
export class VqaFileError extends OdysseyFileError {
  readonly record?: VqaRecordRef

  constructor(file: string, problem: string, details: VqaFileErrorDetails = {}, options?: ErrorOptions) {
    const { record, byteOffset } = details
    super(file, record === undefined ? problem : `${describeRecord(record)}${problem}`, { byteOffset }, options)
    this.record = record
  }
}

function describeRecord({ index, questionId }: VqaRecordRef): string {
  return `record ${index}${questionId === undefined ? '' : ` (question_id ${questionId})`}: `
}

/** The generic readers' `OdysseyFileError` (a corrupt safetensors file) as a `VqaFileError`, the original its cause. */
export function asVqaFileError(error: unknown): unknown {
  if (!(error instanceof OdysseyFileError) || error instanceof VqaFileError) return error
  return new VqaFileError(error.file, error.problem, { byteOffset: error.byteOffset }, { cause: error })
}

/**
 * An id that is not where it must be: an image id with no row in the
 * features file, a prediction for a question that has no annotation, an
 * annotated question without a prediction. Code `ODYSSEY_KEY`.
 */
export class VqaLookupError extends OdysseyRangeError {
  constructor(
    readonly key: number,
    message: string,
    options?: ErrorOptions,
  ) {
    super('ODYSSEY_KEY', message, options)
  }
}

/** A file whose array sizes differ from what the caller needs (the feature dimension). Code `ODYSSEY_SHAPE`. */
export class VqaShapeError extends OdysseyRangeError {
  constructor(
    readonly file: string,
    readonly expected: readonly number[],
    readonly actual: readonly number[],
    message: string,
  ) {
    super('ODYSSEY_SHAPE', `${file}: ${message}`)
  }
}
