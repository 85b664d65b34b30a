/**
 * The model description `exportOnnx` reads: the JSON model spec of the Rust core
 * (crates/core/src/model/spec.rs), as `model.spec` holds it. Optional fields take the
 * core's defaults. Only what the export needs is typed; other fields are ignored.
 */
import type { LstmVariant, RnnActivation } from '../types'

export type OnnxInputSpec =
  /** Float sequences `[batch, time, features]` with per-sequence lengths. */
  | { kind: 'sequence'; name: string; features: number }
  /** Token ids `[batch, time]` with per-sequence lengths. */
  | { kind: 'tokens'; name: string }
  /** Float vectors `[batch, features]`. */
  | { kind: 'vector'; name: string; features: number }

/** What a recurrent node hands on: every step, the last step, or every layer's final state. */
export type RecurrentOutputKind = 'sequence' | 'last' | 'states'

export interface RecurrentNodeFields {
  hiddenSize: number
  /** Default 1. */
  numLayers?: number
  /** Default false. */
  bidirectional?: boolean
  /** How the two directions are combined. Default `'concat'`. */
  merge?: 'concat' | 'sum'
  /** Default `'sequence'`. */
  output?: RecurrentOutputKind
}

export type DenseActivation = 'none' | 'identity' | 'tanh' | 'relu' | 'sigmoid'

export type OnnxNodeSpec = { name: string; inputs: string[] } & (
  | { type: 'embedding'; vocabSize: number; dim: number; frozen?: boolean }
  /** `variant` `''` is the vanilla LSTM; `peepholes` defaults to true. */
  | ({ type: 'lstm'; variant?: LstmVariant | ''; peepholes?: boolean; forgetBias?: number } & RecurrentNodeFields)
  | ({ type: 'rnn'; activation?: RnnActivation | '' } & RecurrentNodeFields)
  | { type: 'dense'; units: number; activation?: DenseActivation }
  | { type: 'dropout'; rate: number }
  | { type: 'concat' }
  | { type: 'multiply' }
  | { type: 'l2Normalize' }
)

export type LstmNodeSpec = Extract<OnnxNodeSpec, { type: 'lstm' }>
export type RnnNodeSpec = Extract<OnnxNodeSpec, { type: 'rnn' }>

export type LossKind = 'mse' | 'crossEntropy' | 'binaryCrossEntropy'

export interface OnnxModelSpec {
  inputs: OnnxInputSpec[]
  /** In topological order; each reads model inputs or earlier nodes by name. */
  nodes: OnnxNodeSpec[]
  /** The node whose value `predict` returns (the last one). */
  output: string
  loss: LossKind
}
