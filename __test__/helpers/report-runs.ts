/**
 * Real run logs: an LSTM, a GRU and a simple RNN trained on the adding problem through
 * the Model API, each logging every step, every epoch and the gradient flow on
 * a fixed probe batch before training and after every epoch.
 */
import { join } from 'node:path'

import { addingProblem, dense, gru, lstm, sequential, simpleRnn, type Layer } from '../../ts'
import { logGradientFlow, runLogCallbacks, RunLogger, runLogPath } from '../../ts/report'

export interface AddingComparisonOptions {
  /** Sequence length: the distance the gradient must travel. */
  time: number
  /** Training sequences. */
  n: number
  epochs: number
}

const MODELS: readonly { label: string; dir: string; layer: Layer }[] = [
  { label: 'LSTM', dir: 'lstm', layer: lstm({ hiddenSize: 32, output: 'last', forgetBias: 1 }) },
  { label: 'GRU', dir: 'gru', layer: gru({ hiddenSize: 32, output: 'last' }) },
  { label: 'simple RNN', dir: 'rnn', layer: simpleRnn({ hiddenSize: 32, output: 'last' }) },
]

/** Trains the three models into `<root>/lstm`, `<root>/gru` and `<root>/rnn`; returns the paths of their run logs. */
export async function trainAddingComparison(
  root: string,
  { time, n, epochs }: AddingComparisonOptions,
): Promise<string[]> {
  const train = addingProblem({ n, time, seed: 1 })
  const validationData = addingProblem({ n: 256, time, seed: 2 })
  const probe = addingProblem({ n: 64, time, seed: 3 })
  const paths: string[] = []
  for (const { label, dir, layer } of MODELS) {
    const model = sequential({
      input: { kind: 'sequence', features: 2 },
      layers: [layer, dense({ units: 1 })],
      loss: 'mse',
      optimizer: { type: 'adam', learningRate: 1e-2 },
      clip: { globalNorm: 1 },
      seed: 3,
    })
    const file = runLogPath(join(root, dir))
    const log = new RunLogger(file, {
      label,
      task: `adding problem, T = ${time}`,
      config: { hiddenSize: 32, optimizer: 'adam 1e-2', clip: 'global norm 1', n, time },
    })
    try {
      logGradientFlow(log, model, probe, 0)
      for (let epoch = 0; epoch < epochs; epoch++) {
        await model.fit(train, {
          epochs: epoch + 1,
          initialEpoch: epoch,
          batchSize: 32,
          validationData,
          callbacks: runLogCallbacks(log, model),
        })
        logGradientFlow(log, model, probe, epoch)
      }
    } finally {
      log.close()
      model.dispose()
    }
    paths.push(file)
  }
  return paths
}
