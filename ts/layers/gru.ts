import { ReferenceGru } from '../reference'
import type { GruOptions, RecurrentBackend } from '../types'
import { BACKENDS, checkOneOf, checkOptionKeys, checkSeed, checkSize, DTYPES } from '../validate'
import { defaultBackend } from '../native'
import { NativeBackend } from './native-backend'
import { RecurrentLayer } from './recurrent-layer'

/** GruOptions with every default filled in. */
export type GruConfig = Required<GruOptions>

const GRU_OPTION_KEYS: readonly (keyof GruOptions)[] = ['inputSize', 'hiddenSize', 'dtype', 'seed', 'backend']

function resolveGruOptions(options: GruOptions): GruConfig {
  checkOptionKeys(options, GRU_OPTION_KEYS, 'GRU')
  return {
    inputSize: checkSize('inputSize', options.inputSize),
    hiddenSize: checkSize('hiddenSize', options.hiddenSize),
    dtype: checkOneOf('dtype', options.dtype ?? 'float32', DTYPES),
    seed: checkSeed('seed', options.seed ?? 0),
    backend: checkOneOf('backend', options.backend ?? defaultBackend(), BACKENDS),
  }
}

function createBackend({ backend, ...config }: GruConfig): RecurrentBackend {
  return backend === 'js' ? new ReferenceGru(config) : NativeBackend.gru(config)
}

/**
 * A GRU layer, PyTorch's `nn.GRU`: gates r, z, n with b_hn inside the reset product,
 * r = σ(W_ir x + b_ir + W_hr h + b_hr), z = σ(W_iz x + b_iz + W_hz h + b_hz),
 * n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)), h' = (1 − z) ⊙ n + z ⊙ h. Batch-first
 * `[batch, time, features]` sequences of variable length, exact backpropagation through time.
 * Weights: `weight_ih_l0` `[3H, X]`, `weight_hh_l0` `[3H, H]`, `bias_ih_l0` and `bias_hh_l0` `[3H]`.
 *
 * ```ts
 * const gru = new GRU({ inputSize: 4, hiddenSize: 8 })
 * const { y, hN } = gru.forward({ x, shape: [2, 3, 4] }) // y: [2, 3, 8]
 * const { dx, grads, stepGradNorms } = gru.backward({ dy: y.data }) // stepGradNorms[k] = ‖∂J/∂h(k)‖
 * ```
 *
 * @throws OdysseyTypeError / OdysseyRangeError from the constructor for invalid options,
 *   OdysseyError `ODYSSEY_NATIVE_LOAD` when the native addon is missing (use `backend: 'js'`).
 */
export class GRU extends RecurrentLayer<GruConfig> {
  constructor(options: GruOptions) {
    const config = resolveGruOptions(options)
    const spec = {
      label: 'GRU',
      inputSize: config.inputSize,
      hiddenSize: config.hiddenSize,
      dtype: config.dtype,
      hasCell: false,
    }
    super(config, spec, createBackend(config))
  }
}
