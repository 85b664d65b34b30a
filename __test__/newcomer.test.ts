/**
 * Small things a newcomer hit (issue 12): an unknown optimizer key is named, tfjs-style nested
 * arrays are called what they are, an aborted fit's result has the epoch it stopped in, dtype
 * errors of a model say "the model's dtype", and the entry point loads no ONNX code until an
 * export needs it. (The layer's `{ data, shape }` input is in layers.test.ts.)
 */
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

import { OdysseyAbortError, OdysseyTypeError, sequential, lstm, dense, type BatchLog, type History } from '../ts'
import { lstmRegressor, runningSums } from './helpers/models'

describe('messages a newcomer meets', () => {
  it('optimizer: { lr } names the unknown key, with or without a type, instead of asking for learningRate', () => {
    const build = (optimizer: unknown) => () =>
      sequential({
        input: { kind: 'sequence', features: 2 },
        layers: [lstm({ hiddenSize: 4 }), dense({ units: 1 })],
        loss: 'mse',
        optimizer: optimizer as never,
      })
    expect(build({ type: 'adam', lr: 1e-3 })).toThrow(
      /^optimizer options: unknown option 'lr' \(known: type, learningRate, betas, eps, weightDecay\)$/,
    )
    expect(build({ lr: 1e-3 })).toThrow(/^optimizer options: unknown option 'lr' \(known: type, learningRate, /)
    expect(build({ type: 'sgd', learningRate: 0.1, betas: [0.9, 0.9] })).toThrow(/unknown option 'betas'/)
  })

  it('tfjs-style nested arrays are called nested arrays, with the form a tensor takes', async () => {
    const model = lstmRegressor({ output: 'last' })
    const nested = [[[0.1, 0.2]], [[0.3, 0.4]]]
    const expected = /^x: expected \{ data: Float32Array, shape \}, got a nested array \(flatten it/
    await expect(model.predict(nested as never)).rejects.toThrow(expected)
    expect(() => model.step(nested as never)).toThrow(OdysseyTypeError)
    const { x } = runningSums(2, 1, { total: true })
    await expect(model.fit({ x: nested as never, y: [[1], [2]] as never }, { epochs: 1 })).rejects.toThrow(
      /^data\.x: expected \{ data: Float32Array, shape \}, got a nested array/,
    )
    await expect(model.fit({ x, y: [[1], [2]] as never }, { epochs: 1 })).rejects.toThrow(
      /^data\.y: expected \{ data: Float32Array, shape \}, got a nested array/,
    )
  })

  it("a model's dtype errors say the model's dtype, not a layer's", async () => {
    const model = lstmRegressor({ output: 'last', dtype: 'float64' })
    const { x } = runningSums(2, 3, { total: true })
    await expect(model.predict(x)).rejects.toThrow(
      /^x\.data: expected a Float64Array \(the model's dtype is float64\), got a Float32Array$/,
    )
    const weights = model.getWeights()
    const [name] = Object.keys(weights)
    expect(() =>
      model.setWeights({ [name]: { ...weights[name], data: new Float32Array(weights[name].data) } }),
    ).toThrow(/the model's dtype is float64/)
  })
})

describe("an aborted fit's result", () => {
  it('has the epoch it stopped in: its finished batches, their loss and the step', async () => {
    const model = lstmRegressor({ output: 'last', hidden: 32 })
    // 256 batches of 50 steps an epoch: the worker is far from the epoch's end when the abort reaches it.
    const data = runningSums(2048, 50, { total: true, seed: 4 })
    const controller = new AbortController()
    const batches: BatchLog[] = []
    const onBatchEnd = (log: BatchLog) => {
      batches.push(log)
      if (log.batch === 2) controller.abort()
    }
    const error = await model
      .fit(data, { epochs: 5, batchSize: 8, signal: controller.signal, callbacks: { onBatchEnd } })
      .catch((e: unknown) => e)
    expect(error).toBeInstanceOf(OdysseyAbortError)
    const result = (error as OdysseyAbortError<History>).result!
    expect(result.epochs).toEqual([])
    const examples = batches.reduce((sum, b) => sum + b.examples, 0)
    expect(result.partialEpoch).toEqual({
      epoch: 0,
      finishedBatches: batches.length,
      batches: 256,
      loss: expect.closeTo(batches.reduce((sum, b) => sum + b.loss * b.examples, 0) / examples, 12),
      nonFiniteUpdates: 0,
      step: model.stepCount,
    })
    expect(batches.length).toBeGreaterThanOrEqual(3)
    expect(batches.at(-1)!.step).toBe(model.stepCount)
  })
})

describe('the entry point', () => {
  it('loads no ONNX code and no @bufbuild/protobuf until an export needs them', () => {
    const script = `
      const odyssey = require(${JSON.stringify(join(__dirname, '..', 'dist'))})
      const loaded = () => Object.keys(require.cache).filter((f) => /[\\\\/](onnx|@bufbuild)[\\\\/]/.test(f) && !/onnx[\\\\/](index|errors)\\.js$/.test(f)).length
      const before = loaded()
      const model = odyssey.sequential({ input: { kind: 'sequence', features: 2 }, layers: [odyssey.lstm({ hiddenSize: 3 }), odyssey.dense({ units: 1 })], loss: 'mse', optimizer: { type: 'sgd', learningRate: 0.1 } })
      const bytes = require(${JSON.stringify(join(__dirname, '..', 'dist', 'onnx'))}).toOnnx(model.graph, model.getWeights())
      console.log(JSON.stringify({ before, after: loaded(), bytes: bytes.length }))
    `
    const { before, after, bytes } = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' }))
    expect(before).toBe(0)
    expect(after).toBeGreaterThan(3)
    expect(bytes).toBeGreaterThan(100)
  })
})
