/**
 * `model.step` on a bare typed array and into a caller's output buffer (`options.out`): the
 * same values as the `{ data, shape }` form and as `predict`, the buffer returned as the data,
 * and typed errors for what it cannot take.
 */
import { describe, expect, it } from 'vitest'

import { embedding, lstm, OdysseyRangeError, OdysseyTypeError, sequential } from '../ts'
import { loadedBindingKind } from '../ts/native'
import { expectNear } from './helpers/layers'

/** One sequence input of `features` → LSTM(hidden): the streaming case. */
function streamer(features: number, hidden: number, dtype: 'float32' | 'float64' = 'float32') {
  return sequential({
    input: { kind: 'sequence', features },
    layers: [lstm({ hiddenSize: hidden })],
    loss: 'mse',
    optimizer: { type: 'sgd', learningRate: 0.1 },
    dtype,
    seed: 3,
  })
}

function sequence(n: number, time: number, features: number): Float32Array {
  return Float32Array.from({ length: n * time * features }, (_, k) => Math.sin(k * 0.37))
}

/** Step t of every sequence of `[n, time, features]` data, `[n, features]` flat. */
function stepOf(data: Float32Array, n: number, time: number, features: number, t: number): Float32Array {
  const step = new Float32Array(n * features)
  for (let s = 0; s < n; s++)
    step.set(data.subarray((s * time + t) * features, (s * time + t + 1) * features), s * features)
  return step
}

describe('model.step on typed arrays', () => {
  it('a bare array, the { data, shape } form and an output buffer give the same values as predict', async () => {
    // X 128, H 256: the step is split over two threads; n 2: still stepped in place.
    const [n, time, features, hidden] = [2, 6, 128, 256]
    const [bare, shaped, buffered] = [
      streamer(features, hidden),
      streamer(features, hidden),
      streamer(features, hidden),
    ]
    const data = sequence(n, time, features)
    const whole = await bare.predict({ data, shape: [n, time, features] })
    const out = new Float32Array(n * hidden)
    for (let t = 0; t < time; t++) {
      const x = stepOf(data, n, time, features, t)
      const a = bare.step(x)
      const b = shaped.step({ data: x, shape: [n, features] })
      const c = buffered.step(x, { out })
      expect(a.shape).toEqual([n, hidden])
      expect(c.data).toBe(out)
      expect(Array.from(b.data)).toEqual(Array.from(a.data))
      expect(Array.from(c.data)).toEqual(Array.from(a.data))
      const expected = Array.from({ length: n * hidden }, (_, k) => {
        const s = Math.floor(k / hidden)
        return whole.data[(s * time + t) * hidden + (k % hidden)]
      })
      expectNear(`step ${t}`, a.data, expected, 1e-5)
    }
    for (const model of [bare, shaped, buffered]) model.dispose()
  })

  it("an output buffer's old values do not matter, NaN included", () => {
    // A model gone non-finite leaves NaN in the buffer a loop passes back to the next step.
    const [model, reference] = [streamer(4, 8), streamer(4, 8)]
    const x = Float32Array.of(1, 2, 3, 4)
    const out = new Float32Array(8).fill(Number.NaN)
    expect(Array.from(model.step(x, { out }).data)).toEqual(Array.from(reference.step(x).data))
    for (const m of [model, reference]) m.dispose()
  })

  it('models off the in-place path fill the output buffer too', () => {
    const model = sequential({
      input: { kind: 'tokens' },
      layers: [embedding({ vocabSize: 10, dim: 4 }), lstm({ hiddenSize: 3, output: 'last' })],
      loss: 'mse',
      optimizer: { type: 'sgd', learningRate: 0.1 },
      seed: 1,
    })
    const out = new Float32Array(2 * 3)
    const reference = model.step({ ids: [1, 2], shape: [2] })
    model.resetState()
    const result = model.step({ ids: [1, 2], shape: [2] }, { out })
    expect(result.data).toBe(out)
    expect(Array.from(out)).toEqual(Array.from(reference.data))
    expect(() => model.step(new Float32Array(4))).toThrow(OdysseyTypeError)
    model.dispose()
  })

  it('refuses what it cannot take with typed errors naming the argument', () => {
    const model = streamer(4, 8)
    const expectError = (
      call: () => unknown,
      type: typeof OdysseyTypeError | typeof OdysseyRangeError,
      code: string,
      text: string,
    ) => {
      let thrown: unknown
      try {
        call()
      } catch (error) {
        thrown = error
      }
      expect(thrown).toBeInstanceOf(type)
      expect((thrown as { code: string }).code).toBe(code)
      expect((thrown as Error).message).toContain(text)
    }
    expectError(() => model.step(new Float64Array(4)), OdysseyTypeError, 'ODYSSEY_DTYPE', 'x')
    expectError(() => model.step(new Float32Array(6)), OdysseyRangeError, 'ODYSSEY_SHAPE', 'x')
    expectError(() => model.step(Float32Array.of(0, Number.NaN, 0, 0)), OdysseyRangeError, 'ODYSSEY_NON_FINITE', 'x')
    expectError(
      () => model.step(new Float32Array(4), { out: new Float32Array(7) }),
      OdysseyRangeError,
      'ODYSSEY_SHAPE',
      'out',
    )
    expectError(
      () => model.step(new Float32Array(4), { out: new Float64Array(8) }),
      OdysseyTypeError,
      'ODYSSEY_DTYPE',
      'out',
    )
    const shared = new Float32Array(12)
    // Only the native addon writes into `out` where it lives; the WebAssembly build copies the output into it.
    if (loadedBindingKind() === 'native')
      expectError(
        () => model.step(shared.subarray(0, 4), { out: shared.subarray(2, 10) }),
        OdysseyRangeError,
        'ODYSSEY_INVALID',
        'out',
      )
    model.step(new Float32Array(4))
    expectError(() => model.step(new Float32Array(8)), OdysseyRangeError, 'ODYSSEY_SHAPE', 'a batch of 1')
    // The WebAssembly build's step runs with V8's stack traces off (ts/emnapi.ts, withoutStackTraces):
    // the limit comes back, and the typed error made of the core's still has its stack.
    const limit = Error.stackTraceLimit
    let batchError: unknown
    try {
      model.step(new Float32Array(8))
    } catch (error) {
      batchError = error
    }
    expect(Error.stackTraceLimit).toBe(limit)
    expect((batchError as Error).stack).toContain('model-step-into.test')
    model.dispose()
  })
})
