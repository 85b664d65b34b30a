/**
 * SPEC §2's Elman RNN, h(t) = g(W_ih x(t) + b_ih + W_hh h(t−1) + b_hh), with
 * exact BPTT, written with plain loops as the oracle for the native backend.
 */

import type { Dtype, RnnActivation } from '../types'
import { addInto, addMatVec, clamp } from './math'
import { type HiddenStateCache, HiddenStateReference, type StepDeltas } from './hidden-state'
import { previousStep, step, type PreparedBatch } from './sequence'

export interface ReferenceSimpleRnnConfig {
  inputSize: number
  hiddenSize: number
  activation: RnnActivation
  dtype: Dtype
  seed: number
}

export class ReferenceSimpleRnn extends HiddenStateReference<HiddenStateCache> {
  private readonly activation: RnnActivation

  constructor(config: ReferenceSimpleRnnConfig) {
    super('ReferenceSimpleRnn', config.inputSize, config.hiddenSize, 1, config.dtype, config.seed)
    this.activation = config.activation
  }

  protected newCache(batch: PreparedBatch): HiddenStateCache {
    return { ...batch, outputs: new Float64Array(batch.batch * batch.time * this.hidden) }
  }

  /** h(t) = g(W_ih x(t) + b_ih + W_hh h(t−1) + b_hh) for sequence b, written into the cache. */
  protected forwardStep(cache: HiddenStateCache, b: number, t: number): void {
    const h = step(cache.outputs, b, t, cache.time, this.hidden)
    h.set(this.params.get('bias_ih_l0'))
    addInto(h, this.params.get('bias_hh_l0'))
    addMatVec(h, this.params.get('weight_ih_l0'), step(cache.x, b, t, cache.time, this.inputSize))
    addMatVec(h, this.params.get('weight_hh_l0'), previousStep(cache.outputs, cache.h0, b, t, cache.time, this.hidden))
    for (let j = 0; j < h.length; j++) h[j] = this.activation === 'tanh' ? Math.tanh(h[j]) : Math.max(0, h[j])
  }

  /**
   * δa(t) = clip(Δ(t) + carry) ⊙ g'(a(t)) `[H]`, one error for both sides (a(t) sums them),
   * and Σ δh(t)² of the clipped total error, the one that is propagated. All of δh reaches
   * h(t−1) through W_hh: carry ← 0.
   */
  protected stepDeltas(
    cache: HiddenStateCache,
    b: number,
    t: number,
    dyStep: Float64Array,
    carry: Float64Array,
    clip?: number,
  ): StepDeltas {
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
    carry.fill(0)
    return { dInput: deltas, dHidden: deltas, hiddenGradSquare }
  }
}
