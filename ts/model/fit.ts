/**
 * `Model.fit`'s options, callbacks and history: the checks, and the bridge
 * from the addon's progress events to the user's callbacks.
 */
import { AsyncLocalStorage } from 'node:async_hooks'

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

/** What every callback gets besides its log. */
export interface FitContext {
  /** The model being trained (usable in a callback window, see `FitCallbacks`). */
  readonly model: FitModel
  /** This fit's `epochs`: the epoch count it trains up to. */
  readonly epochs: number
  /** Ends fit once the callbacks of this event are done: it resolves with the history so far (`stopped: true`). */
  stop(): void
}

/** The model as callbacks see it (`Model`; structural so that this file does not import it). */
export interface FitModel {
  getWeights(): Record<string, { data: Float32Array | Float64Array; shape: readonly number[] }>
  setWeights(weights: Record<string, { data: Float32Array | Float64Array; shape: readonly number[] }>): void
  save(dir: string, metadata?: unknown): Promise<void>
  readonly metadata: unknown
  get learningRate(): number
  setLearningRate(learningRate: number): void
}

/**
 * Called on the JS thread while the worker trains; every call arrives before `fit` settles.
 *
 * A callback may return a promise. At every epoch end (and at every batch end with
 * `awaitBatchEnd`) fit waits for the callbacks — each in turn, and every model operation
 * they start, awaited or not — before it goes on, and meanwhile the model accepts
 * `evaluate`, `predict`, `step`, `save`, `getWeights`, `setWeights`, `setLearningRate`...
 * from those callbacks (a *callback window*); a call from anywhere else is still refused
 * with `ODYSSEY_STATE`. Batch callbacks without `awaitBatchEnd` run while training goes on
 * and cannot use the model.
 *
 * A callback that throws or rejects — or a model operation it started that fails, even one it
 * did not await — stops the fit (before its next batch), which then rejects with that error:
 * an un-awaited `save` never becomes an unhandled rejection.
 */
export interface FitCallbacks {
  // `unknown`: what a callback returns is ignored unless it is a promise (a union with `void`
  // would refuse arrow functions that return a value, as `(log) => logs.push(log)` does).
  onBatchEnd?: (log: BatchLog, fit: FitContext) => unknown
  onEpochEnd?: (log: EpochLog, fit: FitContext) => unknown
  /** A batch whose update was skipped as non-finite (called before `onBatchEnd`). */
  onNonFinite?: (log: BatchLog, fit: FitContext) => unknown
  /** Wait for `onNonFinite` and `onBatchEnd` after every batch, lending them the model. Default false. */
  awaitBatchEnd?: boolean
}

export interface FitOptions {
  /** Train until this many epochs are done in total (Keras' `epochs`): epochs `initialEpoch..epochs−1` run. */
  epochs: number
  /**
   * Start at this epoch's first batch (it decides the shuffle order). Default: where the model
   * stopped — `model.epochs`, inside an epoch at its next batch; 0 for a new model.
   */
  initialEpoch?: number
  /**
   * Continue exactly where the model stopped (a loaded checkpoint, an aborted fit): its epoch and
   * batch, batch size, shuffle and seed; options that contradict them are refused. Default false.
   */
  resume?: boolean
  /** Examples per update; the last batch of an epoch may be smaller. Default 32, or the stopped run's. */
  batchSize?: number
  /** A new order every epoch, drawn from (seed, epoch). Default true, or the stopped run's. */
  shuffle?: boolean
  /** Seed of the shuffle. Default: the model's seed, or the stopped run's. */
  seed?: number
  /** Evaluated after every epoch (loss, and accuracy for classification losses). */
  validationData?: Dataset
  /** Truncated BPTT (sequences must fill their time axis): every `k1` steps, backpropagate through the last `k2`. */
  tbptt?: { k1: number; k2: number }
  /** One set of callbacks or several (`[modelCheckpoint(..), earlyStopping(..)]`), called in order. */
  callbacks?: FitCallbacks | FitCallbacks[]
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
  /** A callback ended the fit early (`FitContext.stop()`, e.g. `earlyStopping`). */
  stopped: boolean
}

const FIT_KEYS: readonly (keyof FitOptions)[] = [
  'epochs',
  'initialEpoch',
  'resume',
  'batchSize',
  'shuffle',
  'seed',
  'validationData',
  'tbptt',
  'callbacks',
  'signal',
  'stopOnNonFinite',
]

/**
 * Checks the options that go to the addon; what is left out the core fills in from the model's
 * position (`FitRequest` in crates/core/src/model/fit.rs).
 */
export function fitArgs(options: FitOptions): FitArgs {
  checkOptionKeys(options, FIT_KEYS, 'fit')
  const epochs = checkSize('epochs', options.epochs)
  const args: FitArgs = {
    epochs,
    stopOnNonFinite: checkBoolean('stopOnNonFinite', options.stopOnNonFinite ?? false),
  }
  if (options.initialEpoch !== undefined) args.initialEpoch = checkSeed('initialEpoch', options.initialEpoch)
  if (options.resume !== undefined) args.resume = checkBoolean('resume', options.resume)
  if (options.batchSize !== undefined) args.batchSize = checkSize('batchSize', options.batchSize)
  if (options.shuffle !== undefined) args.shuffle = checkBoolean('shuffle', options.shuffle)
  if (options.seed !== undefined) args.seed = checkSeed('seed', options.seed)
  if (options.tbptt !== undefined) {
    const tbptt = checkObject('tbptt', options.tbptt)
    checkOptionKeys(tbptt, ['k1', 'k2'], 'tbptt')
    args.tbptt = checkTbptt(tbptt)
  }
  const callbacks = callbackList(options.callbacks)
  args.awaitBatchEnd = callbacks.some((c) => c.awaitBatchEnd === true)
  args.awaitEpochEnd = callbacks.some((c) => c.onEpochEnd !== undefined)
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

/** The callbacks as a list, each checked. */
export function callbackList(callbacks: FitCallbacks | FitCallbacks[] | undefined): FitCallbacks[] {
  if (callbacks === undefined) return []
  const list = Array.isArray(callbacks) ? callbacks : [callbacks]
  for (const [i, entry] of list.entries()) {
    checkCallbacks(entry, Array.isArray(callbacks) ? `callbacks[${i}]` : 'callbacks')
  }
  return list
}

function checkCallbacks(callbacks: unknown, label: string): void {
  const fields = checkObject(label, callbacks)
  checkOptionKeys(fields, ['onBatchEnd', 'onEpochEnd', 'onNonFinite', 'awaitBatchEnd'], label)
  for (const [name, value] of Object.entries(fields)) {
    if (name === 'awaitBatchEnd') {
      if (value !== undefined) checkBoolean(`${label}.awaitBatchEnd`, value)
    } else if (value !== undefined && typeof value !== 'function') {
      throw new OdysseyTypeError('ODYSSEY_TYPE', `${label}.${name}: expected a function, got ${describe(value)}`)
    }
  }
}

function batchLog(e: BatchEvent): BatchLog {
  const { kind: _kind, window: _window, ...log } = e
  return log
}

export function epochLog(e: EpochEvent): EpochLog {
  const { kind: _kind, window: _window, validation, ...rest } = e
  const log: EpochLog = { ...rest }
  if (validation !== undefined && validation !== null) {
    log.valLoss = validation.loss
    if (validation.accuracy !== undefined && validation.accuracy !== null) log.valAccuracy = validation.accuracy
  }
  return log
}

export function history(output: FitOutput, extra: { partialEpoch?: PartialEpochLog; stopped?: boolean } = {}): History {
  const epochs = output.epochs.map(epochLog)
  const result: History = {
    stopped: extra.stopped ?? false,
    epochs,
    loss: epochs.map((e) => e.loss),
    valLoss: epochs.flatMap((e) => (e.valLoss === undefined ? [] : [e.valLoss])),
    valAccuracy: epochs.flatMap((e) => (e.valAccuracy === undefined ? [] : [e.valAccuracy])),
    nonFiniteUpdates: output.nonFiniteUpdates,
  }
  if (extra.partialEpoch !== undefined) result.partialEpoch = extra.partialEpoch
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
 * While a fit waits for its callbacks: the model operations those callbacks start (tracked
 * so that fit waits for them too, and so that their failures reach fit) and whether the
 * window is still open. `callbackWindow` tells which window, if any, the calling code runs in.
 */
export class CallbackWindow {
  open = true
  error: { thrown: unknown } | undefined
  private readonly pending = new Set<Promise<void>>()

  /** Follows `promise` (the very one given to the callback, so it never goes unhandled) and returns it. */
  track<T>(promise: Promise<T>): Promise<T> {
    const settled: Promise<void> = promise.then(
      () => {},
      (thrown) => {
        this.error ??= { thrown }
      },
    )
    this.pending.add(settled)
    void settled.then(() => this.pending.delete(settled))
    return promise
  }

  /** Resolves once every tracked operation has settled (including those started meanwhile). */
  async settled(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending])
  }
}

const windows = new AsyncLocalStorage<CallbackWindow>()

/** The callback window the calling code runs in (through every `await` of a callback), if any. */
export function callbackWindow(): CallbackWindow | undefined {
  return windows.getStore()
}

/** What the relay needs of the native fit: its cancel token, which also resumes it. */
interface FitControl {
  cancel(): void
  resume(): void
}

/**
 * Turns the addon's progress events into callback calls. An event with `window` runs its
 * callbacks in a `CallbackWindow` and resumes the native fit once they and their operations
 * are done. The first error a callback throws is kept (and the fit cancelled) so that `fit`
 * can reject with it.
 */
export class ProgressRelay {
  error: { thrown: unknown } | undefined
  /** The epoch in progress (for an aborted fit's result). */
  readonly epoch = new EpochTally()
  stopped = false
  /** The window open now, if any. */
  window: CallbackWindow | undefined
  private running: Promise<void> = Promise.resolve()
  private readonly context: FitContext

  constructor(
    private readonly callbacks: readonly FitCallbacks[],
    model: FitModel,
    epochs: number,
    private readonly control: FitControl,
  ) {
    this.context = {
      model,
      epochs,
      stop: () => {
        this.stopped = true
      },
    }
  }

  readonly onProgress = (event: BatchEvent | EpochEvent | EndEvent): void => {
    if (event.kind === 'end') return
    if (event.kind === 'batch') this.epoch.add(batchLog(event as BatchEvent))
    else this.epoch.finish()
    const windowed = (event as BatchEvent | EpochEvent).window
    if (!windowed) {
      if (this.error === undefined) this.follow(this.dispatch(event as BatchEvent | EpochEvent))
      return
    }
    const window = new CallbackWindow()
    this.window = window
    this.follow(windows.run(window, () => this.inWindow(event as BatchEvent | EpochEvent, window)))
  }

  /** Resolves once every callback run so far is done. */
  idle(): Promise<void> {
    return this.running
  }

  private async inWindow(event: BatchEvent | EpochEvent, window: CallbackWindow): Promise<void> {
    try {
      if (this.error === undefined) await this.dispatch(event)
    } catch (thrown) {
      this.fail(thrown)
    }
    await window.settled()
    if (window.error !== undefined) this.fail(window.error.thrown)
    window.open = false
    this.window = undefined
    if (this.stopped) this.control.cancel()
    this.control.resume()
  }

  /**
   * Calls every callback's hook for `event`, in order, waiting for each one that returns a promise.
   * Only a promise is awaited: the addon may deliver several events in one turn of the event loop
   * (the WebAssembly build does), and an `await` of a plain value would let the next event's hooks
   * run before this one's later hooks.
   */
  private async dispatch(event: BatchEvent | EpochEvent): Promise<void> {
    for (const call of this.hookCalls(event)) {
      const result = call()
      if (isPromiseLike(result)) await result
    }
    if (this.stopped) this.control.cancel()
  }

  /** The hooks `event` calls, in order: per callbacks object, `onNonFinite` (skipped batches) then `onBatchEnd`. */
  private hookCalls(event: BatchEvent | EpochEvent): (() => unknown)[] {
    if (event.kind === 'batch') {
      const log = batchLog(event as BatchEvent)
      return this.callbacks.flatMap((callbacks) => [
        ...(log.applied ? [] : [() => callbacks.onNonFinite?.(log, this.context)]),
        () => callbacks.onBatchEnd?.(log, this.context),
      ])
    }
    const log = epochLog(event as EpochEvent)
    return this.callbacks.map((callbacks) => () => callbacks.onEpochEnd?.(log, this.context))
  }

  /** Keeps `run` for `idle`; its failure, now or later, stops the fit. */
  private follow(run: Promise<void>): void {
    const settled = run.catch((thrown: unknown) => this.fail(thrown))
    this.running = Promise.all([this.running, settled]).then(() => {})
  }

  private fail(thrown: unknown): void {
    this.error ??= { thrown }
    this.control.cancel()
  }
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as { then?: unknown } | null | undefined)?.then === 'function'
}
