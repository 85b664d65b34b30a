/**
 * Encoder–decoder graphs and the state `step` carries: `initialState` wiring refused with both
 * nodes and both shapes named, a decoder stepped from its encoder's final state giving exactly what
 * `predict` gives, `getState`/`setState` round trips, and `setState`'s checks (typed errors naming
 * the argument).
 */
import { describe, expect, it } from 'vitest'

import { Model, OdysseyRangeError, OdysseyTypeError, type ModelConfig } from '../ts'
import { expectNear } from './helpers/layers'

const sgd = { type: 'sgd', learningRate: 0.1 } as const

/** src `[n, 1, 2]` → 2-layer LSTM encoder (states) → LSTM decoder on tgt `[n, time, 3]` → dense(2). */
function seq2seq(changes: (config: ModelConfig) => void = () => {}): Model {
  const config: ModelConfig = {
    inputs: [
      { kind: 'sequence', name: 'src', features: 2 },
      { kind: 'sequence', name: 'tgt', features: 3 },
    ],
    nodes: [
      { name: 'enc', inputs: ['src'], type: 'lstm', hiddenSize: 4, numLayers: 2, output: 'states' },
      { name: 'dec', inputs: ['tgt'], type: 'lstm', hiddenSize: 4, numLayers: 2, initialState: 'enc' },
      { name: 'out', inputs: ['dec'], type: 'dense', units: 2 },
    ],
    output: 'out',
    loss: 'mse',
    dtype: 'float64',
    seed: 3,
    optimizer: sgd,
  }
  changes(config)
  return Model.fromSpec(config)
}

const values = (length: number, seed: number) => Float64Array.from({ length }, (_, k) => Math.sin(seed * 7.1 + k * 1.3))

/** Step `t` of a `[n, time, width]` array: `[n, width]`. */
function stepOf(data: Float64Array, n: number, time: number, width: number, t: number): Float64Array {
  const out = new Float64Array(n * width)
  for (let s = 0; s < n; s++) out.set(data.subarray((s * time + t) * width, (s * time + t + 1) * width), s * width)
  return out
}

function expectError(
  call: () => unknown,
  errorClass: typeof OdysseyRangeError | typeof OdysseyTypeError,
  code: string,
  message: string,
) {
  expect(call).toThrow(expect.objectContaining({ code, message: expect.stringContaining(message) }))
  expect(call).toThrow(errorClass)
}

describe('initialState', () => {
  it('refuses a missing, non-recurrent or mismatched node when the model is built, naming both', () => {
    const decoder = (options: Record<string, unknown>) => (c: ModelConfig) => {
      Object.assign(c.nodes[1], options)
    }
    expectError(
      () => seq2seq(decoder({ initialState: 'nope' })),
      OdysseyRangeError,
      'ODYSSEY_INVALID',
      "nodes 'dec'.initialState: reads 'nope', which is neither a model input nor an earlier node",
    )
    expectError(
      () => seq2seq(decoder({ initialState: 'src' })),
      OdysseyRangeError,
      'ODYSSEY_SHAPE',
      "nodes 'dec'.initialState: 'src' is [n, time, 2], 'dec' needs [n, 16]",
    )
    expectError(
      () => seq2seq(decoder({ numLayers: 1 })),
      OdysseyRangeError,
      'ODYSSEY_SHAPE',
      "nodes 'dec'.initialState: 'enc' hands on [n, 16] (the lstm states of 2 layers × 1 direction × (h, c) × H 4), 'dec' needs [n, 8]",
    )
    expectError(
      () => seq2seq(decoder({ type: 'rnn' })),
      OdysseyRangeError,
      'ODYSSEY_SHAPE',
      "'enc' is a lstm node with output 'states'; a rnn node starts from the 'states' output of a rnn node",
    )
    expectError(
      () => seq2seq(decoder({ initialState: 3 })),
      OdysseyTypeError,
      'ODYSSEY_TYPE',
      "nodes 'dec'.initialState: expected a non-empty string, got number 3",
    )
  })

  it('a gru decoder starts only from a gru encoder’s states or a vector of its state width, refused naming both', () => {
    const kinds = (enc: Record<string, unknown>, dec: Record<string, unknown>) => (c: ModelConfig) => {
      Object.assign(c.nodes[0], { numLayers: 1, ...enc })
      Object.assign(c.nodes[1], { numLayers: 1, ...dec })
    }
    const cases: [Record<string, unknown>, Record<string, unknown>, string][] = [
      [
        { type: 'lstm' },
        { type: 'gru' },
        "nodes 'dec'.initialState: 'enc' is a lstm node with output 'states'; a gru node starts from the 'states' output of a gru node",
      ],
      [
        { type: 'gru' },
        { type: 'lstm' },
        "nodes 'dec'.initialState: 'enc' is a gru node with output 'states'; a lstm node starts from the 'states' output of a lstm node",
      ],
      [
        { type: 'gru', output: 'last' },
        { type: 'gru' },
        "nodes 'dec'.initialState: 'enc' is a gru node with output 'last'; a gru node starts from the 'states' output of a gru node",
      ],
      [
        { type: 'gru' },
        { type: 'gru', numLayers: 2 },
        "nodes 'dec'.initialState: 'enc' hands on [n, 4] (the gru states of 1 layer × 1 direction × h × H 4), 'dec' needs [n, 8] (the gru states of 2 layers × 1 direction × h × H 4)",
      ],
    ]
    for (const [enc, dec, message] of cases)
      expectError(() => seq2seq(kinds(enc, dec)), OdysseyRangeError, 'ODYSSEY_SHAPE', message)
    seq2seq(kinds({ type: 'gru', numLayers: 2 }, { type: 'gru', numLayers: 2 })).dispose()
  })

  it.each(['lstm', 'gru'] as const)(
    'a %s decoder stepped from its encoder’s final state gives exactly what predict gives',
    async (type) => {
      const model = seq2seq((c) => {
        Object.assign(c.nodes[0], { type })
        Object.assign(c.nodes[1], { type })
      })
      const [n, time] = [3, 5]
      const src = { data: values(n * 2, 1), shape: [n, 1, 2] as [number, number, number] }
      const tgt = { data: values(n * time * 3, 2), shape: [n, time, 3] as [number, number, number] }
      const whole = await model.predict({ src, tgt })
      for (let t = 0; t < time; t++) {
        const out = model.step({
          src: { data: stepOf(src.data, n, 1, 2, 0), shape: [n, 2] },
          tgt: { data: stepOf(tgt.data, n, time, 3, t), shape: [n, 3] },
        })
        expectNear(`step ${t}`, out.data, stepOf(whole.data as Float64Array, n, time, 2, t), 1e-12)
      }
      model.dispose()
    },
  )
})

describe('getState and setState', () => {
  const n = 2
  const stepInput = (seed: number) => ({
    src: { data: values(n * 2, seed), shape: [n, 2] as [number, number] },
    tgt: { data: values(n * 3, seed + 1), shape: [n, 3] as [number, number] },
  })

  it('getState gives every recurrent node h (and c) [layers·directions, batch, H]; setState restores it', () => {
    const model = seq2seq()
    expect(model.getState()).toEqual({})
    model.step(stepInput(1))
    const state = model.getState()
    expect(Object.keys(state).sort()).toEqual(['dec', 'enc'])
    expect(state.dec.h.shape).toEqual([2, n, 4])
    expect(state.dec.c?.shape).toEqual([2, n, 4])
    const next = model.step(stepInput(2))
    model.resetState()
    expect(model.getState()).toEqual({})
    model.setState(state)
    expect(model.getState()).toEqual(state)
    expectNear('the step after the restored state', model.step(stepInput(2)).data, next.data, 0)
    model.dispose()
  })

  it('a node left out keeps its state; a new batch starts it from zeros', () => {
    const model = seq2seq()
    model.step(stepInput(1))
    const before = model.getState()
    const zeros = { data: new Float64Array(2 * n * 4), shape: [2, n, 4] }
    model.setState({ dec: { h: zeros, c: zeros } })
    const after = model.getState()
    expect(after.enc).toEqual(before.enc)
    expect(after.dec.h.data).toEqual(zeros.data)
    const three = { data: new Float64Array(2 * 3 * 4).fill(0.5), shape: [2, 3, 4] }
    model.setState({ dec: { h: three, c: three } })
    expect(model.getState().enc.h.data).toEqual(new Float64Array(2 * 3 * 4))
    model.dispose()
  })

  it('refuses bad state with typed errors naming the argument, and changes nothing', () => {
    const model = seq2seq((c) => {
      c.nodes.splice(2, 0, { name: 'rnn', inputs: ['dec'], type: 'rnn', hiddenSize: 3 })
      c.nodes[3].inputs = ['rnn']
    })
    model.step(stepInput(1))
    const before = model.getState()
    const tensor = (shape: number[], fill = 0) => ({
      data: new Float64Array(shape.reduce((a, b) => a * b, 1)).fill(fill),
      shape,
    })
    const good = tensor([2, n, 4])
    expectError(() => model.setState(null as never), OdysseyTypeError, 'ODYSSEY_TYPE', 'state: expected an object')
    expectError(
      () => model.setState({ out: { h: good } }),
      OdysseyRangeError,
      'ODYSSEY_KEY',
      "state: unknown recurrent node 'out'; this model's recurrent nodes are enc, dec, rnn",
    )
    expectError(
      () => model.setState({ dec: { h: tensor([2, n, 3]), c: good } }),
      OdysseyRangeError,
      'ODYSSEY_SHAPE',
      'state.dec.h: expected shape [2, 2, 4], got [2, 2, 3]',
    )
    expectError(
      () => model.setState({ dec: { h: good, c: tensor([2, 3, 4]) } }),
      OdysseyRangeError,
      'ODYSSEY_SHAPE',
      'state.dec.c: expected shape [2, 2, 4], got [2, 3, 4]',
    )
    expectError(
      () => model.setState({ dec: { h: good } }),
      OdysseyRangeError,
      'ODYSSEY_INVALID',
      "state.dec: an lstm node's state is h and c, each [2, 2, 4]; c is missing",
    )
    expectError(
      () => model.setState({ rnn: { h: tensor([1, n, 3]), c: tensor([1, n, 3]) } }),
      OdysseyRangeError,
      'ODYSSEY_INVALID',
      'state.rnn.c: this node has no cell state; leave c out',
    )
    expectError(
      () => model.setState({ dec: { h: tensor([2, n, 4], Number.NaN), c: good } }),
      OdysseyRangeError,
      'ODYSSEY_NON_FINITE',
      'state.dec.h.data: non-finite value NaN at flat index 0',
    )
    expectError(
      () => model.setState({ dec: { h: { data: new Float32Array(16), shape: [2, n, 4] }, c: good } }),
      OdysseyTypeError,
      'ODYSSEY_DTYPE',
      'state.dec.h.data: expected a Float64Array',
    )
    expectError(
      () => model.setState({ dec: { h: good, c: good, y: good } as never }),
      OdysseyTypeError,
      'ODYSSEY_TYPE',
      "unknown option 'y'",
    )
    expect(model.getState()).toEqual(before)
    model.dispose()
  })
})
