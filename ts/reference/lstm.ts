/**
 * SPEC §1 written out with plain loops: the LSTM with peepholes, its eight
 * variants and exact BPTT. Deliberately simple — this is the oracle the native
 * backend is tested against and the pure-JS baseline of the benchmarks.
 */

import type {
  BackwardInput,
  BackwardResult,
  Dtype,
  ForwardResult,
  LstmVariant,
  RecurrentBackend,
  SequenceInput,
  Tensor,
} from '../types'
import { addInto, addMatTVec, addMatVec, addOuter, clamp, outputTensor, roundTo, sigmoid, toFloat64 } from './math'
import { ParameterStore, type ParameterSpec } from './parameters'
import { prepareBatch, previousStep, row, sqrtAll, step, type PreparedBatch } from './sequence'

export interface ReferenceLstmConfig {
  inputSize: number
  hiddenSize: number
  variant: LstmVariant
  /** Ignored (always off) for variant `'NP'`. */
  peepholes: boolean
  dtype: Dtype
  /** Added to the forget-gate block of `bias_ih_l0` after initialisation. */
  forgetBias: number
  seed: number
}

/** Which pieces of the vanilla cell a variant keeps (SPEC §1, the eight variants). */
interface CellRules {
  /** false: i = 1 (NIG) */
  inputGate: boolean
  /** 'none': f = 1 (NFG); 'coupled': f = 1 − i (CIFG) */
  forgetGate: 'learned' | 'none' | 'coupled'
  /** false: o = 1 (NOG) */
  outputGate: boolean
  /** false: z = z̄ (NIAF) */
  inputSquash: boolean
  /** false: y = o ⊙ c (NOAF) */
  outputSquash: boolean
  /** FGR: ī, f̄, ō also receive W_gg · [i; f; o](t−1) */
  gateRecurrence: boolean
}

function cellRules(variant: LstmVariant): CellRules {
  return {
    inputGate: variant !== 'NIG',
    forgetGate: variant === 'NFG' ? 'none' : variant === 'CIFG' ? 'coupled' : 'learned',
    outputGate: variant !== 'NOG',
    inputSquash: variant !== 'NIAF',
    outputSquash: variant !== 'NOAF',
    gateRecurrence: variant === 'FGR',
  }
}

/** Gate blocks of the 4H axis in PyTorch's order i, f, g(=z), o. */
const I = 0
const F = 1
const Z = 2
const O = 3

function lstmParameterSpecs(inputSize: number, hidden: number, peepholes: boolean, gateRecurrence: boolean) {
  const specs: ParameterSpec[] = [
    { name: 'weight_ih_l0', shape: [4 * hidden, inputSize] },
    { name: 'weight_hh_l0', shape: [4 * hidden, hidden] },
    { name: 'bias_ih_l0', shape: [4 * hidden] },
    { name: 'bias_hh_l0', shape: [4 * hidden] },
  ]
  if (peepholes) {
    for (const gate of ['i', 'f', 'o']) specs.push({ name: `peephole_${gate}_l0`, shape: [hidden] })
  }
  if (gateRecurrence) specs.push({ name: 'weight_gg_l0', shape: [3 * hidden, 3 * hidden] })
  return specs
}

/** What backward needs from the most recent forward pass. */
interface LstmCache extends PreparedBatch {
  /** `[batch, time, 4H]`: gate activations i, f, z, o (z = z̄ for NIAF); zero at padded steps. */
  gates: Float64Array
  /** `[batch, time, H]`: c(t); zero at padded steps. */
  cells: Float64Array
  /** `[batch, time, H]`: y(t); zero at padded steps. */
  outputs: Float64Array
}

/** The errors flowing from step t+1 (or from the final state) into step t of one sequence. */
interface Carry {
  /** ∂J/∂y(t) through the recurrence `[H]` (∂J/∂hN at the last step). */
  dy: Float64Array
  /** ∂J/∂c(t) through c(t+1) and the peepholes of t+1 `[H]` (∂J/∂cN at the last step). */
  dc: Float64Array
  /** FGR: ∂J/∂[i; f; o](t) through W_gg `[3H]`. */
  gates: Float64Array
}

export class ReferenceLstm implements RecurrentBackend {
  private readonly inputSize: number
  private readonly hidden: number
  private readonly dtype: Dtype
  private readonly rules: CellRules
  private readonly params: ParameterStore
  private readonly peepholes: boolean
  private cache: LstmCache | null = null

  constructor(config: ReferenceLstmConfig) {
    this.inputSize = config.inputSize
    this.hidden = config.hiddenSize
    this.dtype = config.dtype
    this.rules = cellRules(config.variant)
    this.peepholes = config.peepholes && config.variant !== 'NP'
    const specs = lstmParameterSpecs(this.inputSize, this.hidden, this.peepholes, this.rules.gateRecurrence)
    this.params = new ParameterStore(specs, this.dtype, `inputSize ${this.inputSize} and hiddenSize ${this.hidden}`)
    this.params.initUniform(1 / Math.sqrt(this.hidden), config.seed)
    const forgetBlock = this.params.get('bias_ih_l0').subarray(F * this.hidden, (F + 1) * this.hidden)
    for (let j = 0; j < this.hidden; j++) forgetBlock[j] = roundTo(this.dtype, forgetBlock[j] + config.forgetBias)
  }

  getWeights(): Record<string, Tensor> {
    return this.params.getWeights()
  }

  setWeights(weights: Record<string, Tensor>): void {
    this.params.setWeights(weights)
  }

  forward(input: SequenceInput): ForwardResult {
    const H = this.hidden
    const prepared = prepareBatch(input, H)
    const { batch, time } = prepared
    const cache: LstmCache = {
      ...prepared,
      gates: new Float64Array(batch * time * 4 * H),
      cells: new Float64Array(batch * time * H),
      outputs: new Float64Array(batch * time * H),
    }
    const hN = new Float64Array(batch * H)
    const cN = new Float64Array(batch * H)
    for (let b = 0; b < batch; b++) {
      const length = cache.lengths[b]
      for (let t = 0; t < length; t++) this.forwardStep(cache, b, t)
      // The state is frozen on padding, so the final state is the one at the sequence's own length.
      row(hN, b, H).set(step(cache.outputs, b, length - 1, time, H))
      row(cN, b, H).set(step(cache.cells, b, length - 1, time, H))
    }
    this.cache = cache
    return {
      y: outputTensor(cache.outputs, [batch, time, H], this.dtype),
      hN: outputTensor(hN, [batch, H], this.dtype),
      cN: outputTensor(cN, [batch, H], this.dtype),
    }
  }

  backward(input: BackwardInput): BackwardResult {
    const cache = this.cache
    if (cache === null) throw new Error('ReferenceLstm.backward: call forward() first')
    const H = this.hidden
    const { batch, time, inputSize } = cache
    const dy = toFloat64(input.dy)
    const dhN = input.dhN === undefined ? new Float64Array(batch * H) : toFloat64(input.dhN)
    const dcN = input.dcN === undefined ? new Float64Array(batch * H) : toFloat64(input.dcN)
    const grads = this.params.zerosLike()
    const dx = new Float64Array(batch * time * inputSize)
    const dh0 = new Float64Array(batch * H)
    const dc0 = new Float64Array(batch * H)
    const cellGradSquares = new Float64Array(time)
    for (let b = 0; b < batch; b++) {
      const carry: Carry = {
        dy: row(dhN, b, H).slice(),
        dc: row(dcN, b, H).slice(),
        gates: new Float64Array(3 * H),
      }
      for (let t = cache.lengths[b] - 1; t >= 0; t--) {
        const dyStep = step(dy, b, t, time, H)
        const { deltas, cellGradSquare } = this.gateDeltas(cache, b, t, dyStep, carry, input.recurrentClip)
        cellGradSquares[t] += cellGradSquare
        this.accumulateParameterGrads(grads, cache, b, t, deltas)
        this.propagate(deltas, carry, step(dx, b, t, time, inputSize))
      }
      row(dh0, b, H).set(carry.dy)
      row(dc0, b, H).set(carry.dc)
    }
    return {
      dx: outputTensor(dx, [batch, time, inputSize], this.dtype),
      dh0: outputTensor(dh0, [batch, H], this.dtype),
      dc0: outputTensor(dc0, [batch, H], this.dtype),
      grads: this.params.toTensors(grads),
      stepGradNorms: sqrtAll(cellGradSquares),
    }
  }

  /** Runs step t of sequence b, writing its gates, c(t) and y(t) into the cache. */
  private forwardStep(cache: LstmCache, b: number, t: number): void {
    const H = this.hidden
    const { time } = cache
    const pre = this.preActivations(cache, b, t)
    const cPrev = previousCell(cache, b, t, H)
    const gates = step(cache.gates, b, t, time, 4 * H)
    const cell = step(cache.cells, b, t, time, H)
    const y = step(cache.outputs, b, t, time, H)
    const { rules } = this
    const p = this.peepholeValues()
    for (let j = 0; j < H; j++) {
      const i = rules.inputGate ? sigmoid(pre[I * H + j] + p.i[j] * cPrev[j]) : 1
      const f =
        rules.forgetGate === 'learned'
          ? sigmoid(pre[F * H + j] + p.f[j] * cPrev[j])
          : rules.forgetGate === 'coupled'
            ? 1 - i
            : 1
      const z = rules.inputSquash ? Math.tanh(pre[Z * H + j]) : pre[Z * H + j]
      const c = z * i + cPrev[j] * f
      const o = rules.outputGate ? sigmoid(pre[O * H + j] + p.o[j] * c) : 1
      gates[I * H + j] = i
      gates[F * H + j] = f
      gates[Z * H + j] = z
      gates[O * H + j] = o
      cell[j] = c
      y[j] = o * (rules.outputSquash ? Math.tanh(c) : c)
    }
  }

  /** `[4H]`: W x(t) + R y(t−1) + b_ih + b_hh (+ W_gg [i; f; o](t−1) for FGR), without peepholes. */
  private preActivations(cache: LstmCache, b: number, t: number): Float64Array {
    const pre = Float64Array.from(this.params.get('bias_ih_l0'))
    addInto(pre, this.params.get('bias_hh_l0'))
    addMatVec(pre, this.params.get('weight_ih_l0'), step(cache.x, b, t, cache.time, this.inputSize))
    addMatVec(pre, this.params.get('weight_hh_l0'), previousOutput(cache, b, t, this.hidden))
    if (this.rules.gateRecurrence && t > 0) {
      const fromGates = new Float64Array(3 * this.hidden)
      const previousGates = gatherIfo(step(cache.gates, b, t - 1, cache.time, 4 * this.hidden))
      addMatVec(fromGates, this.params.get('weight_gg_l0'), previousGates)
      scatterAddIfo(pre, fromGates)
    }
    return pre
  }

  /**
   * SPEC §1's backward step for sequence b at step t: the pre-activation deltas
   * `[4H]` (δī, δf̄, δz̄, δō) and Σ δc(t)². With a clip v, the total δy(t) is
   * clamped to [−v, v] before any use, and the total δc(t) once all its terms
   * are summed, before it feeds the gates and the carry to t−1. Updates
   * `carry.dc` to the cell error sent to t−1; `carry.dy` and `carry.gates` are
   * read here and replaced in `propagate`.
   */
  private gateDeltas(cache: LstmCache, b: number, t: number, dyStep: Float64Array, carry: Carry, clip?: number) {
    const H = this.hidden
    const { time } = cache
    const { rules } = this
    const p = this.peepholeValues()
    const gates = step(cache.gates, b, t, time, 4 * H)
    const cell = step(cache.cells, b, t, time, H)
    const cPrev = previousCell(cache, b, t, H)
    const deltas = new Float64Array(4 * H)
    let cellGradSquare = 0
    for (let j = 0; j < H; j++) {
      const i = gates[I * H + j]
      const f = gates[F * H + j]
      const z = gates[Z * H + j]
      const o = gates[O * H + j]
      const squashed = rules.outputSquash ? Math.tanh(cell[j]) : cell[j]
      const squashSlope = rules.outputSquash ? 1 - squashed * squashed : 1
      const dy = clamp(dyStep[j] + carry.dy[j], clip)
      const dO = rules.outputGate ? (dy * squashed + carry.gates[2 * H + j]) * o * (1 - o) : 0
      const dc = clamp(dy * o * squashSlope + p.o[j] * dO + carry.dc[j], clip)
      cellGradSquare += dc * dc
      // ∂J/∂f(t) and ∂J/∂i(t) (activations); CIFG's f = 1 − i hands f's share to i.
      const dForget = dc * cPrev[j] + carry.gates[H + j]
      const dInput = dc * z + carry.gates[j] - (rules.forgetGate === 'coupled' ? dForget : 0)
      const dI = rules.inputGate ? dInput * i * (1 - i) : 0
      const dF = rules.forgetGate === 'learned' ? dForget * f * (1 - f) : 0
      deltas[I * H + j] = dI
      deltas[F * H + j] = dF
      deltas[Z * H + j] = dc * i * (rules.inputSquash ? 1 - z * z : 1)
      deltas[O * H + j] = dO
      carry.dc[j] = dc * f + p.i[j] * dI + p.f[j] * dF
    }
    return { deltas, cellGradSquare }
  }

  /** δW += δ ⊗ x(t), δR += δ ⊗ y(t−1), δb += δ, peepholes and W_gg likewise (SPEC §1 sums). */
  private accumulateParameterGrads(
    grads: Map<string, Float64Array>,
    cache: LstmCache,
    b: number,
    t: number,
    deltas: Float64Array,
  ): void {
    const H = this.hidden
    const { time } = cache
    addOuter(grads.get('weight_ih_l0')!, deltas, step(cache.x, b, t, time, this.inputSize))
    addOuter(grads.get('weight_hh_l0')!, deltas, previousOutput(cache, b, t, H))
    addInto(grads.get('bias_ih_l0')!, deltas)
    addInto(grads.get('bias_hh_l0')!, deltas)
    if (this.peepholes) {
      const cPrev = previousCell(cache, b, t, H)
      const cell = step(cache.cells, b, t, time, H)
      const [gradI, gradF, gradO] = ['i', 'f', 'o'].map((gate) => grads.get(`peephole_${gate}_l0`)!)
      for (let j = 0; j < H; j++) {
        gradI[j] += deltas[I * H + j] * cPrev[j]
        gradF[j] += deltas[F * H + j] * cPrev[j]
        gradO[j] += deltas[O * H + j] * cell[j]
      }
    }
    if (this.rules.gateRecurrence && t > 0) {
      const previousGates = gatherIfo(step(cache.gates, b, t - 1, time, 4 * H))
      addOuter(grads.get('weight_gg_l0')!, gatherIfo(deltas), previousGates)
    }
  }

  /** δx(t) = Wᵀ δ, and the errors sent to t−1: Rᵀ δ into y(t−1), W_ggᵀ [δī; δf̄; δō] into the gates. */
  private propagate(deltas: Float64Array, carry: Carry, dxStep: Float64Array): void {
    addMatTVec(dxStep, this.params.get('weight_ih_l0'), deltas)
    carry.dy.fill(0)
    addMatTVec(carry.dy, this.params.get('weight_hh_l0'), deltas)
    if (this.rules.gateRecurrence) {
      carry.gates.fill(0)
      addMatTVec(carry.gates, this.params.get('weight_gg_l0'), gatherIfo(deltas))
    }
  }

  /** p_i, p_f, p_o; zeros when the model has no peepholes, so the equations need no branches. */
  private peepholeValues(): { i: Float64Array; f: Float64Array; o: Float64Array } {
    if (!this.peepholes) {
      const zeros = new Float64Array(this.hidden)
      return { i: zeros, f: zeros, o: zeros }
    }
    return {
      i: this.params.get('peephole_i_l0'),
      f: this.params.get('peephole_f_l0'),
      o: this.params.get('peephole_o_l0'),
    }
  }
}

/** y(t−1) of sequence b `[H]`: the previous output, or h0 at t = 0. */
function previousOutput(cache: LstmCache, b: number, t: number, hidden: number): Float64Array {
  return previousStep(cache.outputs, cache.h0, b, t, cache.time, hidden)
}

/** c(t−1) of sequence b `[H]`: the previous cell state, or c0 at t = 0. */
function previousCell(cache: LstmCache, b: number, t: number, hidden: number): Float64Array {
  return previousStep(cache.cells, cache.c0, b, t, cache.time, hidden)
}

/** `[4H]` in block order i, f, z, o → `[3H]` in the order i, f, o of weight_gg's rows and columns. */
function gatherIfo(blocks: Float64Array): Float64Array {
  const H = blocks.length / 4
  const ifo = new Float64Array(3 * H)
  ifo.set(blocks.subarray(I * H, (F + 1) * H), 0)
  ifo.set(blocks.subarray(O * H, (O + 1) * H), 2 * H)
  return ifo
}

/** blocks `[4H]` (i, f, z, o) += ifo `[3H]` (i, f, o). */
function scatterAddIfo(blocks: Float64Array, ifo: Float64Array): void {
  const H = ifo.length / 3
  addInto(blocks.subarray(I * H, (F + 1) * H), ifo.subarray(0, 2 * H))
  addInto(blocks.subarray(O * H, (O + 1) * H), ifo.subarray(2 * H))
}
