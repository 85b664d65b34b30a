/**
 * The digit-reversal model: an LSTM encoder reads 3–8 digits, its final
 * states start an LSTM decoder (`initialState: 'enc'`), and the decoder learns
 * to write the digits in reverse order (teacher forcing in training).
 */
import { REVERSAL_START, REVERSAL_STOP, REVERSAL_VOCABULARY } from '../data'
import { Model } from '../model'

export interface ReversalModelOptions {
  /** Of the encoder and the decoder. Default 64. */
  hiddenSize?: number
  /** Width of both embeddings. Default 16. */
  embeddingDim?: number
  seed?: number
  /** Updates the model will train for: Adam's rate falls from 1e-2 to 1e-4 over them (cosine), which steadies the last epochs. */
  updates: number
}

/** Examples per update in the demo and the learning test. */
export const REVERSAL_BATCH = 32

/**
 * Token inputs `src` (the digits) and `dec` (start + the reversal: teacher forcing) →
 * embeddings → LSTM encoder (`output: 'states'`) → LSTM decoder started from them → logits
 * over the 12 tokens at every decoder step.
 */
export function reversalModel({ hiddenSize = 64, embeddingDim = 16, seed = 1, updates }: ReversalModelOptions): Model {
  return Model.fromSpec({
    inputs: [
      { kind: 'tokens', name: 'src' },
      { kind: 'tokens', name: 'dec' },
    ],
    nodes: [
      { name: 'src_emb', type: 'embedding', inputs: ['src'], vocabSize: REVERSAL_VOCABULARY, dim: embeddingDim },
      { name: 'enc', type: 'lstm', inputs: ['src_emb'], hiddenSize, output: 'states' },
      { name: 'dec_emb', type: 'embedding', inputs: ['dec'], vocabSize: REVERSAL_VOCABULARY, dim: embeddingDim },
      { name: 'decoder', type: 'lstm', inputs: ['dec_emb'], hiddenSize, initialState: 'enc' },
      { name: 'out', type: 'dense', inputs: ['decoder'], units: REVERSAL_VOCABULARY },
    ],
    output: 'out',
    loss: 'crossEntropy',
    optimizer: { type: 'adam', learningRate: 1e-2 },
    schedule: { type: 'cosine', tMax: updates, etaMin: 1e-4 },
    clip: { globalNorm: 1 },
    seed,
  })
}

/** `decode`'s options for a reversal model: at most 8 digits and `stop`, with a margin. */
export const REVERSAL_DECODE = {
  decoderInput: 'dec',
  start: REVERSAL_START,
  stop: REVERSAL_STOP,
  maxSteps: 12,
} as const
