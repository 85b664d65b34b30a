/**
 * The native layers against the pure-TypeScript reference (`backend: 'js'`):
 * for every LSTM variant with and without peepholes, for the SimpleRNN with
 * tanh and relu and for the GRU, the reference takes the native layer's weights and both run
 * the same variable-length batch from the same initial state; every output and
 * every gradient must agree, with and without the recurrent clip.
 */
import { describe, expect, it } from 'vitest'

import { GRU, LSTM, LSTM_VARIANTS, SimpleRNN, type BackwardInput, type Dtype, type SequenceInput } from '../ts'
import { expectNear, randomArray } from './helpers/layers'

const TOLERANCE: Record<Dtype, number> = { float32: 1e-5, float64: 1e-10 }
const [BATCH, TIME, INPUT, HIDDEN] = [3, 6, 4, 5]
const LENGTHS = [6, 2, 4]
const CLIP = 0.05

type Layer = LSTM | SimpleRNN | GRU

interface Case {
  label: string
  hasCell: boolean
  make: (dtype: Dtype, backend: 'native' | 'js') => Layer
}

const lstmCases: Case[] = LSTM_VARIANTS.flatMap((variant) =>
  // NP is the variant without peepholes: its "with peepholes" case would repeat the other.
  (variant === 'NP' ? [false] : [true, false]).map((peepholes) => ({
    label: `LSTM ${variant} ${peepholes ? 'with' : 'without'} peepholes`,
    hasCell: true,
    make: (dtype: Dtype, backend: 'native' | 'js') =>
      new LSTM({ inputSize: INPUT, hiddenSize: HIDDEN, variant, peepholes, dtype, backend, seed: 11, forgetBias: 0.5 }),
  })),
)

const rnnCases: Case[] = (['tanh', 'relu'] as const).map((activation) => ({
  label: `SimpleRNN ${activation}`,
  hasCell: false,
  make: (dtype: Dtype, backend: 'native' | 'js') =>
    new SimpleRNN({ inputSize: INPUT, hiddenSize: HIDDEN, activation, dtype, backend, seed: 12 }),
}))

const gruCase: Case = {
  label: 'GRU',
  hasCell: false,
  make: (dtype, backend) => new GRU({ inputSize: INPUT, hiddenSize: HIDDEN, dtype, backend, seed: 13 }),
}

function sequenceInput(dtype: Dtype, hasCell: boolean): SequenceInput {
  return {
    x: randomArray(dtype, BATCH * TIME * INPUT, 1),
    shape: [BATCH, TIME, INPUT],
    lengths: LENGTHS,
    h0: randomArray(dtype, BATCH * HIDDEN, 2, 0.5),
    c0: hasCell ? randomArray(dtype, BATCH * HIDDEN, 3, 0.5) : undefined,
  }
}

function backwardInput(dtype: Dtype, hasCell: boolean, recurrentClip?: number): BackwardInput {
  return {
    dy: randomArray(dtype, BATCH * TIME * HIDDEN, 4),
    dhN: randomArray(dtype, BATCH * HIDDEN, 5),
    dcN: hasCell ? randomArray(dtype, BATCH * HIDDEN, 6) : undefined,
    recurrentClip,
  }
}

describe.each(['float32', 'float64'] as const)('native vs reference, %s', (dtype) => {
  const tolerance = TOLERANCE[dtype]

  for (const { label, hasCell, make } of [...lstmCases, ...rnnCases, gruCase]) {
    it(label, () => {
      const native = make(dtype, 'native')
      const reference = make(dtype, 'js')
      reference.setWeights(native.getWeights())
      expect(reference.getWeights()).toEqual(native.getWeights())

      const input = sequenceInput(dtype, hasCell)
      const ours = native.forward(input)
      const theirs = reference.forward(input)
      expectNear('y', ours.y.data, theirs.y.data, tolerance)
      expectNear('hN', ours.hN.data, theirs.hN.data, tolerance)
      if (hasCell) expectNear('cN', ours.cN!.data, theirs.cN!.data, tolerance)
      else expect(ours.cN).toBeUndefined()

      for (const clip of [undefined, CLIP]) {
        const what = clip === undefined ? '' : ` (recurrentClip ${clip})`
        const gradient = backwardInput(dtype, hasCell, clip)
        const back = native.backward(gradient)
        const expected = reference.backward(gradient)
        expect(back.dx.shape).toEqual(expected.dx.shape)
        expectNear(`dx${what}`, back.dx.data, expected.dx.data, tolerance)
        expectNear(`dh0${what}`, back.dh0.data, expected.dh0.data, tolerance)
        if (hasCell) expectNear(`dc0${what}`, back.dc0!.data, expected.dc0!.data, tolerance)
        expect(Object.keys(back.grads).sort()).toEqual(Object.keys(expected.grads).sort())
        for (const [name, grad] of Object.entries(expected.grads)) {
          expect(back.grads[name].shape, name).toEqual(grad.shape)
          expectNear(`${name} gradient${what}`, back.grads[name].data, grad.data, tolerance)
        }
        expectNear(`stepGradNorms${what}`, back.stepGradNorms, expected.stepGradNorms, tolerance)
      }
    })
  }
})
