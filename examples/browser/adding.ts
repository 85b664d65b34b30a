/**
 * The adding problem's LSTM beside the simple RNN, as the README's "Train a model" example
 * sets it up: the code the browser page runs (index.html, main.ts) and that runs unchanged in
 * Node (README, "In the browser"). Nothing here knows where it runs.
 */
import {
  addingProblem,
  dense,
  lstm,
  sequential,
  simpleRnn,
  type AddingProblem,
  type FitCallbacks,
  type History,
  type Model,
} from 'odyssey-rnn'

export type AddingKind = 'LSTM' | 'simple RNN'
/** The README's "Train a model" trains 8 epochs: the LSTM learns T = 20 in them, the simple RNN does not. */
export const ADDING_EPOCHS = 8
export const ADDING_KINDS: readonly AddingKind[] = ['LSTM', 'simple RNN']

export interface AddingData {
  /** 2000 sequences, [n, time = 20, features = 2] → [n, 1]. */
  train: AddingProblem
  validation: AddingProblem
}

export function addingData(): AddingData {
  return {
    train: addingProblem({ n: 2000, time: 20, seed: 1 }),
    validation: addingProblem({ n: 200, time: 20, seed: 2 }),
  }
}

/** 32 hidden units, the last step's output into one linear unit; Adam 1e-2, global-norm clipping 1. */
export function addingModel(kind: AddingKind): Model {
  const recurrent =
    kind === 'LSTM'
      ? lstm({ hiddenSize: 32, output: 'last', forgetBias: 1 })
      : simpleRnn({ hiddenSize: 32, output: 'last' })
  return sequential({
    input: { kind: 'sequence', features: 2 },
    layers: [recurrent, dense({ units: 1 })],
    loss: 'mse',
    optimizer: { type: 'adam', learningRate: 1e-2 },
    clip: { globalNorm: 1 },
    seed: 7,
  })
}

/** `fit` on a worker (Node) or a Web Worker (the browser): batches of 32, validated after every epoch. */
export function fitAdding(
  model: Model,
  { train, validation }: AddingData,
  { epochs = ADDING_EPOCHS, callbacks = [] }: { epochs?: number; callbacks?: FitCallbacks[] } = {},
): Promise<History> {
  return model.fit(train, { epochs, batchSize: 32, validationData: validation, callbacks })
}
