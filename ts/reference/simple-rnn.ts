/**
 * SPEC §2's Elman RNN, h(t) = g(W_ih x(t) + b_ih + W_hh h(t−1) + b_hh), with
 * exact BPTT, written with plain loops as the oracle for the native backend.
 */

import type {
  BackwardInput,
  BackwardResult,
  Dtype,
  ForwardResult,
  RecurrentBackend,
  RnnActivation,
  SequenceInput,
  Tensor,
} from '../types'
import { addInto, addMatTVec, addMatVec, addOuter, clamp, outputTensor, toFloat64 } from './math'
import { ParameterStore } from './parameters'
import { prepareBatch, previousStep, row, sqrtAll, step, type PreparedBatch } from './sequence'

export interface ReferenceSimpleRnnConfig {
  inputSize: number
  hiddenSize: number
  activation: RnnActivation
  dtype: Dtype
  seed: number
}

/** What backward needs from the most recent forward pass. */
interface RnnCache extends PreparedBatch {
  /** `[batch, time, H]`: h(t); zero at padded steps. */
  outputs: Float64Array
}

export class ReferenceSimpleRnn implements RecurrentBackend {
  private readonly inputSize: number
  private readonly hidden: number
  private readonly activation: RnnActivation
  private readonly dtype: Dtype
  private readonly params: ParameterStore
  private cache: RnnCache | null = null

  constructor(config: ReferenceSimpleRnnConfig) {
    this.inputSize = config.inputSize
    this.hidden = config.hiddenSize
    this.activation = config.activation
    this.dtype = config.dtype
    const H = this.hidden
    this.params = new ParameterStore(
      [
        { name: 'weight_ih_l0', shape: [H, this.inputSize] },
        { name: 'weight_hh_l0', shape: [H, H] },
        { name: 'bias_ih_l0', shape: [H] },
        { name: 'bias_hh_l0', shape: [H] },
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
    const cache: RnnCache = { ...prepared, outputs: new Float64Array(batch * time * H) }
    const hN = new Float64Array(batch * H)
    for (let b = 0; b < batch; b++) {
      const length = cache.lengths[b]
      for (let t = 0; t < length; t++) this.forwardStep(cache, b, t)
      // The state is frozen on padding, so the final state is the one at the sequence's own length.
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
    if (cache === null) throw new Error('ReferenceSimpleRnn.backward: call forward() first')
    const H = this.hidden
    const { batch, time, inputSize } = cache
    const dy = toFloat64(input.dy)
    const dhN = input.dhN === undefined ? new Float64Array(batch * H) : toFloat64(input.dhN)
    const grads = this.params.zerosLike()
    const dx = new Float64Array(batch * time * inputSize)
    const dh0 = new Float64Array(batch * H)
    const hiddenGradSquares = new Float64Array(time)
    for (let b = 0; b < batch; b++) {
      // ∂J/∂h(t) through the recurrence `[H]`; ∂J/∂hN at the sequence's last step.
      const carry = row(dhN, b, H).slice()
      for (let t = cache.lengths[b] - 1; t >= 0; t--) {
        const dyStep = step(dy, b, t, time, H)
        const { deltas, hiddenGradSquare } = this.preActivationDeltas(cache, b, t, dyStep, carry, input.recurrentClip)
        hiddenGradSquares[t] += hiddenGradSquare
        addOuter(grads.get('weight_ih_l0')!, deltas, step(cache.x, b, t, time, inputSize))
        addOuter(grads.get('weight_hh_l0')!, deltas, previousStep(cache.outputs, cache.h0, b, t, time, H))
        addInto(grads.get('bias_ih_l0')!, deltas)
        addInto(grads.get('bias_hh_l0')!, deltas)
        addMatTVec(step(dx, b, t, time, inputSize), this.params.get('weight_ih_l0'), deltas)
        carry.fill(0)
        addMatTVec(carry, this.params.get('weight_hh_l0'), deltas)
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

  /** h(t) = g(W_ih x(t) + b_ih + W_hh h(t−1) + b_hh) for sequence b, written into the cache. */
  private forwardStep(cache: RnnCache, b: number, t: number): void {
    const h = step(cache.outputs, b, t, cache.time, this.hidden)
    h.set(this.params.get('bias_ih_l0'))
    addInto(h, this.params.get('bias_hh_l0'))
    addMatVec(h, this.params.get('weight_ih_l0'), step(cache.x, b, t, cache.time, this.inputSize))
    addMatVec(h, this.params.get('weight_hh_l0'), previousStep(cache.outputs, cache.h0, b, t, cache.time, this.hidden))
    for (let j = 0; j < h.length; j++) h[j] = this.activation === 'tanh' ? Math.tanh(h[j]) : Math.max(0, h[j])
  }

  /**
   * δa(t) = clip(Δ(t) + carry) ⊙ g'(a(t)) `[H]` and Σ δh(t)² of the clipped
   * total error, the one that is propagated.
   */
  private preActivationDeltas(
    cache: RnnCache,
    b: number,
    t: number,
    dyStep: Float64Array,
    carry: Float64Array,
    clip?: number,
  ) {
    const h = step(cache.outputs, b, t, cache.time, this.hidden)
    const deltas = new Float64Array(this.hidden)
    let hiddenGradSquare = 0
    for (let j = 0; j < this.hidden; j++) {
      const dh = clamp(dyStep[j] + carry[j], clip)
      hiddenGradSquare += dh * dh
      // g' from the output: tanh' = 1 − h², relu' = [h > 0].
      const slope = this.activation === 'tanh' ? 1 - h[j] * h[j] : h[j] > 0 ? 1 : 0
      deltas[j] = dh * slope
    }
    return { deltas, hiddenGradSquare }
  }
}
