/**
 * The non-recurrent nodes. Feed-forward layers act on the last axis, so one emitter serves
 * sequences `[batch, time, features]` and vectors `[batch, features]` alike; sequences keep
 * their lengths and time axis. The graph was checked (`describeGraph`) before: inputs have
 * the kinds and widths each node needs.
 */
import { OdysseyRangeError } from '../errors'
import type { DenseActivation, NodeSpec } from '../model/spec'
import type { EmitContext, GraphValue } from './context'
import { readWeight } from './weights'

type NodeOf<T extends NodeSpec['type']> = Extract<NodeSpec, { type: T }>

const ACTIVATION_OPS: Readonly<Record<DenseActivation, string | null>> = {
  none: null,
  tanh: 'Tanh',
  relu: 'Relu',
  sigmoid: 'Sigmoid',
}

/** `[rows, cols]` → `[cols, rows]`. */
function transpose(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length)
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c]
  return out
}

/** Dense: act(x Wᵀ + b) as MatMul (with Wᵀ stored `[in, units]`) and Add, on vectors or every step. */
export function emitDense(ctx: EmitContext, spec: NodeOf<'dense'>, input: GraphValue): GraphValue {
  const { graph } = ctx
  const weight = readWeight(ctx.weights, spec.name, 'weight', [spec.units, input.width])
  const bias = readWeight(ctx.weights, spec.name, 'bias', [spec.units])
  const weightT = graph.float32(
    `${spec.name}/weight_t`,
    [input.width, spec.units],
    transpose(weight, spec.units, input.width),
  )
  const product = graph.op1('MatMul', [input.name, weightT], `${spec.name}/matmul`)
  const affine = graph.op1(
    'Add',
    [product, graph.float32(`${spec.name}/bias`, [spec.units], bias)],
    `${spec.name}/affine`,
  )
  const op = ACTIVATION_OPS[spec.activation ?? 'none']
  return { ...input, width: spec.units, name: op === null ? affine : graph.op1(op, [affine], `${spec.name}/${op}`) }
}

/** Embedding: Gather of rows of `weight` `[vocab, dim]` by token ids `[batch, time]` → `[batch, time, dim]`. */
export function emitEmbedding(ctx: EmitContext, spec: NodeOf<'embedding'>, input: GraphValue): GraphValue {
  const weight = readWeight(ctx.weights, spec.name, 'weight', [spec.vocabSize, spec.dim])
  const table = ctx.graph.float32(`${spec.name}/table`, [spec.vocabSize, spec.dim], weight)
  return {
    ...input,
    kind: 'sequence',
    width: spec.dim,
    name: ctx.graph.op1('Gather', [table, input.name], `${spec.name}/gather`, { axis: 0 }),
  }
}

/** Concatenation along the feature axis; the result takes the first input's lengths. */
export function emitConcat(ctx: EmitContext, spec: NodeOf<'concat'>, inputs: readonly GraphValue[]): GraphValue {
  const width = inputs.reduce((sum, v) => sum + v.width, 0)
  const name = ctx.graph.op1(
    'Concat',
    inputs.map((v) => v.name),
    `${spec.name}/concat`,
    { axis: -1 },
  )
  return { ...inputs[0], width, name }
}

/** A vector `[batch, w]` at every step of the second input's time axis: Expand to `[batch, time, w]`. */
export function emitRepeat(ctx: EmitContext, spec: NodeOf<'repeat'>, inputs: readonly GraphValue[]): GraphValue {
  const { graph } = ctx
  const [vector, sequence] = inputs
  const batchTime = graph.op1('Shape', [sequence.name], `${spec.name}/batch_time`, { start: 0, end: 2 })
  const shape = graph.op1('Concat', [batchTime, graph.int64([vector.width])], `${spec.name}/shape`, { axis: 0 })
  const column = graph.op1('Unsqueeze', [vector.name, graph.int64([1])], `${spec.name}/column`)
  return {
    ...sequence,
    kind: 'sequence',
    width: vector.width,
    name: graph.op1('Expand', [column, shape], `${spec.name}/repeated`),
  }
}

/** Elementwise product of inputs of one shape. */
export function emitMultiply(ctx: EmitContext, spec: NodeOf<'multiply'>, inputs: readonly GraphValue[]): GraphValue {
  const product = inputs
    .slice(1)
    .reduce((acc, v) => ctx.graph.op1('Mul', [acc, v.name], `${spec.name}/product`), inputs[0].name)
  return { ...inputs[0], name: product }
}

/** Each row scaled to unit L2 norm: x / √(Σx² + 1e-12), the core's epsilon. Vectors only, as in the core. */
export function emitL2Normalize(ctx: EmitContext, spec: NodeOf<'l2Normalize'>, input: GraphValue): GraphValue {
  if (input.kind !== 'vector') {
    throw new OdysseyRangeError(
      'ODYSSEY_INVALID',
      `exportOnnx: node "${spec.name}": l2Normalize needs vectors [batch, features], got a sequence`,
    )
  }
  const { graph } = ctx
  const squares = graph.op1('Mul', [input.name, input.name], `${spec.name}/squares`)
  const sum = graph.op1('ReduceSum', [squares, graph.int64([-1])], `${spec.name}/sum`, { keepdims: 1 })
  const padded = graph.op1(
    'Add',
    [sum, graph.float32(`${spec.name}/epsilon`, [], Float32Array.of(1e-12))],
    `${spec.name}/sum_eps`,
  )
  const norm = graph.op1('Sqrt', [padded], `${spec.name}/norm`)
  return { ...input, name: graph.op1('Div', [input.name, norm], `${spec.name}/normalized`) }
}
