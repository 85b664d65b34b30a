/**
 * Bad input is refused by the facade before it reaches a backend: one test per
 * rule, each asserting the error class (a TypeError or RangeError subclass),
 * the code, and that the message names the argument and what was expected.
 */
import { describe, expect, it } from 'vitest'

import {
  LSTM,
  OdysseyRangeError,
  OdysseyTypeError,
  SimpleRNN,
  type BackwardInput,
  type LstmOptions,
  type SequenceInput,
  type SimpleRnnOptions,
} from '../ts'
import { randomArray } from './helpers/layers'

const [BATCH, TIME, INPUT, HIDDEN] = [2, 5, 3, 4]

type ErrorClass = typeof OdysseyTypeError | typeof OdysseyRangeError

/** Runs `call`, expecting an error of `errorClass` with `code` whose message matches every pattern. */
function expectError(call: () => unknown, errorClass: ErrorClass, code: string, ...patterns: (string | RegExp)[]) {
  let thrown: unknown
  try {
    call()
  } catch (error) {
    thrown = error
  }
  expect(thrown).toBeInstanceOf(errorClass)
  expect(thrown).toBeInstanceOf(errorClass === OdysseyTypeError ? TypeError : RangeError)
  const { code: actualCode, message } = thrown as OdysseyTypeError
  expect(actualCode).toBe(code)
  for (const pattern of patterns) {
    if (typeof pattern === 'string') expect(message).toContain(pattern)
    else expect(message).toMatch(pattern)
  }
}

const lstm = (options: Partial<LstmOptions> = {}) => new LSTM({ inputSize: INPUT, hiddenSize: HIDDEN, ...options })
const rnn = (options: Partial<SimpleRnnOptions> = {}) =>
  new SimpleRNN({ inputSize: INPUT, hiddenSize: HIDDEN, ...options })

function input(overrides: Partial<Record<keyof SequenceInput, unknown>> = {}): SequenceInput {
  return {
    x: randomArray('float32', BATCH * TIME * INPUT, 1),
    shape: [BATCH, TIME, INPUT],
    ...overrides,
  } as SequenceInput
}

function gradient(overrides: Partial<Record<keyof BackwardInput, unknown>> = {}): BackwardInput {
  return { dy: randomArray('float32', BATCH * TIME * HIDDEN, 2), ...overrides } as BackwardInput
}

/** A layer that has run forward on `input()`, ready for backward. */
function forwarded<T extends LSTM | SimpleRNN>(layer: T): T {
  layer.forward(input())
  return layer
}

describe('constructor options', () => {
  it('options must be an object', () => {
    expectError(
      () => new LSTM(null as unknown as LstmOptions),
      OdysseyTypeError,
      'ODYSSEY_TYPE',
      'LSTM options: expected an object',
    )
  })

  it('unknown options are refused, naming the known ones', () => {
    expectError(
      () => lstm({ hiddensize: 3 } as Partial<LstmOptions>),
      OdysseyTypeError,
      'ODYSSEY_TYPE',
      "unknown option 'hiddensize'",
      'hiddenSize',
    )
    expectError(
      () => rnn({ variant: 'NP' } as Partial<SimpleRnnOptions>),
      OdysseyTypeError,
      'ODYSSEY_TYPE',
      "unknown option 'variant'",
    )
  })

  it('sizes must be integers', () => {
    expectError(
      () => lstm({ inputSize: 2.5 }),
      OdysseyTypeError,
      'ODYSSEY_TYPE',
      'inputSize: expected an integer, got number 2.5',
    )
    expectError(
      () => rnn({ hiddenSize: '4' as unknown as number }),
      OdysseyTypeError,
      'ODYSSEY_TYPE',
      'hiddenSize: expected an integer, got string',
    )
  })

  it('sizes must be at least 1', () => {
    expectError(
      () => lstm({ hiddenSize: 0 }),
      OdysseyRangeError,
      'ODYSSEY_INVALID',
      'hiddenSize: expected an integer in 1..',
      'got 0',
    )
  })

  it('variant, activation, dtype and backend must be one of their values', () => {
    expectError(
      () => lstm({ variant: 'XYZ' as 'NP' }),
      OdysseyRangeError,
      'ODYSSEY_INVALID',
      "variant: expected one of 'vanilla', 'NIG'",
      "got 'XYZ'",
    )
    expectError(
      () => rnn({ activation: 'sigmoid' as 'relu' }),
      OdysseyRangeError,
      'ODYSSEY_INVALID',
      "activation: expected one of 'tanh', 'relu'",
    )
    expectError(
      () => lstm({ dtype: 'float16' as 'float32' }),
      OdysseyRangeError,
      'ODYSSEY_INVALID',
      "dtype: expected one of 'float32', 'float64'",
    )
    expectError(
      () => rnn({ backend: 'gpu' as 'js' }),
      OdysseyRangeError,
      'ODYSSEY_INVALID',
      "backend: expected one of 'native', 'js'",
    )
    expectError(
      () => lstm({ variant: 3 as unknown as 'NP' }),
      OdysseyTypeError,
      'ODYSSEY_TYPE',
      'variant: expected a string, got number',
    )
  })

  it('peepholes must be a boolean', () => {
    expectError(
      () => lstm({ peepholes: 'yes' as unknown as boolean }),
      OdysseyTypeError,
      'ODYSSEY_TYPE',
      'peepholes: expected a boolean',
    )
  })

  it('seed must be a non-negative safe integer', () => {
    expectError(() => lstm({ seed: 1.5 }), OdysseyTypeError, 'ODYSSEY_TYPE', 'seed: expected a safe integer')
    expectError(() => rnn({ seed: -1 }), OdysseyRangeError, 'ODYSSEY_INVALID', 'seed: expected an integer >= 0, got -1')
  })

  it('forgetBias must be finite', () => {
    expectError(
      () => lstm({ forgetBias: Number.NaN }),
      OdysseyRangeError,
      'ODYSSEY_NON_FINITE',
      'forgetBias: expected a finite number, got NaN',
    )
  })
})

describe('forward input', () => {
  it('the input must be an object', () => {
    expectError(
      () => lstm().forward(undefined as unknown as SequenceInput),
      OdysseyTypeError,
      'ODYSSEY_TYPE',
      'LSTM.forward input: expected an object',
    )
  })

  it('x must be a typed array', () => {
    expectError(
      () => lstm().forward(input({ x: [1, 2, 3] })),
      OdysseyTypeError,
      'ODYSSEY_TYPE',
      'x: expected a Float32Array, got Array',
    )
  })

  it("x must have the layer's dtype", () => {
    const x64 = new Float64Array(BATCH * TIME * INPUT)
    expectError(
      () => lstm().forward(input({ x: x64 })),
      OdysseyTypeError,
      'ODYSSEY_DTYPE',
      "x: expected a Float32Array (the layer's dtype is float32), got a Float64Array",
    )
    const x32 = new Float32Array(BATCH * TIME * INPUT)
    expectError(
      () => rnn({ dtype: 'float64' }).forward(input({ x: x32 })),
      OdysseyTypeError,
      'ODYSSEY_DTYPE',
      'x: expected a Float64Array',
    )
  })

  it('shape must be an array of three positive integers ending in inputSize', () => {
    expectError(
      () => lstm().forward(input({ shape: '2,5,3' })),
      OdysseyTypeError,
      'ODYSSEY_TYPE',
      'shape: expected an array [batch, time, inputSize=3]',
    )
    expectError(
      () => lstm().forward(input({ shape: [10, 3] })),
      OdysseyRangeError,
      'ODYSSEY_SHAPE',
      'shape: expected 3 dimensions [batch, time, inputSize=3], got [10, 3]',
    )
    expectError(
      () => lstm().forward(input({ shape: [2, 5.5, 3] })),
      OdysseyTypeError,
      'ODYSSEY_TYPE',
      'shape[1] (time): expected an integer',
    )
    expectError(
      () => lstm().forward(input({ shape: [0, 5, 3] })),
      OdysseyRangeError,
      'ODYSSEY_INVALID',
      'shape[0] (batch): expected an integer in 1..',
    )
    expectError(
      () => rnn().forward(input({ shape: [2, 5, 4] })),
      OdysseyRangeError,
      'ODYSSEY_SHAPE',
      'shape: expected [batch, time, inputSize=3] for this SimpleRNN, got [2, 5, 4]',
    )
  })

  it('x must have the length of its shape', () => {
    const x = new Float32Array(29)
    expectError(
      () => lstm().forward(input({ x, shape: [2, 5, 3] })),
      OdysseyRangeError,
      'ODYSSEY_SHAPE',
      'x: expected length 2*5*3 = 30 for shape [batch=2, time=5, inputSize=3], got 29',
    )
  })

  it('x must be finite, and the message locates the first bad value', () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY]) {
      const x = new Float32Array(BATCH * TIME * INPUT)
      x[1 * TIME * INPUT + 2 * INPUT + 1] = bad
      expectError(
        () => rnn().forward(input({ x })),
        OdysseyRangeError,
        'ODYSSEY_NON_FINITE',
        `x: non-finite value ${bad} at index 22 = [batch=1, time=2, inputSize=1]`,
      )
    }
  })

  it('a non-finite value is found wherever it stands, the last values (past whole fours) included', () => {
    const bads = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]
    const length = BATCH * TIME * INPUT
    for (let k = 0; k < length; k++) {
      const x = new Float32Array(length).fill(0.5)
      x[k] = bads[k % bads.length]
      expect(() => rnn().forward(input({ x }))).toThrow(`x: non-finite value ${x[k]} at index ${k} = [`)
    }
  })

  it('lengths must be an array of batch integers', () => {
    expectError(
      () => lstm().forward(input({ lengths: 5 })),
      OdysseyTypeError,
      'ODYSSEY_TYPE',
      'lengths: expected an array of 2 integers',
    )
    expectError(
      () => lstm().forward(input({ lengths: [5, 5, 5] })),
      OdysseyRangeError,
      'ODYSSEY_SHAPE',
      'lengths: expected length batch = 2, got 3',
    )
    expectError(
      () => lstm().forward(input({ lengths: [5, 2.5] })),
      OdysseyTypeError,
      'ODYSSEY_TYPE',
      'lengths[1]: expected an integer, got number 2.5',
    )
  })

  it('every length must be in 1..time', () => {
    expectError(
      () => lstm().forward(input({ lengths: [5, 0] })),
      OdysseyRangeError,
      'ODYSSEY_LENGTH',
      'lengths[1] = 0: every length must be in 1..5 (time)',
    )
    expectError(
      () => rnn().forward(input({ lengths: new Uint32Array([6, 1]) })),
      OdysseyRangeError,
      'ODYSSEY_LENGTH',
      'lengths[0] = 6: every length must be in 1..5',
    )
  })

  it('h0 must be [batch, hiddenSize] in the layer dtype, finite', () => {
    expectError(
      () => lstm().forward(input({ h0: new Float32Array(3 * HIDDEN) })),
      OdysseyRangeError,
      'ODYSSEY_SHAPE',
      'h0: expected length 2*4 = 8 for shape [batch=2, hiddenSize=4], got 12',
    )
    expectError(
      () => rnn().forward(input({ h0: new Float64Array(BATCH * HIDDEN) })),
      OdysseyTypeError,
      'ODYSSEY_DTYPE',
      'h0: expected a Float32Array',
    )
    const h0 = new Float32Array(BATCH * HIDDEN)
    h0[5] = Number.NaN
    expectError(
      () => rnn().forward(input({ h0 })),
      OdysseyRangeError,
      'ODYSSEY_NON_FINITE',
      'h0: non-finite value NaN at index 5 = [batch=1, hiddenSize=1]',
    )
  })

  it('c0 must be [batch, hiddenSize] for the LSTM and is refused by the SimpleRNN', () => {
    expectError(
      () => lstm().forward(input({ c0: new Float32Array(HIDDEN) })),
      OdysseyRangeError,
      'ODYSSEY_SHAPE',
      'c0: expected length 2*4 = 8 for shape [batch=2, hiddenSize=4], got 4',
    )
    expectError(
      () => rnn().forward(input({ c0: new Float32Array(BATCH * HIDDEN) })),
      OdysseyTypeError,
      'ODYSSEY_TYPE',
      'c0: a SimpleRNN has no cell state',
    )
  })
})

describe('backward input', () => {
  it('backward needs a forward pass first', () => {
    expectError(
      () => lstm().backward(gradient()),
      OdysseyRangeError,
      'ODYSSEY_STATE',
      'LSTM.backward: there is no forward pass',
      'call forward first',
    )
  })

  it('setWeights and a failed forward discard the last forward pass', () => {
    const layer = forwarded(rnn())
    layer.setWeights(layer.getWeights())
    expectError(() => layer.backward(gradient()), OdysseyRangeError, 'ODYSSEY_STATE', 'SimpleRNN.backward')
    layer.forward(input())
    expect(() => layer.forward(input({ lengths: [0, 1] }))).toThrow(OdysseyRangeError)
    expectError(() => layer.backward(gradient()), OdysseyRangeError, 'ODYSSEY_STATE')
  })

  it('dy must be [batch, time, hiddenSize] of the last forward pass', () => {
    expectError(
      () => forwarded(lstm()).backward(gradient({ dy: new Float32Array(39) })),
      OdysseyRangeError,
      'ODYSSEY_SHAPE',
      'dy: expected length 2*5*4 = 40 for shape [batch=2, time=5, hiddenSize=4] (the last forward pass), got 39',
    )
  })

  it('dy must be a finite typed array of the layer dtype', () => {
    expectError(
      () => forwarded(lstm()).backward(gradient({ dy: new Float64Array(40) })),
      OdysseyTypeError,
      'ODYSSEY_DTYPE',
      'dy: expected a Float32Array',
    )
    expectError(
      () => forwarded(lstm()).backward(gradient({ dy: 'dy' })),
      OdysseyTypeError,
      'ODYSSEY_TYPE',
      'dy: expected a Float32Array, got string',
    )
    const dy = new Float32Array(40)
    dy[39] = Number.NEGATIVE_INFINITY
    expectError(
      () => forwarded(rnn()).backward(gradient({ dy })),
      OdysseyRangeError,
      'ODYSSEY_NON_FINITE',
      'dy: non-finite value -Infinity at index 39 = [batch=1, time=4, hiddenSize=3]',
    )
  })

  it('dhN and dcN must be [batch, hiddenSize]; the SimpleRNN refuses dcN', () => {
    expectError(
      () => forwarded(lstm()).backward(gradient({ dhN: new Float32Array(HIDDEN) })),
      OdysseyRangeError,
      'ODYSSEY_SHAPE',
      'dhN: expected length 2*4 = 8 for shape [batch=2, hiddenSize=4] (the last forward pass), got 4',
    )
    expectError(
      () => forwarded(lstm()).backward(gradient({ dcN: new Float32Array(9) })),
      OdysseyRangeError,
      'ODYSSEY_SHAPE',
      'dcN: expected length 2*4 = 8',
    )
    expectError(
      () => forwarded(rnn()).backward(gradient({ dcN: new Float32Array(8) })),
      OdysseyTypeError,
      'ODYSSEY_TYPE',
      'dcN: a SimpleRNN has no cell state',
    )
  })

  it('recurrentClip must be a finite number > 0', () => {
    for (const clip of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expectError(
        () => forwarded(lstm()).backward(gradient({ recurrentClip: clip })),
        OdysseyRangeError,
        'ODYSSEY_INVALID',
        `recurrentClip: expected a finite number > 0, got ${clip}`,
      )
    }
    expectError(
      () => forwarded(rnn()).backward(gradient({ recurrentClip: '1' })),
      OdysseyTypeError,
      'ODYSSEY_TYPE',
      'recurrentClip: expected a number, got string',
    )
  })
})

describe('setWeights', () => {
  const weight = (length: number, shape: number[]) => ({ data: new Float32Array(length), shape })

  it('weights must be an object of tensors', () => {
    expectError(
      () => rnn().setWeights(null as unknown as Record<string, never>),
      OdysseyTypeError,
      'ODYSSEY_TYPE',
      'weights: expected an object',
    )
    expectError(
      () => rnn().setWeights({ bias_ih_l0: 1 } as unknown as Record<string, never>),
      OdysseyTypeError,
      'ODYSSEY_TYPE',
      'bias_ih_l0: expected an object',
    )
  })

  it("unknown names are refused, listing the layer's names", () => {
    expectError(
      () => rnn().setWeights({ weight_ih: weight(12, [4, 3]) }),
      OdysseyRangeError,
      'ODYSSEY_KEY',
      "weights: unknown weight 'weight_ih'; this layer has weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0",
    )
    expectError(
      () => lstm({ variant: 'NP' }).setWeights({ peephole_i_l0: weight(4, [4]) }),
      OdysseyRangeError,
      'ODYSSEY_KEY',
      "unknown weight 'peephole_i_l0'",
    )
  })

  it("shapes must be the parameter's", () => {
    expectError(
      () => rnn().setWeights({ weight_hh_l0: weight(12, [4, 3]) }),
      OdysseyRangeError,
      'ODYSSEY_SHAPE',
      'weight_hh_l0: expected shape [4, 4], got [4, 3]',
    )
    expectError(
      () => lstm().setWeights({ bias_ih_l0: weight(16, 16 as unknown as number[]) }),
      OdysseyTypeError,
      'ODYSSEY_TYPE',
      'bias_ih_l0.shape: expected an array',
    )
  })

  it('data must have the length of the shape, the dtype, and finite values', () => {
    expectError(
      () => rnn().setWeights({ weight_hh_l0: weight(15, [4, 4]) }),
      OdysseyRangeError,
      'ODYSSEY_SHAPE',
      'weight_hh_l0.data: expected shape [4, 4] (16 elements), got [15]',
    )
    expectError(
      () => rnn().setWeights({ bias_hh_l0: { data: new Float64Array(4), shape: [4] } }),
      OdysseyTypeError,
      'ODYSSEY_DTYPE',
      'bias_hh_l0.data: expected a Float32Array',
    )
    const data = new Float32Array(16)
    data[6] = Number.NaN
    expectError(
      () => rnn().setWeights({ weight_hh_l0: { data, shape: [4, 4] } }),
      OdysseyRangeError,
      'ODYSSEY_NON_FINITE',
      'weight_hh_l0.data: non-finite value NaN at flat index 6',
    )
  })

  it('nothing changes when any entry is bad', () => {
    const layer = rnn()
    const before = layer.getWeights()
    const good = { data: new Float32Array(4).fill(1), shape: [4] }
    expect(() => layer.setWeights({ bias_ih_l0: good, bias_hh_l0: weight(3, [3]) })).toThrow(OdysseyRangeError)
    expect(layer.getWeights()).toEqual(before)
  })
})

describe('the pure-TypeScript backend is guarded by the same checks', () => {
  it('refuses the same bad input with the same error', () => {
    expectError(
      () => lstm({ backend: 'js' }).forward(input({ x: new Float32Array(29) })),
      OdysseyRangeError,
      'ODYSSEY_SHAPE',
      'x: expected length 2*5*3 = 30',
    )
    expectError(() => rnn({ backend: 'js' }).backward(gradient()), OdysseyRangeError, 'ODYSSEY_STATE')
    const weight = (length: number, shape: number[]) => ({ data: new Float32Array(length), shape })
    expectError(
      () => rnn({ backend: 'js' }).setWeights({ weight_hh_l0: weight(12, [4, 3]) }),
      OdysseyRangeError,
      'ODYSSEY_SHAPE',
      'weight_hh_l0: expected shape [4, 4], got [4, 3]',
    )
    expectError(
      () => rnn({ backend: 'js' }).setWeights({ weight_ih: weight(12, [4, 3]) }),
      OdysseyRangeError,
      'ODYSSEY_KEY',
      "weights: unknown weight 'weight_ih'; this layer has weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0",
    )
  })
})
