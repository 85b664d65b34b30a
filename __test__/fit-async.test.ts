/**
 * `fit` runs on a worker thread: the event loop keeps running, progress
 * arrives through the callbacks before the promise settles, an AbortSignal
 * stops it within one batch, and a model refuses a second operation while
 * one is running.
 */
import { describe, expect, it } from 'vitest'

import { addingProblem, dense, lstm, OdysseyAbortError, sequential, type BatchLog, type EpochLog } from '../ts'
import { lstmRegressor, runningSums } from './helpers/models'

/** An LSTM on the adding problem whose batches take long enough to watch. */
function slowModel(hiddenSize: number) {
  return sequential({
    input: { kind: 'sequence', features: 2 },
    layers: [lstm({ hiddenSize, output: 'last', forgetBias: 1 }), dense({ units: 1 })],
    loss: 'mse',
    optimizer: { type: 'adam', learningRate: 1e-3 },
    clip: { globalNorm: 1 },
  })
}

describe('fit on a worker thread', () => {
  // A loaded machine can delay one timer on its own; a blocked loop fails every attempt.
  it('never blocks the event loop: a 5 ms interval keeps ticking through a fit of over a second', {
    retry: 2,
  }, async () => {
    const model = slowModel(32)
    const data = addingProblem({ n: 1500, time: 50, seed: 1 })
    let last = performance.now()
    let largestGap = 0
    let ticks = 0
    const timer = setInterval(() => {
      const now = performance.now()
      largestGap = Math.max(largestGap, now - last)
      last = now
      ticks++
    }, 5)
    const started = performance.now()
    // Faster kernels or a quiet machine finish one fit sooner: keep fitting until a second has passed.
    for (let epoch = 1; performance.now() - started < 1000 && epoch <= 100; epoch++) {
      await model.fit(data, { epochs: epoch, initialEpoch: epoch - 1, batchSize: 32 })
    }
    const elapsed = performance.now() - started
    clearInterval(timer)
    expect(elapsed).toBeGreaterThan(1000)
    expect(ticks).toBeGreaterThan(elapsed / 50)
    expect(largestGap).toBeLessThan(50)
  })

  it('reports every batch (loss, gradient norm, throughput) and epoch before the promise settles', async () => {
    const model = lstmRegressor({ output: 'last' })
    const data = runningSums(50, 6, { total: true, seed: 2 })
    const validationData = runningSums(20, 6, { total: true, seed: 3 })
    const batches: BatchLog[] = []
    const epochs: EpochLog[] = []
    const history = await model.fit(data, {
      epochs: 3,
      batchSize: 16,
      validationData,
      callbacks: { onBatchEnd: (log) => batches.push(log), onEpochEnd: (log) => epochs.push(log) },
    })
    expect(batches).toHaveLength(3 * 4)
    expect(batches.map((b) => [b.epoch, b.batch, b.batches, b.examples]).slice(0, 4)).toEqual([
      [0, 0, 4, 16],
      [0, 1, 4, 16],
      [0, 2, 4, 16],
      [0, 3, 4, 2],
    ])
    for (const b of batches) {
      expect(Number.isFinite(b.loss) && b.gradNorm > 0 && b.examplesPerSecond > 0 && b.applied).toBe(true)
      expect(b.learningRate).toBe(0.01)
    }
    expect(batches.map((b) => b.step)).toEqual(Array.from({ length: 12 }, (_, k) => k + 1))
    expect(epochs).toEqual(history.epochs)
    expect(history.loss).toEqual(epochs.map((e) => e.loss))
    expect(history.valLoss).toHaveLength(3)
    expect(epochs[2].examplesPerSecond).toBeGreaterThan(0)
    expect(model.stepCount).toBe(12)
  })

  it('refuses a second fit (and any other call) while one is running, and accepts one afterwards', async () => {
    const model = slowModel(16)
    const data = addingProblem({ n: 256, time: 20, seed: 4 })
    const running = model.fit(data, { epochs: 2, batchSize: 32 })
    await expect(model.fit(data, { epochs: 1 })).rejects.toMatchObject({
      code: 'ODYSSEY_STATE',
      message: expect.stringContaining('fit is already running on this model'),
    })
    await expect(model.predict(data.x)).rejects.toMatchObject({ code: 'ODYSSEY_STATE' })
    expect(() => model.getWeights()).toThrow(expect.objectContaining({ code: 'ODYSSEY_STATE' }))
    expect(() => model.dispose()).toThrow(expect.objectContaining({ code: 'ODYSSEY_STATE' }))
    await running
    await expect(model.fit(data, { epochs: 3, batchSize: 64 })).resolves.toMatchObject({ nonFiniteUpdates: 0 })
    expect(model.stepCount).toBe(2 * 8 + 4)
  })
})

describe('stopping a fit', () => {
  it('an aborted signal stops the fit within one batch; the model keeps its last update and stays usable', async () => {
    const model = slowModel(64)
    const data = addingProblem({ n: 2048, time: 50, seed: 5 })
    const controller = new AbortController()
    let stepAtAbort = -1
    let lastReported = -1
    const reason = new Error('user pressed stop')
    const fit = model.fit(data, {
      epochs: 3,
      batchSize: 256,
      signal: controller.signal,
      callbacks: {
        onBatchEnd: (log) => {
          lastReported = log.step
          if (log.batch === 2) {
            stepAtAbort = log.step
            controller.abort(reason)
          }
        },
      },
    })
    const error = await fit.catch((e: unknown) => e)
    expect(error).toBeInstanceOf(OdysseyAbortError)
    expect(error).toMatchObject({ name: 'AbortError', code: 'ODYSSEY_ABORTED', cause: reason, result: { epochs: [] } })
    expect(stepAtAbort).toBe(3)
    // The worker may have been inside the next batch when the abort arrived; it finishes that one only.
    expect(model.stepCount).toBeLessThanOrEqual(stepAtAbort + 1)
    expect(lastReported).toBe(model.stepCount)
    const prediction = await model.predict(data.x, { batchSize: 512 })
    expect(prediction.data.every(Number.isFinite)).toBe(true)
    await expect(model.fit(addingProblem({ n: 64, time: 5 }), { epochs: 1 })).resolves.toBeDefined()
  })

  it('a signal aborted before fit starts rejects at once without training', async () => {
    const model = lstmRegressor({ output: 'last' })
    const controller = new AbortController()
    controller.abort()
    await expect(
      model.fit(runningSums(8, 3, { total: true }), { epochs: 1, signal: controller.signal }),
    ).rejects.toBeInstanceOf(OdysseyAbortError)
    expect(model.stepCount).toBe(0)
  })

  it('a callback that throws stops the fit, which rejects with that error', async () => {
    const model = slowModel(64)
    const broken = new Error('callback bug')
    let stepAtThrow = -1
    const fit = model.fit(addingProblem({ n: 2048, time: 50, seed: 6 }), {
      epochs: 2,
      batchSize: 256,
      callbacks: {
        onBatchEnd: (log) => {
          stepAtThrow = log.step
          throw broken
        },
      },
    })
    await expect(fit).rejects.toBe(broken)
    expect(stepAtThrow).toBe(1)
    expect(model.stepCount).toBeLessThanOrEqual(2)
  })
})
