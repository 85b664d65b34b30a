/**
 * PyTorch's `nn.GRU` with exact BPTT, written with plain loops as the oracle for the native
 * backend (crates/core/src/layers/gru.rs has the equations). Gate blocks r, z, n; b_hn sits
 * inside the reset product:
 *   r = σ(W_ir x + b_ir + W_hr h + b_hr), z = σ(W_iz x + b_iz + W_hz h + b_hz),
 *   n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)), h' = (1 − z) ⊙ n + z ⊙ h.
 */

import type {
  BackwardInput,
  BackwardResult,
  Dtype,
  ForwardResult,
  RecurrentBackend,
  SequenceInput,
  Tensor,
} from '../types'
import { addInto, addMatTVec, addMatVec, addOuter, clamp, outputTensor, sigmoid, toFloat64 } from './math'
import { ParameterStore } from './parameters'
import { prepareBatch, previousStep, row, sqrtAll, step, type PreparedBatch } from './sequence'

export interface ReferenceGruConfig {
  inputSize: number
  hiddenSize: number
  dtype: Dtype
  seed: number
}

/** What backward needs from the most recent forward pass. */
interface GruCache extends PreparedBatch {
  /** `[batch, time, H]`: h(t); zero at padded steps. */
  outputs: Float64Array
  /** `[batch, time, 3H]`: r, z, n. */
  gates: Float64Array
  /** `[batch, time, H]`: W_hn h(t−1) + b_hn. */
  hiddenN: Float64Array
}

export class ReferenceGru implements RecurrentBackend {
  private readonly inputSize: number
  private readonly hidden: number
  private readonly dtype: Dtype
  private readonly params: ParameterStore
  private cache: GruCache | null = null

  constructor(config: ReferenceGruConfig) {
    this.inputSize = config.inputSize
    this.hidden = config.hiddenSize
    this.dtype = config.dtype
    const H = this.hidden
    this.params = new ParameterStore(
      [
        { name: 'weight_ih_l0', shape: [3 * H, this.inputSize] },
        { name: 'weight_hh_l0', shape: [3 * H, H] },
        { name: 'bias_ih_l0', shape: [3 * H] },
        { name: 'bias_hh_l0', shape: [3 * H] },
      ],
      this.dtype,
      `inputSize ${this.inputSize} and hiddenSize ${H}`,
    )
    this.params.initUniform(1 / Math.sqrt(H), config.seed)
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
    const cache: GruCache = {
      ...prepared,
      outputs: new Float64Array(batch * time * H),
      gates: new Float64Array(batch * time * 3 * H),
      hiddenN: new Float64Array(batch * time * H),
    }
    const hN = new Float64Array(batch * H)
    for (let b = 0; b < batch; b++) {
      const length = cache.lengths[b]
      for (let t = 0; t < length; t++) this.forwardStep(cache, b, t)
      row(hN, b, H).set(step(cache.outputs, b, length - 1, time, H))
    }
    this.cache = cache
    return {
      y: outputTensor(cache.outputs, [batch, time, H], this.dtype),
      hN: outputTensor(hN, [batch, H], this.dtype),
    }
  }

  backward(input: BackwardInput): BackwardResult {
    const cache = this.cache
    if (cache === null) throw new Error('ReferenceGru.backward: call forward() first')
    const H = this.hidden
    const { batch, time, inputSize } = cache
    const dy = toFloat64(input.dy)
    const dhN = input.dhN === undefined ? new Float64Array(batch * H) : toFloat64(input.dhN)
    const grads = this.params.zerosLike()
    const dx = new Float64Array(batch * time * inputSize)
    const dh0 = new Float64Array(batch * H)
    const hiddenGradSquares = new Float64Array(time)
    for (let b = 0; b < batch; b++) {
      // ∂J/∂h(t) from later steps `[H]`; ∂J/∂hN at the sequence's last step.
      const carry = row(dhN, b, H).slice()
      for (let t = cache.lengths[b] - 1; t >= 0; t--) {
        const hPrev = previousStep(cache.outputs, cache.h0, b, t, time, H)
        const { dInput, dHidden, hiddenGradSquare } = this.stepDeltas(
          cache,
          b,
          t,
          step(dy, b, t, time, H),
          carry,
          input.recurrentClip,
        )
        hiddenGradSquares[t] += hiddenGradSquare
        addOuter(grads.get('weight_ih_l0')!, dInput, step(cache.x, b, t, time, inputSize))
        addOuter(grads.get('weight_hh_l0')!, dHidden, hPrev)
        addInto(grads.get('bias_ih_l0')!, dInput)
        addInto(grads.get('bias_hh_l0')!, dHidden)
        addMatTVec(step(dx, b, t, time, inputSize), this.params.get('weight_ih_l0'), dInput)
        // carry now holds δh(t) ⊙ z(t); the rest reaches h(t−1) through W_hh.
        addMatTVec(carry, this.params.get('weight_hh_l0'), dHidden)
      }
      row(dh0, b, H).set(carry)
    }
    return {
      dx: outputTensor(dx, [batch, time, inputSize], this.dtype),
      dh0: outputTensor(dh0, [batch, H], this.dtype),
      grads: this.params.toTensors(grads),
      stepGradNorms: sqrtAll(hiddenGradSquares),
    }
  }

  /** One step of sequence b: r, z, n, W_hn h(t−1) + b_hn and h(t) into the cache. */
  private forwardStep(cache: GruCache, b: number, t: number): void {
    const H = this.hidden
    const hPrev = previousStep(cache.outputs, cache.h0, b, t, cache.time, H)
    const fromInput = this.params.get('bias_ih_l0').slice()
    addMatVec(fromInput, this.params.get('weight_ih_l0'), step(cache.x, b, t, cache.time, this.inputSize))
    const fromHidden = this.params.get('bias_hh_l0').slice()
    addMatVec(fromHidden, this.params.get('weight_hh_l0'), hPrev)
    const gates = step(cache.gates, b, t, cache.time, 3 * H)
    const hiddenN = step(cache.hiddenN, b, t, cache.time, H)
    const h = step(cache.outputs, b, t, cache.time, H)
    for (let j = 0; j < H; j++) {
      const r = sigmoid(fromInput[j] + fromHidden[j])
      const z = sigmoid(fromInput[H + j] + fromHidden[H + j])
      hiddenN[j] = fromHidden[2 * H + j]
      const n = Math.tanh(fromInput[2 * H + j] + r * hiddenN[j])
      gates[j] = r
      gates[H + j] = z
      gates[2 * H + j] = n
      h[j] = (1 - z) * n + z * hPrev[j]
    }
  }

  /**
   * With δh = clip(Δ(t) + carry): the input side's δ(r̄, z̄, n̄) and the hidden side's
   * δ(r̄, z̄, r ⊙ n̄) `[3H]`, Σ δh² of the clipped error, and carry ← δh ⊙ z.
   */
  private stepDeltas(cache: GruCache, b: number, t: number, dyStep: Float64Array, carry: Float64Array, clip?: number) {
    const H = this.hidden
    const gates = step(cache.gates, b, t, cache.time, 3 * H)
    const hiddenN = step(cache.hiddenN, b, t, cache.time, H)
    const hPrev = previousStep(cache.outputs, cache.h0, b, t, cache.time, H)
    const dInput = new Float64Array(3 * H)
    const dHidden = new Float64Array(3 * H)
    let hiddenGradSquare = 0
    for (let j = 0; j < H; j++) {
      const [r, z, n] = [gates[j], gates[H + j], gates[2 * H + j]]
      const dh = clamp(dyStep[j] + carry[j], clip)
      hiddenGradSquare += dh * dh
      const dn = dh * (1 - z) * (1 - n * n)
      const dz = dh * (hPrev[j] - n) * z * (1 - z)
      const dr = dn * hiddenN[j] * r * (1 - r)
      dInput[j] = dHidden[j] = dr
      dInput[H + j] = dHidden[H + j] = dz
      dInput[2 * H + j] = dn
      dHidden[2 * H + j] = r * dn
      carry[j] = dh * z
    }
    return { dInput, dHidden, hiddenGradSquare }
  }
}
