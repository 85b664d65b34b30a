/**
 * The run log: what a training run writes, one JSON object per line, next to
 * its checkpoint (`<dir>/log.jsonl`, see `runLogPath`), and what `writeReport`
 * reads back.
 *
 * ## Format `odyssey-run-log`, version 1
 *
 * Every line is one JSON object with a `type`. Blank lines are ignored. Fields
 * not listed below are allowed and ignored (room for later versions); a listed
 * field with the wrong type is an error naming the line. JSON has no NaN or
 * Infinity: the fields marked "or null" hold null when the value was not
 * finite (`JSON.stringify` writes NaN and ±Infinity as null).
 *
 * - `run` (the first record of every file; a file holds one run, and a record
 *   list may hold several, each starting with its `run` record):
 *   `format: "odyssey-run-log"`, `version: 1`, `label` (what the report calls
 *   the run, e.g. `"LSTM"`), optional `task` (`"adding problem"`), `startedAt`
 *   (ISO 8601), `config` (any JSON object: hyperparameters to show).
 * - `step` (one per optimizer step): `step` (the model's update counter after
 *   this step, as `Model.stepCount`: 1 after the first update, not advanced by
 *   a skipped one), `epoch` (0-based), `loss` or null, `gradNorm` (global L2
 *   norm of the gradients BEFORE clipping) or null, `clipThreshold` (null when not
 *   clipping), `clipped` (the norm exceeded the threshold and was scaled
 *   down), `applied` (false when the step was skipped as non-finite),
 *   `learningRate`, `examplesPerSecond` or null.
 * - `epoch` (one per epoch, after it): `epoch`, `step` (updates done so far),
 *   `loss` (training loss of the epoch) or null, optional `validationLoss` or
 *   null, `metrics` (name → number or null, e.g. `{"accuracy": 0.52}`),
 *   `seconds` (wall time of the epoch).
 * - `gradientFlow` (per recurrent layer, whenever measured): `step` (updates
 *   done when measured), `epoch`, `model` (`"LSTM"`, `"GRU"`, `"simple RNN"`), `layer` (e.g. `"lstm.l0"`),
 *   `quantity` (`"c"`: the norms are ‖∂J/∂c(k)‖, LSTM; `"h"`: ‖∂J/∂h(k)‖,
 *   GRU and simple RNN), `norms` (`[time]`, entry k for time step k, or null).
 * - `vqa` (a VQA evaluation): `step`, `epoch`, `split` (`"val"`), `accuracy`
 *   (overall VQA accuracy, a fraction in 0..1), `accuracyByQuestionType`
 *   (question type → fraction), optional `questionsByType` (type → count),
 *   `confusion`: `answers` (the K most frequent reference answers) and
 *   `counts` (K×K, `counts[i][j]` = questions whose reference answer is
 *   `answers[i]` that the model answered `answers[j]`).
 * - `callback` (what a built-in callback of `fit` did, see ts/model/callbacks.ts): `step`,
 *   `epoch` (the epoch just finished), `callback` (`"modelCheckpoint"`, `"earlyStopping"`,
 *   `"reduceLrOnPlateau"`), `action` (`"saved"`, `"stopped"`, `"restoredBestWeights"`,
 *   `"reducedLearningRate"`), optional `monitor` (the watched quantity, e.g. `"valLoss"`) and
 *   `value` (its value, or null), optional `detail` (a sentence). The report ignores them.
 *
 * Example:
 *
 *     {"type":"run","format":"odyssey-run-log","version":1,"label":"LSTM","task":"adding problem"}
 *     {"type":"step","step":1,"epoch":0,"loss":0.18,"gradNorm":2.4,"clipThreshold":1,"clipped":true,"applied":true,"learningRate":0.01,"examplesPerSecond":5120}
 *     {"type":"epoch","epoch":0,"step":100,"loss":0.16,"validationLoss":0.17,"metrics":{}}
 *     {"type":"gradientFlow","step":100,"epoch":0,"model":"LSTM","layer":"lstm.l0","quantity":"c","norms":[0.01,0.02,0.05]}
 */
import { closeSync, mkdirSync, openSync, readFileSync, statSync, writeSync } from 'node:fs'
import { dirname, join } from 'node:path'

import { OdysseyRangeError } from '../errors'
import { describe } from '../validate'
import { RunLogError, RunRecordError } from './errors'

export const RUN_LOG_FORMAT = 'odyssey-run-log'
export const RUN_LOG_VERSION = 1

export interface RunHeaderRecord {
  type: 'run'
  format: typeof RUN_LOG_FORMAT
  version: typeof RUN_LOG_VERSION
  label: string
  task?: string
  startedAt?: string
  config?: Record<string, unknown>
}

export interface StepRecord {
  type: 'step'
  /** The model's update counter after this step (`Model.stepCount`). */
  step: number
  epoch: number
  loss: number | null
  /** Global L2 norm of the gradients before clipping. */
  gradNorm: number | null
  /** null when not clipping. */
  clipThreshold: number | null
  clipped: boolean
  /** False when the step was skipped (non-finite loss or gradient). */
  applied: boolean
  learningRate: number
  examplesPerSecond: number | null
}

export interface EpochRecord {
  type: 'epoch'
  epoch: number
  /** Updates done by the end of this epoch. */
  step: number
  loss: number | null
  validationLoss?: number | null
  metrics?: Record<string, number | null>
  seconds?: number
}

export interface GradientFlowRecord {
  type: 'gradientFlow'
  step: number
  epoch: number
  /** `"LSTM"`, `"GRU"`, `"simple RNN"`: what the gradient-flow chart compares. */
  model: string
  /** The recurrent layer entry, e.g. `"lstm.l0"`. */
  layer: string
  /** `'c'`: norms of ∂J/∂c(k) (LSTM); `'h'`: of ∂J/∂h(k) (GRU, simple RNN). */
  quantity: 'c' | 'h'
  /** `[time]`: the norm at time step k, null when not finite. */
  norms: (number | null)[]
}

export interface VqaRecord {
  type: 'vqa'
  step: number
  epoch: number
  split: string
  /** Overall VQA accuracy, 0..1. */
  accuracy: number
  /** Question type → VQA accuracy, 0..1. */
  accuracyByQuestionType: Record<string, number>
  /** Question type → number of questions. */
  questionsByType?: Record<string, number>
  confusion: {
    /** The K most frequent reference answers. */
    answers: string[]
    /** `[K, K]`: `counts[i][j]` questions with reference answer `answers[i]` answered `answers[j]`. */
    counts: number[][]
  }
}

export interface CallbackRecord {
  type: 'callback'
  step: number
  epoch: number
  callback: string
  action: string
  monitor?: string
  value?: number | null
  detail?: string
}

export type RunLogRecord = RunHeaderRecord | StepRecord | EpochRecord | GradientFlowRecord | VqaRecord | CallbackRecord

/** What a caller gives for each record: the record without its `type` (and the header without its format tag). */
export type RunInfo = Omit<RunHeaderRecord, 'type' | 'format' | 'version'>
type Body<R extends RunLogRecord> = Omit<R, 'type'>

/** `<checkpointDir>/log.jsonl`: where a run's log lives, beside its checkpoint. */
export function runLogPath(checkpointDir: string): string {
  return join(checkpointDir, 'log.jsonl')
}

// ---------------------------------------------------------------------------------------------
// Validation: one reader per field kind, each naming the field it rejects.

type Fields = Record<string, unknown>

function fail(field: string, expected: string, value: unknown): never {
  throw new RunRecordError(field, `expected ${expected}, got ${describe(value)}`)
}

function objectAt(value: unknown, field: string): Fields {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(field, 'an object', value)
  return value as Fields
}

function text(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length === 0) fail(field, 'a non-empty string', value)
  return value
}

function flag(value: unknown, field: string): boolean {
  if (typeof value !== 'boolean') fail(field, 'true or false', value)
  return value
}

function count(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) fail(field, 'an integer >= 0', value)
  return value
}

/** A number ≥ 0; NaN and ±Infinity are accepted only where `nullable` (they are written as null). */
function magnitude(value: unknown, field: string, nullable: boolean): number | null {
  if (nullable && (value === null || (typeof value === 'number' && !Number.isFinite(value)))) return null
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    fail(field, nullable ? 'a number >= 0 or null' : 'a finite number >= 0', value)
  }
  return value
}

/** A loss: any finite number (a log-likelihood loss can be negative) or null. */
function lossValue(value: unknown, field: string): number | null {
  if (value === null || (typeof value === 'number' && !Number.isFinite(value))) return null
  if (typeof value !== 'number') fail(field, 'a number or null', value)
  return value
}

function fraction(value: unknown, field: string): number {
  if (typeof value !== 'number' || !(value >= 0 && value <= 1)) fail(field, 'a fraction in 0..1', value)
  return value
}

function optional<T>(fields: Fields, key: string, read: (value: unknown, field: string) => T): T | undefined {
  return fields[key] === undefined ? undefined : read(fields[key], key)
}

function numberMap<T>(value: unknown, field: string, read: (value: unknown, field: string) => T): Record<string, T> {
  const entries = Object.entries(objectAt(value, field)).map(([name, entry]) => [name, read(entry, `${field}.${name}`)])
  return Object.fromEntries(entries) as Record<string, T>
}

function checkHeader(fields: Fields): RunHeaderRecord {
  if (fields.format !== RUN_LOG_FORMAT) fail('format', `"${RUN_LOG_FORMAT}"`, fields.format)
  if (fields.version !== RUN_LOG_VERSION) {
    throw new RunRecordError(
      'version',
      `this odyssey-rnn reads version ${RUN_LOG_VERSION} of the run log, got ${describe(fields.version)}`,
    )
  }
  text(fields.label, 'label')
  optional(fields, 'task', text)
  optional(fields, 'startedAt', text)
  optional(fields, 'config', objectAt)
  return fields as unknown as RunHeaderRecord
}

function checkStep(fields: Fields): StepRecord {
  count(fields.step, 'step')
  count(fields.epoch, 'epoch')
  lossValue(fields.loss, 'loss')
  magnitude(fields.gradNorm, 'gradNorm', true)
  if (fields.clipThreshold !== null) magnitude(fields.clipThreshold, 'clipThreshold', false)
  flag(fields.clipped, 'clipped')
  flag(fields.applied, 'applied')
  magnitude(fields.learningRate, 'learningRate', false)
  magnitude(fields.examplesPerSecond, 'examplesPerSecond', true)
  return fields as unknown as StepRecord
}

function checkEpoch(fields: Fields): EpochRecord {
  count(fields.epoch, 'epoch')
  count(fields.step, 'step')
  lossValue(fields.loss, 'loss')
  optional(fields, 'validationLoss', lossValue)
  optional(fields, 'metrics', (value, field) => numberMap(value, field, lossValue))
  optional(fields, 'seconds', (value, field) => magnitude(value, field, false))
  return fields as unknown as EpochRecord
}

function checkGradientFlow(fields: Fields): GradientFlowRecord {
  count(fields.step, 'step')
  count(fields.epoch, 'epoch')
  text(fields.model, 'model')
  text(fields.layer, 'layer')
  if (fields.quantity !== 'c' && fields.quantity !== 'h')
    fail('quantity', '"c" (LSTM) or "h" (GRU, simple RNN)', fields.quantity)
  const norms = fields.norms
  if (!Array.isArray(norms) || norms.length === 0) fail('norms', 'a non-empty array (one norm per time step)', norms)
  norms.forEach((norm, k) => {
    magnitude(norm, `norms[${k}]`, true)
  })
  return fields as unknown as GradientFlowRecord
}

function checkConfusion(value: unknown): void {
  const confusion = objectAt(value, 'confusion')
  const answers = confusion.answers
  if (!Array.isArray(answers) || answers.length === 0)
    fail('confusion.answers', 'a non-empty array of answers', answers)
  answers.forEach((answer, i) => {
    if (typeof answer !== 'string') fail(`confusion.answers[${i}]`, 'a string', answer)
  })
  const counts = confusion.counts
  const k = answers.length
  if (!Array.isArray(counts) || counts.length !== k) fail('confusion.counts', `${k} rows (one per answer)`, counts)
  counts.forEach((row: unknown, i) => {
    if (!Array.isArray(row) || row.length !== k) fail(`confusion.counts[${i}]`, `an array of ${k} counts`, row)
    row.forEach((cell, j) => {
      count(cell, `confusion.counts[${i}][${j}]`)
    })
  })
}

function checkVqa(fields: Fields): VqaRecord {
  count(fields.step, 'step')
  count(fields.epoch, 'epoch')
  text(fields.split, 'split')
  fraction(fields.accuracy, 'accuracy')
  numberMap(fields.accuracyByQuestionType, 'accuracyByQuestionType', fraction)
  optional(fields, 'questionsByType', (value, field) => numberMap(value, field, count))
  checkConfusion(fields.confusion)
  return fields as unknown as VqaRecord
}

function checkCallback(fields: Fields): CallbackRecord {
  count(fields.step, 'step')
  count(fields.epoch, 'epoch')
  text(fields.callback, 'callback')
  text(fields.action, 'action')
  optional(fields, 'monitor', text)
  optional(fields, 'value', lossValue)
  optional(fields, 'detail', text)
  return fields as unknown as CallbackRecord
}

const CHECKS: Record<RunLogRecord['type'], (fields: Fields) => RunLogRecord> = {
  run: checkHeader,
  step: checkStep,
  epoch: checkEpoch,
  gradientFlow: checkGradientFlow,
  vqa: checkVqa,
  callback: checkCallback,
}

/**
 * Checks that `value` is a record of this format (see the top of this file) and returns it typed.
 * @throws RunRecordError naming the first offending field.
 */
export function checkRecord(value: unknown): RunLogRecord {
  const fields = objectAt(value, 'record')
  const check = Object.hasOwn(CHECKS, fields.type as string) ? CHECKS[fields.type as RunLogRecord['type']] : undefined
  if (check === undefined) fail('type', `one of ${Object.keys(CHECKS).join(', ')}`, fields.type)
  return check(fields)
}

// ---------------------------------------------------------------------------------------------
// Reading

/**
 * The records of a run log's text. `file` names the source in errors.
 * @throws RunLogError `file:line: problem` for the first line that is not JSON or not a valid record,
 *   or when the first record is not a `run` header.
 */
export function parseRunLog(text: string, file: string): RunLogRecord[] {
  const records: RunLogRecord[] = []
  text.split('\n').forEach((line, index) => {
    if (line.trim() === '') return
    const record = parseLine(line, file, index + 1)
    if (records.length === 0 && record.type !== 'run') {
      throw new RunLogError(
        file,
        index + 1,
        `the first record must be the run header {"type":"run",...}, got "${record.type}"`,
      )
    }
    records.push(record)
  })
  if (records.length === 0) throw new RunLogError(file, undefined, 'no records (an empty run log)')
  return records
}

function parseLine(line: string, file: string, lineNumber: number): RunLogRecord {
  let value: unknown
  try {
    value = JSON.parse(line)
  } catch (error) {
    throw new RunLogError(file, lineNumber, `not JSON: ${(error as Error).message}`, { cause: error })
  }
  try {
    return checkRecord(value)
  } catch (error) {
    if (!(error instanceof RunRecordError)) throw error
    throw new RunLogError(file, lineNumber, error.message, { cause: error })
  }
}

/** The records of the run log at `file`. @throws RunLogError (unreadable file or a malformed line). */
export function readRunLog(file: string): RunLogRecord[] {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (error) {
    throw new RunLogError(file, undefined, `cannot read: ${(error as Error).message}`, { cause: error }, 'ODYSSEY_IO')
  }
  return parseRunLog(text, file)
}

// ---------------------------------------------------------------------------------------------
// Writing

export interface RunLoggerOptions {
  /**
   * Keep the records already in the file (a resumed run) instead of starting it afresh. The
   * header is written only when the file is empty or new. Default false.
   */
  append?: boolean
}

/**
 * Appends records to a run log, one line and one synchronous write each, so a crash loses at
 * most the record being written. Every record is checked first (`checkRecord`): a bad value
 * throws `RunRecordError` at the call that made it, not when the report is drawn.
 *
 *     const log = new RunLogger(runLogPath(checkpointDir), { label: 'LSTM', task: 'adding problem' })
 *     log.step({ step, epoch, loss, gradNorm, clipThreshold: 1, clipped, applied, learningRate, examplesPerSecond })
 *     log.close()
 */
export class RunLogger {
  readonly file: string
  private fd: number | null

  /** Creates the directory if needed and writes the `run` header. @throws RunLogError when the file cannot be opened. */
  constructor(file: string, run: RunInfo, options: RunLoggerOptions = {}) {
    const header = checkRecord({ ...run, type: 'run', format: RUN_LOG_FORMAT, version: RUN_LOG_VERSION })
    this.file = file
    try {
      mkdirSync(dirname(file), { recursive: true })
      this.fd = openSync(file, options.append ? 'a' : 'w')
    } catch (error) {
      throw new RunLogError(
        file,
        undefined,
        `cannot open for writing: ${(error as Error).message}`,
        { cause: error },
        'ODYSSEY_IO',
      )
    }
    if (statSync(file).size === 0) this.write(header)
  }

  step(record: Body<StepRecord>): void {
    this.write({ type: 'step', ...record })
  }

  epoch(record: Body<EpochRecord>): void {
    this.write({ type: 'epoch', ...record })
  }

  gradientFlow(record: Body<GradientFlowRecord>): void {
    this.write({ type: 'gradientFlow', ...record })
  }

  vqa(record: Body<VqaRecord>): void {
    this.write({ type: 'vqa', ...record })
  }

  callback(record: Body<CallbackRecord>): void {
    this.write({ type: 'callback', ...record })
  }

  /** Checks and appends one record. @throws RunRecordError, or OdysseyRangeError `ODYSSEY_STATE` after close(). */
  write(record: RunLogRecord): void {
    const line = `${JSON.stringify(checkRecord(record))}\n`
    if (this.fd === null) throw new OdysseyRangeError('ODYSSEY_STATE', `${this.file}: the run logger is closed`)
    writeSync(this.fd, line)
  }

  /** Closes the file; later writes throw. Calling it twice is harmless. */
  close(): void {
    if (this.fd === null) return
    closeSync(this.fd)
    this.fd = null
  }
}
