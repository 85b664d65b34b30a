/**
 * The native LSTM, SimpleRNN and GRU through the public facade: shapes and types of
 * every output, PyTorch-named weights, float64, variable lengths, state carried
 * across calls, initialisation, the recurrent clip, and errors raised inside
 * Rust arriving as typed JS errors.
 */
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

import {
  GRU,
  LSTM,
  LSTM_VARIANTS,
  OdysseyError,
  OdysseyRangeError,
  OdysseyTypeError,
  SimpleRNN,
  type Dtype,
} from '../ts'
import type { FloatArray, SequenceInput } from '../ts'
import { fromNativeError } from '../ts/errors'
import { NativeBackend } from '../ts/layers/native-backend'
import { at, expectNear, randomArray } from './helpers/layers'

const [BATCH, TIME, INPUT, HIDDEN] = [2, 5, 3, 4]

function batchInput(dtype: Dtype, seed = 1, lengths?: number[]): SequenceInput {
  return { x: randomArray(dtype, BATCH * TIME * INPUT, seed), shape: [BATCH, TIME, INPUT], lengths }
}

function sortedShapes(weights: Record<string, { shape: number[] }>): [string, number[]][] {
  return Object.entries(weights)
    .map(([name, t]): [string, number[]] => [name, t.shape])
    .sort(([a], [b]) => a.localeCompare(b))
}

describe('shapes and types', () => {
  it('LSTM forward and backward return every tensor with its shape, in float32 by default', () => {
    const lstm = new LSTM({ inputSize: INPUT, hiddenSize: HIDDEN })
    const { y, hN, cN } = lstm.forward(batchInput('float32'))
    expect(y.data).toBeInstanceOf(Float32Array)
    expect(y.shape).toEqual([BATCH, TIME, HIDDEN])
    expect(y.data.length).toBe(BATCH * TIME * HIDDEN)
    expect(hN.shape).toEqual([BATCH, HIDDEN])
    expect(cN?.shape).toEqual([BATCH, HIDDEN])

    const back = lstm.backward({ dy: randomArray('float32', BATCH * TIME * HIDDEN, 2) })
    expect(back.dx.shape).toEqual([BATCH, TIME, INPUT])
    expect(back.dx.data).toBeInstanceOf(Float32Array)
    expect(back.dh0.shape).toEqual([BATCH, HIDDEN])
    expect(back.dc0?.shape).toEqual([BATCH, HIDDEN])
    expect(sortedShapes(back.grads)).toEqual([
      ['bias_hh_l0', [4 * HIDDEN]],
      ['bias_ih_l0', [4 * HIDDEN]],
      ['peephole_f_l0', [HIDDEN]],
      ['peephole_i_l0', [HIDDEN]],
      ['peephole_o_l0', [HIDDEN]],
      ['weight_hh_l0', [4 * HIDDEN, HIDDEN]],
      ['weight_ih_l0', [4 * HIDDEN, INPUT]],
    ])
    expect(back.stepGradNorms).toBeInstanceOf(Float64Array)
    expect(back.stepGradNorms.length).toBe(TIME)
    expect([...back.stepGradNorms].every((n) => Number.isFinite(n) && n > 0)).toBe(true)
  })

  it('SimpleRNN has no cell state and four PyTorch-named parameters', () => {
    const rnn = new SimpleRNN({ inputSize: INPUT, hiddenSize: HIDDEN })
    const forward = rnn.forward(batchInput('float32'))
    expect(forward.y.shape).toEqual([BATCH, TIME, HIDDEN])
    expect(forward.cN).toBeUndefined()
    const back = rnn.backward({ dy: randomArray('float32', BATCH * TIME * HIDDEN, 2) })
    expect(back.dc0).toBeUndefined()
    expect(back.dx.shape).toEqual([BATCH, TIME, INPUT])
    expect(sortedShapes(back.grads)).toEqual([
      ['bias_hh_l0', [HIDDEN]],
      ['bias_ih_l0', [HIDDEN]],
      ['weight_hh_l0', [HIDDEN, HIDDEN]],
      ['weight_ih_l0', [HIDDEN, INPUT]],
    ])
    expect(back.stepGradNorms.length).toBe(TIME)
  })

  it('GRU has no cell state and four PyTorch-named parameters of three gate blocks', () => {
    const layer = new GRU({ inputSize: INPUT, hiddenSize: HIDDEN })
    expect(layer.forward(batchInput('float32')).cN).toBeUndefined()
    const back = layer.backward({ dy: randomArray('float32', BATCH * TIME * HIDDEN, 2) })
    expect(back.dc0).toBeUndefined()
    expect(sortedShapes(back.grads)).toEqual([
      ['bias_hh_l0', [3 * HIDDEN]],
      ['bias_ih_l0', [3 * HIDDEN]],
      ['weight_hh_l0', [3 * HIDDEN, HIDDEN]],
      ['weight_ih_l0', [3 * HIDDEN, INPUT]],
    ])
    expect(() => new GRU({ inputSize: INPUT, hiddenSize: HIDDEN, activation: 'relu' } as never)).toThrow(
      /unknown option 'activation'/,
    )
    expect(() => layer.forward({ ...batchInput('float32'), c0: new Float32Array(BATCH * HIDDEN) })).toThrow(/c0/)
  })

  it('float64 layers take and return Float64Array and agree with float32 on the same weights', () => {
    const f64 = new LSTM({ inputSize: INPUT, hiddenSize: HIDDEN, dtype: 'float64', seed: 3 })
    const f32 = new LSTM({ inputSize: INPUT, hiddenSize: HIDDEN, dtype: 'float32' })
    const weights64 = f64.getWeights()
    expect(weights64.weight_ih_l0.data).toBeInstanceOf(Float64Array)
    f32.setWeights(
      Object.fromEntries(
        Object.entries(weights64).map(([n, t]) => [n, { data: Float32Array.from(t.data), shape: t.shape }]),
      ),
    )
    const x64 = batchInput('float64')
    const y64 = f64.forward(x64).y
    const y32 = f32.forward({ ...x64, x: Float32Array.from(x64.x) }).y
    expect(y64.data).toBeInstanceOf(Float64Array)
    expectNear('y float32 vs float64', y32.data, y64.data, 1e-5)
  })

  it('the config holds every default and is frozen', () => {
    const lstm = new LSTM({ inputSize: 2, hiddenSize: 3 })
    expect(lstm.config).toEqual({
      inputSize: 2,
      hiddenSize: 3,
      variant: 'vanilla',
      peepholes: true,
      dtype: 'float32',
      seed: 0,
      forgetBias: 0,
      backend: 'native',
    })
    expect(Object.isFrozen(lstm.config)).toBe(true)
    expect(new LSTM({ inputSize: 2, hiddenSize: 3, variant: 'NP' }).config.peepholes).toBe(false)
    expect(new SimpleRNN({ inputSize: 2, hiddenSize: 3 }).config).toEqual({
      inputSize: 2,
      hiddenSize: 3,
      activation: 'tanh',
      dtype: 'float32',
      seed: 0,
      backend: 'native',
    })
  })
})

describe('weights', () => {
  it('every variant lists the tensors it uses under PyTorch names', () => {
    const H = 2
    for (const variant of LSTM_VARIANTS) {
      const names = Object.keys(new LSTM({ inputSize: 3, hiddenSize: H, variant }).getWeights()).sort()
      const expected = ['bias_hh_l0', 'bias_ih_l0', 'weight_hh_l0', 'weight_ih_l0']
      if (variant !== 'NP') expected.push('peephole_f_l0', 'peephole_i_l0', 'peephole_o_l0')
      if (variant === 'FGR') expected.push('weight_gg_l0')
      expect(names, variant).toEqual(expected.sort())
    }
    expect(new LSTM({ inputSize: 3, hiddenSize: H, variant: 'FGR' }).getWeights().weight_gg_l0.shape).toEqual([
      3 * H,
      3 * H,
    ])
    expect(Object.keys(new LSTM({ inputSize: 3, hiddenSize: H, peepholes: false }).getWeights())).not.toContain(
      'peephole_i_l0',
    )
  })

  it("round-trip: one layer takes another layer's weights and then computes the same", () => {
    for (const make of [
      (seed: number) => new LSTM({ inputSize: INPUT, hiddenSize: HIDDEN, seed }),
      (seed: number) => new SimpleRNN({ inputSize: INPUT, hiddenSize: HIDDEN, seed }),
    ]) {
      const source = make(1)
      const target = make(2)
      const input = batchInput('float32')
      expect(target.forward(input).y.data).not.toEqual(source.forward(input).y.data)
      target.setWeights(source.getWeights())
      expect(target.getWeights()).toEqual(source.getWeights())
      expect(target.forward(input).y.data).toEqual(source.forward(input).y.data)
    }
  })

  it('setWeights takes a subset; getWeights returns copies', () => {
    const rnn = new SimpleRNN({ inputSize: INPUT, hiddenSize: HIDDEN })
    const before = rnn.getWeights()
    rnn.setWeights({ bias_hh_l0: { data: new Float32Array(HIDDEN).fill(0.5), shape: [HIDDEN] } })
    const after = rnn.getWeights()
    expect([...after.bias_hh_l0.data]).toEqual([0.5, 0.5, 0.5, 0.5])
    expect(after.weight_ih_l0).toEqual(before.weight_ih_l0)
    after.weight_ih_l0.data.fill(9)
    expect(rnn.getWeights().weight_ih_l0).toEqual(before.weight_ih_l0)
  })

  it("initialisation is PyTorch's U(−1/√H, 1/√H), seeded; forgetBias shifts the forget block", () => {
    const H = 16
    const bound = 1 / Math.sqrt(H)
    const a = new LSTM({ inputSize: 3, hiddenSize: H, seed: 7 }).getWeights()
    expect(new LSTM({ inputSize: 3, hiddenSize: H, seed: 7 }).getWeights()).toEqual(a)
    expect(new LSTM({ inputSize: 3, hiddenSize: H, seed: 8 }).getWeights()).not.toEqual(a)
    const values = Object.values(a).flatMap((t) => [...t.data])
    expect(values.every((v) => Math.abs(v) <= bound)).toBe(true)
    expect(values.some((v) => Math.abs(v) > 0.9 * bound)).toBe(true)

    const shifted = new LSTM({ inputSize: 3, hiddenSize: H, seed: 7, forgetBias: 1 }).getWeights().bias_ih_l0.data
    // PyTorch's gate order is i, f, g, o: the forget block is [H, 2H).
    shifted.forEach((v, k) => {
      const inForgetBlock = k >= H && k < 2 * H
      expect(v).toBeCloseTo(a.bias_ih_l0.data[k] + (inForgetBlock ? 1 : 0), 6)
    })
  })
})

describe('sequences', () => {
  for (const [label, make] of [
    ['LSTM', () => new LSTM({ inputSize: INPUT, hiddenSize: HIDDEN, dtype: 'float64' })],
    ['SimpleRNN', () => new SimpleRNN({ inputSize: INPUT, hiddenSize: HIDDEN, dtype: 'float64' })],
    ['GRU', () => new GRU({ inputSize: INPUT, hiddenSize: HIDDEN, dtype: 'float64' })],
  ] as const) {
    it(`${label}: padded steps give y = 0, no dx, and hN at each sequence's own length`, () => {
      const layer = make()
      const lengths = [5, 2]
      const input = batchInput('float64', 4, lengths)
      const { y, hN } = layer.forward(input)
      const { dx } = layer.backward({ dy: randomArray('float64', BATCH * TIME * HIDDEN, 5) })
      for (let b = 0; b < BATCH; b++) {
        for (let j = 0; j < HIDDEN; j++) {
          expect(hN.data[b * HIDDEN + j]).toBe(at(y.data, TIME, HIDDEN, b, lengths[b] - 1, j))
          for (let t = lengths[b]; t < TIME; t++) expect(at(y.data, TIME, HIDDEN, b, t, j)).toBe(0)
        }
        for (let t = lengths[b]; t < TIME; t++) {
          for (let i = 0; i < INPUT; i++) expect(at(dx.data, TIME, INPUT, b, t, i)).toBe(0)
        }
      }
      // Whatever the padding holds changes nothing.
      const noisy = Float64Array.from(input.x)
      noisy.fill(1e3, (1 * TIME + 2) * INPUT)
      expect(layer.forward({ ...input, x: noisy }).y.data).toEqual(y.data)
    })

    it(`${label}: the final state carried into the next call continues the sequence`, () => {
      const layer = make()
      const whole = batchInput('float64', 6)
      const full = layer.forward(whole).y
      const split = 3
      const part = (from: number, to: number): FloatArray => {
        const out = new Float64Array(BATCH * (to - from) * INPUT)
        for (let b = 0; b < BATCH; b++) {
          out.set(whole.x.subarray((b * TIME + from) * INPUT, (b * TIME + to) * INPUT), b * (to - from) * INPUT)
        }
        return out
      }
      const first = layer.forward({ x: part(0, split), shape: [BATCH, split, INPUT] })
      const second = layer.forward({
        x: part(split, TIME),
        shape: [BATCH, TIME - split, INPUT],
        h0: first.hN.data,
        c0: first.cN?.data,
      })
      for (let b = 0; b < BATCH; b++) {
        for (let t = 0; t < TIME; t++) {
          for (let j = 0; j < HIDDEN; j++) {
            const expected = at(full.data, TIME, HIDDEN, b, t, j)
            const actual =
              t < split
                ? at(first.y.data, split, HIDDEN, b, t, j)
                : at(second.y.data, TIME - split, HIDDEN, b, t - split, j)
            expect(actual).toBeCloseTo(expected, 12)
          }
        }
      }
    })

    it(`${label}: the recurrent clip bounds the error at every step`, () => {
      const layer = make()
      layer.forward(batchInput('float64', 8))
      const dy = randomArray('float64', BATCH * TIME * HIDDEN, 9, 10)
      const plain = layer.backward({ dy })
      const clip = 0.01
      const clipped = layer.backward({ dy, recurrentClip: clip })
      expect(Math.max(...plain.stepGradNorms)).toBeGreaterThan(clip * Math.sqrt(BATCH * HIDDEN))
      if (label === 'SimpleRNN') {
        // ‖δh(k)‖ is the norm of the clamped error itself.
        for (const norm of clipped.stepGradNorms)
          expect(norm).toBeLessThanOrEqual(clip * Math.sqrt(BATCH * HIDDEN) + 1e-12)
      }
      expect(clipped.dx.data).not.toEqual(plain.dx.data)
    })
  }
})

describe('input as { data, shape }, and dispose', () => {
  for (const backend of ['native', 'js'] as const) {
    it(`${backend}: forward takes the values as data, like a model's tensors, and gives what x gives`, () => {
      const lstm = new LSTM({ inputSize: INPUT, hiddenSize: HIDDEN, backend })
      const { x, shape, lengths } = batchInput('float32', 3, [5, 2])
      const fromX = lstm.forward({ x, shape, lengths })
      const fromData = lstm.forward({ data: x, shape, lengths })
      expect(fromData).toEqual(fromX)
      expect(() => lstm.forward({ x, data: x, shape } as never)).toThrow(/x, data: give the values once/)
      expect(() => lstm.forward({ data: new Float32Array(3), shape })).toThrow(/^data: /)
    })

    it(`${backend}: dispose frees the layer; every later call throws ODYSSEY_STATE; twice is fine`, () => {
      const rnn = new SimpleRNN({ inputSize: INPUT, hiddenSize: HIDDEN, backend })
      rnn.forward(batchInput('float32'))
      rnn.dispose()
      rnn.dispose()
      const calls = [
        () => rnn.forward(batchInput('float32')),
        () => rnn.backward({ dy: new Float32Array(BATCH * TIME * HIDDEN) }),
        () => rnn.getWeights(),
        () => rnn.setWeights({}),
      ]
      for (const call of calls) {
        expect(call).toThrow(OdysseyRangeError)
        expect(call).toThrow(/this SimpleRNN has been disposed/)
      }
    })
  }

  it('the native layer refuses every call once disposed, with ODYSSEY_STATE', () => {
    const backend = NativeBackend.simpleRnn({
      inputSize: 3,
      hiddenSize: 2,
      activation: 'tanh',
      dtype: 'float32',
      seed: 0,
    })
    backend.dispose()
    expect(() => backend.getWeights()).toThrow(expect.objectContaining({ code: 'ODYSSEY_STATE' }))
    expect(() => backend.forward({ x: new Float32Array(6), shape: [1, 2, 3] })).toThrow(/has been disposed/)
  })
})

describe('errors raised inside the native addon', () => {
  // Straight to the adapter, past the facade's checks, to see what Rust reports.
  const lstmBackend = () =>
    NativeBackend.lstm({
      inputSize: 3,
      hiddenSize: 2,
      variant: 'vanilla',
      peepholes: true,
      dtype: 'float32',
      seed: 0,
      forgetBias: 0,
    })
  const x = new Float32Array(2 * 4 * 3)

  it('shape, length, dtype, key, invalid and state errors arrive with their code and class', () => {
    const cases: [string, () => unknown, new (...args: never[]) => Error, string][] = [
      ['shape', () => lstmBackend().forward({ x, shape: [2, 4, 2] }), OdysseyRangeError, 'ODYSSEY_SHAPE'],
      [
        'length',
        () => lstmBackend().forward({ x, shape: [2, 4, 3], lengths: [4, 0] }),
        OdysseyRangeError,
        'ODYSSEY_LENGTH',
      ],
      [
        'dtype',
        () => lstmBackend().forward({ x: new Float64Array(24), shape: [2, 4, 3] }),
        OdysseyTypeError,
        'ODYSSEY_DTYPE',
      ],
      ['state', () => lstmBackend().backward({ dy: new Float32Array(16) }), OdysseyRangeError, 'ODYSSEY_STATE'],
      [
        'key',
        () => lstmBackend().setWeights({ weight_xx_l0: { data: new Float32Array(1), shape: [1] } }),
        OdysseyRangeError,
        'ODYSSEY_KEY',
      ],
      [
        'invalid clip',
        () => {
          const backend = lstmBackend()
          backend.forward({ x, shape: [2, 4, 3] })
          return backend.backward({ dy: new Float32Array(16), recurrentClip: -1 })
        },
        OdysseyRangeError,
        'ODYSSEY_INVALID',
      ],
      [
        'invalid activation',
        () =>
          NativeBackend.simpleRnn({ inputSize: 1, hiddenSize: 1, activation: 'sigmoid', dtype: 'float32', seed: 0 }),
        OdysseyRangeError,
        'ODYSSEY_INVALID',
      ],
      // napi's own argument conversion: not one of our codes.
      [
        'conversion',
        () => lstmBackend().forward({ x: [1, 2] as unknown as Float32Array, shape: [1, 1, 2] }),
        OdysseyError,
        'ODYSSEY_NATIVE',
      ],
    ]
    for (const [label, call, errorClass, code] of cases) {
      let thrown: unknown
      try {
        call()
      } catch (error) {
        thrown = error
      }
      expect(thrown, label).toBeInstanceOf(errorClass)
      expect((thrown as { code: string }).code, label).toBe(code)
    }
  })

  it('messages from Rust name the argument and the expected shape', () => {
    expect(() => lstmBackend().forward({ x, shape: [2, 4, 3], h0: new Float32Array(3) })).toThrow(
      /h0: expected shape \[2, 2\]/,
    )
  })

  it('every native error code maps to its class, unknown ones to ODYSSEY_NATIVE', () => {
    const classes: Record<string, new (...args: never[]) => Error> = {
      ODYSSEY_DTYPE: OdysseyTypeError,
      ODYSSEY_SHAPE: OdysseyRangeError,
      ODYSSEY_LENGTH: OdysseyRangeError,
      ODYSSEY_INVALID: OdysseyRangeError,
      ODYSSEY_NON_FINITE: OdysseyRangeError,
      ODYSSEY_KEY: OdysseyRangeError,
      ODYSSEY_STATE: OdysseyRangeError,
      ODYSSEY_IO: OdysseyError,
      ODYSSEY_CHECKPOINT: OdysseyError,
      ODYSSEY_PANIC: OdysseyError,
    }
    for (const [code, errorClass] of Object.entries(classes)) {
      const native = Object.assign(new Error('boom'), { code })
      const mapped = fromNativeError(native)
      expect(mapped, code).toBeInstanceOf(errorClass)
      expect(mapped.code).toBe(code)
      expect(mapped.message).toBe('boom')
      expect(mapped.cause).toBe(native)
    }
    const other = fromNativeError(Object.assign(new Error('Failed to convert'), { code: 'InvalidArg' }))
    expect(other).toBeInstanceOf(OdysseyError)
    expect(other.code).toBe('ODYSSEY_NATIVE')
  })

  it('a trap of the WebAssembly build (a Rust panic there) is ODYSSEY_PANIC, saying the module may be unusable', () => {
    const trap = new WebAssembly.RuntimeError('unreachable')
    const mapped = fromNativeError(trap)
    expect(mapped).toBeInstanceOf(OdysseyError)
    expect(mapped.code).toBe('ODYSSEY_PANIC')
    expect(mapped.message).toContain('unreachable')
    expect(mapped.message).toContain('restart the process')
    expect(mapped.cause).toBe(trap)
  })

  it('the ErrorCode enum of the addon lists exactly the codes ts/errors.ts maps', () => {
    const rust = readFileSync(join(__dirname, '..', 'crates', 'node', 'src', 'error.rs'), 'utf8')
    const rustCodes = [...rust.matchAll(/=> "(ODYSSEY_[A-Z_]+)"/g)].map((m) => m[1]).sort()
    const mapped = rustCodes.map((code) => fromNativeError(Object.assign(new Error(''), { code })).code)
    expect(mapped).toEqual(rustCodes)
  })

  // A panic cannot be provoked from JS without a test-only export, so this checks the
  // source instead: every #[napi] function's body must be a `guard(...)` call, which runs
  // it under catch_unwind and turns a panic into an ODYSSEY_PANIC exception.
  it('every export of the addon runs its body inside guard (catch_unwind)', () => {
    const sourceDir = join(__dirname, '..', 'crates', 'node', 'src')
    const exports: string[] = []
    for (const file of readdirSync(sourceDir).filter((f) => f.endsWith('.rs'))) {
      const source = readFileSync(join(sourceDir, file), 'utf8')
      for (const match of source.matchAll(/#\[napi(?:\(([^)]*)\))?\]\s*pub fn (\w+)[^{]*\{\s*([^\s(]+)/g)) {
        const [, , name, firstCall] = match
        exports.push(name)
        expect(firstCall, `${file}: ${name}`).toBe('guard')
      }
    }
    expect(exports).toEqual(
      expect.arrayContaining(['forward', 'backward', 'get_weights', 'set_weights', 'lstm', 'simple_rnn']),
    )
  })
})
