import { ReferenceSimpleRnn } from '../reference'
import type { RecurrentBackend, RnnActivation, SimpleRnnOptions } from '../types'
import { BACKENDS, checkOneOf, checkOptionKeys, checkSeed, checkSize, DTYPES } from '../validate'
import { defaultBackend } from '../native'
import { NativeBackend } from './native-backend'
import { RecurrentLayer } from './recurrent-layer'

/** SimpleRnnOptions with every default filled in. */
export type SimpleRnnConfig = Required<SimpleRnnOptions>

const ACTIVATIONS: readonly RnnActivation[] = ['tanh', 'relu']

const SIMPLE_RNN_OPTION_KEYS: readonly (keyof SimpleRnnOptions)[] = [
  'inputSize',
  'hiddenSize',
  'activation',
  'dtype',
  'seed',
  'backend',
]

function resolveSimpleRnnOptions(options: SimpleRnnOptions): SimpleRnnConfig {
  checkOptionKeys(options, SIMPLE_RNN_OPTION_KEYS, 'SimpleRNN')
  const inputSize = checkSize('inputSize', options.inputSize)
  const hiddenSize = checkSize('hiddenSize', options.hiddenSize)
  return {
    inputSize,
    hiddenSize,
    activation: checkOneOf('activation', options.activation ?? 'tanh', ACTIVATIONS),
    dtype: checkOneOf('dtype', options.dtype ?? 'float32', DTYPES),
    seed: checkSeed('seed', options.seed ?? 0),
    backend: checkOneOf('backend', options.backend ?? defaultBackend(), BACKENDS),
  }
}

function createBackend({ backend, ...config }: SimpleRnnConfig): RecurrentBackend {
  return backend === 'js' ? new ReferenceSimpleRnn(config) : NativeBackend.simpleRnn(config)
}

/**
 * A simple (Elman) RNN layer (SPEC §2), PyTorch's `nn.RNN`: h(t) = g(W_ih x(t) + b_ih + W_hh h(t−1) + b_hh)
 * with g = tanh (default) or relu. Batch-first `[batch, time, features]` sequences of variable
 * length, exact backpropagation through time. Weights: `weight_ih_l0` `[H, X]`, `weight_hh_l0`
 * `[H, H]`, `bias_ih_l0` and `bias_hh_l0` `[H]`.
 *
 * ```ts
 * const rnn = new SimpleRNN({ inputSize: 4, hiddenSize: 8, activation: 'relu' })
 * const { y, hN } = rnn.forward({ x, shape: [2, 3, 4] }) // y: [2, 3, 8]
 * const { dx, grads, stepGradNorms } = rnn.backward({ dy: y.data }) // stepGradNorms[k] = ‖∂J/∂h(k)‖
 * ```
 *
 * @throws OdysseyTypeError / OdysseyRangeError from the constructor for invalid options,
 *   OdysseyError `ODYSSEY_NATIVE_LOAD` when the native addon is missing (use `backend: 'js'`).
 */
export class SimpleRNN extends RecurrentLayer<SimpleRnnConfig> {
  constructor(options: SimpleRnnOptions) {
    const config = resolveSimpleRnnOptions(options)
    const spec = {
      label: 'SimpleRNN',
      inputSize: config.inputSize,
      hiddenSize: config.hiddenSize,
      dtype: config.dtype,
      hasCell: false,
    }
    super(config, spec, createBackend(config))
  }
}
