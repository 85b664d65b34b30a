/**
 * `Model.fit`'s options, callbacks and history: the checks, and the bridge
 * from the addon's progress events to the user's callbacks.
 */
import type { BatchEvent, EndEvent, EpochEvent, FitArgs, FitOutput } from '../../native/binding'
import { OdysseyRangeError, OdysseyTypeError } from '../errors'
import { checkBoolean, checkObject, checkOptionKeys, checkSeed, checkSize, describe } from '../validate'
import type { Dataset } from './data'

/** Progress of one batch (with truncated BPTT a batch is several updates). */
export interface BatchLog {
  /** 0-based epoch, and batch within it. */
  epoch: number
  batch: number
  batches: number
  examples: number
  /** Training loss of the batch (mean over its updates). */
  loss: number
  /** Global L2 norm of the gradients before clipping (the largest of the batch's updates). */
  gradNorm: number
  clipped: boolean
  /** False when an update was skipped because its loss or a gradient was not finite. */
  applied: boolean
  nonFiniteUpdates: number
  learningRate: number
  /** Training throughput of this batch. */
  examplesPerSecond: number
  /** Updates applied since the model was created (or loaded). */
  step: number
}

/** Progress of one finished epoch. */
export interface EpochLog {
  epoch: number
  /** Mean training loss over the epoch's finite batches, weighted by their examples (NaN if none). */
  loss: number
  nonFiniteUpdates: number
  /** With `validationData`: its loss, and its accuracy for classification losses. */
  valLoss?: number
  valAccuracy?: number
  /** Training time (validation excluded) and throughput. */
  seconds: number
  examplesPerSecond: number
  step: number
}

/**
 * Called on the JS thread while the worker trains; every call arrives before `fit` settles.
 * A callback that throws stops the fit (before its next batch), which then rejects with that error.
 */
export interface FitCallbacks {
  onBatchEnd?: (log: BatchLog) => void
  onEpochEnd?: (log: EpochLog) => void
  /** A batch whose update was skipped as non-finite (called before `onBatchEnd`). */
  onNonFinite?: (log: BatchLog) => void
}

export interface FitOptions {
  /** Train until this many epochs are done in total (Keras' `epochs`): epochs `initialEpoch..epochs−1` run. */
  epochs: number
  /** Where a resumed run starts; decides the shuffle order. Default 0. */
  initialEpoch?: number
  /** Examples per update; the last batch of an epoch may be smaller. Default 32. */
  batchSize?: number
  /** A new order every epoch, drawn from (seed, epoch). Default true. */
  shuffle?: boolean
  /** Seed of the shuffle. Default: the model's seed. */
  seed?: number
  /** Evaluated after every epoch (loss, and accuracy for classification losses). */
  validationData?: Dataset
  /** Truncated BPTT (sequences must fill their time axis): every `k1` steps, backpropagate through the last `k2`. */
  tbptt?: { k1: number; k2: number }
  callbacks?: FitCallbacks
  /** Aborting stops the fit before its next batch; `fit` rejects with an `OdysseyAbortError`. */
  signal?: AbortSignal
  /** Reject with `ODYSSEY_NON_FINITE` at the first skipped update instead of carrying on. Default false. */
  stopOnNonFinite?: boolean
}

/** The batches an aborted fit finished of the epoch it stopped in. */
export interface PartialEpochLog {
  epoch: number
  /** Batches finished, of `batches` in the epoch. */
  finishedBatches: number
  batches: number
  /** Mean training loss over the finished batches' finite ones, weighted by their examples (NaN if none). */
  loss: number
  nonFiniteUpdates: number
  step: number
}

/** What `fit` resolves to (Keras' `History`, flattened). */
export interface History {
  /** Every epoch that finished, in order. */
  epochs: EpochLog[]
  /** `epochs[i].loss`, and the validation metrics when there were any. */
  loss: number[]
  valLoss: number[]
  valAccuracy: number[]
  nonFiniteUpdates: number
  /** In an aborted fit's `error.result`: the epoch it stopped in, when a batch of it had finished. */
  partialEpoch?: PartialEpochLog
}

const FIT_KEYS: readonly (keyof FitOptions)[] = [
  'epochs',
  'initialEpoch',
  'batchSize',
  'shuffle',
  'seed',
  'validationData',
  'tbptt',
  'callbacks',
  'signal',
  'stopOnNonFinite',
]

/** Checks the options that go to the addon; `modelSeed` is the shuffle's default seed. */
export function fitArgs(options: FitOptions, modelSeed: number): FitArgs {
  checkOptionKeys(options, FIT_KEYS, 'fit')
  const epochs = checkSize('epochs', options.epochs)
  const initialEpoch = options.initialEpoch === undefined ? 0 : checkSeed('initialEpoch', options.initialEpoch)
  if (epochs <= initialEpoch) {
    throw new OdysseyRangeError(
      'ODYSSEY_INVALID',
      `epochs: must be greater than initialEpoch (${initialEpoch}): epochs counts all epochs, resumed or not; got ${epochs}`,
    )
  }
  const args: FitArgs = {
    epochs,
    initialEpoch,
    batchSize: checkSize('batchSize', options.batchSize ?? 32),
    shuffle: checkBoolean('shuffle', options.shuffle ?? true),
    seed: checkSeed('seed', options.seed ?? modelSeed),
    stopOnNonFinite: checkBoolean('stopOnNonFinite', options.stopOnNonFinite ?? false),
  }
  if (options.tbptt !== undefined) {
    const tbptt = checkObject('tbptt', options.tbptt)
    checkOptionKeys(tbptt, ['k1', 'k2'], 'tbptt')
    args.tbptt = checkTbptt(tbptt)
  }
  checkCallbacks(options.callbacks)
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
    throw new OdysseyTypeError('ODYSSEY_TYPE', `signal: expected an AbortSignal, got ${describe(options.signal)}`)
  }
  return args
}

export function checkTbptt(tbptt: Record<string, unknown>): { k1: number; k2: number } {
  const k1 = checkSize('tbptt.k1', tbptt.k1)
  const k2 = checkSize('tbptt.k2', tbptt.k2)
  if (k2 < k1) throw new OdysseyRangeError('ODYSSEY_INVALID', `tbptt: needs 1 <= k1 <= k2, got k1 = ${k1}, k2 = ${k2}`)
  return { k1, k2 }
}

function checkCallbacks(callbacks: unknown): void {
  if (callbacks === undefined) return
  const fields = checkObject('callbacks', callbacks)
  checkOptionKeys(fields, ['onBatchEnd', 'onEpochEnd', 'onNonFinite'], 'callbacks')
  for (const [name, value] of Object.entries(fields)) {
    if (value !== undefined && typeof value !== 'function') {
      throw new OdysseyTypeError('ODYSSEY_TYPE', `callbacks.${name}: expected a function, got ${describe(value)}`)
    }
  }
}

function batchLog(e: BatchEvent): BatchLog {
  const { kind: _kind, ...log } = e
  return log
}

export function epochLog(e: EpochEvent): EpochLog {
  const { kind: _kind, validation, ...rest } = e
  const log: EpochLog = { ...rest }
  if (validation !== undefined && validation !== null) {
    log.valLoss = validation.loss
    if (validation.accuracy !== undefined && validation.accuracy !== null) log.valAccuracy = validation.accuracy
  }
  return log
}

export function history(output: FitOutput, partialEpoch?: PartialEpochLog): History {
  const epochs = output.epochs.map(epochLog)
  const result: History = {
    epochs,
    loss: epochs.map((e) => e.loss),
    valLoss: epochs.flatMap((e) => (e.valLoss === undefined ? [] : [e.valLoss])),
    valAccuracy: epochs.flatMap((e) => (e.valAccuracy === undefined ? [] : [e.valAccuracy])),
    nonFiniteUpdates: output.nonFiniteUpdates,
  }
  if (partialEpoch !== undefined) result.partialEpoch = partialEpoch
  return result
}

/** Tallies the batches of the epoch in progress, as the core tallies a finished one. */
class EpochTally {
  private log: PartialEpochLog | undefined
  private finiteLossSum = 0
  private finiteExamples = 0

  add(batch: BatchLog): void {
    if (this.log?.epoch !== batch.epoch) {
      this.log = {
        epoch: batch.epoch,
        finishedBatches: 0,
        batches: batch.batches,
        loss: NaN,
        nonFiniteUpdates: 0,
        step: 0,
      }
      this.finiteLossSum = 0
      this.finiteExamples = 0
    }
    if (Number.isFinite(batch.loss)) {
      this.finiteLossSum += batch.loss * batch.examples
      this.finiteExamples += batch.examples
    }
    this.log.finishedBatches++
    this.log.nonFiniteUpdates += batch.nonFiniteUpdates
    this.log.step = batch.step
    this.log.loss = this.finiteExamples === 0 ? NaN : this.finiteLossSum / this.finiteExamples
  }

  /** Once the epoch's end arrived, nothing of it is partial. */
  finish(): void {
    this.log = undefined
  }

  get partial(): PartialEpochLog | undefined {
    return this.log === undefined ? undefined : { ...this.log }
  }
}

/**
 * Turns the addon's progress events into callback calls. The first error a
 * callback throws is kept (and `stop` is called) so that `fit` can reject with it.
 */
export class ProgressRelay {
  error: { thrown: unknown } | undefined
  /** The epoch in progress (for an aborted fit's result). */
  readonly epoch = new EpochTally()

  constructor(
    private readonly callbacks: FitCallbacks,
    private readonly stop: () => void,
  ) {}

  readonly onProgress = (event: BatchEvent | EpochEvent | EndEvent): void => {
    if (this.error !== undefined) return
    try {
      if (event.kind === 'batch') {
        const log = batchLog(event as BatchEvent)
        this.epoch.add(log)
        if (!log.applied) this.callbacks.onNonFinite?.(log)
        this.callbacks.onBatchEnd?.(log)
      } else if (event.kind === 'epoch') {
        this.epoch.finish()
        this.callbacks.onEpochEnd?.(epochLog(event as EpochEvent))
      }
    } catch (thrown) {
      this.error = { thrown }
      this.stop()
    }
  }
}
