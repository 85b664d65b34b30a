/**
 * What the ONNX export tests share: recurrent stacks built from odyssey's own layers and run
 * by hand (the oracle), weights records keyed like a model's, and onnxruntime sessions.
 */
import * as ort from 'onnxruntime-node'

import { GRU, LSTM, SimpleRNN, type LstmOptions, type SimpleRnnOptions, type Tensor } from '../../ts'
import { randomArray } from './layers'

export type Layer = LSTM | SimpleRNN | GRU

/** One layer entry of a stack: its layer and its PyTorch suffix (`_l0`, `_l1_reverse`). */
export interface StackEntry {
  layer: Layer
  suffix: string
}

/** A recurrent node's layers, layer-major then direction, as the core orders them. */
export interface Stack {
  node: string
  entries: StackEntry[]
  directions: 1 | 2
  hidden: number
  merge: 'concat' | 'sum'
}

type LayerOptions =
  | Omit<LstmOptions, 'inputSize' | 'hiddenSize'>
  | (Omit<SimpleRnnOptions, 'inputSize' | 'hiddenSize'> & { rnn: true })
  | { gru: true }

/** `layers × directions` layers with distinct seeds; layer k > 0 reads the merged width. */
export function makeStack(
  node: string,
  input: number,
  hidden: number,
  shape: { layers: number; bidirectional: boolean; merge?: 'concat' | 'sum' },
  options: LayerOptions,
): Stack {
  const directions = shape.bidirectional ? 2 : 1
  const merge = shape.merge ?? 'concat'
  const entries: StackEntry[] = []
  for (let k = 0; k < shape.layers; k++) {
    const inputSize = k === 0 ? input : merge === 'concat' ? hidden * directions : hidden
    for (let d = 0; d < directions; d++) {
      const seed = 100 + 10 * k + d
      const layer =
        'gru' in options
          ? new GRU({ inputSize, hiddenSize: hidden, seed })
          : 'rnn' in options
            ? new SimpleRNN({ inputSize, hiddenSize: hidden, activation: options.activation, seed })
            : new LSTM({ ...options, inputSize, hiddenSize: hidden, seed })
      entries.push({ layer, suffix: `_l${k}${d === 1 ? '_reverse' : ''}` })
    }
  }
  return { node, entries, directions: directions as 1 | 2, hidden, merge }
}

/** The stack's weights under model keys: `"{node}.weight_ih_l1_reverse"`. */
export function stackWeights(stack: Stack): Record<string, Tensor> {
  return Object.fromEntries(
    stack.entries.flatMap(({ layer, suffix }) =>
      Object.entries(layer.getWeights()).map(([key, tensor]) => [
        `${stack.node}.${key.replace(/_l0$/, suffix)}`,
        tensor,
      ]),
    ),
  )
}

/** Each sequence reversed within its own length; padded steps stay zero. `x`: `[batch, time, width]`. */
export function reverseWithinLengths(
  x: Float32Array,
  batch: number,
  time: number,
  width: number,
  lengths: readonly number[],
): Float32Array {
  const out = new Float32Array(x.length)
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < lengths[b]; t++) {
      const from = (b * time + t) * width
      out.set(x.subarray(from, from + width), (b * time + lengths[b] - 1 - t) * width)
    }
  }
  return out
}

/** Merges direction outputs `[batch, time, H]` (or `[batch, H]` with time 1) into `[batch, time, H']`. */
export function mergeDirections(
  parts: readonly Float32Array[],
  rows: number,
  hidden: number,
  merge: 'concat' | 'sum',
): Float32Array {
  if (parts.length === 1) return parts[0]
  if (merge === 'sum') return parts[0].map((v, i) => v + parts[1][i])
  const out = new Float32Array(rows * hidden * 2)
  for (let r = 0; r < rows; r++) {
    parts.forEach((p, d) => {
      out.set(p.subarray(r * hidden, (r + 1) * hidden), (r * 2 + d) * hidden)
    })
  }
  return out
}

export interface StackRun {
  /** Top layer, merged: `[batch, time, H']` */
  y: Float32Array
  /** Final h (and c) of every entry, `[batch, H]` each, in entry order. */
  finals: { h: Float32Array; c?: Float32Array }[]
}

/**
 * The stack forward by hand, as the core's RecurrentStack does it: the reverse direction
 * reads its input reversed within each length and its output is reversed back.
 * `initial[i]`: entry i's `{ h0, c0 }`, `[batch, H]` each.
 */
export function runStack(
  stack: Stack,
  x: Float32Array,
  dims: { batch: number; time: number; width: number },
  lengths: readonly number[],
  initial?: { h0: Float32Array; c0?: Float32Array }[],
): StackRun {
  const { batch, time } = dims
  let input = x
  let width = dims.width
  const finals: StackRun['finals'] = []
  for (let k = 0; k < stack.entries.length / stack.directions; k++) {
    const parts: Float32Array[] = []
    for (let d = 0; d < stack.directions; d++) {
      const i = k * stack.directions + d
      const reversed = d === 1
      const source = reversed ? reverseWithinLengths(input, batch, time, width, lengths) : input
      const out = stack.entries[i].layer.forward({ x: source, shape: [batch, time, width], lengths, ...initial?.[i] })
      const y = out.y.data as Float32Array
      parts.push(reversed ? reverseWithinLengths(y, batch, time, stack.hidden, lengths) : y)
      finals.push({ h: out.hN.data as Float32Array, c: out.cN?.data as Float32Array | undefined })
    }
    input = mergeDirections(parts, batch * time, stack.hidden, stack.merge)
    width = input.length / (batch * time)
  }
  return { y: input, finals }
}

/** The final h of the top layer's directions, merged: `[batch, H']`, the `last` output. */
export function lastOutput(stack: Stack, run: StackRun, batch: number): Float32Array {
  const top = run.finals.slice(-stack.directions).map((f) => f.h)
  return mergeDirections(top, batch, stack.hidden, stack.merge)
}

/** Dense `x W^T + b` on rows `[rows, in]` with `weight` `[out, in]`. */
export function denseForward(x: Float32Array, weight: Tensor, bias: Tensor): Float32Array {
  const [out, inp] = weight.shape
  const rows = x.length / inp
  const y = new Float32Array(rows * out)
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < out; o++) {
      let sum = bias.data[o]
      for (let j = 0; j < inp; j++) sum += x[r * inp + j] * weight.data[o * inp + j]
      y[r * out + o] = sum
    }
  }
  return y
}

/** Softmax over each row of `width`. */
export function softmaxRows(x: Float32Array, width: number): Float32Array {
  const y = new Float32Array(x.length)
  for (let r = 0; r < x.length / width; r++) {
    const row = x.subarray(r * width, (r + 1) * width)
    const max = Math.max(...row)
    const exps = row.map((v) => Math.exp(v - max))
    const total = exps.reduce((a, b) => a + b, 0)
    exps.forEach((e, j) => {
      y[r * width + j] = e / total
    })
  }
  return y
}

/** A dense layer's weights under model keys, seeded: `weight` `[units, input]`, `bias` `[units]`. */
export function denseWeights(node: string, input: number, units: number, seed: number): Record<string, Tensor> {
  return {
    [`${node}.weight`]: { data: randomArray('float32', units * input, seed, 0.5), shape: [units, input] },
    [`${node}.bias`]: { data: randomArray('float32', units, seed + 1, 0.5), shape: [units] },
  }
}

/** Runs a serialized model (or a file) with float32/int32/int64 feeds given as typed arrays. */
export async function runOnnx(
  model: Uint8Array | string,
  feeds: Record<string, { data: Float32Array | Int32Array | BigInt64Array; dims: number[] }>,
): Promise<Record<string, Float32Array>> {
  const session =
    typeof model === 'string' ? await ort.InferenceSession.create(model) : await ort.InferenceSession.create(model)
  try {
    const tensors = Object.fromEntries(
      Object.entries(feeds).map(([name, { data, dims }]) => [name, new ort.Tensor(data, dims)]),
    )
    const results = await session.run(tensors)
    return Object.fromEntries(Object.entries(results).map(([name, t]) => [name, t.data as Float32Array]))
  } finally {
    await session.release()
  }
}
