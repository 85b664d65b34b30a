/**
 * Non-finite updates: an honest overflow (a float32 target of 1e20 is finite,
 * its square is not) makes that batch's loss infinite; the update is skipped,
 * counted and reported, and `stopOnNonFinite` turns it into a rejection.
 */
import { describe, expect, it } from 'vitest'

import { OdysseyRangeError, type BatchLog } from '../ts'
import { lstmRegressor, runningSums, weightValues } from './helpers/models'

/** 16 examples whose 6th target overflows when squared in float32. */
function overflowingData() {
  const data = runningSums(16, 4, { total: true, seed: 7 })
  data.y.data[5] = 1e20
  return data
}

describe('non-finite updates', () => {
  it('are skipped, counted and reported; the other batches train', async () => {
    const model = lstmRegressor({ output: 'last' })
    const nonFinite: BatchLog[] = []
    const applied: boolean[] = []
    const history = await model.fit(overflowingData(), {
      epochs: 2,
      batchSize: 4,
      shuffle: false,
      callbacks: { onNonFinite: (log) => nonFinite.push(log), onBatchEnd: (log) => applied.push(log.applied) },
    })
    expect(applied).toEqual([true, false, true, true, true, false, true, true])
    expect(nonFinite.map((log) => [log.epoch, log.batch, log.loss])).toEqual([
      [0, 1, Infinity],
      [1, 1, Infinity],
    ])
    expect(history.nonFiniteUpdates).toBe(2)
    expect(history.epochs.map((e) => e.nonFiniteUpdates)).toEqual([1, 1])
    expect(history.loss.every(Number.isFinite)).toBe(true)
    expect(model.stepCount).toBe(6)
    expect(Object.values(weightValues(model)).flat().every(Number.isFinite)).toBe(true)
  })

  it('reject the fit with ODYSSEY_NON_FINITE under stopOnNonFinite, keeping the weights of the last finite update', async () => {
    const model = lstmRegressor({ output: 'last' })
    const error = await model
      .fit(overflowingData(), { epochs: 2, batchSize: 4, shuffle: false, stopOnNonFinite: true })
      .catch((e: unknown) => e)
    expect(error).toBeInstanceOf(OdysseyRangeError)
    expect(error).toMatchObject({
      code: 'ODYSSEY_NON_FINITE',
      message: expect.stringMatching(/epoch 0, batch 1: non-finite loss \(inf\).*stopOnNonFinite/),
    })
    expect(model.stepCount).toBe(1)
    const reference = lstmRegressor({ output: 'last' })
    const firstBatch = runningSums(16, 4, { total: true, seed: 7 })
    reference.trainStep({
      x: { data: firstBatch.x.data.slice(0, 4 * 4 * 2), shape: [4, 4, 2] },
      y: { data: firstBatch.y.data.slice(0, 4), shape: [4, 1] },
    })
    expect(weightValues(model)).toEqual(weightValues(reference))
  })
})
