/**
 * A small builder of one ONNX graph: typed graph inputs and outputs, float32 and int64
 * initializers, and nodes whose output names it makes unique. It knows nothing about
 * odyssey's layers; `export.ts` and the layer emitters drive it.
 *
 * Messages are built with @bufbuild/protobuf from code generated out of the official
 * onnx.proto (schema/): it is maintained, has no dependencies of its own and gives typed
 * messages, so a misspelt field fails to compile instead of being dropped on the wire.
 */
import { create, type MessageInitShape } from '@bufbuild/protobuf'
import { OdysseyRangeError } from '../errors'
import {
  AttributeProto_AttributeType,
  type AttributeProtoSchema,
  GraphProtoSchema,
  type NodeProtoSchema,
  TensorProto_DataType,
  type TensorProtoSchema,
  type ValueInfoProtoSchema,
  type GraphProto,
} from './schema/onnx_pb'

type NodeInit = MessageInitShape<typeof NodeProtoSchema>
type TensorInit = MessageInitShape<typeof TensorProtoSchema>
type ValueInfoInit = MessageInitShape<typeof ValueInfoProtoSchema>
type AttributeInit = MessageInitShape<typeof AttributeProtoSchema>

/** The element types the export uses. */
export const ElementType = {
  float: TensorProto_DataType.FLOAT,
  int32: TensorProto_DataType.INT32,
  int64: TensorProto_DataType.INT64,
} as const
export type ElementType = (typeof ElementType)[keyof typeof ElementType]

/** A dimension: a fixed size or a symbolic name such as `'batch'`. */
export type Dim = number | string

/** A float-list attribute (plain number arrays are int lists). */
export class Floats {
  constructor(readonly values: readonly number[]) {}
}

/** Attribute values: integer, string, int list, string list, float list. */
export type AttributeValue = number | string | readonly number[] | readonly string[] | Floats

export type Attributes = Readonly<Record<string, AttributeValue>>

function attribute(name: string, value: AttributeValue): AttributeInit {
  const Type = AttributeProto_AttributeType
  if (value instanceof Floats) return { name, type: Type.FLOATS, floats: [...value.values] }
  if (typeof value === 'number') return { name, type: Type.INT, i: BigInt(value) }
  if (typeof value === 'string') return { name, type: Type.STRING, s: new TextEncoder().encode(value) }
  // A list is a string list or an int list (an empty one is taken as ints).
  if (typeof value[0] === 'string')
    return { name, type: Type.STRINGS, strings: (value as readonly string[]).map((v) => new TextEncoder().encode(v)) }
  return { name, type: Type.INTS, ints: (value as readonly number[]).map((v) => BigInt(v)) }
}

function valueInfo(name: string, elemType: ElementType, dims: readonly Dim[]): ValueInfoInit {
  const dim = dims.map((d) => ({
    value:
      typeof d === 'number' ? { case: 'dimValue' as const, value: BigInt(d) } : { case: 'dimParam' as const, value: d },
  }))
  return { name, type: { value: { case: 'tensorType', value: { elemType, shape: { dim } } } } }
}

/** Little-endian float32 bytes, as `raw_data` requires whatever the host's byte order. */
function float32Bytes(values: Float32Array): Uint8Array {
  const bytes = new Uint8Array(values.length * 4)
  const view = new DataView(bytes.buffer)
  values.forEach((v, i) => {
    view.setFloat32(i * 4, v, true)
  })
  return bytes
}

export class GraphBuilder {
  private readonly nodes: NodeInit[] = []
  private readonly initializers: TensorInit[] = []
  private readonly inputs: ValueInfoInit[] = []
  private readonly outputs: ValueInfoInit[] = []
  /** Every tensor and node name in use. Internal ones contain '/', graph inputs and outputs do not. */
  private readonly names = new Set<string>()
  /** int64 constants by value, so every `[0, -1]` shape is stored once. */
  private readonly int64Constants = new Map<string, string>()

  /**
   * Claims a graph input or output name. Internal names all contain '/', so refusing it here
   * keeps the two apart; two graph inputs or outputs may not share a name either.
   */
  private claim(name: string): string {
    if (name.includes('/') || this.names.has(name)) {
      const why = name.includes('/')
        ? "contains '/', which only internal names may"
        : 'is taken by another graph input or output'
      throw new OdysseyRangeError('ODYSSEY_INVALID', `exportOnnx: graph input/output name "${name}" ${why}`)
    }
    this.names.add(name)
    return name
  }

  /** An internal name: `base` (which contains '/'), made unique. */
  fresh(base: string): string {
    let name = base
    for (let n = 1; this.names.has(name); n++) name = `${base}_${n}`
    this.names.add(name)
    return name
  }

  addInput(name: string, elemType: ElementType, dims: readonly Dim[]): string {
    this.inputs.push(valueInfo(this.claim(name), elemType, dims))
    return name
  }

  /**
   * Declares a graph output; some node must then write `name` (see `op`'s `outputs`).
   * `first` puts it before the outputs declared so far (the model's own output before states).
   */
  addOutput(name: string, elemType: ElementType, dims: readonly Dim[], { first = false } = {}): string {
    const info = valueInfo(this.claim(name), elemType, dims)
    if (first) this.outputs.unshift(info)
    else this.outputs.push(info)
    return name
  }

  /** A float32 initializer `dims` from `data` (row-major). Returns its name. */
  float32(base: string, dims: readonly number[], data: Float32Array): string {
    const name = this.fresh(base)
    this.initializers.push({ name, dims: dims.map(BigInt), dataType: ElementType.float, rawData: float32Bytes(data) })
    return name
  }

  /** A 1-D int64 initializer (shapes, axes, slice bounds), shared between equal values. */
  int64(values: readonly number[]): string {
    const key = values.join(',')
    const known = this.int64Constants.get(key)
    if (known !== undefined) return known
    const name = this.fresh(`const/i64[${key}]`)
    this.initializers.push({
      name,
      dims: [BigInt(values.length)],
      dataType: ElementType.int64,
      int64Data: values.map(BigInt),
    })
    this.int64Constants.set(key, name)
    return name
  }

  /**
   * Appends a node. `inputs` may contain `''` for an omitted optional input. `outputs` names
   * each output: a string is used as is (a graph output or `''` for an omitted one), a
   * `{ base }` gets a fresh name. Returns the output names.
   */
  op(
    opType: string,
    inputs: readonly string[],
    outputs: readonly (string | { base: string })[],
    attributes: Attributes = {},
  ): string[] {
    const names = outputs.map((o) => (typeof o === 'string' ? o : this.fresh(o.base)))
    this.nodes.push({
      opType,
      name: this.fresh(`node/${opType}_${this.nodes.length}`),
      input: [...inputs],
      output: names,
      attribute: Object.entries(attributes).map(([key, value]) => attribute(key, value)),
    })
    return names
  }

  /** A node with one output named fresh from `base`. */
  op1(opType: string, inputs: readonly string[], base: string, attributes: Attributes = {}): string {
    return this.op(opType, inputs, [{ base }], attributes)[0]
  }

  build(name: string): GraphProto {
    return create(GraphProtoSchema, {
      name,
      node: this.nodes,
      initializer: this.initializers,
      input: this.inputs,
      output: this.outputs,
    })
  }
}
