/**
 * From Model.fit to the run log: one step record per batch with the pre-clip
 * norm and the model's clipping threshold, one epoch record per epoch, and a
 * gradient-flow record per recurrent layer with the right quantity.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { afterAll, describe, expect, it } from 'vitest'

import { addingProblem, dense, gru, lstm, sequential, simpleRnn, type Layer, type SequentialConfig } from '../ts'
import {
  logGradientFlow,
  readRunLog,
  runLogCallbacks,
  RunLogger,
  type EpochRecord,
  type GradientFlowRecord,
  type StepRecord,
} from '../ts/report'

const work = mkdtempSync(join(tmpdir(), 'odyssey-report-fit-'))
afterAll(() => rmSync(work, { recursive: true, force: true }))

const TIME = 12
const data = addingProblem({ n: 96, time: TIME, seed: 1 })
const validationData = addingProblem({ n: 32, time: TIME, seed: 2 })

function model(layers: Layer[], clip?: SequentialConfig['clip']) {
  return sequential({
    input: { kind: 'sequence', features: 2 },
    layers,
    loss: 'mse',
    optimizer: { type: 'adam', learningRate: 1e-2 },
    seed: 1,
    ...(clip ? { clip } : {}),
  })
}

describe('runLogCallbacks and logGradientFlow', () => {
  it('log every batch, every epoch and the gradient flow of a stacked model', async () => {
    const m = model(
      [
        lstm({ hiddenSize: 8, numLayers: 2 }),
        gru({ hiddenSize: 6 }),
        simpleRnn({ hiddenSize: 8, output: 'last' }),
        dense({ units: 1 }),
      ],
      { globalNorm: 0.5 },
    )
    const file = join(work, 'stacked.jsonl')
    const log = new RunLogger(file, { label: 'stack' })
    logGradientFlow(log, m, validationData, 0)
    await m.fit(data, { epochs: 2, batchSize: 32, validationData, callbacks: runLogCallbacks(log, m) })
    const flows = logGradientFlow(log, m, validationData, 1)
    log.close()
    m.dispose()

    const records = readRunLog(file)
    const steps = records.filter((r): r is StepRecord => r.type === 'step')
    expect(steps.map((s) => [s.epoch, s.step])).toEqual([
      [0, 1],
      [0, 2],
      [0, 3],
      [1, 4],
      [1, 5],
      [1, 6],
    ])
    for (const s of steps) {
      expect(s).toMatchObject({ clipThreshold: 0.5, applied: true, learningRate: 0.01 })
      expect(s.clipped).toBe((s.gradNorm ?? 0) > 0.5)
      expect(s.examplesPerSecond).toBeGreaterThan(0)
    }
    const epochs = records.filter((r): r is EpochRecord => r.type === 'epoch')
    expect(epochs.map((e) => [e.epoch, e.step])).toEqual([
      [0, 3],
      [1, 6],
    ])
    for (const e of epochs) expect(e.validationLoss).toBeGreaterThan(0)

    const measured = records.filter((r): r is GradientFlowRecord => r.type === 'gradientFlow')
    expect(measured.map((r) => `${r.step} ${r.model} ${r.layer} ${r.quantity}`).sort()).toEqual([
      '0 GRU gru.l0 h',
      '0 LSTM lstm.l0 c',
      '0 LSTM lstm.l1 c',
      '0 simple RNN rnn.l0 h',
      '6 GRU gru.l0 h',
      '6 LSTM lstm.l0 c',
      '6 LSTM lstm.l1 c',
      '6 simple RNN rnn.l0 h',
    ])
    for (const r of measured) expect(r.norms).toHaveLength(TIME)
    expect(measured.slice(4).map((r) => r.norms)).toEqual(flows.map((f) => Array.from(f.norms)))
  })

  it('log no threshold for a model that does not clip by global norm, and validation accuracy as a metric', async () => {
    const classifier = sequential({
      input: { kind: 'sequence', features: 2 },
      layers: [lstm({ hiddenSize: 4, output: 'last' }), dense({ units: 2 })],
      loss: 'crossEntropy',
      optimizer: { type: 'sgd', learningRate: 0.1 },
      clip: { value: 1 },
    })
    const classes = { classes: Uint32Array.from(data.y.data, (v) => (v > 1 ? 1 : 0)), shape: [96] }
    const file = join(work, 'classifier.jsonl')
    const log = new RunLogger(file, { label: 'classifier' })
    await classifier.fit(
      { x: data.x, y: classes },
      {
        epochs: 1,
        batchSize: 48,
        validationData: { x: data.x, y: classes },
        callbacks: runLogCallbacks(log, classifier),
      },
    )
    log.close()
    classifier.dispose()
    const [, first, , epoch] = readRunLog(file)
    expect(first).toMatchObject({ type: 'step', clipThreshold: null })
    expect(epoch).toMatchObject({ type: 'epoch', metrics: { 'validation accuracy': expect.any(Number) } })
  })
})
