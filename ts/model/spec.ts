/**
 * The plain-data description of a model graph — the same JSON the Rust core
 * reads (`crates/core/src/model/spec.rs`) and a checkpoint's `config.json`
 * holds. Here only what needs JS types is checked (objects, strings, integers,
 * known option names) and defaults are filled in; the core checks the graph
 * itself (wiring, sizes, what each node may read) and works out the shape of
 * every value (`crates/core/src/model/shapes.rs`), which data is checked
 * against before any native call.
 */
import type { GraphDescription } from '../../native/binding'
import { fromNativeError, OdysseyRangeError, OdysseyTypeError } from '../errors'
import { loadNative } from '../native'
import { LSTM_VARIANTS, type Dtype, type LstmVariant, type RnnActivation } from '../types'
import {
  checkBoolean,
  checkFiniteNumber,
  checkObject,
  checkOneOf,
  checkOptionKeys,
  checkSeed,
  checkSize,
  describe,
  DTYPES,
} from '../validate'

/** A model input. Sequences and token ids carry per-example lengths. */
export type InputSpec =
  /** Float sequences `[n, time, features]`. */
  | { kind: 'sequence'; name: string; features: number }
  /** Token ids `[n, time]` (read by an embedding). */
  | { kind: 'tokens'; name: string }
  /** Float vectors `[n, features]` (e.g. precomputed image features). */
  | { kind: 'vector'; name: string; features: number }

/** What a recurrent node hands on. */
export type RecurrentOutput =
  /** Every step of the top layer: `[n, time, H']`. */
  | 'sequence'
  /** The top layer's output at each sequence's own last step: `[n, H']`. */
  | 'last'
  /** Every layer's (and direction's) final y and, for the LSTM, c, concatenated: `[n, layers·directions·2H]` (LSTM) or `·H` (GRU, simple RNN). */
  | 'states'

/** How a bidirectional layer joins its two directions: `[.., 2H]` (concat) or `[.., H]` (sum). */
export type Merge = 'concat' | 'sum'

export type DenseActivation = 'none' | 'tanh' | 'relu' | 'sigmoid'

interface RecurrentOptions {
  hiddenSize: number
  /** Stacked layers (PyTorch's `num_layers`). Default 1. */
  numLayers?: number
  /** Default false. */
  bidirectional?: boolean
  /** Default `'concat'`. */
  merge?: Merge
  /** Default `'sequence'`. */
  output?: RecurrentOutput
  /**
   * The node or `vector` input whose value starts this node (graphs only): a recurrent node of the
   * same type, `numLayers`, directions and `hiddenSize` whose `output` is `'states'` (its final
   * states become this node's initial states, layer by layer and direction by direction, as
   * PyTorch's `decoder(x, encoder(src)[1])`; the gradient flows back into it), or any vector
   * `[n, layers·directions·2H]` (LSTM: h then c per layer entry) / `[n, layers·directions·H]`
   * (simple RNN), e.g. a dense layer of image features. Default: zeros.
   */
  initialState?: string
}

export interface LstmLayerOptions extends RecurrentOptions {
  /** Default `'vanilla'`. */
  variant?: LstmVariant
  /** Peephole connections. Default true; always off for `'NP'`. */
  peepholes?: boolean
  /** Added to the forget gate's bias at initialisation. Default 0; 1 or more helps long memory. */
  forgetBias?: number
}

/** PyTorch's `nn.GRU`: no options beyond the stack's. */
export type GruLayerOptions = RecurrentOptions

export interface RnnLayerOptions extends RecurrentOptions {
  /** Default `'tanh'`. */
  activation?: RnnActivation
}

/** One operation of the graph, as the core reads it. */
export type OpSpec =
  /** Token ids `[n, time]` → `[n, time, dim]`. */
  | { type: 'embedding'; vocabSize: number; dim: number; frozen?: boolean }
  | ({ type: 'lstm' } & LstmLayerOptions)
  | ({ type: 'rnn' } & RnnLayerOptions)
  | ({ type: 'gru' } & GruLayerOptions)
  /** `[.., in]` → `[.., units]`, on vectors or on every step of a sequence. */
  | { type: 'dense'; units: number; activation?: DenseActivation }
  /** Inverted dropout while training, identity otherwise. */
  | { type: 'dropout'; rate: number }
  /** Joins the inputs' features (all vectors, or all sequences; `repeat` a vector to join it to a sequence). */
  | { type: 'concat' }
  /** Inputs: a vector `[n, w]`, then a sequence or token ids `[n, time]`: the vector at every step, `[n, time, w]`, with that input's lengths. */
  | { type: 'repeat' }
  /** Elementwise product of inputs of one shape. */
  | { type: 'multiply' }
  /** Scales every row to unit L2 norm. */
  | { type: 'l2Normalize' }

/** A node: an operation, its name, and the names of the inputs or earlier nodes it reads. */
export type NodeSpec = OpSpec & { name: string; inputs: string[] }

export type Loss =
  /** Mean squared error over valid elements; targets shaped like the output. */
  | 'mse'
  /** Softmax cross-entropy from logits; targets are class indices (padded steps masked out). */
  | 'crossEntropy'
  /** Sigmoid cross-entropy from logits; targets in [0, 1] shaped like the output. */
  | 'binaryCrossEntropy'

export const LOSSES: readonly Loss[] = ['mse', 'crossEntropy', 'binaryCrossEntropy']

/** A model graph: inputs, nodes in topological order, the output node and its loss. */
export interface GraphSpec {
  inputs: InputSpec[]
  nodes: NodeSpec[]
  /** The node whose value the loss reads and `predict` returns; must be the last node. */
  output: string
  loss: Loss
  /** Default `'float32'`. */
  dtype?: Dtype
  /** Seed of every initial weight and dropout mask. Default 0. */
  seed?: number
}

/** The shape of a value flowing through the graph, as the core describes it. */
export interface ValueShape {
  /** `'sequence'`: `[n, time, width]`; `'tokens'`: ids `[n, time]` (width 0); `'vector'`: `[n, width]`. */
  kind: 'sequence' | 'tokens' | 'vector'
  width: number
  /** The model input whose time axis and lengths a sequence (or tokens) value has. */
  time?: string
}

/** A checked graph, with the shape of every value. */
export interface DescribedGraph {
  spec: Required<GraphSpec>
  /** Every model input and node output by name. */
  values: ReadonlyMap<string, ValueShape>
  output: ValueShape
  /** Vocabulary sizes of the embeddings reading each token input (ids must stay below the smallest). */
  vocabularies: ReadonlyMap<string, number>
}

const RECURRENT_OUTPUTS: readonly RecurrentOutput[] = ['sequence', 'last', 'states']
const MERGES: readonly Merge[] = ['concat', 'sum']
const DENSE_ACTIVATIONS: readonly DenseActivation[] = ['none', 'tanh', 'relu', 'sigmoid']
const RNN_ACTIVATIONS: readonly RnnActivation[] = ['tanh', 'relu']
const RECURRENT_KEYS = ['hiddenSize', 'numLayers', 'bidirectional', 'merge', 'output', 'initialState'] as const

function checkName(label: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new OdysseyTypeError('ODYSSEY_TYPE', `${label}: expected a non-empty string, got ${describe(value)}`)
  }
  return value
}

function checkArray(label: string, value: unknown): unknown[] {
  if (!Array.isArray(value))
    throw new OdysseyTypeError('ODYSSEY_TYPE', `${label}: expected an array, got ${describe(value)}`)
  return value
}

function checkInputSpec(value: unknown, index: number): InputSpec {
  const label = `inputs[${index}]`
  const fields = checkObject(label, value)
  const kind = checkOneOf(`${label}.kind`, fields.kind, ['sequence', 'tokens', 'vector'] as const)
  const name = checkName(`${label}.name`, fields.name)
  if (kind === 'tokens') {
    checkOptionKeys(fields, ['kind', 'name'], label)
    return { kind, name }
  }
  checkOptionKeys(fields, ['kind', 'name', 'features'], label)
  return { kind, name, features: checkSize(`${label}.features`, fields.features) }
}

/** Checks a recurrent node's options and fills in their defaults (`initialState` has none). */
function checkRecurrent(label: string, fields: Record<string, unknown>): RecurrentOptions {
  const options: RecurrentOptions = {
    hiddenSize: checkSize(`${label}.hiddenSize`, fields.hiddenSize),
    numLayers: checkSize(`${label}.numLayers`, fields.numLayers ?? 1),
    bidirectional: checkBoolean(`${label}.bidirectional`, fields.bidirectional ?? false),
    merge: checkOneOf(`${label}.merge`, fields.merge ?? 'concat', MERGES),
    output: checkOneOf(`${label}.output`, fields.output ?? 'sequence', RECURRENT_OUTPUTS),
  }
  if (fields.initialState !== undefined) options.initialState = checkName(`${label}.initialState`, fields.initialState)
  return options
}

/** Checks one operation (without name and inputs) and fills in its defaults. */
export function checkOp(value: unknown, label: string): OpSpec {
  const fields = checkObject(label, value)
  const type = checkOneOf(`${label}.type`, fields.type, [
    'embedding',
    'lstm',
    'rnn',
    'gru',
    'dense',
    'dropout',
    'concat',
    'repeat',
    'multiply',
    'l2Normalize',
  ] as const)
  const keys = (extra: readonly string[]) => checkOptionKeys(fields, ['type', 'name', 'inputs', ...extra], label)
  switch (type) {
    case 'embedding':
      keys(['vocabSize', 'dim', 'frozen'])
      return {
        type,
        vocabSize: checkSize(`${label}.vocabSize`, fields.vocabSize),
        dim: checkSize(`${label}.dim`, fields.dim),
        frozen: checkBoolean(`${label}.frozen`, fields.frozen ?? false),
      }
    case 'lstm': {
      keys([...RECURRENT_KEYS, 'variant', 'peepholes', 'forgetBias'])
      const variant = checkOneOf(`${label}.variant`, fields.variant ?? 'vanilla', LSTM_VARIANTS)
      return {
        type,
        ...checkRecurrent(label, fields),
        variant,
        // SPEC §1: NP is the variant without peepholes.
        peepholes: variant !== 'NP' && checkBoolean(`${label}.peepholes`, fields.peepholes ?? true),
        forgetBias: checkFiniteNumber(`${label}.forgetBias`, fields.forgetBias ?? 0),
      }
    }
    case 'rnn':
      keys([...RECURRENT_KEYS, 'activation'])
      return {
        type,
        ...checkRecurrent(label, fields),
        activation: checkOneOf(`${label}.activation`, fields.activation ?? 'tanh', RNN_ACTIVATIONS),
      }
    case 'gru':
      keys(RECURRENT_KEYS)
      return { type, ...checkRecurrent(label, fields) }
    case 'dense':
      keys(['units', 'activation'])
      return {
        type,
        units: checkSize(`${label}.units`, fields.units),
        activation: checkOneOf(`${label}.activation`, fields.activation ?? 'none', DENSE_ACTIVATIONS),
      }
    case 'dropout': {
      keys(['rate'])
      const rate = checkFiniteNumber(`${label}.rate`, fields.rate)
      if (!(rate >= 0 && rate < 1))
        throw new OdysseyRangeError('ODYSSEY_INVALID', `${label}.rate: expected a number in [0, 1), got ${rate}`)
      return { type, rate }
    }
    default:
      keys([])
      return { type }
  }
}

/**
 * Checks a graph and fills in every default: the option types here, the graph itself (names,
 * wiring, sizes, shapes) in the core, which describes every value.
 * @throws OdysseyTypeError / OdysseyRangeError naming the offending input or node.
 */
export function describeGraph(graph: GraphSpec): DescribedGraph {
  const fields = checkObject('spec', graph)
  const spec: Required<GraphSpec> = {
    inputs: checkArray('spec.inputs', fields.inputs).map(checkInputSpec),
    nodes: checkArray('spec.nodes', fields.nodes).map(checkNode),
    output: checkName('spec.output', fields.output),
    loss: checkOneOf('spec.loss', fields.loss, LOSSES),
    dtype: checkOneOf('spec.dtype', fields.dtype ?? 'float32', DTYPES),
    seed: checkSeed('spec.seed', fields.seed ?? 0),
  }
  let described: GraphDescription
  try {
    described = loadNative().NativeModel.describeGraph(JSON.stringify(spec))
  } catch (error) {
    throw fromNativeError(error)
  }
  const values = new Map(
    described.values.map(({ name, kind, width, time }) => [
      name,
      { kind, width, ...(time === undefined || time === null ? {} : { time }) } as ValueShape,
    ]),
  )
  return {
    spec,
    values,
    output: values.get(spec.output)!,
    vocabularies: new Map(described.vocabularies.map(({ input, size }) => [input, size])),
  }
}

function checkNode(raw: unknown, index: number): NodeSpec {
  const label = `nodes[${index}]`
  const fields = checkObject(label, raw)
  const name = checkName(`${label}.name`, fields.name)
  const inputs = checkArray(`${label}.inputs`, fields.inputs).map((r, k) => checkName(`${label}.inputs[${k}]`, r))
  return { ...checkOp(raw, `nodes '${name}'`), name, inputs } as NodeSpec
}
