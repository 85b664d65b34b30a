/**
 * Run-log records shaped like a real run's, from a seeded generator: a loss that
 * falls with noise, lognormal gradient norms with spikes above the clipping
 * threshold, a cosine learning-rate schedule, gradient flow that stays level in
 * the LSTM and falls geometrically in the simple RNN, and a VQA evaluation.
 */
import { mulberry32 as random } from '../../ts/util/random'
import type { RunInfo, RunLogRecord } from '../../ts/report/log'

function gaussian(next: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next())
}

export interface SyntheticRunOptions {
  label: string
  /** `'c'` for an LSTM, `'h'` for a simple RNN. */
  quantity: 'c' | 'h'
  /** Factor by which the gradient shrinks per step back through time. */
  decay: number
  seed: number
  epochs?: number
  stepsPerEpoch?: number
  time?: number
  withVqa?: boolean
}

export function syntheticRun(options: SyntheticRunOptions): RunLogRecord[] {
  const { label, quantity, decay, seed, epochs = 6, stepsPerEpoch = 40, time = 30, withVqa = false } = options
  const next = random(seed)
  const run: RunInfo = {
    label,
    task: 'adding problem',
    startedAt: '2025-01-01T00:00:00.000Z',
    config: { hiddenSize: 32 },
  }
  const records: RunLogRecord[] = [{ type: 'run', format: 'odyssey-run-log', version: 1, ...run }]
  const total = epochs * stepsPerEpoch
  for (let epoch = 0; epoch < epochs; epoch++) {
    let sum = 0
    for (let i = 0; i < stepsPerEpoch; i++) {
      const step = epoch * stepsPerEpoch + i
      const loss = 0.17 * Math.exp((-3 * step) / total) * (1 + 0.15 * gaussian(next)) + 0.002
      const gradNorm = Math.exp(-0.5 + 0.6 * gaussian(next)) * (next() < 0.03 ? 8 : 1)
      sum += loss
      records.push({
        type: 'step',
        step,
        epoch,
        loss,
        gradNorm,
        clipThreshold: 1,
        clipped: gradNorm > 1,
        applied: true,
        learningRate: 0.01 * 0.5 * (1 + Math.cos((Math.PI * step) / total)),
        examplesPerSecond: 4000 + 300 * gaussian(next),
      })
    }
    const end = (epoch + 1) * stepsPerEpoch
    records.push({
      type: 'epoch',
      epoch,
      step: end,
      loss: sum / stepsPerEpoch,
      validationLoss: (sum / stepsPerEpoch) * 1.08,
      metrics: { 'mean abs error': Math.sqrt(sum / stepsPerEpoch) },
      seconds: 0.8,
    })
    const norms = Array.from(
      { length: time },
      (_, k) => 0.05 * decay ** (time - 1 - k) * (1 + 0.1 * gaussian(next)) * (1 + epoch / epochs),
    )
    records.push({
      type: 'gradientFlow',
      step: end,
      epoch,
      model: label,
      layer: quantity === 'c' ? 'lstm.l0' : 'rnn.l0',
      quantity,
      norms,
    })
  }
  if (withVqa) records.push(vqaRecord(total, epochs - 1))
  return records
}

function vqaRecord(step: number, epoch: number): RunLogRecord {
  const answers = ['yes', 'no', '2', '1', 'white', 'red', 'blue', '3']
  const counts = answers.map((_, i) => answers.map((__, j) => (i === j ? 40 - 3 * i : (i * 7 + j * 3) % 6)))
  return {
    type: 'vqa',
    step,
    epoch,
    split: 'val',
    accuracy: 0.5432,
    accuracyByQuestionType: {
      'is the': 0.78,
      'what color is the': 0.41,
      'how many': 0.33,
      'what is': 0.27,
      'are there': 0.74,
    },
    questionsByType: { 'is the': 800, 'what color is the': 400, 'how many': 350, 'what is': 600, 'are there': 300 },
    confusion: { answers, counts },
  }
}

/** A VQA run without training steps: epochs with accuracy metrics and one evaluation. */
export function syntheticVqaRun(label: string): RunLogRecord[] {
  const metrics = (epoch: number) => ({
    'validation accuracy': 0.3 + 0.05 * epoch,
    'yes/no accuracy': 0.6 + 0.04 * epoch,
  })
  return [
    { type: 'run', format: 'odyssey-run-log', version: 1, label, task: 'VQA (synthetic records)' },
    ...[0, 1, 2].map(
      (epoch): RunLogRecord => ({
        type: 'epoch',
        epoch,
        step: 100 * (epoch + 1),
        loss: 2 - 0.3 * epoch,
        validationLoss: 2.1 - 0.25 * epoch,
        metrics: metrics(epoch),
      }),
    ),
    vqaRecord(300, 2),
  ]
}

/** The LSTM-beside-simple-RNN pair on the adding problem; the LSTM run also carries a VQA evaluation. */
export function syntheticComparison(): RunLogRecord[] {
  return [
    ...syntheticRun({ label: 'LSTM', quantity: 'c', decay: 0.97, seed: 1, withVqa: true }),
    ...syntheticRun({ label: 'simple RNN', quantity: 'h', decay: 0.62, seed: 2 }),
  ]
}
