/**
 * The sequence-to-sequence part of `npm run demo`: an LSTM encoder reads 3–8
 * digits, its final states start an LSTM decoder (`initialState: 'enc'`), and
 * the decoder learns to write the digits in reverse order (teacher forcing in
 * training). After every epoch `decode` greedy runs on held-out sources (none
 * seen in training) and its exact-match rate is printed and logged; at the
 * end a few reversals are decoded with beam search.
 */
import { join } from 'node:path'

import {
  type DigitReversal,
  digitReversal,
  exactMatch,
  REVERSAL_START,
  REVERSAL_STOP,
  REVERSAL_VOCABULARY,
} from '../data'
import { Model } from '../model'
import type { BatchLog } from '../model/fit'
import { GradNormHistory, globalClipThreshold, logStep, RunLogger, runLogPath } from '../report'

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

export interface Seq2seqDemoOptions {
  /** Training pairs. Default 8000. */
  examples?: number
  /** Held-out pairs decoded after every epoch. Default 500. */
  heldOut?: number
  epochs?: number
  hiddenSize?: number
  /** Held-out examples printed with their beam-search reversal at the end (then up to two it gets wrong). Default 5. */
  show?: number
  beamWidth?: number
  seed?: number
  out?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number }
  /** When given, the run log is written to `<runLogDir>/seq2seq-lstm/log.jsonl`. */
  runLogDir?: string
}

export interface Seq2seqDemoResult {
  /** Greedy exact match on the held-out pairs after every epoch, 0..1. */
  exactMatch: number[]
  /** Beam search's exact match on the held-out pairs after the last epoch. */
  beamExactMatch: number
  /** The printed examples: source, beam-search output, its log-probability. */
  examples: { source: number[]; decoded: number[]; logProb: number }[]
  seconds: number
  runLogs: string[]
}

const SPARKLINE_WIDTH = 16
const digits = (ids: ArrayLike<number>) => Array.from(ids).join('')

/** Trains the reversal model, printing progress and the greedy exact match of every epoch, then beam-search examples. */
export async function runSeq2seqDemo(options: Seq2seqDemoOptions = {}): Promise<Seq2seqDemoResult> {
  const {
    examples = 8000,
    heldOut: heldOutCount = 500,
    epochs = 10,
    hiddenSize = 64,
    show = 5,
    beamWidth = 4,
    seed = 1,
    out = process.stdout,
    runLogDir,
  } = options
  const started = performance.now()
  const train = digitReversal({ n: examples, seed })
  const heldOut = digitReversal({ n: heldOutCount, seed: seed + 1, exclude: train.sources })
  const model = reversalModel({ hiddenSize, seed, updates: epochs * Math.ceil(examples / REVERSAL_BATCH) })
  out.write(
    `Sequence to sequence: reverse 3-8 digits. An LSTM encoder's final states start an LSTM decoder (H = ${hiddenSize}); ` +
      `${examples} training pairs, ${heldOutCount} held-out pairs decoded greedily after every epoch.\n`,
  )
  const log =
    runLogDir === undefined
      ? undefined
      : new RunLogger(runLogPath(join(runLogDir, 'seq2seq-lstm')), {
          label: 'seq2seq LSTM',
          task: 'digit reversal (3-8 digits)',
          config: { examples, layers: model.graph.nodes, ...model.trainingSpec },
        })
  const clipThreshold = globalClipThreshold(model)
  const gradNorms = new GradNormHistory()
  const exact: number[] = []
  const onBatchEnd = (batch: BatchLog) => {
    gradNorms.add(batch.gradNorm)
    if (log !== undefined) logStep(log, batch, clipThreshold)
    if (out.isTTY) {
      const line = `  epoch ${batch.epoch + 1}/${epochs} (${batch.batch + 1}/${batch.batches}) loss ${batch.loss.toFixed(4)} ‖g‖ ${gradNorms.sparkline(SPARKLINE_WIDTH)}`
      out.write(`\r\x1b[2K${line.slice(0, (out.columns ?? Infinity) - 1)}`)
    }
  }
  const validationData = { x: heldOut.x, y: heldOut.y }
  let beam: Awaited<ReturnType<typeof beamExamples>>
  try {
    for (let epoch = 0; epoch < epochs; epoch++) {
      const { epochs: logs } = await model.fit(
        { x: train.x, y: train.y },
        {
          epochs: epoch + 1,
          initialEpoch: epoch,
          batchSize: REVERSAL_BATCH,
          validationData,
          callbacks: { onBatchEnd },
        },
      )
      const last = logs[logs.length - 1]!
      exact.push(exactMatch(await model.decode({ src: heldOut.x.src }, REVERSAL_DECODE), heldOut.targets))
      log?.epoch({
        epoch,
        step: last.step,
        loss: last.loss,
        validationLoss: last.valLoss ?? null,
        metrics: { 'token accuracy (teacher forced)': last.valAccuracy ?? null, 'greedy exact match': exact[epoch] },
        seconds: last.seconds,
      })
      if (out.isTTY) out.write('\r\x1b[2K')
      out.write(
        `  epoch ${epoch + 1}/${epochs}: loss ${last.loss.toFixed(4)}, held-out greedy exact match ${percent(exact[epoch])} (${last.seconds.toFixed(1)} s)\n`,
      )
    }
    beam = await beamExamples(model, heldOut, beamWidth, show)
  } finally {
    log?.close()
    model.dispose()
  }
  const { beamExactMatch, shown } = beam
  const seconds = (performance.now() - started) / 1000
  out.write(
    `Held-out exact match: greedy ${percent(exact[epochs - 1])}, beam search (width ${beamWidth}) ${percent(beamExactMatch)}.\n` +
      `Beam search on the first ${Math.min(show, heldOutCount)} held-out sources (and its first mistakes after them):\n`,
  )
  for (const { source, decoded, logProb } of shown) {
    const right = digits(decoded) === digits([...source].reverse())
    out.write(
      `  ${digits(source).padStart(8)} -> ${digits(decoded).padEnd(8)} ${right ? 'right' : 'WRONG'}  log P ${logProb.toFixed(3)}\n`,
    )
  }
  out.write(`Sequence-to-sequence demo: ${seconds.toFixed(1)} s in all (data, training and decoding).\n`)
  return { exactMatch: exact, beamExactMatch, examples: shown, seconds, runLogs: log === undefined ? [] : [log.file] }
}

/**
 * Beam search on every held-out source; the first `show` of them, and the first two it gets wrong
 * beyond those, are returned to be printed.
 */
async function beamExamples(model: Model, heldOut: DigitReversal, beamWidth: number, show: number) {
  const beam = await model.decode({ src: heldOut.x.src }, { ...REVERSAL_DECODE, beamWidth, scores: true })
  const wrong = (k: number) => digits(beam.ids[k]) !== digits(heldOut.targets[k])
  const picked = heldOut.sources.map((_, k) => k).filter((k) => k < show)
  picked.push(
    ...heldOut.sources
      .map((_, k) => k)
      .filter((k) => k >= show && wrong(k))
      .slice(0, 2),
  )
  const shown = picked.map((k) => ({
    source: Array.from(heldOut.sources[k]),
    decoded: Array.from(beam.ids[k]),
    logProb: beam.scores[k],
  }))
  return { beamExactMatch: exactMatch(beam.ids, heldOut.targets), shown }
}

function percent(fraction: number): string {
  return `${(100 * fraction).toFixed(1)} %`
}
