/**
 * Learning, end to end: an LSTM solves the adding problem with T = 20 — it
 * drives the MSE from the constant-prediction baseline (≈ 0.167) below 0.05 —
 * within 20 s on two cores.
 */
import { describe, expect, it } from 'vitest'

import { ADDING_BASELINE_MSE, addingProblem, dense, lstm, sequential } from '../ts'

describe('the adding problem', () => {
  it('an LSTM learns it (T = 20): validation MSE from ≈ 0.167 to below 0.05 in under 20 s', async () => {
    const model = sequential({
      input: { kind: 'sequence', features: 2 },
      layers: [lstm({ hiddenSize: 32, output: 'last', forgetBias: 1 }), dense({ units: 1 })],
      loss: 'mse',
      optimizer: { type: 'adam', learningRate: 1e-2 },
      clip: { globalNorm: 1 },
      seed: 3,
    })
    const train = addingProblem({ n: 2000, time: 20, seed: 1 })
    const validationData = addingProblem({ n: 500, time: 20, seed: 2 })
    const untrained = await model.evaluate(validationData)
    expect(untrained.loss).toBeGreaterThan(ADDING_BASELINE_MSE * 0.9)
    const started = performance.now()
    const history = await model.fit(train, { epochs: 12, batchSize: 32, validationData })
    const seconds = (performance.now() - started) / 1000
    const best = Math.min(...history.valLoss)
    console.log(`adding T=20: ${model.stepCount} updates in ${seconds.toFixed(1)} s, validation MSE ${history.valLoss.map((l) => l.toFixed(3)).join(' ')}`)
    expect(best).toBeLessThan(0.05)
    expect(history.valLoss[history.valLoss.length - 1]).toBeLessThan(0.05)
    expect(seconds).toBeLessThan(20)
  })
})
