/**
 * PyTorch's `nn.GRU` with exact BPTT, written with plain loops as the oracle for the native
 * backend (crates/core/src/layers/gru.rs has the equations). Gate blocks r, z, n; b_hn sits
 * inside the reset product:
 *   r = σ(W_ir x + b_ir + W_hr h + b_hr), z = σ(W_iz x + b_iz + W_hz h + b_hz),
 *   n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)), h' = (1 − z) ⊙ n + z ⊙ h.
 */

import type { Dtype } from '../types'
import { addMatVec, clamp, sigmoid } from './math'
import { type HiddenStateCache, HiddenStateReference, type StepDeltas } from './hidden-state'
import { previousStep, step, type PreparedBatch } from './sequence'

export interface ReferenceGruConfig {
  inputSize: number
  hiddenSize: number
  dtype: Dtype
  seed: number
}

/** What backward needs from the most recent forward pass. */
interface GruCache extends HiddenStateCache {
  /** `[batch, time, 3H]`: r, z, n. */
  gates: Float64Array
  /** `[batch, time, H]`: W_hn h(t−1) + b_hn. */
  hiddenN: Float64Array
}

export class ReferenceGru extends HiddenStateReference<GruCache> {
  constructor(config: ReferenceGruConfig) {
    super('ReferenceGru', config.inputSize, config.hiddenSize, 3, config.dtype, config.seed)
  }

  protected newCache(batch: PreparedBatch): GruCache {
    const size = batch.batch * batch.time * this.hidden
    return {
      ...batch,
      outputs: new Float64Array(size),
      gates: new Float64Array(3 * size),
      hiddenN: new Float64Array(size),
    }
  }

  /** One step of sequence b: r, z, n, W_hn h(t−1) + b_hn and h(t) into the cache. */
  protected forwardStep(cache: GruCache, b: number, t: number): void {
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
  protected stepDeltas(
    cache: GruCache,
    b: number,
    t: number,
    dyStep: Float64Array,
    carry: Float64Array,
    clip?: number,
  ): StepDeltas {
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
