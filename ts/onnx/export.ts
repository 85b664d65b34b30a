/**
 * ONNX export of a trained model: its graph spec (`model.graph`, the core's JSON model spec)
 * and its weights (`"{node}.{pytorch name}"` → tensor) become one ONNX graph (IR 8, opset 17)
 * that computes what `predict` computes, in float32. See `OnnxExportOptions` for the graph's inputs and
 * outputs and `recurrent.ts` for what the LSTM variants become.
 */
import { create, toBinary } from '@bufbuild/protobuf'
import { OdysseyRangeError } from '../errors'
import { checkBoolean, checkOptionKeys } from '../validate'
import { describeGraph, type GraphSpec, type InputSpec, type Loss, type NodeSpec } from '../model/spec'
import { writeFileAtomic } from '../util/fs'
import type { EmitContext, GraphValue, OnnxExportOptions } from './context'
import { emitConcat, emitDense, emitEmbedding, emitL2Normalize, emitMultiply, emitRepeat } from './feed-forward'
import { ElementType, GraphBuilder, type Dim } from './graph'
import { emitRecurrent } from './recurrent'
import { ModelProtoSchema } from './schema/onnx_pb'
import type { WeightRecord } from './weights'

/** IR 8 and opset 17 (ONNX 1.12): recent enough for every operator used here as it is today, old enough for most runtimes. */
const IR_VERSION = 8n
const OPSET = 17n

const OPTION_KEYS: readonly (keyof OnnxExportOptions)[] = ['variableLengths', 'state', 'probabilities']

function resolveOptions(options: OnnxExportOptions): Required<OnnxExportOptions> {
  checkOptionKeys(options, OPTION_KEYS, 'exportOnnx')
  return {
    variableLengths: checkBoolean('variableLengths', options.variableLengths ?? true),
    state: checkBoolean('state', options.state ?? false),
    probabilities: checkBoolean('probabilities', options.probabilities ?? false),
  }
}

/** Graph inputs of one model input: the tensor and, for sequences and tokens, its lengths. */
function declareInput(ctx: EmitContext, input: InputSpec): GraphValue {
  const { graph } = ctx
  if (input.kind === 'vector') {
    const name = graph.addInput(input.name, ElementType.float, ['batch', input.features])
    return { kind: 'vector', width: input.features, lengths: '', time: '', name }
  }
  const time = `${input.name}_time`
  const name =
    input.kind === 'sequence'
      ? graph.addInput(input.name, ElementType.float, ['batch', time, input.features])
      : graph.addInput(input.name, ElementType.int64, ['batch', time])
  const lengths = ctx.options.variableLengths
    ? graph.addInput(`${input.name}_lengths`, ElementType.int32, ['batch'])
    : ''
  return { kind: input.kind, width: input.kind === 'sequence' ? input.features : 0, lengths, time, name }
}

function emitNode(ctx: EmitContext, node: NodeSpec, inputs: readonly GraphValue[]): GraphValue {
  const [first] = inputs
  switch (node.type) {
    case 'lstm':
    case 'rnn':
    case 'gru':
      // The core lists the initialState value after the sequence (describeGraph checked its shape).
      return emitRecurrent(ctx, node, first, inputs[1])
    case 'dense':
      return emitDense(ctx, node, first)
    case 'embedding':
      return emitEmbedding(ctx, node, first)
    case 'dropout':
      // Inference: dropout is the identity.
      return first
    case 'concat':
      return emitConcat(ctx, node, inputs)
    case 'repeat':
      return emitRepeat(ctx, node, inputs)
    case 'multiply':
      return emitMultiply(ctx, node, inputs)
    case 'l2Normalize':
      return emitL2Normalize(ctx, node, first)
  }
}

/** The operator that turns the loss's logits into probabilities. */
function probabilityOp(loss: Loss): { op: string; attributes: Record<string, number> } {
  switch (loss) {
    case 'crossEntropy':
      return { op: 'Softmax', attributes: { axis: -1 } }
    case 'binaryCrossEntropy':
      return { op: 'Sigmoid', attributes: {} }
    case 'mse':
      throw new OdysseyRangeError(
        'ODYSSEY_INVALID',
        `exportOnnx: probabilities: the loss "mse" has none (crossEntropy and binaryCrossEntropy do)`,
      )
  }
}

/** The value of the output node; every node's value is emitted in spec order. */
function emitGraph(ctx: EmitContext, spec: GraphSpec): GraphValue {
  const values = new Map<string, GraphValue>()
  for (const input of spec.inputs) values.set(input.name, declareInput(ctx, input))
  // describeGraph checked that every name read is an input or an earlier node.
  for (const node of spec.nodes) {
    const reads =
      'initialState' in node && node.initialState !== undefined ? [...node.inputs, node.initialState] : node.inputs
    const inputs = reads.map((name) => values.get(name)!)
    values.set(node.name, emitNode(ctx, node, inputs))
  }
  return values.get(spec.output)!
}

/**
 * The ONNX model of `spec` with `weights`, serialized. Graph inputs: each model input by its
 * name (`sequence` float `[batch, time, features]`, `tokens` int64 `[batch, time]`, `vector`
 * float `[batch, features]`) and, by default, `{input}_lengths` int32 `[batch]` for sequences
 * and tokens. Graph output: `spec.output`, shaped like `predict`'s result.
 *
 * @throws OnnxUnsupportedError (`ODYSSEY_UNSUPPORTED`) for LSTM variants ONNX cannot express
 *   (NIG, NFG, NOG, FGR); OdysseyRangeError `ODYSSEY_KEY` / `ODYSSEY_SHAPE` for a missing or
 *   misshapen weight; the spec's own checks (`Model.fromSpec`'s) for a malformed spec;
 *   OdysseyTypeError for unknown options.
 */
export function toOnnx(spec: GraphSpec, weights: WeightRecord, options: OnnxExportOptions = {}): Uint8Array {
  const graph = new GraphBuilder()
  const ctx: EmitContext = { graph, weights, options: resolveOptions(options) }
  const checked = describeGraph(spec).spec
  const output = emitGraph(ctx, checked)
  const dims: Dim[] = output.kind === 'vector' ? ['batch', output.width] : ['batch', output.time, output.width]
  graph.addOutput(checked.output, ElementType.float, dims, { first: true })
  const { op, attributes } = ctx.options.probabilities
    ? probabilityOp(checked.loss)
    : { op: 'Identity', attributes: {} }
  graph.op(op, [output.name], [checked.output], attributes)
  const model = create(ModelProtoSchema, {
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: OPSET }],
    producerName: 'odyssey-rnn',
    graph: graph.build('odyssey-rnn'),
  })
  return toBinary(ModelProtoSchema, model)
}

/**
 * Writes the ONNX model of `spec` with `weights` (see `toOnnx`) to `path` atomically:
 * a temporary file beside it, fsynced, then renamed over it.
 *
 * ```ts
 * await exportOnnx(model.graph, model.getWeights(), 'classifier.onnx', { probabilities: true })
 * // or: await model.exportOnnx('classifier.onnx', { probabilities: true })
 * // onnxruntime: session.run({ x, x_lengths }) → { dense: [batch, classes] }
 * ```
 *
 * @throws as `toOnnx`, and OdysseyError `ODYSSEY_IO` when the file cannot be written.
 */
export async function exportOnnx(
  spec: GraphSpec,
  weights: WeightRecord,
  path: string,
  options: OnnxExportOptions = {},
): Promise<void> {
  await writeFileAtomic(path, [toOnnx(spec, weights, options)])
}
