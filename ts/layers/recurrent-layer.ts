/**
 * What LSTM and SimpleRNN share: argument checks before the backend and the
 * batch of the last forward pass (backward's `dy` must match it).
 */
import { OdysseyRangeError } from '../errors'
import type { BackwardInput, BackwardResult, ForwardInput, ForwardResult, RecurrentBackend, Tensor } from '../types'
import { checkBackwardInput, checkSequenceInput, checkWeightTensors, type BatchDims, type LayerSpec } from '../validate'

export abstract class RecurrentLayer<Config> {
  /** The layer's options with every default filled in. */
  readonly config: Readonly<Config>
  private readonly spec: LayerSpec
  private readonly backend: RecurrentBackend
  private lastForward: BatchDims | null = null
  private disposed = false

  protected constructor(config: Config, spec: LayerSpec, backend: RecurrentBackend) {
    this.config = Object.freeze({ ...config })
    this.spec = spec
    this.backend = backend
  }

  /**
   * Forward through time over a padded batch.
   *
   * - `x` (or `data`, as in a model's `{ data, shape }` tensors): `[batch, time, inputSize]`, flat,
   *   in the layer's dtype (`Float32Array` or `Float64Array`)
   * - `lengths`: `[batch]`, each in `1..time`; steps at or past a sequence's length are padding
   *   (state frozen, output 0). Default: every sequence is `time` long.
   * - `h0` (and `c0` for the LSTM): initial state `[batch, hiddenSize]`. Default zeros.
   *
   * Returns `y` `[batch, time, hiddenSize]` (0 at padding), `hN` `[batch, hiddenSize]` at each
   * sequence's own length, and for the LSTM `cN` `[batch, hiddenSize]`. The layer keeps what
   * `backward` needs.
   *
   * @throws OdysseyTypeError (wrong types or dtype) or OdysseyRangeError (shapes, lengths, NaN).
   */
  forward(input: ForwardInput): ForwardResult {
    this.checkUsable()
    this.lastForward = null
    const dims = checkSequenceInput(input, this.spec)
    const result = this.backend.forward(input.x === undefined ? { ...input, x: input.data } : input)
    this.lastForward = dims
    return result
  }

  /**
   * Backward through time through the most recent forward pass.
   *
   * - `dy`: ∂J/∂y `[batch, time, hiddenSize]` (padded steps are ignored)
   * - `dhN` (and `dcN` for the LSTM): ∂J/∂(final state) `[batch, hiddenSize]`. Default zeros.
   * - `recurrentClip`: clamp every element of the error flowing back through the recurrence
   *   (δh, and δc for the LSTM) to `[−v, v]` at every step.
   *
   * Returns `dx` `[batch, time, inputSize]`, `dh0` (and `dc0`) `[batch, hiddenSize]`, `grads`
   * under the parameters' PyTorch names and shapes, and `stepGradNorms` `[time]`: ‖∂J/∂c(k)‖
   * (LSTM) or ‖∂J/∂h(k)‖ (SimpleRNN) over the batch.
   *
   * @throws OdysseyRangeError `ODYSSEY_STATE` before the first forward pass or after setWeights.
   */
  backward(input: BackwardInput): BackwardResult {
    this.checkUsable()
    checkBackwardInput(input, this.spec, this.lastForward)
    return this.backend.backward(input)
  }

  /** Copies of the parameters under PyTorch names (`weight_ih_l0`, `bias_hh_l0`, ...). */
  getWeights(): Record<string, Tensor> {
    this.checkUsable()
    return this.backend.getWeights()
  }

  /**
   * Replaces parameters by PyTorch name; any subset may be given. Every entry is checked
   * (name, shape, dtype, finite values) before anything changes: the JS types here, the rest by
   * the backend (the core's one rule for layers and models). Discards the last forward pass.
   */
  setWeights(weights: Record<string, Tensor>): void {
    this.checkUsable()
    checkWeightTensors(weights, this.spec.dtype)
    this.lastForward = null
    this.backend.setWeights(weights)
  }

  /**
   * Frees the layer's native memory (parameters and the last forward pass) now rather than when
   * the garbage collector gets to it; every later call throws `ODYSSEY_STATE`. Disposing twice is fine.
   */
  dispose(): void {
    if (this.disposed) return
    this.backend.dispose?.()
    this.lastForward = null
    this.disposed = true
  }

  private checkUsable(): void {
    if (this.disposed)
      throw new OdysseyRangeError('ODYSSEY_STATE', `this ${this.spec.label} has been disposed; create another one`)
  }
}
