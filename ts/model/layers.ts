/**
 * Layer factories for `sequential` (Keras idioms): each checks its options
 * at once and returns the plain node description the core reads.
 */
import { OdysseyTypeError } from '../errors'
import { checkObject, describe } from '../validate'
import {
  checkOp,
  type DenseActivation,
  type GraphSpec,
  type InputSpec,
  type Loss,
  type GruLayerOptions,
  type LstmLayerOptions,
  type NodeSpec,
  type OpSpec,
  type RnnLayerOptions,
} from './spec'

/** A layer of a sequential model: an operation and an optional node name. */
export type Layer = OpSpec & { name?: string }

type Named<T> = T & {
  /** Node name, the prefix of the layer's weight keys (`lstm.weight_ih_l0`). Default: the type, `_1`, `_2`... for repeats. */
  name?: string
}

function layer(type: OpSpec['type'], options: unknown): Layer {
  const fields = checkObject(`${type} options`, options)
  if ('type' in fields)
    throw new OdysseyTypeError('ODYSSEY_TYPE', `${type} options: unknown option 'type' (the factory sets it)`)
  if (fields.name !== undefined && (typeof fields.name !== 'string' || fields.name === '')) {
    throw new OdysseyTypeError(
      'ODYSSEY_TYPE',
      `${type}.name: expected a non-empty string, got ${describe(fields.name)}`,
    )
  }
  const op = checkOp({ ...fields, type }, type)
  return fields.name === undefined ? op : { ...op, name: fields.name as string }
}

/** Token ids `[n, time]` → word vectors `[n, time, dim]`. `frozen`: keep the vectors fixed (pretrained GloVe). */
export function embedding(options: Named<{ vocabSize: number; dim: number; frozen?: boolean }>): Layer {
  return layer('embedding', options)
}

/**
 * An LSTM stack (SPEC §1): `[n, time, features]` → `[n, time, H']` (`output: 'sequence'`, default),
 * `[n, H']` (`'last'`: each sequence's own last step) or `[n, layers·directions·2H]` (`'states'`: every
 * layer's final y and c). H' is H, or 2H for a bidirectional stack with `merge: 'concat'`.
 * Any variant of Greff et al. (`variant`), peepholes (default on), `forgetBias` added at initialisation.
 */
export function lstm(options: Named<LstmLayerOptions>): Layer {
  return layer('lstm', options)
}

/** A simple (Elman) RNN stack, h(t) = g(W h(t−1) + U x(t) + b); shapes as `lstm` (`'states'`: `[n, layers·directions·H]`). */
export function simpleRnn(options: Named<RnnLayerOptions>): Layer {
  return layer('rnn', options)
}

/**
 * A GRU stack, PyTorch's `nn.GRU`: gates (r, z, n) with b_hn inside the reset product,
 * n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)), h' = (1 − z) ⊙ n + z ⊙ h; weights `weight_ih_l{k}` `[3H, X]`,
 * `weight_hh_l{k}` `[3H, H]`, biases `[3H]`, so `nn.GRU` state dicts import and export. Shapes as `lstm`
 * (`'states'`: `[n, layers·directions·H]`).
 */
export function gru(options: Named<GruLayerOptions>): Layer {
  return layer('gru', options)
}

/** `[.., in]` → `[.., units]` with an activation (default none), on vectors or every step of a sequence. */
export function dense(options: Named<{ units: number; activation?: DenseActivation }>): Layer {
  return layer('dense', options)
}

/** Inverted dropout with drop probability `rate` in [0, 1) while training; identity in evaluate/predict/step. */
export function dropout(options: Named<{ rate: number }>): Layer {
  return layer('dropout', options)
}

/** The graph of `layers` applied one after the other to a single input. */
export function sequentialGraph(
  input: Omit<InputSpec, 'name'> & { name?: string },
  layers: readonly Layer[],
  loss: Loss,
): GraphSpec {
  if (!Array.isArray(layers) || layers.length === 0) {
    throw new OdysseyTypeError(
      'ODYSSEY_TYPE',
      `layers: expected a non-empty array of layers (lstm(...), dense(...)), got ${describe(layers)}`,
    )
  }
  const inputSpec = { ...input, name: input.name ?? 'x' } as InputSpec
  const used = new Set<string>([inputSpec.name])
  let previous = inputSpec.name
  const nodes = layers.map((l, index) => {
    const { name, ...op } = checkObject(`layers[${index}]`, l) as Layer
    const nodeName = name ?? freshName(op.type, used)
    used.add(nodeName)
    const node = { ...op, name: nodeName, inputs: [previous] } as NodeSpec
    previous = nodeName
    return node
  })
  return { inputs: [inputSpec], nodes, output: previous, loss }
}

/** `type`, then `type_1`, `type_2`, ... (Keras' naming). */
function freshName(type: string, used: ReadonlySet<string>): string {
  if (!used.has(type)) return type
  for (let k = 1; ; k++) if (!used.has(`${type}_${k}`)) return `${type}_${k}`
}
