import type { GraphBuilder } from './graph'
import type { WeightRecord } from './weights'

export interface OnnxExportOptions {
  /**
   * Whether sequences may be shorter than the time axis: every sequence or token input `x`
   * gets a graph input `x_lengths` (int32 `[batch]`, each in 1..time), fed to the recurrent
   * operators' `sequence_lens`. Default true. With false every sequence fills the time axis.
   */
  variableLengths?: boolean
  /**
   * Whether recurrent state crosses the graph boundary: every recurrent node `n` gets inputs
   * `n_h0` (and `n_c0` for an LSTM) and outputs `n_hN` (and `n_cN`), each
   * `[numLayers · directions, batch, hiddenSize]` in PyTorch's order (layer-major, forward
   * before reverse). Default false: zero initial state, no state outputs.
   */
  state?: boolean
  /**
   * Whether to append the loss's link to the output so that the graph returns probabilities
   * instead of `predict`'s logits: Softmax over the last axis for `crossEntropy`, Sigmoid for
   * `binaryCrossEntropy` (refused for `mse`). Default false.
   */
  probabilities?: boolean
}

/** A model value as it exists in the ONNX graph. */
export interface GraphValue {
  /** ONNX tensor name. */
  name: string
  /** `sequence` `[batch, time, width]` float, `tokens` `[batch, time]` int64, `vector` `[batch, width]` float. */
  kind: 'sequence' | 'tokens' | 'vector'
  /** Feature width (0 for tokens). */
  width: number
  /** ONNX name of the sequence's int32 `[batch]` lengths, `''` when sequences fill the time axis. */
  lengths: string
  /** Symbolic name of the time dimension (sequences and tokens). */
  time: string
}

/** What every layer emitter works with. */
export interface EmitContext {
  graph: GraphBuilder
  weights: WeightRecord
  options: Required<OnnxExportOptions>
}
