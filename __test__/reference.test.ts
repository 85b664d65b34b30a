/**
 * The pure-TypeScript reference backend, checked on its own: every gradient
 * against central finite differences in float64 for every variant, the
 * padding and clipping semantics, the per-step gradient norms, float32 against
 * float64, the weights API, and the single-layer PyTorch fixtures.
 */
import { describe, expect, it } from 'vitest'

import { ReferenceGru, ReferenceLstm, ReferenceSimpleRnn } from '../ts/reference'
import { mulberry32 } from '../ts/util/random'
import type {
  BackwardInput,
  BackwardResult,
  Dtype,
  FloatArray,
  LstmVariant,
  RecurrentBackend,
  RnnActivation,
  SequenceInput,
  Tensor,
} from '../ts/types'
import { LSTM_VARIANTS } from '../ts/types'
import { listFixtures, loadFixture } from './helpers/fixtures'

// ---------------------------------------------------------------------------------------------
// Building models and inputs

interface LstmCase {
  variant?: LstmVariant
  peepholes?: boolean
  inputSize?: number
  hiddenSize?: number
  dtype?: Dtype
  forgetBias?: number
  seed?: number
}

function lstm(options: LstmCase = {}): ReferenceLstm {
  return new ReferenceLstm({
    inputSize: options.inputSize ?? 3,
    hiddenSize: options.hiddenSize ?? 3,
    variant: options.variant ?? 'vanilla',
    peepholes: options.peepholes ?? true,
    dtype: options.dtype ?? 'float64',
    forgetBias: options.forgetBias ?? 0,
    seed: options.seed ?? 7,
  })
}

function simpleRnn(activation: RnnActivation, hiddenSize = 3, dtype: Dtype = 'float64'): ReferenceSimpleRnn {
  return new ReferenceSimpleRnn({ inputSize: 3, hiddenSize, activation, dtype, seed: 11 })
}

function gru(hiddenSize = 3, dtype: Dtype = 'float64'): ReferenceGru {
  return new ReferenceGru({ inputSize: 3, hiddenSize, dtype, seed: 13 })
}

function uniformArray(random: () => number, length: number, scale = 1): Float64Array {
  return Float64Array.from({ length }, () => (2 * random() - 1) * scale)
}

interface BatchShape {
  batch: number
  time: number
  inputSize: number
  hidden: number
  lengths?: number[]
  /** Random h0 (and c0 for the LSTM); zeros (omitted) otherwise. */
  initialState: boolean
  withCell: boolean
}

function randomInput(shape: BatchShape, seed: number): SequenceInput<Float64Array> {
  const random = mulberry32(seed)
  const { batch, time, inputSize, hidden } = shape
  const input: SequenceInput<Float64Array> = {
    x: uniformArray(random, batch * time * inputSize, 1.5),
    shape: [batch, time, inputSize],
  }
  if (shape.lengths) input.lengths = shape.lengths
  if (shape.initialState) {
    input.h0 = uniformArray(random, batch * hidden, 0.8)
    if (shape.withCell) input.c0 = uniformArray(random, batch * hidden, 1.2)
  }
  return input
}

/** J = Σ w⊙y + Σ v⊙hN + Σ u⊙cN; w has values at padded steps too, which must be ignored. */
interface Probe {
  w: Float64Array
  v: Float64Array
  u?: Float64Array
}

function randomProbe(shape: BatchShape, seed: number): Probe {
  const random = mulberry32(seed)
  const { batch, time, hidden } = shape
  return {
    w: uniformArray(random, batch * time * hidden),
    v: uniformArray(random, batch * hidden),
    u: shape.withCell ? uniformArray(random, batch * hidden) : undefined,
  }
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let sum = 0
  for (let k = 0; k < a.length; k++) sum += a[k] * b[k]
  return sum
}

function objective(model: RecurrentBackend, input: SequenceInput, probe: Probe): number {
  const out = model.forward(input)
  return dot(out.y.data, probe.w) + dot(out.hN.data, probe.v) + (probe.u ? dot(out.cN!.data, probe.u) : 0)
}

function backwardOf(probe: Probe, recurrentClip?: number): BackwardInput {
  return { dy: probe.w, dhN: probe.v, dcN: probe.u, recurrentClip }
}

// ---------------------------------------------------------------------------------------------
// Comparisons

/** Fails with the worst element when |actual − expected| > atol + rtol·|expected| anywhere. */
function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, label: string, rtol = 1e-6, atol = 1e-7) {
  expect(actual.length, `${label}: length`).toBe(expected.length)
  let worst = -1
  let worstExcess = 0
  for (let k = 0; k < actual.length; k++) {
    const excess = Math.abs(actual[k] - expected[k]) - (atol + rtol * Math.abs(expected[k]))
    if (!(excess <= worstExcess)) {
      worst = k
      worstExcess = excess
    }
  }
  if (worst >= 0) {
    expect.fail(`${label}[${worst}]: got ${actual[worst]}, expected ${expected[worst]} (atol ${atol}, rtol ${rtol})`)
  }
}

function expectSameGradients(actual: BackwardResult, expected: BackwardResult, label: string, rtol = 0, atol = 0) {
  expectClose(actual.dx.data, expected.dx.data, `${label} dx`, rtol, atol)
  expectClose(actual.dh0.data, expected.dh0.data, `${label} dh0`, rtol, atol)
  if (expected.dc0) expectClose(actual.dc0!.data, expected.dc0.data, `${label} dc0`, rtol, atol)
  expect(Object.keys(actual.grads).sort()).toEqual(Object.keys(expected.grads).sort())
  for (const name of Object.keys(expected.grads)) {
    expectClose(actual.grads[name].data, expected.grads[name].data, `${label} ${name}`, rtol, atol)
  }
}

// ---------------------------------------------------------------------------------------------
// Finite differences

const EPS = 1e-6

/** Central difference of `evaluate` with respect to every element of `data`, perturbed in place. */
function numericGradient(data: Float64Array, evaluate: () => number): Float64Array {
  const gradient = new Float64Array(data.length)
  for (let k = 0; k < data.length; k++) {
    const saved = data[k]
    data[k] = saved + EPS
    const plus = evaluate()
    data[k] = saved - EPS
    const minus = evaluate()
    data[k] = saved
    gradient[k] = (plus - minus) / (2 * EPS)
  }
  return gradient
}

/** Backward's every gradient (dx, dh0, dc0, every weight) against central finite differences of J. */
function checkAgainstFiniteDifferences(model: RecurrentBackend, shape: BatchShape, seed: number) {
  const input = randomInput(shape, seed)
  const probe = randomProbe(shape, seed + 1)
  model.forward(input)
  const analytic = model.backward(backwardOf(probe))
  const evaluate = () => objective(model, input, probe)

  expectClose(analytic.dx.data, numericGradient(input.x, evaluate), 'dx')
  const zeroState = new Float64Array(shape.batch * shape.hidden)
  input.h0 ??= zeroState
  expectClose(analytic.dh0.data, numericGradient(input.h0, evaluate), 'dh0')
  if (shape.withCell) {
    input.c0 ??= zeroState.slice()
    expectClose(analytic.dc0!.data, numericGradient(input.c0, evaluate), 'dc0')
  }
  const weights = model.getWeights() as Record<string, Tensor<Float64Array>>
  expect(Object.keys(analytic.grads).sort()).toEqual(Object.keys(weights).sort())
  for (const [name, tensor] of Object.entries(weights)) {
    const numeric = numericGradient(tensor.data, () => {
      model.setWeights({ [name]: tensor })
      return evaluate()
    })
    model.setWeights({ [name]: tensor })
    expectClose(analytic.grads[name].data, numeric, name)
  }
}

function lstmShape(overrides: Partial<BatchShape> = {}): BatchShape {
  return {
    batch: 3,
    time: 4,
    inputSize: 3,
    hidden: 3,
    lengths: [4, 1, 3],
    initialState: true,
    withCell: true,
    ...overrides,
  }
}

describe('ReferenceLstm gradients equal central finite differences (float64)', () => {
  for (const variant of LSTM_VARIANTS) {
    for (const peepholes of [true, false]) {
      it(`${variant}, peepholes ${peepholes}, lengths [4, 1, 3], random initial state`, () => {
        checkAgainstFiniteDifferences(lstm({ variant, peepholes }), lstmShape(), 100)
      })
    }
  }

  const shapes: [string, Partial<BatchShape>][] = [
    ['H = 1', { hidden: 1 }],
    ['H = 7', { hidden: 7 }],
    ['T = 1', { time: 1, lengths: undefined }],
    ['B = 1', { batch: 1, lengths: undefined }],
    ['zero initial state', { initialState: false }],
  ]
  for (const variant of ['vanilla', 'CIFG', 'FGR'] as const) {
    for (const [label, overrides] of shapes) {
      it(`${variant}, ${label}`, () => {
        const shape = lstmShape(overrides)
        checkAgainstFiniteDifferences(lstm({ variant, hiddenSize: shape.hidden }), shape, 200)
      })
    }
  }
})

describe('ReferenceSimpleRnn gradients equal central finite differences (float64)', () => {
  const rnnShape = (overrides: Partial<BatchShape> = {}) => lstmShape({ withCell: false, ...overrides })
  for (const activation of ['tanh', 'relu'] as const) {
    for (const [label, overrides] of [
      ['lengths [4, 1, 3], random initial state', {}],
      ['H = 1', { hidden: 1 }],
      ['H = 7', { hidden: 7 }],
      ['T = 1, B = 1', { time: 1, batch: 1, lengths: undefined }],
    ] as [string, Partial<BatchShape>][]) {
      it(`${activation}, ${label}`, () => {
        const shape = rnnShape(overrides)
        checkAgainstFiniteDifferences(simpleRnn(activation, shape.hidden), shape, 300)
      })
    }
  }
})

describe('ReferenceGru gradients equal central finite differences (float64)', () => {
  for (const [label, overrides] of [
    ['lengths [4, 1, 3], random initial state', {}],
    ['H = 1', { hidden: 1 }],
    ['H = 7', { hidden: 7 }],
    ['T = 1, B = 1', { time: 1, batch: 1, lengths: undefined }],
    ['zero initial state', { initialState: false }],
  ] as [string, Partial<BatchShape>][]) {
    it(label, () => {
      const shape = lstmShape({ withCell: false, ...overrides })
      checkAgainstFiniteDifferences(gru(shape.hidden), shape, 400)
    })
  }
})

// ---------------------------------------------------------------------------------------------
// Variants leave unused gate blocks untouched

describe('ReferenceLstm variants', () => {
  /** Gate blocks (PyTorch order i, f, g, o) whose parameters a variant never uses. */
  const unusedGates: Partial<Record<LstmVariant, 'i' | 'f' | 'o'>> = { NIG: 'i', NFG: 'f', CIFG: 'f', NOG: 'o' }
  const blockIndex = { i: 0, f: 1, o: 3 }

  for (const variant of LSTM_VARIANTS) {
    it(`${variant}: unused gate blocks get exactly zero gradient, used ones do not`, () => {
      const H = 3
      const shape = lstmShape()
      const model = lstm({ variant })
      model.forward(randomInput(shape, 5))
      const { grads } = model.backward(backwardOf(randomProbe(shape, 6)))
      const unused = unusedGates[variant]
      for (const name of ['weight_ih_l0', 'weight_hh_l0', 'bias_ih_l0', 'bias_hh_l0']) {
        const rowLength = grads[name].data.length / (4 * H)
        for (const [gate, block] of [...Object.entries(blockIndex), ['g', 2] as const]) {
          const values = grads[name].data.subarray(block * H * rowLength, (block + 1) * H * rowLength)
          const zeros = values.every((value) => value === 0)
          expect(zeros, `${name} block ${gate}`).toBe(gate === unused)
        }
      }
      for (const gate of ['i', 'f', 'o'] as const) {
        const peephole = grads[`peephole_${gate}_l0`]
        if (variant === 'NP') expect(peephole).toBeUndefined()
        else
          expect(
            peephole.data.every((value) => value === 0),
            `peephole_${gate}`,
          ).toBe(gate === unused)
      }
    })
  }

  it('NP equals vanilla without peepholes, and peepholes change vanilla', () => {
    const shape = lstmShape()
    const input = randomInput(shape, 8)
    const np = lstm({ variant: 'NP', peepholes: true })
    const plain = lstm({ variant: 'vanilla', peepholes: false })
    const withPeepholes = lstm({ variant: 'vanilla', peepholes: true })
    expect(np.forward(input).y.data).toEqual(plain.forward(input).y.data)
    expect(withPeepholes.forward(input).y.data).not.toEqual(plain.forward(input).y.data)
  })
})

// ---------------------------------------------------------------------------------------------
// Padding

/** Sequence b of a padded input, alone, cut to its own length. */
function sequenceAlone(input: SequenceInput<Float64Array>, b: number, length: number, hidden: number) {
  const [, time, inputSize] = input.shape
  const alone: SequenceInput<Float64Array> = {
    x: input.x.slice(b * time * inputSize, (b * time + length) * inputSize),
    shape: [1, length, inputSize],
  }
  if (input.h0) alone.h0 = input.h0.slice(b * hidden, (b + 1) * hidden)
  if (input.c0) alone.c0 = input.c0.slice(b * hidden, (b + 1) * hidden)
  return alone
}

function probeAlone(probe: Probe, b: number, length: number, time: number, hidden: number): Probe {
  return {
    w: probe.w.slice(b * time * hidden, (b * time + length) * hidden),
    v: probe.v.slice(b * hidden, (b + 1) * hidden),
    u: probe.u?.slice(b * hidden, (b + 1) * hidden),
  }
}

function checkPaddingEqualsSequencesAlone(model: RecurrentBackend, shape: BatchShape) {
  const { batch, time, inputSize, hidden } = shape
  const lengths = shape.lengths!
  const input = randomInput(shape, 21)
  const probe = randomProbe(shape, 22)
  const padded = model.forward(input)
  const gradients = model.backward(backwardOf(probe))
  const gradSums: Record<string, Float64Array> = {}
  const normSquares = new Float64Array(time)

  for (let b = 0; b < batch; b++) {
    const length = lengths[b]
    const label = `sequence ${b} (length ${length})`
    const span = (width: number, from: number, to: number) => [(b * time + from) * width, (b * time + to) * width]
    const alone = model.forward(sequenceAlone(input, b, length, hidden))
    expectClose(padded.y.data.slice(...span(hidden, 0, length)), alone.y.data, `${label} y`, 0, 1e-15)
    expect(
      padded.y.data.slice(...span(hidden, length, time)).every((v) => v === 0),
      `${label} padded y`,
    ).toBe(true)
    expectClose(padded.hN.data.slice(b * hidden, (b + 1) * hidden), alone.hN.data, `${label} hN`, 0, 1e-15)
    if (shape.withCell) {
      expectClose(padded.cN!.data.slice(b * hidden, (b + 1) * hidden), alone.cN!.data, `${label} cN`, 0, 1e-15)
    }

    const aloneGradients = model.backward(backwardOf(probeAlone(probe, b, length, time, hidden)))
    const dx = gradients.dx.data
    expectClose(dx.slice(...span(inputSize, 0, length)), aloneGradients.dx.data, `${label} dx`, 0, 1e-14)
    expect(
      dx.slice(...span(inputSize, length, time)).every((v) => v === 0),
      `${label} padded dx`,
    ).toBe(true)
    expectClose(
      gradients.dh0.data.slice(b * hidden, (b + 1) * hidden),
      aloneGradients.dh0.data,
      `${label} dh0`,
      0,
      1e-14,
    )
    if (shape.withCell) {
      const dc0 = gradients.dc0!.data.slice(b * hidden, (b + 1) * hidden)
      expectClose(dc0, aloneGradients.dc0!.data, `${label} dc0`, 0, 1e-14)
    }
    for (const [name, grad] of Object.entries(aloneGradients.grads)) {
      gradSums[name] ??= new Float64Array(grad.data.length)
      grad.data.forEach((value, k) => {
        gradSums[name][k] += value
      })
    }
    aloneGradients.stepGradNorms.forEach((norm, t) => {
      normSquares[t] += norm * norm
    })
  }
  for (const [name, sum] of Object.entries(gradSums)) expectClose(gradients.grads[name].data, sum, name, 0, 1e-13)
  expectClose(gradients.stepGradNorms, normSquares.map(Math.sqrt), 'stepGradNorms', 1e-12, 1e-14)
}

describe('padded steps', () => {
  const shape = lstmShape({ batch: 4, time: 5, lengths: [5, 2, 1, 4] })
  for (const variant of ['vanilla', 'FGR', 'CIFG'] as const) {
    it(`LSTM ${variant}: y = 0 on padding, each sequence equals the sequence run alone`, () => {
      checkPaddingEqualsSequencesAlone(lstm({ variant }), shape)
    })
  }
  it('simple RNN: y = 0 on padding, each sequence equals the sequence run alone', () => {
    checkPaddingEqualsSequencesAlone(simpleRnn('tanh'), { ...shape, withCell: false })
  })
  it('GRU: y = 0 on padding, each sequence equals the sequence run alone', () => {
    checkPaddingEqualsSequencesAlone(gru(), { ...shape, withCell: false })
  })
})

// ---------------------------------------------------------------------------------------------
// Per-step gradient norms, computed independently by splitting the sequence at step k

/** Input steps [from, to) of every sequence, with the given initial state. */
function stepsOf(input: SequenceInput<Float64Array>, from: number, to: number, h0?: Float64Array, c0?: Float64Array) {
  const [batch, time, inputSize] = input.shape
  const x = new Float64Array(batch * (to - from) * inputSize)
  for (let b = 0; b < batch; b++)
    x.set(input.x.subarray((b * time + from) * inputSize, (b * time + to) * inputSize), b * (to - from) * inputSize)
  return { x, shape: [batch, to - from, inputSize] as const, h0, c0 }
}

function probeStepsOf(probe: Probe, from: number, to: number, batch: number, time: number, hidden: number): Probe {
  const w = new Float64Array(batch * (to - from) * hidden)
  for (let b = 0; b < batch; b++)
    w.set(probe.w.subarray((b * time + from) * hidden, (b * time + to) * hidden), b * (to - from) * hidden)
  return { w, v: probe.v, u: probe.u }
}

/**
 * ∂J/∂y(k) and ∂J/∂c(k) coming from the future: the initial-state gradients of
 * the run over steps k+1.. started from the state after step k (∂J/∂hN, ∂J/∂cN at the end).
 */
function futureGradients(
  model: RecurrentBackend,
  input: SequenceInput<Float64Array>,
  probe: Probe,
  k: number,
  hidden: number,
) {
  const [batch, time] = input.shape
  const prefix = model.forward(stepsOf(input, 0, k + 1, input.h0, input.c0))
  if (k === time - 1) return { prefix, dy: probe.v, dc: probe.u }
  const hk = prefix.hN.data as Float64Array
  const ck = prefix.cN?.data as Float64Array | undefined
  model.forward(stepsOf(input, k + 1, time, hk, ck))
  const future = model.backward(backwardOf(probeStepsOf(probe, k + 1, time, batch, time, hidden)))
  return { prefix, dy: future.dh0.data, dc: future.dc0?.data }
}

function norm(values: ArrayLike<number>): number {
  return Math.sqrt(dot(values, values))
}

describe('stepGradNorms', () => {
  const shape = lstmShape({ batch: 2, time: 4, lengths: undefined })
  const input = randomInput(shape, 31)
  const probe = randomProbe(shape, 32)
  const { batch, time, hidden } = shape

  /** The step-k slice of w for every sequence `[batch, H]`. */
  const wAt = (p: Probe, k: number) => probeStepsOf(p, k, k + 1, batch, time, hidden).w

  // Without a peephole into o (or with o = 1), δc(k) = (w(k) + ∂J/∂y(k) from the future) ⊙ o(k) ⊙ tanh'(c(k))
  // + ∂J/∂c(k) from the future, with o(k) = y(k) / tanh(c(k)).
  for (const [variant, peepholes] of [
    ['vanilla', false],
    ['NOG', true],
  ] as const) {
    it(`LSTM ${variant} (peepholes ${peepholes}): ‖∂J/∂c(k)‖ over the batch`, () => {
      const model = lstm({ variant, peepholes })
      model.forward(input)
      const { stepGradNorms } = model.backward(backwardOf(probe))
      expect(stepGradNorms).toBeInstanceOf(Float64Array)
      expect(stepGradNorms.length).toBe(time)
      for (let k = 0; k < time; k++) {
        const { prefix, dy, dc } = futureGradients(model, input, probe, k, hidden)
        const w = wAt(probe, k)
        const dCell = w.map((wj, j) => {
          const squashed = Math.tanh(prefix.cN!.data[j])
          const o = prefix.hN.data[j] / squashed
          return (wj + dy[j]) * o * (1 - squashed * squashed) + dc![j]
        })
        expect(stepGradNorms[k]).toBeCloseTo(norm(dCell), 12)
      }
    })
  }

  for (const [label, make] of [
    ['simple RNN', () => simpleRnn('tanh')],
    ['GRU', () => gru()],
  ] as const) {
    it(`${label}: ‖∂J/∂h(k)‖ = ‖w(k) + ∂J/∂h(k) from the future‖ over the batch`, () => {
      const rnnShape = { ...shape, withCell: false }
      const rnnProbe = randomProbe(rnnShape, 32)
      const model = make()
      model.forward(input)
      const { stepGradNorms } = model.backward(backwardOf(rnnProbe))
      for (let k = 0; k < time; k++) {
        const { dy } = futureGradients(model, input, rnnProbe, k, hidden)
        expect(stepGradNorms[k]).toBeCloseTo(norm(wAt(rnnProbe, k).map((wj, j) => wj + dy[j])), 12)
      }
    })
  }
})

// ---------------------------------------------------------------------------------------------
// recurrentClip

function clamped(values: Float64Array, limit: number): Float64Array {
  return values.map((value) => Math.min(limit, Math.max(-limit, value)))
}

describe('recurrentClip', () => {
  const shape = lstmShape({ time: 6, lengths: [6, 2, 5] })
  const input = randomInput(shape, 41)
  const probe = randomProbe(shape, 42)
  const loud: Probe = {
    w: probe.w.map((v) => 100 * v),
    v: probe.v.map((v) => 100 * v),
    u: probe.u!.map((v) => 100 * v),
  }
  const models: [string, () => RecurrentBackend][] = [
    ['LSTM', () => lstm({ variant: 'vanilla' })],
    ['simple RNN', () => simpleRnn('tanh')],
    ['GRU', () => gru()],
  ]

  for (const [label, make] of models) {
    it(`${label}: a huge limit changes nothing`, () => {
      const model = make()
      model.forward(input)
      const unclipped = model.backward(backwardOf(probe))
      expectSameGradients(model.backward(backwardOf(probe, 1e30)), unclipped, label)
    })

    it(`${label}: a small limit bounds the error propagated at every step`, () => {
      const model = make()
      model.forward(input)
      const limit = 0.05
      const clipped = model.backward(backwardOf(loud, limit))
      const unclipped = model.backward(backwardOf(loud))
      const bound = limit * Math.sqrt(shape.batch * shape.hidden)
      for (let k = 0; k < shape.time; k++) {
        expect(clipped.stepGradNorms[k]).toBeLessThanOrEqual(bound * (1 + 1e-12))
        expect(unclipped.stepGradNorms[k]).toBeGreaterThan(bound)
      }
    })
  }

  // With one step, δy = clamp(Δ + ∂J/∂hN) and, without peepholes and ∂J/∂cN, |δc| ≤ |δy|: clipping
  // is the same as clamping the incoming error by hand.
  const oneStep = lstmShape({ time: 1, lengths: undefined })
  const oneStepInput = randomInput(oneStep, 43)
  const oneStepProbe = randomProbe(oneStep, 44)
  const limit = 0.3
  const handClamped = (p: Probe) => ({
    w: clamped(
      p.w.map((w, k) => w + p.v[k]),
      limit,
    ),
    v: new Float64Array(p.v.length),
  })

  for (const [label, model] of [
    ['LSTM without peepholes', lstm({ peepholes: false })],
    ['simple RNN', simpleRnn('relu')],
    ['GRU', gru()],
  ] as const) {
    it(`${label}, T = 1: clipping clamps the total δy(t) = Δ(t) + ∂J/∂hN`, () => {
      const p = { ...oneStepProbe, u: undefined }
      model.forward(oneStepInput)
      const clipped = model.backward(backwardOf(p, limit))
      expectSameGradients(clipped, model.backward(backwardOf(handClamped(p))), label, 0, 1e-15)
      expect(clipped.dx.data).not.toEqual(model.backward(backwardOf(p)).dx.data)
    })
  }

  it('LSTM with peepholes, T = 1, only ∂J/∂cN: clipping clamps the total δc(t)', () => {
    const model = lstm()
    const zeros = new Float64Array(oneStep.batch * oneStep.hidden)
    const p: Probe = { w: zeros, v: zeros, u: oneStepProbe.u }
    model.forward(oneStepInput)
    const clipped = model.backward(backwardOf(p, limit))
    expectSameGradients(clipped, model.backward(backwardOf({ ...p, u: clamped(p.u!, limit) })), 'LSTM', 0, 1e-15)
    expect(clipped.dc0!.data).not.toEqual(model.backward(backwardOf(p)).dc0!.data)
  })
})

// ---------------------------------------------------------------------------------------------
// float32

describe('float32', () => {
  const shape = lstmShape()
  const cases: [string, (dtype: Dtype) => RecurrentBackend, boolean][] = [
    ['LSTM FGR', (dtype) => lstm({ variant: 'FGR', dtype }), true],
    ['simple RNN', (dtype) => simpleRnn('tanh', 3, dtype), false],
    ['GRU', (dtype) => gru(3, dtype), false],
  ]
  for (const [label, make, withCell] of cases) {
    it(`${label}: float32 outputs agree with float64 to ~1e-6`, () => {
      const single = make('float32')
      const double = make('float64')
      const weights = single.getWeights()
      for (const tensor of Object.values(weights)) expect(tensor.data).toBeInstanceOf(Float32Array)
      double.setWeights(weights)

      const input64 = randomInput({ ...shape, withCell }, 51)
      const input32 = {
        ...input64,
        x: Float32Array.from(input64.x),
        h0: Float32Array.from(input64.h0!),
        c0: withCell ? Float32Array.from(input64.c0!) : undefined,
      }
      // Both see exactly the same (float32-representable) numbers.
      const exact = { ...input64, x: Float64Array.from(input32.x), h0: Float64Array.from(input32.h0) }
      if (withCell) exact.c0 = Float64Array.from(input32.c0!)
      const probe = randomProbe({ ...shape, withCell }, 52)
      const probe32 = {
        dy: Float32Array.from(probe.w),
        dhN: Float32Array.from(probe.v),
        dcN: probe.u && Float32Array.from(probe.u),
      }
      const probeExact: Probe = { w: Float64Array.from(probe32.dy), v: Float64Array.from(probe32.dhN) }
      if (probe32.dcN) probeExact.u = Float64Array.from(probe32.dcN)

      const out32 = single.forward(input32)
      const out64 = double.forward(exact)
      const grads32 = single.backward(probe32)
      const grads64 = double.backward(backwardOf(probeExact))
      const tensors32: Tensor[] = [out32.y, out32.hN, grads32.dx, grads32.dh0, ...Object.values(grads32.grads)]
      const tensors64: Tensor[] = [out64.y, out64.hN, grads64.dx, grads64.dh0, ...Object.values(grads64.grads)]
      if (withCell) {
        tensors32.push(out32.cN!, grads32.dc0!)
        tensors64.push(out64.cN!, grads64.dc0!)
      }
      tensors32.forEach((tensor, k) => {
        expect(tensor.data).toBeInstanceOf(Float32Array)
        expect(tensors64[k].data).toBeInstanceOf(Float64Array)
        expect(tensor.shape).toEqual(tensors64[k].shape)
        expectClose(tensor.data, tensors64[k].data, `${label} output ${k}`, 1e-6, 1e-7)
      })
      expect(grads32.stepGradNorms).toBeInstanceOf(Float64Array)
    })
  }
})

// ---------------------------------------------------------------------------------------------
// Weights and initialisation

function shapesOf(weights: Record<string, Tensor>): Record<string, number[]> {
  return Object.fromEntries(Object.entries(weights).map(([name, tensor]) => [name, tensor.shape]))
}

describe('weights', () => {
  it('LSTM names and PyTorch shapes: peepholes only when on (never for NP), weight_gg only for FGR', () => {
    const X = 2
    const H = 5
    const base = { weight_ih_l0: [4 * H, X], weight_hh_l0: [4 * H, H], bias_ih_l0: [4 * H], bias_hh_l0: [4 * H] }
    const peepholes = { peephole_i_l0: [H], peephole_f_l0: [H], peephole_o_l0: [H] }
    for (const variant of LSTM_VARIANTS) {
      for (const withPeepholes of [true, false]) {
        const expected: Record<string, number[]> = { ...base }
        if (withPeepholes && variant !== 'NP') Object.assign(expected, peepholes)
        if (variant === 'FGR') expected.weight_gg_l0 = [3 * H, 3 * H]
        const weights = lstm({ variant, peepholes: withPeepholes, inputSize: X, hiddenSize: H }).getWeights()
        expect(shapesOf(weights), `${variant} peepholes ${withPeepholes}`).toEqual(expected)
        for (const tensor of Object.values(weights)) {
          expect(tensor.data.length).toBe(tensor.shape.reduce((a, b) => a * b, 1))
        }
      }
    }
  })

  it('GRU names and PyTorch shapes: three gate blocks', () => {
    expect(shapesOf(gru(5).getWeights())).toEqual({
      weight_ih_l0: [15, 3],
      weight_hh_l0: [15, 5],
      bias_ih_l0: [15],
      bias_hh_l0: [15],
    })
  })

  it('simple RNN names and PyTorch shapes', () => {
    expect(
      shapesOf(
        new ReferenceSimpleRnn({
          inputSize: 2,
          hiddenSize: 5,
          activation: 'relu',
          dtype: 'float64',
          seed: 0,
        }).getWeights(),
      ),
    ).toEqual({
      weight_ih_l0: [5, 2],
      weight_hh_l0: [5, 5],
      bias_ih_l0: [5],
      bias_hh_l0: [5],
    })
  })

  it('initialisation is U(−1/√H, 1/√H), seeded, and forgetBias shifts only the f block of bias_ih', () => {
    const H = 4
    const bound = 1 / Math.sqrt(H)
    const plain = lstm({ variant: 'FGR', hiddenSize: H, seed: 3 }).getWeights()
    const values = Object.values(plain).flatMap((tensor) => Array.from(tensor.data))
    expect(values.every((v) => Math.abs(v) <= bound)).toBe(true)
    expect(Math.max(...values.map(Math.abs))).toBeGreaterThan(0.9 * bound)
    expect(lstm({ variant: 'FGR', hiddenSize: H, seed: 3 }).getWeights()).toEqual(plain)
    expect(lstm({ variant: 'FGR', hiddenSize: H, seed: 4 }).getWeights().weight_ih_l0).not.toEqual(plain.weight_ih_l0)

    const shifted = lstm({ variant: 'FGR', hiddenSize: H, seed: 3, forgetBias: 1.5 }).getWeights()
    for (const name of Object.keys(plain)) {
      if (name !== 'bias_ih_l0') expect(shifted[name]).toEqual(plain[name])
    }
    const difference = Array.from(shifted.bias_ih_l0.data, (v, k) => v - plain.bias_ih_l0.data[k])
    expect(difference).toEqual([0, 0, 0, 0, 1.5, 1.5, 1.5, 1.5, 0, 0, 0, 0, 0, 0, 0, 0])
  })

  it('getWeights and setWeights copy; setWeights rounds to float32 for float32 models', () => {
    const model = lstm({ dtype: 'float32' })
    const weights = model.getWeights()
    weights.weight_ih_l0.data[0] = 123
    expect(model.getWeights().weight_ih_l0.data[0]).not.toBe(123)

    const replacement = Float64Array.from({ length: 3 }, () => 0.1)
    model.setWeights({ peephole_o_l0: { data: replacement, shape: [3] } })
    replacement[0] = 5
    expect(Array.from(model.getWeights().peephole_o_l0.data)).toEqual([0.1, 0.1, 0.1].map(Math.fround))
    expect(model.getWeights().weight_ih_l0).toEqual(lstm({ dtype: 'float32' }).getWeights().weight_ih_l0)
  })

  it('a float32 model holds float32 weights: a copy through getWeights/setWeights computes the same bits', () => {
    const model = lstm({ dtype: 'float32', forgetBias: 1, seed: 12 })
    const copy = lstm({ dtype: 'float32', seed: 13 })
    copy.setWeights(model.getWeights())
    const input = randomInput(lstmShape(), 14)
    expect(copy.forward(input)).toEqual(model.forward(input))
  })

  it('setWeights rejects a name the model does not have', () => {
    expect(() =>
      lstm({ variant: 'NP' }).setWeights({ peephole_i_l0: { data: new Float64Array(3), shape: [3] } }),
    ).toThrow(/peephole_i_l0/)
  })

  it('backward before any forward throws', () => {
    const dy = new Float64Array(3)
    expect(() => lstm().backward({ dy })).toThrow(Error)
    expect(() => simpleRnn('tanh').backward({ dy })).toThrow(Error)
  })
})

// ---------------------------------------------------------------------------------------------
// PyTorch fixtures (single layer; the facade test replays them all on every backend)

describe('PyTorch fixtures, single layer', () => {
  for (const name of listFixtures()) {
    const fixture = loadFixture(name)
    if (fixture.config.numLayers !== 1) continue
    it(name, () => {
      const { config } = fixture
      const models: Record<typeof fixture.kind, () => RecurrentBackend> = {
        lstm: () =>
          lstm({
            variant: config.variant,
            peepholes: config.peepholes,
            inputSize: config.inputSize,
            hiddenSize: config.hiddenSize,
          }),
        rnn: () => new ReferenceSimpleRnn({ ...config, activation: config.activation!, dtype: 'float64', seed: 0 }),
        gru: () => new ReferenceGru({ ...config, dtype: 'float64', seed: 0 }),
      }
      const model = models[fixture.kind]()
      const toTensor = ({ data, shape }: { data: number[]; shape: number[] }) => ({
        data: Float64Array.from(data),
        shape,
      })
      model.setWeights(Object.fromEntries(Object.entries(fixture.weights).map(([n, t]) => [n, toTensor(t)])))
      const input: SequenceInput = {
        x: Float64Array.from(fixture.x.data),
        shape: fixture.x.shape as [number, number, number],
      }
      if (fixture.lengths) input.lengths = fixture.lengths
      if (fixture.h0) input.h0 = Float64Array.from(fixture.h0.data)
      if (fixture.c0) input.c0 = Float64Array.from(fixture.c0.data)

      const out = model.forward(input)
      const { expected } = fixture
      expectClose(out.y.data, expected.y.data, 'y', 1e-10, 1e-12)
      expectClose(out.hN.data, expected.hN.data, 'hN', 1e-10, 1e-12)
      if (expected.cN) expectClose(out.cN!.data, expected.cN.data, 'cN', 1e-10, 1e-12)

      // loss = ½ Σ (y − target)² over valid steps; y and target are both zero on padding.
      const dy = out.y.data.map((y, k) => y - fixture.target.data[k]) as FloatArray
      expect(0.5 * dot(dy, dy)).toBeCloseTo(expected.loss, 10)
      const grads = model.backward({ dy })
      expectClose(grads.dx.data, expected.dx.data, 'dx', 1e-9, 1e-12)
      expectClose(grads.dh0.data, expected.dh0.data, 'dh0', 1e-9, 1e-12)
      if (expected.dc0) expectClose(grads.dc0!.data, expected.dc0.data, 'dc0', 1e-9, 1e-12)
      for (const [weight, tensor] of Object.entries(expected.grads)) {
        expectClose(grads.grads[weight].data, tensor.data, `grad ${weight}`, 1e-9, 1e-12)
      }
    })
  }
})
