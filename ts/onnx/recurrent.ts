/**
 * Recurrent nodes (stacked, bidirectional LSTM / GRU / simple RNN) as ONNX `LSTM` / `GRU` /
 * `RNN` operators, one per layer. ONNX's recurrent operators are time-major
 * (`X` `[time, batch, features]`, `Y` `[time, directions, batch, hidden]`, `Y_h`
 * `[directions, batch, hidden]`), so a stack transposes its input once, stays time-major
 * between layers and transposes back only for a `sequence` output. With `sequence_lens`
 * ONNX runs each sequence over its own length and reverses it within that length for the
 * reverse direction, as the core does, so `Y_h` is each direction's final state: the
 * `last` output of both directions.
 */
import type { NodeSpec, RecurrentOutput } from '../model/spec'
import type { LstmVariant } from '../types'
import type { EmitContext, GraphValue } from './context'
import { OnnxUnsupportedError } from './errors'
import { ElementType, Floats, type Attributes, type GraphBuilder } from './graph'
import { concatFloat32, pytorchToOnnxGates, pytorchToOnnxGruGates, readWeight } from './weights'

/** Recurrent nodes with every default filled in (as `describeGraph` returns them). */
type LstmNodeSpec = Required<Extract<NodeSpec, { type: 'lstm' }>>
type RnnNodeSpec = Required<Extract<NodeSpec, { type: 'rnn' }>>
type GruNodeSpec = Required<Extract<NodeSpec, { type: 'gru' }>>
type RecurrentNodeSpec = LstmNodeSpec | RnnNodeSpec | GruNodeSpec

/** The ONNX weight inputs of one layer, every direction stacked: `W`, `R`, `B` and, for peepholes, `P` (else `''`). */
interface LayerWeights {
  w: string
  r: string
  b: string
  p: string
}

/** Reads a node's weights for the direction entries of one layer (`_l0`, `_l0_reverse`). */
interface LayerReader {
  /** `"{node}.{key}"`, checked to be `shape`. */
  read(key: string, shape: number[]): Float32Array
  /** An initializer `[directions, ...dims]`: what `parts` gives for each entry's suffix, in entry order. */
  stack(base: string, dims: number[], parts: (suffix: string) => Float32Array[]): string
}

function layerReader(ctx: EmitContext, node: string, suffixes: readonly string[]): LayerReader {
  return {
    read: (key, shape) => readWeight(ctx.weights, node, key, shape),
    stack: (base, dims, parts) =>
      ctx.graph.float32(
        `${node}/${base}${suffixes[0]}`,
        [suffixes.length, ...dims],
        concatFloat32(suffixes.flatMap(parts)),
      ),
  }
}

/** What differs between the LSTM, the GRU and the simple RNN. */
interface CellFormat {
  opType: 'LSTM' | 'GRU' | 'RNN'
  /** Whether there is a cell state (`initial_c`, `Y_c`). */
  hasCell: boolean
  /** Attributes besides `hidden_size` and `direction`. */
  attributes: Attributes
  /** A layer's weights reading `inputWidth` features, converted to ONNX's layout. */
  layerWeights(reader: LayerReader, inputWidth: number): LayerWeights
}

/**
 * The attributes of ONNX's LSTM that make it compute `variant` (SPEC §1): NIAF and NOAF
 * replace the block-input (g) or output (h) squashing by the identity, `Affine` with α = 1,
 * β = 0; CIFG is the operator's `input_forget` coupling f = 1 − i. The operator always has
 * all three gates and no gate-to-gate recurrence, so NIG, NFG, NOG and FGR are refused.
 * (`Affine` is one of ONNX's optional RNN activations: onnxruntime has it, not every runtime does.)
 */
function lstmVariantAttributes(node: string, variant: LstmVariant, directions: number): Attributes {
  const perDirection = (squashes: readonly string[]) => ({
    activations: Array.from({ length: directions }, () => squashes).flat(),
    // Consumed in order by the activations that take them: here only the one Affine.
    activation_alpha: new Floats(Array(directions).fill(1)),
    activation_beta: new Floats(Array(directions).fill(0)),
  })
  switch (variant) {
    case 'vanilla':
    case 'NP':
      return {}
    case 'NIAF':
      return perDirection(['Sigmoid', 'Affine', 'Tanh'])
    case 'NOAF':
      return perDirection(['Sigmoid', 'Tanh', 'Affine'])
    case 'CIFG':
      return { input_forget: 1 }
    case 'NIG':
    case 'NFG':
    case 'NOG': {
      const gate = { NIG: 'input', NFG: 'forget', NOG: 'output' }[variant]
      throw new OnnxUnsupportedError(
        node,
        `LSTM variant ${variant}`,
        `ONNX's LSTM always computes the ${gate} gate; it has no way to fix it to 1`,
      )
    }
    case 'FGR':
      throw new OnnxUnsupportedError(node, 'LSTM variant FGR', `ONNX's LSTM has no gate-to-gate recurrence (weight_gg)`)
  }
}

function lstmFormat(spec: LstmNodeSpec, directions: number): CellFormat {
  const h = spec.hiddenSize
  return {
    opType: 'LSTM',
    hasCell: true,
    attributes: lstmVariantAttributes(spec.name, spec.variant, directions),
    layerWeights({ read, stack }, inputWidth) {
      return {
        w: stack('W', [4 * h, inputWidth], (s) => [pytorchToOnnxGates(read(`weight_ih${s}`, [4 * h, inputWidth]))]),
        r: stack('R', [4 * h, h], (s) => [pytorchToOnnxGates(read(`weight_hh${s}`, [4 * h, h]))]),
        // ONNX's B is [Wb, Rb]: PyTorch's bias_ih then bias_hh, each in ONNX's gate order.
        b: stack('B', [8 * h], (s) => [
          pytorchToOnnxGates(read(`bias_ih${s}`, [4 * h])),
          pytorchToOnnxGates(read(`bias_hh${s}`, [4 * h])),
        ]),
        // ONNX's peephole order is i, o, f.
        p: spec.peepholes ? stack('P', [3 * h], (s) => ['i', 'o', 'f'].map((g) => read(`peephole_${g}${s}`, [h]))) : '',
      }
    },
  }
}

function rnnFormat(spec: RnnNodeSpec, directions: number): CellFormat {
  const h = spec.hiddenSize
  return {
    opType: 'RNN',
    hasCell: false,
    attributes: { activations: Array(directions).fill(spec.activation === 'tanh' ? 'Tanh' : 'Relu') },
    layerWeights({ read, stack }, inputWidth) {
      return {
        w: stack('W', [h, inputWidth], (s) => [read(`weight_ih${s}`, [h, inputWidth])]),
        r: stack('R', [h, h], (s) => [read(`weight_hh${s}`, [h, h])]),
        b: stack('B', [2 * h], (s) => [read(`bias_ih${s}`, [h]), read(`bias_hh${s}`, [h])]),
        p: '',
      }
    },
  }
}

/**
 * PyTorch's GRU is ONNX's with `linear_before_reset = 1`: b_hn (Rbh) inside the reset product,
 * n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)). Gate blocks go from r, z, n to ONNX's z, r, h.
 */
function gruFormat(spec: GruNodeSpec): CellFormat {
  const h = spec.hiddenSize
  return {
    opType: 'GRU',
    hasCell: false,
    attributes: { linear_before_reset: 1 },
    layerWeights({ read, stack }, inputWidth) {
      return {
        w: stack('W', [3 * h, inputWidth], (s) => [pytorchToOnnxGruGates(read(`weight_ih${s}`, [3 * h, inputWidth]))]),
        r: stack('R', [3 * h, h], (s) => [pytorchToOnnxGruGates(read(`weight_hh${s}`, [3 * h, h]))]),
        b: stack('B', [6 * h], (s) => [
          pytorchToOnnxGruGates(read(`bias_ih${s}`, [3 * h])),
          pytorchToOnnxGruGates(read(`bias_hh${s}`, [3 * h])),
        ]),
        p: '',
      }
    },
  }
}

/** The ONNX operator of a recurrent node. */
function cellFormat(spec: RecurrentNodeSpec, directions: number): CellFormat {
  switch (spec.type) {
    case 'lstm':
      return lstmFormat(spec, directions)
    case 'rnn':
      return rnnFormat(spec, directions)
    case 'gru':
      return gruFormat(spec)
  }
}

/** `t` `[directions, batch, width]` → `[batch, directions · width]` (forward first). */
function flattenDirections(graph: GraphBuilder, t: string, base: string): string {
  const batchMajor = graph.op1('Transpose', [t], `${base}/batch_major`, { perm: [1, 0, 2] })
  return graph.op1('Reshape', [batchMajor, graph.int64([0, -1])], base)
}

/** Y `[time, directions, batch, H]` → `[time, batch, H']` by the node's merge. */
function mergeSequence(
  graph: GraphBuilder,
  y: string,
  directions: number,
  merge: 'concat' | 'sum',
  base: string,
): string {
  if (directions === 1) return graph.op1('Squeeze', [y, graph.int64([1])], base)
  if (merge === 'sum') return graph.op1('ReduceSum', [y, graph.int64([1])], base, { keepdims: 0 })
  const directionsLast = graph.op1('Transpose', [y], `${base}/directions_last`, { perm: [0, 2, 1, 3] })
  return graph.op1('Reshape', [directionsLast, graph.int64([0, 0, -1])], base)
}

/** Y_h `[directions, batch, H]` → `[batch, H']` by the node's merge. */
function mergeFinal(
  graph: GraphBuilder,
  yH: string,
  directions: number,
  merge: 'concat' | 'sum',
  base: string,
): string {
  if (directions === 1) return graph.op1('Squeeze', [yH, graph.int64([0])], base)
  if (merge === 'sum') return graph.op1('ReduceSum', [yH, graph.int64([0])], base, { keepdims: 0 })
  return flattenDirections(graph, yH, base)
}

/** Layer k's rows `[k·D, (k+1)·D)` of a stacked state input `[L·D, batch, H]`. */
function layerState(
  graph: GraphBuilder,
  state: string,
  k: number,
  directions: number,
  layers: number,
  base: string,
): string {
  if (state === '' || layers === 1) return state
  return graph.op1(
    'Slice',
    [state, graph.int64([k * directions]), graph.int64([(k + 1) * directions]), graph.int64([0])],
    base,
  )
}

/** A recurrent node with every default filled in. */
interface StackPlan {
  name: string
  hidden: number
  layers: number
  directions: 1 | 2
  merge: 'concat' | 'sum'
  output: RecurrentOutput
  format: CellFormat
  /** Whether the final states are needed (the `states` output or state outputs). */
  needsStates: boolean
}

function planStack(spec: RecurrentNodeSpec, state: boolean): StackPlan {
  const directions = spec.bidirectional ? 2 : 1
  return {
    name: spec.name,
    hidden: spec.hiddenSize,
    layers: spec.numLayers,
    directions,
    merge: spec.merge,
    output: spec.output,
    format: cellFormat(spec, directions),
    needsStates: spec.output === 'states' || state,
  }
}

/** ONNX names of the stack's initial-state inputs `[L·D, batch, H]`, `''` for zeros. */
interface InitialStates {
  h0: string
  c0: string
}

/** ONNX names of one layer's outputs, `''` for those not computed. */
interface LayerOutputs {
  /** `[time, directions, batch, H]` */
  y: string
  /** `[directions, batch, H]` */
  yH: string
  /** `[directions, batch, H]` (LSTM) */
  yC: string
}

/** Layer k as one ONNX LSTM / GRU / RNN operator over `x` `[time, batch, width]`. */
function emitLayer(
  ctx: EmitContext,
  plan: StackPlan,
  k: number,
  x: string,
  width: number,
  lengths: string,
  initial: InitialStates,
): LayerOutputs {
  const { graph } = ctx
  const { format, directions, layers } = plan
  const base = `${plan.name}/l${k}`
  const suffixes = directions === 2 ? [`_l${k}`, `_l${k}_reverse`] : [`_l${k}`]
  const { w, r, b, p } = format.layerWeights(layerReader(ctx, plan.name, suffixes), width)
  const h0 = layerState(graph, initial.h0, k, directions, layers, `${base}/h0`)
  const inputs = [x, w, r, b, lengths, h0]
  if (format.hasCell) inputs.push(layerState(graph, initial.c0, k, directions, layers, `${base}/c0`), p)
  const top = k === layers - 1
  const wanted = (needed: boolean, part: string) => (needed ? { base: `${base}/${part}` } : '')
  const outputs = [
    wanted(!top || plan.output === 'sequence', 'Y'),
    wanted(plan.needsStates || (top && plan.output === 'last'), 'Y_h'),
  ]
  if (format.hasCell) outputs.push(wanted(plan.needsStates, 'Y_c'))
  const attributes = {
    hidden_size: plan.hidden,
    direction: directions === 2 ? 'bidirectional' : 'forward',
    ...format.attributes,
  }
  const [y, yH, yC = ''] = graph.op(format.opType, inputs, outputs, attributes)
  return { y, yH, yC }
}

/**
 * An `initialState` value `[batch, L·D·(H + H)]` (or `[batch, L·D·H]`), h then c per layer entry,
 * as the stacked initial states `[L·D, batch, H]` that each layer slices its rows from.
 */
function statesFromVector(graph: GraphBuilder, plan: StackPlan, vector: string): InitialStates {
  const { name, hidden, format } = plan
  const perEntry = format.hasCell ? 2 * hidden : hidden
  const entries = graph.op1(
    'Reshape',
    [vector, graph.int64([0, plan.layers * plan.directions, perEntry])],
    `${name}/initial/entries`,
  )
  const entryMajor = graph.op1('Transpose', [entries], `${name}/initial/entry_major`, { perm: [1, 0, 2] })
  if (!format.hasCell) return { h0: entryMajor, c0: '' }
  const part = (start: number, base: string) =>
    graph.op1(
      'Slice',
      [entryMajor, graph.int64([start]), graph.int64([start + hidden]), graph.int64([2])],
      `${name}/initial/${base}`,
    )
  return { h0: part(0, 'h0'), c0: part(hidden, 'c0') }
}

/**
 * A recurrent node: `input` `[batch, time, X]` → `[batch, time, H']` (`sequence`),
 * `[batch, H']` (`last`) or `[batch, L·D·(H + H)]` / `[batch, L·D·H]` (`states`). With
 * `initialState` the node starts from that value (and takes no `{node}_h0` input).
 */
export function emitRecurrent(
  ctx: EmitContext,
  spec: Extract<NodeSpec, { type: 'lstm' | 'rnn' | 'gru' }>,
  input: GraphValue,
  initialState?: GraphValue,
): GraphValue {
  const { graph, options } = ctx
  // describeGraph filled in every default.
  const plan = planStack(spec as RecurrentNodeSpec, options.state)
  const { name, hidden, directions, merge, format } = plan
  const stateDims = [plan.layers * directions, 'batch', hidden]
  const fromInputs = options.state && initialState === undefined
  const initial =
    initialState === undefined
      ? {
          h0: fromInputs ? graph.addInput(`${name}_h0`, ElementType.float, stateDims) : '',
          c0: fromInputs && format.hasCell ? graph.addInput(`${name}_c0`, ElementType.float, stateDims) : '',
        }
      : statesFromVector(graph, plan, initialState.name)
  let x = graph.op1('Transpose', [input.name], `${name}/time_major`, { perm: [1, 0, 2] })
  let width = input.width
  const outputs: LayerOutputs[] = []
  for (let k = 0; k < plan.layers; k++) {
    const layer = emitLayer(ctx, plan, k, x, width, input.lengths, initial)
    outputs.push(layer)
    if (layer.y !== '') x = mergeSequence(graph, layer.y, directions, merge, `${name}/l${k}/merged`)
    width = merge === 'concat' ? hidden * directions : hidden
  }
  if (options.state) emitFinalStates(graph, name, outputs, format.hasCell, stateDims)
  const value = { lengths: input.lengths, time: input.time }
  switch (plan.output) {
    case 'sequence':
      return {
        ...value,
        kind: 'sequence',
        width,
        name: graph.op1('Transpose', [x], `${name}/batch_major`, { perm: [1, 0, 2] }),
      }
    case 'last':
      return {
        ...value,
        kind: 'vector',
        width,
        name: mergeFinal(graph, outputs[plan.layers - 1].yH, directions, merge, `${name}/last`),
      }
    case 'states':
      return {
        ...value,
        kind: 'vector',
        width: outputs.length * directions * hidden * (format.hasCell ? 2 : 1),
        name: concatStates(graph, name, outputs, format.hasCell),
      }
  }
}

/** The `states` output: per layer entry its final y then c, layer-major: `[batch, L·D·(H + H)]`. */
function concatStates(graph: GraphBuilder, name: string, outputs: readonly LayerOutputs[], hasCell: boolean): string {
  const perLayer = outputs.map(({ yH, yC }, k) => {
    const states = hasCell ? graph.op1('Concat', [yH, yC], `${name}/l${k}/states`, { axis: 2 }) : yH
    return flattenDirections(graph, states, `${name}/l${k}/states_flat`)
  })
  return graph.op1('Concat', perLayer, `${name}/states`, { axis: 1 })
}

/** Graph outputs `{node}_hN` (and `_cN`): every layer's final states stacked `[L·D, batch, H]`. */
function emitFinalStates(
  graph: GraphBuilder,
  name: string,
  outputs: readonly LayerOutputs[],
  hasCell: boolean,
  dims: readonly (number | string)[],
): void {
  const hN = graph.addOutput(`${name}_hN`, ElementType.float, dims)
  graph.op(
    'Concat',
    outputs.map((o) => o.yH),
    [hN],
    { axis: 0 },
  )
  if (!hasCell) return
  const cN = graph.addOutput(`${name}_cN`, ElementType.float, dims)
  graph.op(
    'Concat',
    outputs.map((o) => o.yC),
    [cN],
    { axis: 0 },
  )
}
