/**
 * Types shared by the facade, the native backend and the pure-TypeScript
 * reference backend. Every array is flat and row-major; its shape is written
 * next to it as `[batch, time, features]` and so on.
 */

export type Dtype = 'float32' | 'float64'
export type FloatArray = Float32Array | Float64Array

/** Which implementation does the arithmetic. */
export type Backend = 'native' | 'js'

/** The vanilla LSTM and the eight variants of Greff et al. (SPEC §1). */
export type LstmVariant = 'vanilla' | 'NIG' | 'NFG' | 'NOG' | 'NIAF' | 'NOAF' | 'NP' | 'CIFG' | 'FGR'

export const LSTM_VARIANTS: readonly LstmVariant[] = [
  'vanilla',
  'NIG',
  'NFG',
  'NOG',
  'NIAF',
  'NOAF',
  'NP',
  'CIFG',
  'FGR',
]

export type RnnActivation = 'tanh' | 'relu'

/** A flat row-major array with its shape. */
export interface Tensor<A extends FloatArray = FloatArray> {
  data: A
  shape: number[]
}

export interface LstmOptions {
  inputSize: number
  hiddenSize: number
  /** Default `'vanilla'` (with peepholes). */
  variant?: LstmVariant
  /** Peephole connections p_i, p_f, p_o. Default true; always false for `'NP'`. */
  peepholes?: boolean
  /** Default `'float32'`. */
  dtype?: Dtype
  /** Seed of the initialisation (PyTorch's U(−1/√H, 1/√H)). Default 0. */
  seed?: number
  /** Added to the forget-gate block of `bias_ih_l0`. Default 0 (PyTorch); 1 is a common choice. */
  forgetBias?: number
  /** Default: the environment variable `ODYSSEY_BACKEND` (`'native'`, `'js'`, or `'wasm'`: native, run as WebAssembly) when set, else `'native'`. */
  backend?: Backend
}

export interface GruOptions {
  inputSize: number
  hiddenSize: number
  dtype?: Dtype
  seed?: number
  backend?: Backend
}

export interface SimpleRnnOptions {
  inputSize: number
  hiddenSize: number
  /** Default `'tanh'`. */
  activation?: RnnActivation
  dtype?: Dtype
  seed?: number
  backend?: Backend
}

/** A padded batch of sequences, as the backends receive it. */
export interface SequenceInput<A extends FloatArray = FloatArray> {
  /** `[batch, time, inputSize]`, flat. */
  x: A
  /** `[batch, time, inputSize]` */
  shape: readonly [number, number, number]
  /** `[batch]`, each in 1..time. Steps past a sequence's length are padding. Default: all `time`. */
  lengths?: ArrayLike<number>
  /** Initial hidden output y(0): `[batch, hiddenSize]`. Default zeros. */
  h0?: A
  /** Initial cell state c(0): `[batch, hiddenSize]` (LSTM only). Default zeros. */
  c0?: A
}

/**
 * What a layer's `forward` takes: a `SequenceInput`, whose values may also be given as `data`,
 * like a model's tensors (`{ data, shape }`).
 */
export type ForwardInput<A extends FloatArray = FloatArray> =
  | SequenceInput<A>
  | (Omit<SequenceInput<A>, 'x'> & { data: A; x?: undefined })

export interface ForwardResult<A extends FloatArray = FloatArray> {
  /** `[batch, time, hiddenSize]`; zero at padded steps. */
  y: Tensor<A>
  /** Final hidden output of each sequence at its own length: `[batch, hiddenSize]`. */
  hN: Tensor<A>
  /** Final cell state `[batch, hiddenSize]` (LSTM only). */
  cN?: Tensor<A>
}

export interface BackwardInput<A extends FloatArray = FloatArray> {
  /** ∂J/∂y(t): `[batch, time, hiddenSize]`; padded steps are ignored. */
  dy: A
  /** ∂J/∂(final hidden output): `[batch, hiddenSize]`. Default zeros. */
  dhN?: A
  /** ∂J/∂(final cell state): `[batch, hiddenSize]` (LSTM only). Default zeros. */
  dcN?: A
  /** Clamp every element of the recurrent error δy(t) (and δc(t)) to [−v, v] at every step. */
  recurrentClip?: number
}

export interface BackwardResult<A extends FloatArray = FloatArray> {
  /** ∂J/∂x: `[batch, time, inputSize]` */
  dx: Tensor<A>
  /** ∂J/∂h0: `[batch, hiddenSize]` */
  dh0: Tensor<A>
  /** ∂J/∂c0: `[batch, hiddenSize]` (LSTM only) */
  dc0?: Tensor<A>
  /** Parameter gradients under the parameters' PyTorch names. */
  grads: Record<string, Tensor<A>>
  /** ‖∂J/∂c(k)‖ (LSTM) or ‖∂J/∂h(k)‖ (simple RNN) for every step k: `[time]`. */
  stepGradNorms: Float64Array
}

/**
 * What a recurrent-layer backend implements. The facade validates every
 * argument before calling it, so backends may assume well-formed input.
 */
export interface RecurrentBackend {
  forward(input: SequenceInput): ForwardResult
  /** Backward through the most recent forward pass. */
  backward(input: BackwardInput): BackwardResult
  /** Parameters under PyTorch names (copies). */
  getWeights(): Record<string, Tensor>
  /** Replace parameters by name; shapes were checked by the facade. */
  setWeights(weights: Record<string, Tensor>): void
  /** Frees what the backend holds outside JS's heap (the native layer); never called twice. */
  dispose?(): void
}
