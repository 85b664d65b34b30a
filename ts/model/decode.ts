/**
 * `Model.decode`: the arguments of decoding an encoder–decoder model, checked
 * for their JS types. The decoding itself is the core's (`crates/core/src/model/
 * decode.rs`), in one call on a worker thread: the encoder runs once per batch,
 * the decoder step by step, greedy or by beam search, with the beam's states
 * reordered in Rust rather than copied through JS at every step. The core
 * checks the rest: that the decoder input drives per-step logits, the token
 * ids against the output's classes, the sizes.
 */
import type { DecodeArgs, InputArgs } from '../../native/binding'
import { OdysseyRangeError, OdysseyTypeError } from '../errors'
import { checkBoolean, checkFiniteNumber, checkObject, checkOptionKeys, checkSize, describe } from '../validate'
import { checkInputs } from './data'
import type { DescribedGraph } from './spec'

export interface DecodeOptions {
  /** The token input the decoder reads: in training the target shifted by one (teacher forcing), here its own outputs. */
  decoderInput: string
  /** The token the decoder starts from. */
  start: number
  /** The token that ends a sequence; neither it nor `start` is returned. */
  stop: number
  /** Tokens decoded at most per sequence, `stop` included. */
  maxSteps: number
  /** Hypotheses kept per example; 1 (the default) is greedy. */
  beamWidth?: number
  /**
   * α in the beam's ranking log P / length^α (length counting `stop`). Default 0: the most likely
   * sequence; larger values favour longer ones.
   */
  lengthPenalty?: number
  /** Also return each sequence's log-probability under the model. */
  scores?: boolean
}

/** Decoded ids per example, and their log-probabilities log P(ids, stop | inputs). */
export interface ScoredDecoding {
  ids: Uint32Array[]
  scores: Float64Array
}

const KEYS = ['decoderInput', 'start', 'stop', 'maxSteps', 'beamWidth', 'lengthPenalty', 'scores'] as const

function checkTokenId(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value >= 2 ** 32)
    throw new OdysseyRangeError(
      'ODYSSEY_INVALID',
      `${name}: expected a token id (an integer >= 0), got ${describe(value)}`,
    )
  return value
}

/**
 * The addon's arguments: every input but the decoder's, checked against the graph, and the options.
 * @throws OdysseyTypeError when `decoderInput` names no token input of the model.
 */
export function decodeArgs(
  x: unknown,
  graph: DescribedGraph,
  options: unknown,
): { inputs: InputArgs[]; options: DecodeArgs; scores: boolean } {
  const fields = checkObject('decode options', options)
  checkOptionKeys(fields, KEYS, 'decode')
  const { inputs } = graph.spec
  const decoderInput = fields.decoderInput
  const tokenInputs = inputs.filter((i) => i.kind === 'tokens').map((i) => `'${i.name}'`)
  if (typeof decoderInput !== 'string' || !tokenInputs.includes(`'${decoderInput}'`))
    throw new OdysseyTypeError(
      'ODYSSEY_TYPE',
      `decoderInput: expected the name of the token input the decoder reads (${tokenInputs.length === 0 ? 'the model has no token input' : `one of ${tokenInputs.join(', ')}`}), got ${describe(decoderInput)}`,
    )
  const encoder = { ...graph, spec: { ...graph.spec, inputs: inputs.filter((i) => i.name !== decoderInput) } }
  return {
    inputs: checkInputs(x, encoder, 'inputs').args,
    options: {
      decoderInput,
      start: checkTokenId('start', fields.start),
      stop: checkTokenId('stop', fields.stop),
      maxSteps: checkSize('maxSteps', fields.maxSteps),
      beamWidth: checkSize('beamWidth', fields.beamWidth ?? 1),
      lengthPenalty: checkFiniteNumber('lengthPenalty', fields.lengthPenalty ?? 0),
    },
    scores: fields.scores === undefined ? false : checkBoolean('scores', fields.scores),
  }
}
