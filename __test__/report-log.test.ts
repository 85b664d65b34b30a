/**
 * The run log: what RunLogger writes reads back as the same records, bad
 * values are refused when written, and every malformed line of a file is
 * reported with its line number and field.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { afterAll, describe, expect, it } from 'vitest'

import {
  RunLogError,
  RunLogger,
  RunRecordError,
  parseRunLog,
  readRunLog,
  runLogPath,
  type StepRecord,
} from '../ts/report'

const work = mkdtempSync(join(tmpdir(), 'odyssey-report-log-'))
afterAll(() => rmSync(work, { recursive: true, force: true }))

const STEP: Omit<StepRecord, 'type'> = {
  step: 0,
  epoch: 0,
  loss: 0.25,
  gradNorm: 3.5,
  clipThreshold: 1,
  clipped: true,
  applied: true,
  learningRate: 0.01,
  examplesPerSecond: 1200,
}
const HEADER = '{"type":"run","format":"odyssey-run-log","version":1,"label":"LSTM"}'

describe('RunLogger', () => {
  it('writes a header and one line per record that read back as the same records', () => {
    const file = runLogPath(join(work, 'roundtrip', 'checkpoint'))
    const log = new RunLogger(file, { label: 'LSTM', task: 'adding problem', config: { hiddenSize: 8 } })
    log.step(STEP)
    log.epoch({ epoch: 0, step: 1, loss: 0.25, validationLoss: 0.3, metrics: { accuracy: 0.5 }, seconds: 0.1 })
    log.gradientFlow({ step: 1, epoch: 0, model: 'LSTM', layer: 'lstm.l0', quantity: 'c', norms: [0.1, 0.2, 0.4] })
    log.vqa({
      step: 1,
      epoch: 0,
      split: 'val',
      accuracy: 0.4,
      accuracyByQuestionType: { 'how many': 0.3 },
      confusion: {
        answers: ['yes', 'no'],
        counts: [
          [3, 1],
          [2, 4],
        ],
      },
    })
    log.close()

    expect(file).toBe(join(work, 'roundtrip', 'checkpoint', 'log.jsonl'))
    expect(readFileSync(file, 'utf8').trimEnd().split('\n')).toHaveLength(5)
    const records = readRunLog(file)
    expect(records.map((r) => r.type)).toEqual(['run', 'step', 'epoch', 'gradientFlow', 'vqa'])
    expect(records[0]).toMatchObject({
      format: 'odyssey-run-log',
      version: 1,
      label: 'LSTM',
      config: { hiddenSize: 8 },
    })
    expect(records[1]).toEqual({ type: 'step', ...STEP })
    expect(records[3]).toMatchObject({ norms: [0.1, 0.2, 0.4], quantity: 'c' })
  })

  it('writes a non-finite loss and gradient norm as null (JSON has no NaN) and reads them back', () => {
    const file = join(work, 'nan.jsonl')
    const log = new RunLogger(file, { label: 'RNN' })
    log.step({ ...STEP, loss: NaN, gradNorm: Infinity, applied: false })
    log.gradientFlow({ step: 0, epoch: 0, model: 'simple RNN', layer: 'rnn.l0', quantity: 'h', norms: [NaN, 1] })
    log.close()
    const [, step, flow] = readRunLog(file)
    expect(step).toMatchObject({ loss: null, gradNorm: null, applied: false })
    expect(flow).toMatchObject({ norms: [null, 1] })
  })

  it('in append mode keeps earlier records and writes the header only once', () => {
    const file = join(work, 'resumed.jsonl')
    const first = new RunLogger(file, { label: 'LSTM' })
    first.step(STEP)
    first.close()
    const resumed = new RunLogger(file, { label: 'LSTM' }, { append: true })
    resumed.step({ ...STEP, step: 1 })
    resumed.close()
    expect(readRunLog(file).map((r) => r.type)).toEqual(['run', 'step', 'step'])

    const fresh = new RunLogger(file, { label: 'LSTM' })
    fresh.close()
    expect(readRunLog(file).map((r) => r.type)).toEqual(['run'])
  })

  it('refuses a bad record when it is written, naming the field, and writes nothing', () => {
    const file = join(work, 'refused.jsonl')
    const log = new RunLogger(file, { label: 'LSTM' })
    expect(() => log.step({ ...STEP, learningRate: -1 })).toThrow(
      /^learningRate: expected a finite number >= 0, got number -1$/,
    )
    expect(() => log.step({ ...STEP, epoch: 1.5 })).toThrow(RunRecordError)
    expect(() => log.gradientFlow({ step: 0, epoch: 0, model: 'LSTM', layer: 'l0', quantity: 'c', norms: [] })).toThrow(
      /^norms: expected a non-empty array/,
    )
    expect(() =>
      log.vqa({
        step: 0,
        epoch: 0,
        split: 'val',
        accuracy: 0.5,
        accuracyByQuestionType: {},
        confusion: { answers: ['yes', 'no'], counts: [[1, 2]] },
      }),
    ).toThrow(/^confusion.counts: expected 2 rows/)
    log.close()
    expect(readRunLog(file)).toHaveLength(1)
    expect(() => new RunLogger(file, { label: '' })).toThrow(/^label: expected a non-empty string/)
  })

  it('throws on a write after close, and close twice is harmless', () => {
    const log = new RunLogger(join(work, 'closed.jsonl'), { label: 'LSTM' })
    log.close()
    log.close()
    // The code and class every call on a closed or disposed object throws.
    expect(() => log.step(STEP)).toThrow(
      expect.objectContaining({
        name: 'OdysseyRangeError',
        code: 'ODYSSEY_STATE',
        message: expect.stringMatching(/closed\.jsonl: the run logger is closed$/),
      }),
    )
  })

  it('names the file when it cannot be opened', () => {
    writeFileSync(join(work, 'a-file'), '')
    expect(() => new RunLogger(join(work, 'a-file', 'log.jsonl'), { label: 'LSTM' })).toThrow(RunLogError)
  })
})

describe('reading a run log', () => {
  const problems: [what: string, text: string, message: RegExp][] = [
    ['a line that is not JSON', `${HEADER}\n{"type":"step",\n`, /^run\.jsonl:2: not JSON: /],
    [
      'a missing field',
      `${HEADER}\n\n{"type":"epoch","epoch":0,"loss":1}\n`,
      /^run\.jsonl:3: step: expected an integer >= 0, got undefined$/,
    ],
    [
      'a mistyped field',
      `${HEADER}\n${JSON.stringify({ type: 'step', ...STEP, clipped: 'yes' })}\n`,
      /^run\.jsonl:2: clipped: expected true or false, got string$/,
    ],
    [
      'an unknown record type',
      `${HEADER}\n{"type":"batch"}\n`,
      /^run\.jsonl:2: type: expected one of run, step, epoch, gradientFlow, vqa, callback, got string$/,
    ],
    [
      'a norm below zero',
      `${HEADER}\n{"type":"gradientFlow","step":0,"epoch":0,"model":"LSTM","layer":"l0","quantity":"c","norms":[1,-2]}\n`,
      /^run\.jsonl:2: norms\[1\]: expected a number >= 0 or null, got number -2$/,
    ],
    [
      'a quantity other than c or h',
      `${HEADER}\n{"type":"gradientFlow","step":0,"epoch":0,"model":"LSTM","layer":"l0","quantity":"y","norms":[1]}\n`,
      /^run\.jsonl:2: quantity: expected "c" \(LSTM\) or "h" \(GRU, simple RNN\)/,
    ],
    [
      'records before the header',
      `${JSON.stringify({ type: 'step', ...STEP })}\n${HEADER}\n`,
      /^run\.jsonl:1: the first record must be the run header/,
    ],
    [
      'a newer format version',
      '{"type":"run","format":"odyssey-run-log","version":2,"label":"x"}\n',
      /^run\.jsonl:1: version: this odyssey-rnn reads version 1 of the run log, got number 2$/,
    ],
    [
      'another format',
      '{"type":"run","format":"tensorboard","version":1,"label":"x"}\n',
      /^run\.jsonl:1: format: expected "odyssey-run-log"/,
    ],
    ['a record that is an array', `${HEADER}\n[1,2]\n`, /^run\.jsonl:2: record: expected an object, got Array$/],
    ['an empty file', '\n\n', /^run\.jsonl: no records/],
  ]
  it.each(problems)('reports %s with the file, line and field', (_, text, message) => {
    expect(() => parseRunLog(text, 'run.jsonl')).toThrow(RunLogError)
    expect(() => parseRunLog(text, 'run.jsonl')).toThrow(
      expect.objectContaining({ code: 'ODYSSEY_FORMAT', message: expect.stringMatching(message) }),
    )
  })

  it('ignores blank lines and fields it does not know', () => {
    const records = parseRunLog(
      `\n${HEADER}\n\n${JSON.stringify({ type: 'step', ...STEP, gpu: 'none' })}\n\n`,
      'run.jsonl',
    )
    expect(records.map((r) => r.type)).toEqual(['run', 'step'])
  })

  it('reports a missing file as RunLogError ODYSSEY_IO naming it', () => {
    const missing = join(work, 'missing.jsonl')
    expect(() => readRunLog(missing)).toThrow(`${missing}: cannot read: ENOENT`)
  })
})
