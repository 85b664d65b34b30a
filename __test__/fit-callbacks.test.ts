/**
 * Callbacks that use the model (issue 12, item 3) and checkpoints that
 * remember (item 4): fit waits for a callback's promise and lends it the
 * model, and only it; the built-ins `earlyStopping`, `modelCheckpoint` and
 * `reduceLrOnPlateau`; a run saved at epoch 3 of 6 and resumed from the
 * checkpoint alone ends bitwise equal to an uninterrupted one.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'

import {
  earlyStopping,
  Model,
  modelCheckpoint,
  reduceLrOnPlateau,
  type BatchLog,
  type Evaluation,
  type FitContext,
} from '../ts'
import { ProgressRelay, type FitModel } from '../ts/model/fit'
import { readRunLog, RunLogger, runLogPath } from '../ts/report'
import { lstmRegressor, runningSums, weightValues } from './helpers/models'

const scratch = mkdtempSync(join(tmpdir(), 'odyssey-callbacks-'))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

const train = runningSums(48, 6, { total: true, seed: 3 })
const validation = runningSums(24, 6, { total: true, seed: 4 })
/** Targets of the opposite sign: the better the model fits `train`, the worse its loss here. */
const rising = { x: train.x, y: { data: train.y.data.map((v) => -v), shape: train.y.shape } }

const model = () => lstmRegressor({ output: 'last', hidden: 6, seed: 2, learningRate: 0.02 })

/** A callback recording the weights at every epoch end, for bitwise comparisons. */
function weightsPerEpoch(into: Record<string, number[]>[]) {
  return { onEpochEnd: (_: unknown, fit: FitContext) => void into.push(weightValues(fit.model as Model)) }
}

describe('callbacks that use the model', () => {
  it("fit waits for a callback's promise, and its await model.evaluate() returns what evaluate gives after fit", async () => {
    const m = model()
    const seen: { epoch: number; evaluation: Evaluation; predicted: number[]; stepped: number }[] = []
    await m.fit(train, {
      epochs: 3,
      batchSize: 16,
      callbacks: {
        onEpochEnd: async ({ epoch }) => {
          await new Promise((resolve) => setTimeout(resolve, 20))
          const evaluation = await m.evaluate(validation)
          const predicted = [...(await m.predict(validation.x)).data]
          m.resetState()
          const stepped = m.step({ x: { data: validation.x.data.slice(0, 2), shape: [1, 2] } }).shape[0]
          await m.save(join(scratch, 'inside'), { epoch })
          seen.push({ epoch, evaluation, predicted, stepped })
        },
      },
    })
    expect(seen.map((s) => s.epoch)).toEqual([0, 1, 2])
    expect(seen[2].evaluation).toEqual(await m.evaluate(validation))
    expect(seen[2].predicted).toEqual([...(await m.predict(validation.x)).data])
    expect(seen[1].evaluation.loss).not.toBe(seen[2].evaluation.loss)
    const saved = await Model.load(join(scratch, 'inside'))
    expect(saved.metadata).toEqual({ epoch: 2 })
    expect(weightValues(saved)).toEqual(weightValues(m))
  })

  it('a call from outside the callback window is still refused with ODYSSEY_STATE, while the callback is served', async () => {
    const m = model()
    let windowOpen = false
    const outside: { sync?: unknown; async?: unknown } = {}
    // Started before fit: its ticks do not run in the callback's context.
    const probe = setInterval(() => {
      if (!windowOpen || outside.async !== undefined) return
      try {
        m.getWeights()
        outside.sync = 'accepted'
      } catch (error) {
        outside.sync = error
      }
      m.evaluate(validation).then(
        () => (outside.async = 'accepted'),
        (error) => (outside.async = error),
      )
    }, 2)
    let inside: Evaluation | undefined
    try {
      await m.fit(train, {
        epochs: 1,
        batchSize: 16,
        callbacks: {
          onEpochEnd: async () => {
            windowOpen = true
            while (outside.async === undefined) await new Promise((resolve) => setTimeout(resolve, 2))
            inside = await m.evaluate(validation)
            windowOpen = false
          },
        },
      })
    } finally {
      clearInterval(probe)
    }
    const refused = { code: 'ODYSSEY_STATE', message: expect.stringContaining('fit is already running on this model') }
    expect(outside.sync).toMatchObject(refused)
    expect(outside.async).toMatchObject(refused)
    expect(inside?.examples).toBe(24)
  })

  it('in the window: decode, getState/setState, one operation at a time; fit and dispose are refused', async () => {
    // A token encoder whose final states start the decoder, so that decode has something to run.
    const m = Model.fromSpec({
      inputs: [
        { kind: 'tokens', name: 'src' },
        { kind: 'tokens', name: 'dec' },
      ],
      nodes: [
        { name: 'src_emb', type: 'embedding', inputs: ['src'], vocabSize: 5, dim: 3 },
        { name: 'enc', type: 'lstm', inputs: ['src_emb'], hiddenSize: 4, output: 'states' },
        { name: 'dec_emb', type: 'embedding', inputs: ['dec'], vocabSize: 5, dim: 3 },
        { name: 'decoder', type: 'lstm', inputs: ['dec_emb'], hiddenSize: 4, initialState: 'enc' },
        { name: 'out', type: 'dense', inputs: ['decoder'], units: 5 },
      ],
      output: 'out',
      loss: 'crossEntropy',
      optimizer: { type: 'sgd', learningRate: 0.1 },
      seed: 4,
    })
    const src = { ids: [1, 2, 3, 3, 2, 1, 2, 2, 1, 3, 1, 1], shape: [4, 3] as const }
    const tokens = { src, dec: { ids: [0, 3, 2, 0, 1, 2, 0, 1, 2, 0, 1, 3], shape: [4, 3] as const } }
    const data = { x: tokens, y: { classes: [3, 2, 1, 1, 2, 3, 2, 2, 1, 3, 1, 1], shape: [4, 3] as const } }
    const decodeOptions = { decoderInput: 'dec', start: 0, stop: 4, maxSteps: 4 }
    const seen: { decoded: Uint32Array[]; state: unknown; refused: unknown[] }[] = []
    const refusal = (run: () => unknown) => {
      try {
        const result = run()
        // fit returns a promise: its refusal is a rejection.
        return result instanceof Promise
          ? result.then(
              () => 'accepted',
              (error: unknown) => error,
            )
          : 'accepted'
      } catch (error) {
        return error
      }
    }
    await m.fit(data, {
      epochs: 2,
      batchSize: 4,
      callbacks: {
        onEpochEnd: async () => {
          const decoded = await m.decode({ src }, decodeOptions)
          const half = { data: new Float32Array(4).fill(0.5), shape: [1, 1, 4] }
          m.setState({ decoder: { h: half, c: half } })
          const state = m.getState()
          const saving = m.save(join(scratch, 'window'))
          const refused = [
            refusal(() => m.getWeights()), // save is running: one operation at a time
            await saving.then(() => refusal(() => m.fit(data, { epochs: 1 }))),
            refusal(() => m.dispose()),
          ]
          seen.push({ decoded, state, refused: await Promise.all(refused) })
        },
      },
    })
    expect(seen).toHaveLength(2)
    expect(seen[1].decoded).toEqual(await m.decode({ src }, decodeOptions))
    const half = { data: new Float32Array(4).fill(0.5), shape: [1, 1, 4] }
    for (const { state } of seen) expect(state).toMatchObject({ decoder: { h: half, c: half } })
    for (const { refused } of seen) for (const error of refused) expect(error).toMatchObject({ code: 'ODYSSEY_STATE' })
    m.dispose()
  })

  it('an un-awaited save that fails stops fit with its error instead of an unhandled rejection', async () => {
    const m = model()
    const notADirectory = join(scratch, 'a-file')
    writeFileSync(notADirectory, 'x')
    const epochs: number[] = []
    const fit = m.fit(train, {
      epochs: 3,
      batchSize: 16,
      callbacks: {
        onEpochEnd: ({ epoch }) => {
          epochs.push(epoch)
          void m.save(notADirectory)
        },
      },
    })
    await expect(fit).rejects.toMatchObject({ code: 'ODYSSEY_IO' })
    expect(epochs).toEqual([0])
    expect(m.stepCount).toBe(3)
  })

  it('batch callbacks use the model only with awaitBatchEnd; without it their calls are refused and stop fit', async () => {
    const m = model()
    const counts: number[] = []
    await m.fit(train, {
      epochs: 1,
      batchSize: 16,
      callbacks: {
        awaitBatchEnd: true,
        onBatchEnd: async () => void counts.push(Object.keys(m.getWeights()).length),
      },
    })
    const tensors = Object.keys(m.getWeights()).length
    expect(counts).toEqual([tensors, tensors, tensors])
    const refusing = m.fit(train, {
      epochs: 2,
      batchSize: 16,
      callbacks: { onBatchEnd: () => void m.getWeights() },
    })
    await expect(refusing).rejects.toMatchObject({
      code: 'ODYSSEY_STATE',
      message: expect.stringContaining('awaitBatchEnd'),
    })
  })
})

describe('built-in callbacks', () => {
  it('earlyStopping({ restoreBestWeights }) on a rising validation loss ends with the best epoch’s weights, bitwise', async () => {
    const m = model()
    const perEpoch: Record<string, number[]>[] = []
    const logDir = join(scratch, 'early')
    const log = new RunLogger(runLogPath(logDir), { label: 'early stopping' })
    const history = await m.fit(train, {
      epochs: 20,
      batchSize: 16,
      validationData: rising,
      callbacks: [weightsPerEpoch(perEpoch), earlyStopping({ patience: 2, restoreBestWeights: true, log })],
    })
    log.close()
    const best = history.valLoss.indexOf(Math.min(...history.valLoss))
    expect(history.stopped).toBe(true)
    expect(history.epochs).toHaveLength(best + 3)
    expect(perEpoch[best]).not.toEqual(perEpoch.at(-1))
    expect(weightValues(m)).toEqual(perEpoch[best])
    const records = readRunLog(runLogPath(logDir)).filter((r) => r.type === 'callback')
    expect(records.map((r) => [r.callback, r.action, r.epoch])).toEqual([
      ['earlyStopping', 'stopped', best + 2],
      ['earlyStopping', 'restoredBestWeights', best + 2],
    ])
  })

  it('modelCheckpoint({ saveBestOnly }) keeps the best epoch’s checkpoint, which remembers its epoch', async () => {
    const m = model()
    const perEpoch: Record<string, number[]>[] = []
    const dir = join(scratch, 'best')
    const log = new RunLogger(runLogPath(join(scratch, 'best-log')), { label: 'checkpoint' })
    const history = await m.fit(train, {
      epochs: 4,
      batchSize: 16,
      validationData: rising,
      callbacks: [weightsPerEpoch(perEpoch), modelCheckpoint({ dir, saveBestOnly: true, log })],
    })
    log.close()
    const best = history.valLoss.indexOf(Math.min(...history.valLoss))
    expect(best).toBeLessThan(3)
    const loaded = await Model.load(dir)
    expect(weightValues(loaded)).toEqual(perEpoch[best])
    expect(loaded.epochs).toBe(best + 1)
    const saves = readRunLog(runLogPath(join(scratch, 'best-log'))).filter((r) => r.type === 'callback')
    expect(saves.every((r) => r.action === 'saved')).toBe(true)
    expect(saves.at(-1)?.epoch).toBe(best)
  })

  it('reduceLrOnPlateau multiplies the learning rate from the next batch on, not below minLr', async () => {
    const m = model()
    const rates: BatchLog[] = []
    await m.fit(train, {
      epochs: 4,
      batchSize: 16,
      validationData: rising,
      callbacks: [
        reduceLrOnPlateau({ patience: 1, factor: 0.5, minLr: 0.006 }),
        { onBatchEnd: (batch) => void rates.push(batch) },
      ],
    })
    const perEpoch = [0, 1, 2, 3].map((e) => rates.filter((r) => r.epoch === e).map((r) => r.learningRate))
    expect(perEpoch[0]).toEqual([0.02, 0.02, 0.02])
    expect(new Set(perEpoch[3]).size).toBe(1)
    expect(perEpoch[3][0]).toBeLessThan(0.02)
    expect(perEpoch[3][0]).toBeGreaterThanOrEqual(0.006)
    expect(m.learningRate).toBe(perEpoch[3][0])
  })
})

describe('checkpoints that remember', () => {
  it('saved at epoch 3 of 6 and resumed with { resume: true }: weights, history and order bitwise equal', async () => {
    const batchLosses = (into: number[]) => ({ onBatchEnd: (b: BatchLog) => void into.push(b.loss) })
    const straightBatches: number[] = []
    const straight = model()
    const whole = await straight.fit(train, {
      epochs: 6,
      batchSize: 16,
      seed: 9,
      validationData: validation,
      callbacks: batchLosses(straightBatches),
    })

    const dir = join(scratch, 'resume')
    const firstBatches: number[] = []
    const first = model()
    const part = await first.fit(train, {
      epochs: 3,
      batchSize: 16,
      seed: 9,
      validationData: validation,
      callbacks: [batchLosses(firstBatches), modelCheckpoint({ dir, metadata: { vocabulary: ['a', 'b'] } })],
    })
    first.dispose()

    const resumed = await Model.load(dir)
    expect(resumed.epochs).toBe(3)
    expect(resumed.stepCount).toBe(9)
    expect(resumed.metadata).toEqual({ vocabulary: ['a', 'b'] })
    const restBatches: number[] = []
    const rest = await resumed.fit(train, {
      epochs: 6,
      resume: true,
      validationData: validation,
      callbacks: batchLosses(restBatches),
    })
    expect(weightValues(resumed)).toEqual(weightValues(straight))
    expect([...part.loss, ...rest.loss]).toEqual(whole.loss)
    expect([...part.valLoss, ...rest.valLoss]).toEqual(whole.valLoss)
    expect([...firstBatches, ...restBatches]).toEqual(straightBatches)
    expect(rest.epochs.map((e) => e.epoch)).toEqual([3, 4, 5])
    expect(resumed.epochs).toBe(6)
  })

  it('without initialEpoch, fit goes on from the model’s epochs; resume refuses what would change the order', async () => {
    const m = model()
    await m.fit(train, { epochs: 2, batchSize: 16 })
    expect(m.epochs).toBe(2)
    await expect(m.fit(train, { epochs: 2 })).rejects.toMatchObject({
      code: 'ODYSSEY_INVALID',
      message: expect.stringContaining('the model has finished 2 epochs'),
    })
    await expect(m.fit(train, { epochs: 3, resume: true, batchSize: 8 })).rejects.toMatchObject({
      code: 'ODYSSEY_INVALID',
      message: expect.stringMatching(/^batchSize: /),
    })
    const more = await m.fit(train, { epochs: 3 })
    expect(more.epochs.map((e) => e.epoch)).toEqual([2])
    expect(m.stepCount).toBe(9)
    const dir = join(scratch, 'layout')
    await m.save(dir)
    const manifest = JSON.parse(readFileSync(join(dir, 'checkpoint.json'), 'utf8'))
    const config = JSON.parse(readFileSync(join(dir, manifest.current, 'config.json'), 'utf8'))
    expect(config.position).toEqual({ epochs: 3, batch: 0, batchSize: 16, shuffle: true, seed: 2 })
    expect(m.metadata).toBeUndefined()
  })
})

describe('progress events delivered in one turn of the event loop', () => {
  /** A batch event as the addon sends it (the WebAssembly build may deliver several in one turn). */
  const batchEvent = (batch: number, applied: boolean) => ({
    kind: 'batch',
    epoch: 0,
    batch,
    batches: 3,
    examples: 4,
    loss: applied ? 1 : Number.POSITIVE_INFINITY,
    gradNorm: 1,
    clipped: false,
    applied,
    nonFiniteUpdates: applied ? 0 : 1,
    learningRate: 0.1,
    examplesPerSecond: 1,
    step: batch,
    window: false,
  })

  it("run their hooks in batch order: a skipped batch's onNonFinite and onBatchEnd come before the next batch's", () => {
    const seen: string[] = []
    const control = { cancel: () => seen.push('cancel'), resume: () => seen.push('resume') }
    const relay = new ProgressRelay(
      [
        {
          onNonFinite: (log) => seen.push(`nonFinite ${log.batch}`),
          onBatchEnd: (log) => seen.push(`end ${log.batch}`),
        },
      ],
      {} as FitModel,
      1,
      control,
    )
    for (const [batch, applied] of [
      [0, true],
      [1, false],
      [2, true],
    ] as const)
      relay.onProgress(batchEvent(batch, applied))
    expect(seen).toEqual(['end 0', 'nonFinite 1', 'end 1', 'end 2'])
  })
})
