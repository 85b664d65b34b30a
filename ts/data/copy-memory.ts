/**
 * The copy-memory task (Hochreiter & Schmidhuber 1997; the form of Arjovsky
 * et al. 2016): a sequence opens with `copyLength` symbols from 1..symbols,
 * then `delay − 1` blanks (0), a delimiter (symbols + 1) and `copyLength`
 * more blanks; the target is blank everywhere except the last `copyLength`
 * steps, which must reproduce the opening symbols. Always answering blank
 * and guessing uniformly at the end scores a cross-entropy of
 * copyLength·ln(symbols) / (delay + 2·copyLength) per step.
 */
import { OdysseyRangeError } from '../errors'
import { mulberry32 } from '../util/random'
import type { Dtype } from '../types'
import { checkOneOf, checkOptionKeys, checkSeed, checkSize, DTYPES } from '../validate'
import type { SequenceTensor, TokenTensor } from '../model/data'

export interface CopyMemoryOptions {
  /** Number of sequences. */
  n: number
  /** Steps between the end of the symbols and the delimiter's successor (Arjovsky et al.'s T). */
  delay: number
  /** Symbols to remember. Default 10. */
  copyLength?: number
  /** Size of the alphabet (1..symbols). Default 8. */
  symbols?: number
  /** `'tokens'`: ids for an embedding (vocabulary symbols + 2); `'oneHot'`: float sequences with symbols + 2 features. Default `'tokens'`. */
  encoding?: 'tokens' | 'oneHot'
  /** Default 0. */
  seed?: number
  /** Float type of the one-hot encoding. Default `'float32'`. */
  dtype?: Dtype
}

export interface CopyMemory {
  /** `[n, delay + 2·copyLength]` token ids, or that with symbols + 2 one-hot features. */
  x: TokenTensor | SequenceTensor
  /** `[n, delay + 2·copyLength]` class indices in 0..symbols: use an output of symbols + 1 classes. */
  y: { classes: Uint32Array; shape: [number, number] }
  /** Cross-entropy per step of the blank-then-guess baseline. */
  baselineLoss: number
}

/** `n` seeded copy-memory sequences, ready for a many-to-many `fit` with the crossEntropy loss. */
export function copyMemory(options: CopyMemoryOptions): CopyMemory {
  checkOptionKeys(options, ['n', 'delay', 'copyLength', 'symbols', 'encoding', 'seed', 'dtype'], 'copyMemory')
  const n = checkSize('n', options.n)
  const delay = checkSize('delay', options.delay)
  const copyLength = checkSize('copyLength', options.copyLength ?? 10)
  const symbols = checkSize('symbols', options.symbols ?? 8)
  if (symbols < 2) throw new OdysseyRangeError('ODYSSEY_INVALID', `symbols: expected at least 2, got ${symbols}`)
  const encoding = checkOneOf('encoding', options.encoding ?? 'tokens', ['tokens', 'oneHot'] as const)
  const random = mulberry32(checkSeed('seed', options.seed ?? 0))
  const dtype = checkOneOf('dtype', options.dtype ?? 'float32', DTYPES)
  const time = delay + 2 * copyLength
  const delimiter = symbols + 1
  const ids = new Uint32Array(n * time)
  const classes = new Uint32Array(n * time)
  for (let s = 0; s < n; s++) {
    const row = s * time
    for (let k = 0; k < copyLength; k++) {
      const symbol = 1 + Math.floor(random() * symbols)
      ids[row + k] = symbol
      classes[row + time - copyLength + k] = symbol
    }
    ids[row + delay + copyLength - 1] = delimiter
  }
  const baselineLoss = (copyLength * Math.log(symbols)) / time
  const y = { classes, shape: [n, time] as [number, number] }
  if (encoding === 'tokens') return { x: { ids, shape: [n, time] }, y, baselineLoss }
  const width = symbols + 2
  const data = dtype === 'float32' ? new Float32Array(n * time * width) : new Float64Array(n * time * width)
  ids.forEach((id, k) => {
    data[k * width + id] = 1
  })
  return { x: { data, shape: [n, time, width] }, y, baselineLoss }
}
