/**
 * PyTorch interop: the weights of one LSTM or simple-RNN node to and from a
 * PyTorch `state_dict()` saved with `safetensors.torch.save_file`.
 *
 * The file holds the node's tensors under PyTorch's names, without the node
 * prefix `getWeights` uses: `weight_ih_l{k}` `[G·H, X]`, `weight_hh_l{k}`
 * `[G·H, H]`, `bias_ih_l{k}` and `bias_hh_l{k}` `[G·H]` (G = 4 for the LSTM,
 * gates i, f, g, o; 1 for the simple RNN), `_reverse` after the layer index for
 * the backward direction; our LSTM extensions `peephole_{i,f,o}_l{k}` `[H]` and
 * (FGR) `weight_gg_l{k}` `[3H, 3H]`. Float32 models read and write `F32`
 * tensors, float64 models `F64`. The reading and writing is the core's
 * (`crates/core/src/model/torch_interop.rs`); this module checks the arguments.
 */
import { OdysseyRangeError, OdysseyTypeError } from '../errors'
import { describe } from '../validate'
import type { GraphSpec } from './spec'

/** The node and file a state-dict call works on, checked against the graph. */
export interface StateDictArgs {
  node: string
  path: string
}

const RECURRENT_TYPES: readonly string[] = ['lstm', 'gru', 'rnn']

/**
 * Checks that `node` names an `lstm`, `gru` or `rnn` node of `graph` and that `path` is a file path.
 * @throws OdysseyTypeError `ODYSSEY_TYPE` for a non-string, OdysseyRangeError `ODYSSEY_KEY` for an
 *   unknown node and `ODYSSEY_INVALID` for a node of another type or an empty path.
 */
export function checkStateDictArgs(
  graph: Required<GraphSpec>,
  node: unknown,
  path: unknown,
  label: string,
): StateDictArgs {
  const recurrent = graph.nodes.filter((n) => RECURRENT_TYPES.includes(n.type)).map((n) => `'${n.name}'`)
  const known = recurrent.length === 0 ? 'the model has none' : `the model's are ${recurrent.join(', ')}`
  if (typeof node !== 'string') {
    throw new OdysseyTypeError(
      'ODYSSEY_TYPE',
      `${label}: node: expected the name of an lstm, gru or rnn node (${known}), got ${describe(node)}`,
    )
  }
  const found = graph.nodes.find((n) => n.name === node)
  if (found === undefined)
    throw new OdysseyRangeError(
      'ODYSSEY_KEY',
      `${label}: node '${node}': the model has no node of this name (lstm, gru and rnn nodes: ${known})`,
    )
  if (!RECURRENT_TYPES.includes(found.type)) {
    throw new OdysseyRangeError(
      'ODYSSEY_INVALID',
      `${label}: node '${node}' is a ${found.type} node; only lstm, gru and rnn nodes have PyTorch state dicts (${known})`,
    )
  }
  if (typeof path !== 'string')
    throw new OdysseyTypeError('ODYSSEY_TYPE', `${label}: path: expected a file path, got ${describe(path)}`)
  if (path === '') throw new OdysseyRangeError('ODYSSEY_INVALID', `${label}: path: expected a file path, got ''`)
  return { node, path }
}
