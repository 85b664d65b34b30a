/**
 * The loops the simple RNN and the GRU share: layers whose only state is h, with PyTorch's
 * four tensors (`weight_ih_l0`, `weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0`) of `blocks` gate
 * blocks each. A subclass writes one forward step into its cache and gives, for one backward
 * step, the pre-activation errors of the input and the hidden side.
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
import { addInto, addMatTVec, addOuter, outputTensor, toFloat64 } from './math'
import { ParameterStore } from './parameters'
import { prepareBatch, previousStep, row, sqrtAll, step, type PreparedBatch } from './sequence'

/** What backward needs from the most recent forward pass, beyond the batch. */
export interface HiddenStateCache extends PreparedBatch {
  /** `[batch, time, H]`: h(t); zero at padded steps. */
  outputs: Float64Array
}

/** One backward step's errors (see `HiddenStateReference.stepDeltas`). */
export interface StepDeltas {
  /** ∂J/∂ of the input side's pre-activations `[blocks·H]` (W_ih x + b_ih). */
  dInput: Float64Array
  /** ∂J/∂ of the hidden side's pre-activations `[blocks·H]` (W_hh h(t−1) + b_hh). */
  dHidden: Float64Array
  /** Σ δh(t)² of the clipped total error at this step. */
  hiddenGradSquare: number
}

export abstract class HiddenStateReference<Cache extends HiddenStateCache> implements RecurrentBackend {
  protected readonly params: ParameterStore
  private cache: Cache | null = null

  constructor(
    /** The class name, for errors. */
    private readonly label: string,
    protected readonly inputSize: number,
    protected readonly hidden: number,
    blocks: number,
    protected readonly dtype: Dtype,
    seed: number,
  ) {
    const [I, H] = [inputSize, hidden]
    this.params = new ParameterStore(
      [
        { name: 'weight_ih_l0', shape: [blocks * H, I] },
        { name: 'weight_hh_l0', shape: [blocks * H, H] },
        { name: 'bias_ih_l0', shape: [blocks * H] },
        { name: 'bias_hh_l0', shape: [blocks * H] },
      ],
      dtype,
      `inputSize ${I} and hiddenSize ${H}`,
    )
    this.params.initUniform(1 / Math.sqrt(H), seed)
  }

  getWeights(): Record<string, Tensor> {
    return this.params.getWeights()
  }

  setWeights(weights: Record<string, Tensor>): void {
    this.params.setWeights(weights)
  }

  forward(input: SequenceInput): ForwardResult {
    const H = this.hidden
    const cache = this.newCache(prepareBatch(input, H))
    const { batch, time } = cache
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
    if (cache === null) throw new Error(`${this.label}.backward: call forward() first`)
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
        const deltas = this.stepDeltas(cache, b, t, step(dy, b, t, time, H), carry, input.recurrentClip)
        hiddenGradSquares[t] += deltas.hiddenGradSquare
        addOuter(grads.get('weight_ih_l0')!, deltas.dInput, step(cache.x, b, t, time, inputSize))
        addOuter(grads.get('weight_hh_l0')!, deltas.dHidden, previousStep(cache.outputs, cache.h0, b, t, time, H))
        addInto(grads.get('bias_ih_l0')!, deltas.dInput)
        addInto(grads.get('bias_hh_l0')!, deltas.dHidden)
        addMatTVec(step(dx, b, t, time, inputSize), this.params.get('weight_ih_l0'), deltas.dInput)
        // carry holds what of δh(t) reaches h(t−1) directly; the rest goes through W_hh.
        addMatTVec(carry, this.params.get('weight_hh_l0'), deltas.dHidden)
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

  /** The cache of one forward pass over `batch`, its arrays zeroed. */
  protected abstract newCache(batch: PreparedBatch): Cache

  /** Step t of sequence b: h(t) and whatever backward needs into the cache. */
  protected abstract forwardStep(cache: Cache, b: number, t: number): void

  /**
   * With δh = clip(Δ(t) + carry) (`dyStep` is Δ(t)): the step's errors, and carry ← the
   * part of δh that reaches h(t−1) other than through W_hh.
   */
  protected abstract stepDeltas(
    cache: Cache,
    b: number,
    t: number,
    dyStep: Float64Array,
    carry: Float64Array,
    clip?: number,
  ): StepDeltas
}
