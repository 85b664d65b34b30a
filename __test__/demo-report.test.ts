/**
 * `npm run demo` ends with a report of its runs: the adding problem's three models
 * (steps, epochs, the gradient flow before training and after every epoch), the
 * three VQA models (steps, epochs, the validation score with its confusion table),
 * and the digit-reversal encoder–decoder (steps, epochs with the held-out greedy
 * exact match), drawn into one HTML file. Run here at toy sizes; the full demo is `.ci/run`'s.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'

import { afterAll, describe, expect, it } from 'vitest'

import { runAddingDemo, writeDemoReport } from '../ts/cli/demo'
import { runSeq2seqDemo } from '../ts/cli/demo-seq2seq'
import { runVqaDemo } from '../ts/cli/vqa-demo'
import { readRunLog, type EpochRecord, type GradientFlowRecord, type VqaRecord } from '../ts/report'

const work = mkdtempSync(join(tmpdir(), 'odyssey-demo-report-'))
afterAll(() => rmSync(work, { recursive: true, force: true }))

/** A sink for the demos' printed tables. */
function quiet(): PassThrough {
  const out = new PassThrough()
  out.resume()
  return out
}

describe('the demo report', () => {
  it('logs every run of the three demos and draws them into one report', async () => {
    const runLogDir = join(work, 'runs')
    const addingOut = quiet()
    let addingText = ''
    addingOut.on('data', (chunk: Buffer) => (addingText += chunk.toString()))
    const adding = await runAddingDemo({ time: 10, examples: 64, epochs: 2, hiddenSize: 4, runLogDir, out: addingOut })
    expect(adding.gru).toHaveLength(2)
    // The vanishing-gradient summary: one line per model, the GRU beside the LSTM and the simple RNN.
    const summary = addingText.slice(addingText.indexOf('Gradient norm at the first step'))
    expect(
      summary
        .split('\n')
        .slice(1, 4)
        .map((line) => line.trim().split(/\s+/)[0]),
    ).toEqual(['LSTM', 'GRU', 'SimpleRNN'])
    expect(addingText).toMatch(/Validation MSE: LSTM \d\.\d{4}, GRU \d\.\d{4}, SimpleRNN \d\.\d{4}/)
    const vqa = await runVqaDemo({
      images: 40,
      validationImages: 10,
      featureDim: 16,
      epochs: 1,
      runLogDir,
      out: quiet(),
    })
    expect(adding.runLogs.map((f) => f.slice(runLogDir.length + 1))).toEqual([
      'adding-lstm/log.jsonl',
      'adding-gru/log.jsonl',
      'adding-simple-rnn/log.jsonl',
    ])
    expect(vqa.runLogs).toHaveLength(3)
    let seq2seqText = ''
    const seq2seqOut = quiet()
    seq2seqOut.on('data', (chunk: Buffer) => (seq2seqText += chunk.toString()))
    const seq2seq = await runSeq2seqDemo({
      examples: 64,
      heldOut: 8,
      epochs: 2,
      hiddenSize: 8,
      show: 3,
      runLogDir,
      out: seq2seqOut,
    })
    expect(seq2seq.runLogs.map((f) => f.slice(runLogDir.length + 1))).toEqual(['seq2seq-lstm/log.jsonl'])
    const seq2seqRecords = readRunLog(seq2seq.runLogs[0])
    // 64 pairs in batches of 32, for 2 epochs.
    expect(seq2seqRecords.filter((r) => r.type === 'step')).toHaveLength(4)
    const epochs = seq2seqRecords.filter((r): r is EpochRecord => r.type === 'epoch')
    expect(epochs.map((e) => e.metrics?.['greedy exact match'])).toEqual(seq2seq.exactMatch)
    expect(seq2seq.exactMatch).toHaveLength(2)
    // The first 3 held-out pairs, then up to 2 mistakes after them.
    expect(seq2seq.examples.length).toBeGreaterThanOrEqual(3)
    for (const line of ['epoch 2/2: loss', 'Held-out exact match: greedy', 'beam search (width 4)'])
      expect(seq2seqText).toContain(line)
    for (const { source, decoded } of seq2seq.examples)
      expect(seq2seqText).toContain(`${source.join('').padStart(8)} -> ${decoded.join('')}`)

    for (const [file, model, quantity] of [
      [adding.runLogs[0], 'LSTM', 'c'],
      [adding.runLogs[1], 'GRU', 'h'],
      [adding.runLogs[2], 'simple RNN', 'h'],
    ] as const) {
      const flows = readRunLog(file).filter((r): r is GradientFlowRecord => r.type === 'gradientFlow')
      // Before training, and after each of the 2 epochs.
      expect(flows.map((f) => f.step)).toEqual([0, 2, 4])
      expect(flows.every((f) => f.model === model && f.quantity === quantity && f.norms.length === 10)).toBe(true)
    }
    for (const file of vqa.runLogs) {
      const scores = readRunLog(file).filter((r): r is VqaRecord => r.type === 'vqa')
      expect(scores).toHaveLength(1)
      expect(scores[0].confusion.answers.length).toBeGreaterThan(0)
    }

    const report = join(work, 'report.html')
    const printed = quiet()
    let text = ''
    printed.on('data', (chunk: Buffer) => (text += chunk.toString()))
    await writeDemoReport([...adding.runLogs, ...vqa.runLogs, ...seq2seq.runLogs], report, printed)
    expect(text).toContain(report)
    const html = readFileSync(report, 'utf8')
    for (const section of ['gradient-flow', 'vqa']) expect(html).toContain(`id="${section}"`)
    for (const label of [
      'LSTM: ‖∂J/∂c(k)‖',
      'GRU: ‖∂J/∂h(k)‖',
      'simple RNN: ‖∂J/∂h(k)‖',
      'VQA fused',
      'VQA question only',
      'VQA image only',
      'seq2seq LSTM',
      'greedy exact match',
    ])
      expect(html).toContain(label)
  }, 120_000)
})
