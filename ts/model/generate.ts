/**
 * `Model.generate`: sampling from a token language model — one tokens input,
 * a crossEntropy loss on a sequence output over the same vocabulary — one
 * token at a time through `step`: the prompt is fed, then each sampled token
 * is fed back. Temperature 0 is greedy (the argmax, the first on ties);
 * otherwise the softmax of logits / temperature, cut to the `topK` most likely
 * tokens and then to the smallest set whose probability reaches `topP`, is
 * sampled with a seeded generator, so a seed always gives the same tokens.
 */
import { OdysseyRangeError, OdysseyTypeError } from '../errors'
import { mulberry32 } from '../util/random'
import type { Tensor } from '../types'
import { checkFiniteNumber, checkObject, checkOptionKeys, checkSeed, checkSize, describe } from '../validate'
import type { StepInputs } from './data'
import { softmax } from './probabilities'
import type { DescribedGraph } from './spec'

export interface GenerateOptions {
  /** Token ids fed before sampling starts (at least one), the same for every sequence. */
  prompt: ArrayLike<number>
  /** Tokens to sample after the prompt; fewer when `stop` comes first. */
  steps: number
  /** Default 1; 0 is greedy. */
  temperature?: number
  /** Sample among the `topK` most likely tokens only. */
  topK?: number
  /** Sample among the most likely tokens whose probabilities add up to `topP` (nucleus sampling), in (0, 1]. */
  topP?: number
  /** A token id that ends a sequence (not returned). */
  stop?: number
  /** Seed of the sampling; default: a fresh one per call. */
  seed?: number
  /** Sequences to generate from the prompt. Default 1. */
  batch?: number
}

/** What `generate` uses of a model. */
export interface Steppable {
  step(x: StepInputs): Tensor
  resetState(): void
}

interface Sampling {
  temperature: number
  topK: number | undefined
  topP: number | undefined
  random: () => number
}

const KEYS = ['prompt', 'steps', 'temperature', 'topK', 'topP', 'stop', 'seed', 'batch'] as const

/** The vocabulary size of a token language model, or a typed error saying what the model lacks. */
function languageModelVocabulary(graph: DescribedGraph): number {
  const { inputs, loss } = graph.spec
  const problem =
    inputs.length !== 1 || inputs[0].kind !== 'tokens'
      ? `its inputs are ${inputs.map((i) => `'${i.name}' (${i.kind})`).join(', ')}`
      : loss !== 'crossEntropy'
        ? `its loss is ${loss}`
        : graph.output.kind !== 'sequence'
          ? 'its output is one vector per sequence, not one per step'
          : graph.output.width !== graph.vocabularies.get(inputs[0].name)
            ? `its output has ${graph.output.width} classes for a vocabulary of ${graph.vocabularies.get(inputs[0].name)}`
            : undefined
  if (problem !== undefined)
    throw new OdysseyTypeError(
      'ODYSSEY_TYPE',
      `generate: the model is not a token language model (one tokens input, a crossEntropy loss on a sequence output over the same vocabulary): ${problem}`,
    )
  return graph.output.width
}

function checkTokenId(label: string, value: unknown, vocabulary: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value >= vocabulary)
    throw new OdysseyRangeError(
      'ODYSSEY_INVALID',
      `${label}: expected a token id in 0..${vocabulary - 1}, got ${describe(value)}`,
    )
  return value
}

function checkPrompt(value: unknown, vocabulary: number): number[] {
  const isArrayLike =
    typeof value === 'object' && value !== null && typeof (value as ArrayLike<unknown>).length === 'number'
  if (!isArrayLike || (value as ArrayLike<unknown>).length === 0)
    throw new OdysseyTypeError(
      'ODYSSEY_TYPE',
      `prompt: expected a non-empty array of token ids, got ${describe(value)}`,
    )
  return Array.from(value as ArrayLike<unknown>, (id, k) => checkTokenId(`prompt[${k}]`, id, vocabulary))
}

function checkSampling(fields: Record<string, unknown>, vocabulary: number): Sampling {
  const temperature = checkFiniteNumber('temperature', fields.temperature ?? 1)
  if (temperature < 0)
    throw new OdysseyRangeError('ODYSSEY_INVALID', `temperature: expected a number >= 0, got ${temperature}`)
  const topK = fields.topK === undefined ? undefined : Math.min(checkSize('topK', fields.topK), vocabulary)
  const topP = fields.topP === undefined ? undefined : checkFiniteNumber('topP', fields.topP)
  if (topP !== undefined && !(topP > 0 && topP <= 1))
    throw new OdysseyRangeError('ODYSSEY_INVALID', `topP: expected a number in (0, 1], got ${topP}`)
  const seed = fields.seed === undefined ? Math.floor(Math.random() * 2 ** 32) : checkSeed('seed', fields.seed)
  return { temperature, topK, topP, random: mulberry32(seed) }
}

/** The index of the largest logit, the first on ties. */
function argmax(logits: ArrayLike<number>): number {
  let best = 0
  for (let k = 1; k < logits.length; k++) if (logits[k] > logits[best]) best = k
  return best
}

/** One token drawn from one row of logits `[vocabulary]`. */
function sample(logits: ArrayLike<number>, sampling: Sampling): number {
  if (sampling.temperature === 0) return argmax(logits)
  const p = softmax(logits, sampling.temperature)
  let candidates = Array.from(p.keys())
  if (sampling.topK !== undefined || sampling.topP !== undefined) {
    candidates.sort((a, b) => p[b] - p[a] || a - b)
    candidates = candidates.slice(0, sampling.topK)
    if (sampling.topP !== undefined) {
      let mass = 0
      const kept = candidates.findIndex((k) => {
        mass += p[k]
        return mass >= sampling.topP!
      })
      candidates = candidates.slice(0, kept < 0 ? candidates.length : kept + 1)
    }
  }
  const total = candidates.reduce((sum, k) => sum + p[k], 0)
  let left = sampling.random() * total
  for (const k of candidates) {
    left -= p[k]
    if (left < 0) return k
  }
  return candidates[candidates.length - 1]
}

/**
 * Feeds the prompt to `batch` new sequences (the state `step` carries is reset first), then
 * samples `steps` tokens, each fed back in. Returns the sampled ids of each sequence, without
 * the prompt and ending before `stop`.
 */
export function generate(model: Steppable, graph: DescribedGraph, options: GenerateOptions): Uint32Array[] {
  const vocabulary = languageModelVocabulary(graph)
  const fields = checkObject('generate options', options)
  checkOptionKeys(fields, KEYS, 'generate')
  const prompt = checkPrompt(fields.prompt, vocabulary)
  const steps = checkSize('steps', fields.steps)
  const stop = fields.stop === undefined ? undefined : checkTokenId('stop', fields.stop, vocabulary)
  const batch = checkSize('batch', fields.batch ?? 1)
  const sampling = checkSampling(fields, vocabulary)

  const feed = (ids: Uint32Array) => model.step({ ids, shape: [batch] }).data
  model.resetState()
  let logits = prompt.map((id) => feed(new Uint32Array(batch).fill(id))).at(-1)!
  const generated: number[][] = Array.from({ length: batch }, () => [])
  const open = new Array<boolean>(batch).fill(true)
  for (let s = 0; s < steps && open.includes(true); s++) {
    const next = new Uint32Array(batch)
    for (let b = 0; b < batch; b++) {
      if (!open[b]) continue
      next[b] = sample(logits.subarray(b * vocabulary, (b + 1) * vocabulary), sampling)
      if (next[b] === stop) open[b] = false
      else generated[b].push(next[b])
    }
    if (s + 1 < steps && open.includes(true)) logits = feed(next)
  }
  return generated.map((ids) => Uint32Array.from(ids))
}
