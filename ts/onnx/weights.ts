/**
 * Reading a model's weights record (`"{node}.{pytorch name}"` → tensor) for the export:
 * every tensor is checked against the shape the spec implies and converted to float32,
 * the only element type the exported graph uses.
 */
import { OdysseyRangeError } from '../errors'
import type { Tensor } from '../types'

export type WeightRecord = Readonly<Record<string, Tensor>>

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i])
}

/**
 * The tensor `"{node}.{key}"` as float32, checked to have `shape`.
 * @throws OdysseyRangeError `ODYSSEY_KEY` when it is missing, `ODYSSEY_SHAPE` when its shape or length is wrong.
 */
export function readWeight(weights: WeightRecord, node: string, key: string, shape: readonly number[]): Float32Array {
  const name = `${node}.${key}`
  const tensor = weights[name]
  if (tensor === undefined) {
    throw new OdysseyRangeError(
      'ODYSSEY_KEY',
      `exportOnnx: weights have no "${name}" (expected shape [${shape.join(', ')}])`,
    )
  }
  const size = shape.reduce((a, b) => a * b, 1)
  if (!sameShape(tensor.shape, shape) || tensor.data.length !== size) {
    throw new OdysseyRangeError(
      'ODYSSEY_SHAPE',
      `exportOnnx: weight "${name}" has shape [${tensor.shape.join(', ')}] and ${tensor.data.length} values; the spec implies [${shape.join(', ')}]`,
    )
  }
  return tensor.data instanceof Float32Array ? tensor.data : Float32Array.from(tensor.data)
}

/** The arrays one after another. */
export function concatFloat32(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0))
  let offset = 0
  for (const part of parts) {
    out.set(part, offset)
    offset += part.length
  }
  return out
}

/** `data`'s equal blocks reordered: block b of the result is block `from[b]` of `data`. */
function reorderBlocks(data: Float32Array, from: readonly number[]): Float32Array {
  const block = data.length / from.length
  const out = new Float32Array(data.length)
  from.forEach((source, b) => {
    out.set(data.subarray(source * block, (source + 1) * block), b * block)
  })
  return out
}

/**
 * Reorders the gate blocks of an LSTM tensor `[4H, cols]` (`cols` = 1 for biases) from
 * PyTorch's order i, f, g, o to ONNX's i, o, f, c (c is PyTorch's g, the block input z).
 */
export function pytorchToOnnxGates(data: Float32Array): Float32Array {
  return reorderBlocks(data, [0, 3, 1, 2])
}

/** Reorders the gate blocks of a GRU tensor `[3H, cols]` from PyTorch's order r, z, n to ONNX's z, r, h. */
export function pytorchToOnnxGruGates(data: Float32Array): Float32Array {
  return reorderBlocks(data, [1, 0, 2])
}
