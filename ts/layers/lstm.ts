import { ReferenceLstm } from '../reference'
import { LSTM_VARIANTS, type LstmOptions, type RecurrentBackend } from '../types'
import {
  BACKENDS,
  checkBoolean,
  checkFiniteNumber,
  checkOneOf,
  checkOptionKeys,
  checkSeed,
  checkSize,
  DTYPES,
} from '../validate'
import { defaultBackend } from '../native'
import { NativeBackend } from './native-backend'
import { RecurrentLayer } from './recurrent-layer'

/** LstmOptions with every default filled in. */
export type LstmConfig = Required<LstmOptions>

const LSTM_OPTION_KEYS: readonly (keyof LstmOptions)[] = [
  'inputSize',
  'hiddenSize',
  'variant',
  'peepholes',
  'dtype',
  'seed',
  'forgetBias',
  'backend',
]

function resolveLstmOptions(options: LstmOptions): LstmConfig {
  checkOptionKeys(options, LSTM_OPTION_KEYS, 'LSTM')
  const variant = checkOneOf('variant', options.variant ?? 'vanilla', LSTM_VARIANTS)
  const inputSize = checkSize('inputSize', options.inputSize)
  const hiddenSize = checkSize('hiddenSize', options.hiddenSize)
  return {
    inputSize,
    hiddenSize,
    variant,
    // SPEC §1: the NP variant is the one without peepholes.
    peepholes: variant !== 'NP' && checkBoolean('peepholes', options.peepholes ?? true),
    dtype: checkOneOf('dtype', options.dtype ?? 'float32', DTYPES),
    seed: checkSeed('seed', options.seed ?? 0),
    forgetBias: checkFiniteNumber('forgetBias', options.forgetBias ?? 0),
    backend: checkOneOf('backend', options.backend ?? defaultBackend(), BACKENDS),
  }
}

function createBackend({ backend, ...config }: LstmConfig): RecurrentBackend {
  return backend === 'js' ? new ReferenceLstm(config) : NativeBackend.lstm(config)
}

/**
 * An LSTM layer (Greff et al., SPEC §1): peepholes (on by default) and the paper's eight
 * variants, batch-first `[batch, time, features]` sequences of variable length, exact
 * backpropagation through time. Weights use PyTorch's layout, gate order (i, f, g, o) and names:
 * `weight_ih_l0` `[4H, X]`, `weight_hh_l0` `[4H, H]`, `bias_ih_l0` and `bias_hh_l0` `[4H]`, with
 * peepholes `peephole_{i,f,o}_l0` `[H]`, for FGR `weight_gg_l0` `[3H, 3H]`.
 *
 * ```ts
 * const lstm = new LSTM({ inputSize: 4, hiddenSize: 8 })
 * const { y, hN, cN } = lstm.forward({ x, shape: [2, 3, 4], lengths: [3, 2] }) // y: [2, 3, 8]
 * const { dx, grads, stepGradNorms } = lstm.backward({ dy: y.data })
 * ```
 *
 * @throws OdysseyTypeError / OdysseyRangeError from the constructor for invalid options,
 *   OdysseyError `ODYSSEY_NATIVE_LOAD` when the native addon is missing (use `backend: 'js'`).
 */
export class LSTM extends RecurrentLayer<LstmConfig> {
  constructor(options: LstmOptions) {
    const config = resolveLstmOptions(options)
    const spec = {
      label: 'LSTM',
      inputSize: config.inputSize,
      hiddenSize: config.hiddenSize,
      dtype: config.dtype,
      hasCell: true,
    }
    super(config, spec, createBackend(config))
  }
}
