/**
 * PyTorch as the oracle: every fixture in `__test__/fixtures/` (written in float64 by
 * `make_fixtures.py` from torch.nn.LSTM, torch.nn.RNN, torch.nn.GRU and a hand-written SPEC §1 LSTM for every
 * variant) is replayed through the public facade on both backends and both dtypes; outputs,
 * final states and every gradient must match.
 */
import { describe, expect, test } from 'vitest'

import { GRU, LSTM, SimpleRNN } from '../ts'
import type {
  Backend,
  BackwardInput,
  BackwardResult,
  Dtype,
  FloatArray,
  ForwardResult,
  LstmOptions,
  SequenceInput,
  Tensor,
} from '../ts/types'
import { LSTM_VARIANTS } from '../ts/types'
import {
  entriesOfLayer,
  expectClose,
  type Fixture,
  listFixtures,
  loadFixture,
  stateOfLayer,
  stepMask,
  toTensor,
  typedArray,
} from './helpers/fixtures'

/** Absolute plus relative tolerance against the float64 reference. */
const TOLERANCE: Record<Dtype, number> = { float32: 1e-5, float64: 1e-9 }
const BACKENDS: Backend[] = ['native', 'js']
const DTYPES: Dtype[] = ['float32', 'float64']

interface RecurrentLayer {
  forward(input: SequenceInput): ForwardResult
  backward(input: BackwardInput): BackwardResult
  setWeights(weights: Record<string, Tensor>): void
}

/** One replay of a fixture: PyTorch's nn.LSTM is both our 'NP' and our 'vanilla' without peepholes. */
interface Replay {
  label: string
  fixture: string
  lstmOverrides?: Partial<LstmOptions>
}

function replaysOf(fixture: string): Replay[] {
  const replays: Replay[] = [{ label: fixture, fixture }]
  if (fixture.startsWith('lstm_torch_')) {
    replays.push({
      label: `${fixture} as vanilla without peepholes`,
      fixture,
      lstmOverrides: { variant: 'vanilla', peepholes: false },
    })
  }
  return replays
}

/** Layer `layer` of the fixture's stack, holding the fixture's `_l{layer}` weights under `_l0` names. */
function buildLayer(fixture: Fixture, layer: number, backend: Backend, dtype: Dtype, replay: Replay): RecurrentLayer {
  const { config } = fixture
  const inputSize = layer === 0 ? config.inputSize : config.hiddenSize
  const hiddenSize = config.hiddenSize
  const layers: Record<Fixture['kind'], () => RecurrentLayer> = {
    lstm: () =>
      new LSTM({
        inputSize,
        hiddenSize,
        variant: config.variant,
        peepholes: config.peepholes,
        dtype,
        backend,
        ...replay.lstmOverrides,
      }),
    rnn: () => new SimpleRNN({ inputSize, hiddenSize, activation: config.activation, dtype, backend }),
    gru: () => new GRU({ inputSize, hiddenSize, dtype, backend }),
  }
  const model = layers[fixture.kind]()
  const weights = entriesOfLayer(fixture.weights, layer)
  model.setWeights(Object.fromEntries(Object.entries(weights).map(([name, t]) => [name, toTensor(t, dtype)])))
  return model
}

/** Forward through the stack; layer l+1 reads layer l's y. Results in layer order. */
function forwardStack(fixture: Fixture, layers: RecurrentLayer[], dtype: Dtype): ForwardResult[] {
  const { batch, time, inputSize, hiddenSize } = fixture.config
  let x: FloatArray = typedArray(dtype, fixture.x.data)
  return layers.map((layer, l) => {
    const result = layer.forward({
      x,
      shape: [batch, time, l === 0 ? inputSize : hiddenSize],
      lengths: fixture.lengths ?? undefined,
      h0: fixture.h0 ? typedArray(dtype, stateOfLayer(fixture.h0, l)) : undefined,
      c0: fixture.c0 ? typedArray(dtype, stateOfLayer(fixture.c0, l)) : undefined,
    })
    x = result.y.data
    return result
  })
}

/** dy = y − target at valid steps, 0 at padding, and the loss 0.5 · Σ (y − target)² over valid steps. */
function squaredErrorGradient(fixture: Fixture, y: FloatArray, dtype: Dtype): { dy: FloatArray; loss: number } {
  const { batch, time, hiddenSize } = fixture.config
  const mask = stepMask(batch, time, fixture.lengths)
  const dy = typedArray(dtype, new Array<number>(y.length).fill(0))
  let loss = 0
  for (let k = 0; k < y.length; k++) {
    if (mask[Math.floor(k / hiddenSize)]) {
      dy[k] = y[k] - fixture.target.data[k]
      loss += 0.5 * dy[k] * dy[k]
    }
  }
  return { dy, loss }
}

/** Backward from the top layer down; layer l+1's dx is layer l's dy. Results in layer order. */
function backwardStack(fixture: Fixture, layers: RecurrentLayer[], dyTop: FloatArray, dtype: Dtype): BackwardResult[] {
  const { batch, hiddenSize } = fixture.config
  const zeroState = () => typedArray(dtype, new Array<number>(batch * hiddenSize).fill(0))
  const results: BackwardResult[] = []
  let dy = dyTop
  for (let l = layers.length - 1; l >= 0; l--) {
    const cellGradient = fixture.kind === 'lstm' ? { dcN: zeroState() } : {}
    const result = layers[l].backward({ dy, dhN: zeroState(), ...cellGradient })
    results.unshift(result)
    dy = result.dx.data
  }
  return results
}

function checkForward(fixture: Fixture, forwards: ForwardResult[], tolerance: number) {
  const { expected } = fixture
  const top = forwards[forwards.length - 1]
  expect(top.y.shape, 'y shape').toEqual(expected.y.shape)
  expectClose('y', top.y.data, expected.y.data, tolerance)
  forwards.forEach((result, l) => {
    expectClose(`hN of layer ${l}`, result.hN.data, stateOfLayer(expected.hN, l), tolerance)
    if (expected.cN) {
      expect(result.cN, `cN of layer ${l}`).toBeDefined()
      expectClose(`cN of layer ${l}`, result.cN!.data, stateOfLayer(expected.cN, l), tolerance)
    }
  })
}

function checkBackward(fixture: Fixture, backwards: BackwardResult[], tolerance: number) {
  const { expected } = fixture
  expect(backwards[0].dx.shape, 'dx shape').toEqual(expected.dx.shape)
  expectClose('dx', backwards[0].dx.data, expected.dx.data, tolerance)
  backwards.forEach((result, l) => {
    expectClose(`dh0 of layer ${l}`, result.dh0.data, stateOfLayer(expected.dh0, l), tolerance)
    if (expected.dc0) {
      expect(result.dc0, `dc0 of layer ${l}`).toBeDefined()
      expectClose(`dc0 of layer ${l}`, result.dc0!.data, stateOfLayer(expected.dc0, l), tolerance)
    }
    const expectedGrads = entriesOfLayer(expected.grads, l)
    expect(Object.keys(result.grads).sort(), `gradient names of layer ${l}`).toEqual(Object.keys(expectedGrads).sort())
    for (const [name, grad] of Object.entries(expectedGrads)) {
      const label = `gradient of ${name.replace(/_l0$/, `_l${l}`)}`
      expect(result.grads[name].shape, `${label}: shape`).toEqual(grad.shape)
      expectClose(label, result.grads[name].data, grad.data, tolerance)
    }
  })
}

const fixtureNames = listFixtures()

test('the PyTorch fixtures cover the LSTM variants, the simple RNN and the GRU', () => {
  for (const variant of LSTM_VARIANTS) {
    expect(fixtureNames).toContain(`lstm_peephole_${variant}`)
    expect(fixtureNames).toContain(`lstm_peephole_${variant}_varlen_init`)
  }
  expect(fixtureNames.filter((name) => name.startsWith('lstm_torch_')).length).toBeGreaterThan(0)
  expect(fixtureNames.filter((name) => name.startsWith('rnn_torch_')).length).toBeGreaterThan(0)
  expect(fixtureNames).toContain('gru_torch_2layer_varlen_init')
})

describe.each(BACKENDS)('PyTorch fixtures, %s backend', (backend) => {
  for (const replay of fixtureNames.flatMap(replaysOf)) {
    for (const dtype of DTYPES) {
      test(`pytorch fixture ${replay.label} (${backend}, ${dtype})`, () => {
        const fixture = loadFixture(replay.fixture)
        const tolerance = TOLERANCE[dtype]
        const layers = Array.from({ length: fixture.config.numLayers }, (_, l) =>
          buildLayer(fixture, l, backend, dtype, replay),
        )
        const forwards = forwardStack(fixture, layers, dtype)
        checkForward(fixture, forwards, tolerance)

        const { dy, loss } = squaredErrorGradient(fixture, forwards[forwards.length - 1].y.data, dtype)
        expectClose('loss', [loss], [fixture.expected.loss], tolerance)
        checkBackward(fixture, backwardStack(fixture, layers, dy, dtype), tolerance)
      })
    }
  }
})
