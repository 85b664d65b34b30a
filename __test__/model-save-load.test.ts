/**
 * Checkpoints through the facade: a model saved mid-training and loaded in
 * its place ends a run bit for bit where the uninterrupted run ends (weights,
 * Adam state, step counter, dropout masks and shuffle order all resume).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'

import { addingProblem, dense, dropout, lstm, Model, OdysseyError, sequential } from '../ts'
import { weightValues } from './helpers/models'

const scratch = mkdtempSync(join(tmpdir(), 'odyssey-model-'))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

function model(): Model {
  return sequential({
    input: { kind: 'sequence', features: 2 },
    layers: [lstm({ hiddenSize: 8, output: 'last', forgetBias: 1 }), dropout({ rate: 0.2 }), dense({ units: 1 })],
    loss: 'mse',
    optimizer: { type: 'adam', learningRate: 1e-2 },
    schedule: { type: 'exponential', gamma: 0.99 },
    clip: { globalNorm: 1 },
    seed: 5,
  })
}

describe('save and load', () => {
  it('a run saved after epoch 2 and resumed from the checkpoint ends bitwise equal to an uninterrupted one', async () => {
    const data = addingProblem({ n: 96, time: 10, seed: 8 })
    const straight = model()
    await straight.fit(data, { epochs: 4, batchSize: 16 })

    const interrupted = model()
    await interrupted.fit(data, { epochs: 2, batchSize: 16 })
    const dir = join(scratch, 'run')
    await interrupted.save(dir, { epochsDone: 2 })
    const before = await interrupted.predict(data.x)
    interrupted.dispose()

    const resumed = await Model.load(dir)
    expect(resumed.graph).toEqual(straight.graph)
    expect(resumed.stepCount).toBe(12)
    expect([...(await resumed.predict(data.x)).data]).toEqual([...before.data])
    await resumed.fit(data, { epochs: 4, initialEpoch: 2, batchSize: 16 })
    expect(resumed.stepCount).toBe(straight.stepCount)
    expect(weightValues(resumed)).toEqual(weightValues(straight))
  })

  it('loading a directory without a checkpoint rejects with a typed error naming it', async () => {
    const missing = join(scratch, 'nothing-here')
    const error = await Model.load(missing).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(OdysseyError)
    expect((error as Error).message).toContain('nothing-here')
  })
})
