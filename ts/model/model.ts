/**
 * `Model`: a whole network — a graph of layers with a loss and an optimizer —
 * trained by the native core on a worker thread, with Keras' idioms:
 *
 * ```ts
 * const model = sequential({
 *   input: { kind: 'sequence', features: 2 },
 *   layers: [lstm({ hiddenSize: 32, output: 'last' }), dense({ units: 1 })],
 *   loss: 'mse',
 *   optimizer: { type: 'adam', learningRate: 1e-3 },
 *   clip: { globalNorm: 1 },
 * })
 * const history = await model.fit({ x, y }, { epochs: 10, batchSize: 32, validationData })
 * const { data, shape } = await model.predict(x)
 * ```
 *
 * Every argument is checked here first (`OdysseyTypeError` / `OdysseyRangeError`
 * naming it and the expected shape). One operation runs on a model at a time:
 * any call while `fit`, `evaluate`, `predict` or `save` is running rejects
 * with `ODYSSEY_STATE`, as does any call after `dispose()` — except the calls
 * of fit's own callbacks while fit waits for them (see `FitCallbacks`).
 */
import type { InputArgs, NativeModel } from '../../native/binding'
import { fromNativeError, OdysseyAbortError, OdysseyRangeError, OdysseyTypeError } from '../errors'
import { stepStage, wasmMemory, withoutStackTraces } from '../emnapi'
import { loadedBindingKind, loadNative } from '../native'
import type { Dtype, FloatArray, Tensor } from '../types'
import {
  checkBoolean,
  checkObject,
  checkOptionKeys,
  checkSize,
  checkOutputBuffer,
  checkTensorData,
  checkWeightTensors,
  describe,
} from '../validate'
import { checkDataset, checkInputs, checkStepInputs, type Dataset, type Inputs, type StepInputs } from './data'
import {
  type CallbackWindow,
  callbackList,
  callbackWindow,
  checkTbptt,
  fitArgs,
  history,
  ProgressRelay,
  type FitOptions,
  type History,
} from './fit'
import { checkStateDictArgs } from './interop'
import { decodeArgs, type DecodeOptions, type ScoredDecoding } from './decode'
import { generate, type GenerateOptions } from './generate'
import { probabilitiesOf } from './probabilities'
import { sequentialGraph, type Layer } from './layers'
import { describeGraph, type DescribedGraph, type GraphSpec, type InputSpec, type Loss } from './spec'
import { TRAINING_KEYS, trainingSpecJson, type TrainingConfig } from './training'
import { exportOnnx, type OnnxExportOptions } from '../onnx'
import { encodeSafetensors } from '../util/safetensors'

/** Options of `Model.step`. */
export interface StepOptions {
  /** Receives the output (`batch · width` values of the model's dtype) instead of a new array. */
  out?: FloatArray
}

/** A model graph and how to train it. */
export interface ModelConfig extends GraphSpec, TrainingConfig {}

/** A stack of layers on one input. */
export interface SequentialConfig extends TrainingConfig {
  /** The input; its name defaults to `'x'`. */
  input:
    | { kind: 'sequence'; features: number; name?: string }
    | { kind: 'tokens'; name?: string }
    | { kind: 'vector'; features: number; name?: string }
  layers: Layer[]
  loss: Loss
  /** Seed of every initial weight, dropout mask and (by default) the shuffle. Default 0. */
  seed?: number
  /** Default `'float32'`; data arrays must be of this type (`Float32Array` / `Float64Array`). */
  dtype?: Dtype
}

/** What one update did. */
export interface StepReport {
  loss: number
  /** Global L2 norm of the gradients before clipping. */
  gradNorm: number
  clipped: boolean
  /** False when the loss or a gradient was not finite and the update was skipped. */
  applied: boolean
  learningRate: number
}

/** Loss over a dataset, and accuracy for classification losses. */
export interface Evaluation {
  loss: number
  /** crossEntropy: share of (valid) rows whose largest logit is the target class; binaryCrossEntropy: share of elements on the right side of 0.5. */
  accuracy?: number
  examples: number
}

/** One recurrent node's state: `h` and, for an LSTM, `c`, each `[layers·directions, batch, H]`. */
export interface RecurrentState {
  h: Tensor
  c?: Tensor
}

/** How the gradient flows back through time in one recurrent layer entry (SPEC §2). */
export interface GradientFlow {
  /** The recurrent node and the layer entry in it: `'l0'`, `'l1'`, `'l0_reverse'`, ... */
  node: string
  layer: string
  /** `[time]`: ‖∂J/∂c(k)‖ (LSTM) or ‖∂J/∂h(k)‖ (GRU, simple RNN) over the batch, for every step k. */
  norms: Float64Array
}

const GRAPH_KEYS = ['inputs', 'nodes', 'output', 'loss', 'dtype', 'seed'] as const
const SEQUENTIAL_KEYS = ['input', 'layers', 'loss', 'seed', 'dtype', ...TRAINING_KEYS] as const

/** Runs a synchronous call into the addon; its exceptions become typed errors. */
function callNative<T>(call: () => T): T {
  try {
    return call()
  } catch (error) {
    throw fromNativeError(error)
  }
}

/** Awaits an async call into the addon; its rejections become typed errors. */
async function awaitNative<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call()
  } catch (error) {
    throw fromNativeError(error)
  }
}

/**
 * The datasets of the Model API reach the core unchecked for non-finite values (the core checks
 * them all, see `checkDataset`). When it refuses one, `recheck` runs the TypeScript check on the
 * same arguments: its error names the argument and the value's coordinates. Any other error, or
 * a value changed back since the call, is rethrown as it is.
 */
function explainNonFinite(error: unknown, recheck: () => unknown): never {
  if ((error as { code?: unknown } | undefined)?.code === 'ODYSSEY_NON_FINITE') recheck()
  throw error
}

/** `metadata` as JSON, or a typed error naming it (BigInts, cycles and functions have no JSON form). */
function metadataJson(metadata: unknown): string {
  let json: string | undefined
  try {
    json = JSON.stringify(metadata)
  } catch (error) {
    throw new OdysseyTypeError('ODYSSEY_TYPE', `metadata: cannot be stored as JSON (${(error as Error).message})`, {
      cause: error,
    })
  }
  if (json === undefined)
    throw new OdysseyTypeError('ODYSSEY_TYPE', `metadata: expected a JSON value, got ${describe(metadata)}`)
  return json
}

function checkBatchSize(options: unknown, label: string, otherKeys: readonly string[] = []): number {
  if (options === undefined) return 32
  const fields = checkObject(`${label} options`, options)
  checkOptionKeys(fields, ['batchSize', ...otherKeys], label)
  return checkSize('batchSize', fields.batchSize ?? 32)
}

/** Truncated BPTT cuts the time axis into windows, so every sequence must fill it. */
function checkFullLengths(inputs: InputArgs[], specs: readonly InputSpec[], label: string): void {
  if (!specs.some((spec) => spec.kind !== 'vector')) {
    throw new OdysseyRangeError('ODYSSEY_INVALID', 'tbptt: truncated BPTT needs a sequence or tokens input')
  }
  inputs.forEach((input, k) => {
    const time = input.shape[1]
    const short = input.lengths?.findIndex((length) => length !== time) ?? -1
    if (specs[k].kind !== 'vector' && short >= 0) {
      throw new OdysseyRangeError(
        'ODYSSEY_LENGTH',
        `${label}.x.${specs[k].name}.lengths[${short}] = ${input.lengths![short]}: truncated BPTT needs every sequence to fill the time axis (${time})`,
      )
    }
  })
}

export class Model {
  /** The checked graph, every default filled in. */
  readonly graph: Readonly<Required<GraphSpec>>
  private readonly described: DescribedGraph
  private readonly native: NativeModel
  private disposed = false
  /** The running fit's relay: its callback window is the only code that may use the model meanwhile. */
  private fitting: ProgressRelay | undefined
  private savedMetadata: unknown

  private constructor(native: NativeModel, described: DescribedGraph) {
    this.native = native
    this.described = described
    this.graph = described.spec
  }

  /**
   * A model from a graph (inputs, nodes in topological order, output, loss) and a training
   * configuration — for anything `sequential` cannot express (several inputs, merges).
   * @throws OdysseyTypeError / OdysseyRangeError naming the offending input, node or option.
   */
  static fromSpec(config: ModelConfig): Model {
    checkOptionKeys(config, [...GRAPH_KEYS, ...TRAINING_KEYS], 'Model.fromSpec')
    const { optimizer, schedule, clip, recurrentClip, classWeights, ...graph } = config
    const described = describeGraph(graph)
    const training = trainingSpecJson({ optimizer, schedule, clip, recurrentClip, classWeights })
    const { NativeModel } = loadNative()
    const native = callNative(() => new NativeModel(JSON.stringify(described.spec), JSON.stringify(training)))
    return new Model(native, described)
  }

  /**
   * Restores a model saved with `save`: graph, weights, optimizer state, step counter, the
   * epochs finished and where fit stood (`epochs`, `stepCount`), and `metadata`, so that
   * `fit` goes on bit for bit where training stopped.
   */
  static async load(dir: string): Promise<Model> {
    if (typeof dir !== 'string' || dir === '')
      throw new OdysseyRangeError('ODYSSEY_INVALID', `dir: expected a directory path, got ${JSON.stringify(dir)}`)
    const { NativeModel } = loadNative()
    const native = await awaitNative(() => NativeModel.load(dir))
    const model = new Model(native, describeGraph(JSON.parse(native.modelSpec) as GraphSpec))
    const metadata = native.metadata
    if (metadata !== null && metadata !== undefined) model.savedMetadata = JSON.parse(metadata)
    return model
  }

  get dtype(): Dtype {
    return this.graph.dtype
  }

  /** The training configuration in the core's form (`TrainingSpec` JSON, defaults filled in). */
  get trainingSpec(): Record<string, unknown> {
    return JSON.parse(this.native.trainingSpec) as Record<string, unknown>
  }

  /** Updates applied so far. */
  get stepCount(): number {
    this.checkUsable('stepCount')
    return callNative(() => this.native.stepCount())
  }

  /** Epochs `fit` has finished on this model, over its checkpoints: where the next fit starts by default. */
  get epochs(): number {
    this.checkUsable('epochs')
    return callNative(() => this.native.epochs())
  }

  /** What the last `save` was given (or the loaded checkpoint's), as JSON gives it back; undefined when none. */
  get metadata(): unknown {
    return this.savedMetadata
  }

  /** The base learning rate (a schedule scales it per step). */
  get learningRate(): number {
    return this.trainingSpec.learningRate as number
  }

  /**
   * Replaces the base learning rate from the next update on — in a callback of `fit`, from its
   * next batch (as `reduceLrOnPlateau` does). Saved with the checkpoint.
   */
  setLearningRate(learningRate: number): void {
    this.checkUsable('setLearningRate')
    if (typeof learningRate !== 'number')
      throw new OdysseyTypeError('ODYSSEY_TYPE', `learningRate: expected a number, got ${describe(learningRate)}`)
    callNative(() => this.native.setLearningRate(learningRate))
  }

  /**
   * Trains on `data` on a worker thread; the event loop keeps running. Resolves with the
   * history once epochs `initialEpoch..epochs−1` are done.
   *
   * - `data.x`: the inputs (see `Inputs`), `data.y`: the targets (see `Targets`), in the model's dtype.
   * - Updates whose loss or gradient is not finite are skipped (weights untouched), counted in
   *   the logs and reported to `callbacks.onNonFinite`; with `stopOnNonFinite` the first one
   *   rejects fit with `ODYSSEY_NON_FINITE`.
   * - Aborting `signal` stops before the next batch and rejects with `OdysseyAbortError`
   *   (`error.name === 'AbortError'`, `error.result`: the history so far). The model keeps the
   *   weights of its last finished update and stays usable.
   *
   * @throws OdysseyRangeError `ODYSSEY_STATE` when another operation is running on this model.
   */
  async fit(data: Dataset, options: FitOptions): Promise<History> {
    if (this.checkUsable('fit') !== undefined)
      throw new OdysseyRangeError('ODYSSEY_STATE', 'fit cannot run inside a callback of fit on the same model')
    const args = fitArgs(options)
    const datasets = (finite: boolean) => ({
      train: checkDataset(data, this.described, 'data', finite),
      validation:
        options.validationData === undefined
          ? undefined
          : checkDataset(options.validationData, this.described, 'validationData', finite),
    })
    const { train, validation } = datasets(false)
    if (args.tbptt !== undefined) checkFullLengths(train.args.inputs, this.graph.inputs, 'data')
    const { signal } = options
    if (signal?.aborted)
      throw new OdysseyAbortError(
        'fit was aborted before it started',
        history({ epochs: [], cancelled: true, nonFiniteUpdates: 0 }),
        { cause: signal.reason },
      )
    const { CancelToken } = loadNative()
    const token = new CancelToken()
    const relay = new ProgressRelay(callbackList(options.callbacks), this, args.epochs, token)
    const running = callNative(() => this.native.fit(train.args, validation?.args, args, relay.onProgress, token))
    this.fitting = relay
    const abort = () => token.cancel()
    signal?.addEventListener('abort', abort, { once: true })
    try {
      const output = await awaitNative(() => running).catch((error) => explainNonFinite(error, () => datasets(true)))
      // Callbacks still running (the fit was cancelled while it waited for them) finish first.
      await relay.idle()
      if (relay.error !== undefined) throw relay.error.thrown
      const partialEpoch = output.cancelled && !relay.stopped ? relay.epoch.partial : undefined
      const result = history(output, { partialEpoch, stopped: relay.stopped })
      if (output.cancelled && !relay.stopped)
        throw new OdysseyAbortError(`fit was aborted after ${result.epochs.length} finished epoch(s)`, result, {
          cause: signal?.reason,
        })
      return result
    } finally {
      this.fitting = undefined
      signal?.removeEventListener('abort', abort)
    }
  }

  /** Loss (and accuracy for classification losses) over `data`, in batches, on a worker thread. */
  evaluate(data: Dataset, options?: { batchSize?: number }): Promise<Evaluation> {
    return this.operation('evaluate', () => this.evaluateNow(data, options))
  }

  private async evaluateNow(data: Dataset, options?: { batchSize?: number }): Promise<Evaluation> {
    const batchSize = checkBatchSize(options, 'evaluate')
    const { args } = checkDataset(data, this.described, 'data', false)
    const result = await awaitNative(() => this.native.evaluate(args, batchSize)).catch((error) =>
      explainNonFinite(error, () => checkDataset(data, this.described, 'data')),
    )
    const evaluation: Evaluation = { loss: result.loss, examples: result.examples }
    if (result.accuracy !== undefined && result.accuracy !== null) evaluation.accuracy = result.accuracy
    return evaluation
  }

  /**
   * The output for every example — `[n, width]`, or `[n, time, width]` for sequence outputs — in
   * batches, on a worker thread: logits for the crossEntropy and binaryCrossEntropy losses, unless
   * `probabilities: true` applies their softmax (over the last axis) or sigmoid.
   */
  predict(x: Inputs, options?: { batchSize?: number; probabilities?: boolean }): Promise<Tensor> {
    return this.operation('predict', () => this.predictNow(x, options))
  }

  private async predictNow(x: Inputs, options?: { batchSize?: number; probabilities?: boolean }): Promise<Tensor> {
    const batchSize = checkBatchSize(options, 'predict', ['probabilities'])
    const wanted = options?.probabilities === undefined ? false : checkBoolean('probabilities', options.probabilities)
    const convert = wanted ? probabilitiesOf(this.graph.loss) : (output: Tensor) => output
    const inputs = checkInputs(x, this.described, 'x', false)
    const { data, shape } = await awaitNative(() => this.native.predict({ inputs: inputs.args }, batchSize)).catch(
      (error) => explainNonFinite(error, () => checkInputs(x, this.described, 'x')),
    )
    return convert({ data, shape })
  }

  /** One training step on one batch, synchronously (blocks the event loop for its duration). */
  trainStep(batch: Dataset): StepReport
  /** Truncated BPTT over one batch: one report per window of `k1` steps. */
  trainStep(batch: Dataset, options: { tbptt: { k1: number; k2: number } }): StepReport[]
  trainStep(batch: Dataset, options?: { tbptt: { k1: number; k2: number } }): StepReport | StepReport[] {
    this.checkUsable('trainStep')
    let tbptt: { k1: number; k2: number } | undefined
    if (options !== undefined) {
      const fields = checkObject('trainStep options', options)
      checkOptionKeys(fields, ['tbptt'], 'trainStep')
      tbptt = checkTbptt(checkObject('tbptt', fields.tbptt))
    }
    const { args } = checkDataset(batch, this.described, 'batch', false)
    if (tbptt !== undefined) checkFullLengths(args.inputs, this.graph.inputs, 'batch')
    const reports = this.onBatch(batch, () => this.native.trainStep(args, tbptt))
    return tbptt === undefined ? reports[0] : reports
  }

  /** A synchronous call on `batch`, checked without its values (see `explainNonFinite`). */
  private onBatch<T>(batch: Dataset, call: () => T): T {
    try {
      return callNative(call)
    } catch (error) {
      explainNonFinite(error, () => checkDataset(batch, this.described, 'batch'))
    }
  }

  /**
   * How the loss's gradient reaches back through time in every recurrent layer for this batch
   * (weights untouched): the vanishing gradient of the simple RNN beside the LSTM's and the GRU's (SPEC §2).
   */
  gradientFlow(batch: Dataset): GradientFlow[] {
    this.checkUsable('gradientFlow')
    const { args } = checkDataset(batch, this.described, 'batch', false)
    return this.onBatch(batch, () => this.native.gradientFlow(args))
  }

  /**
   * Streaming inference, one time step per call: sequence inputs `[batch, features]`, token
   * inputs `[batch]` (ids), vector inputs `[batch, features]`. Returns the output at this step,
   * `[batch, width]`, carrying every recurrent layer's state to the next call; over a whole
   * sequence it gives exactly what `predict` gives. Not for bidirectional layers. Continues from
   * whatever state is set (`setState`); a node with `initialState` starts from that value until it
   * carries a state of its own.
   *
   * A model with one sequence input also takes the step's values alone, a `Float32Array`
   * (`Float64Array` for float64 models) of `batch · features` values. `options.out`, a typed
   * array of the model's dtype and `batch · width` values, receives the output (and is returned
   * as its `data`) instead of a new array: a loop of steps then allocates nothing.
   */
  step(x: StepInputs | FloatArray, options?: StepOptions): Tensor {
    this.checkUsable('step')
    const width = this.described.output.width
    const flat = this.flatStep(x)
    if (flat !== undefined) {
      const { data, batch } = flat
      if (loadedBindingKind() === 'native') {
        const out = this.stepOut(options, batch * width)
        callNative(() => this.native.stepInto(data, batch, out))
        return { data: out, shape: [batch, width] }
      }
      // The WebAssembly build gets a copy of a typed array in its own memory (emnapi), so writes
      // into `out` would never reach JS: in Node x and the output go through the module's
      // streaming stage (views on its memory); elsewhere the step returns its output.
      const out = options === undefined ? undefined : this.stepOut(options, batch * width)
      const memory = wasmMemory(loadNative())
      if (memory !== undefined) {
        const stage = stepStage(this.native, memory, data instanceof Float64Array, data.length, batch * width)
        stage.x.set(data)
        callNative(() => this.native.stepStaged(batch))
        if (out === undefined) return { data: stage.out.slice(), shape: [batch, width] }
        out.set(stage.out)
        return { data: out, shape: [batch, width] }
      }
      const stepped = callNative(() => withoutStackTraces(() => this.native.stepFlat(data, batch, width)))
      out?.set(stepped)
      return { data: out ?? stepped, shape: [batch, width] }
    }
    const inputs: InputArgs[] = checkStepInputs(x, this.described)
    const out = options === undefined ? undefined : this.stepOut(options, inputs[0].shape[0] * width)
    const { data, shape } = callNative(() => this.native.step(inputs))
    out?.set(data)
    // A sequence output has a time axis of one step here.
    return { data: out ?? data, shape: shape.length === 3 ? [shape[0], shape[2]] : shape }
  }

  /**
   * The values and batch of a step `model.stepInto` takes (one sequence input, float data),
   * checked; undefined for the steps that take the graph's path.
   */
  private flatStep(x: unknown): { data: FloatArray; batch: number } | undefined {
    const inputs = this.graph.inputs
    const single = inputs.length === 1 && inputs[0].kind === 'sequence' ? inputs[0] : undefined
    if (!ArrayBuffer.isView(x)) {
      if (single === undefined || typeof x !== 'object' || x === null || !('data' in x)) return undefined
      const [input] = checkStepInputs(x, this.described)
      return { data: input.data as FloatArray, batch: input.shape[0] }
    }
    if (single === undefined)
      throw new OdysseyTypeError(
        'ODYSSEY_TYPE',
        'x: a bare typed array is a step of a model with one sequence input; give { data, shape } per input',
      )
    const features = single.features
    const length = (x as unknown as ArrayLike<unknown>).length ?? 0
    if (length === 0 || length % features !== 0)
      throw new OdysseyRangeError(
        'ODYSSEY_SHAPE',
        `x: expected batch · features (features = ${features}) values, [batch, features] flat, got ${length}`,
      )
    const batch = length / features
    const data = checkTensorData(
      'x',
      x,
      this.dtype,
      [
        ['batch', batch],
        ['features', features],
      ],
      '',
      'model',
    )
    return { data, batch }
  }

  /** `options.out` checked (the model's dtype, `length` values), or a new array. */
  private stepOut(options: StepOptions | undefined, length: number): FloatArray {
    if (options === undefined) return this.dtype === 'float64' ? new Float64Array(length) : new Float32Array(length)
    const fields = checkObject('step options', options)
    checkOptionKeys(fields, ['out'], 'step')
    if (fields.out === undefined) return this.stepOut(undefined, length)
    // Only its type and length: it holds the previous step's output, which may be NaN.
    return checkOutputBuffer('out', fields.out, this.dtype, [['batch · width', length]], '', 'model')
  }

  /**
   * Decodes an encoder–decoder model (see `DecodeOptions`) on a worker thread: the nodes that do
   * not read `decoderInput` (the encoder) run once on `inputs` — every model input but that one —
   * then the decoder runs step by step from `start`, reading its own tokens, until `stop` or
   * `maxSteps`: greedy for `beamWidth` 1, beam search otherwise (never less likely than greedy).
   * Returns the ids of each example without `start` and `stop`, with `scores: true` also their
   * log-probabilities.
   */
  decode(inputs: Inputs, options: DecodeOptions & { scores: true }): Promise<ScoredDecoding>
  decode(inputs: Inputs, options: DecodeOptions): Promise<Uint32Array[]>
  decode(inputs: Inputs, options: DecodeOptions): Promise<Uint32Array[] | ScoredDecoding> {
    return this.operation('decode', async () => {
      const args = decodeArgs(inputs, this.described, options)
      const { ids, logProbs } = await awaitNative(() => this.native.decode(args.inputs, args.options))
      return args.scores ? { ids, scores: logProbs } : ids
    })
  }

  /**
   * Samples token ids from a token language model through `step` (see `GenerateOptions`):
   * the prompt is fed to `batch` new sequences, then each sampled token is fed back;
   * temperature 0 is greedy. Returns one `Uint32Array` per sequence, without the prompt and
   * the `stop` token. Synchronous like `step`, and leaves `step`'s state after the last token.
   */
  generate(options: GenerateOptions): Uint32Array[] {
    this.checkUsable('generate')
    return generate(this, this.described, options)
  }

  /**
   * The state the next `step` starts from, per recurrent node: `h` (and `c` for an LSTM), each
   * `[layers·directions, batch, H]` (PyTorch's `(h_n, c_n)`, entries layer-major, forward first).
   * Empty before the first `step` and after `resetState` (zeros, or a node's `initialState`).
   */
  getState(): Record<string, RecurrentState> {
    this.checkUsable('getState')
    const nodes = callNative(() => this.native.getState())
    return Object.fromEntries(nodes.map(({ node, h, c }) => [node, c === undefined || c === null ? { h } : { h, c }]))
  }

  /**
   * Sets the state the next `step` starts from, for any of the recurrent nodes (beam search, a
   * decoder started from a state computed elsewhere). Every entry is checked before anything
   * changes: a recurrent node's name, `h` (and for an LSTM `c`) of shape
   * `[layers·directions, batch, H]` with one batch across them, finite values of the model's dtype.
   * Nodes left out keep their state when the batch is the same, and start from zeros otherwise.
   */
  setState(state: Record<string, RecurrentState>): void {
    this.checkUsable('setState')
    const nodes = Object.entries(checkObject('state', state)).map(([node, value]) => {
      const fields = checkObject(`state.${node}`, value)
      checkOptionKeys(fields, ['h', 'c'], `state.${node}`)
      const tensor = (part: 'h' | 'c') => {
        const [checked] = checkWeightTensors({ [`state.${node}.${part}`]: fields[part] as Tensor }, this.dtype)
        return { data: checked.data, shape: checked.shape }
      }
      return { node, h: tensor('h'), c: fields.c === undefined ? undefined : tensor('c') }
    })
    callNative(() => this.native.setState(nodes))
  }

  /** Forgets the state `step` carries: the next `step` starts new sequences (also for another batch size). */
  resetState(): void {
    this.checkUsable('resetState')
    callNative(() => this.native.resetState())
  }

  /** Copies of every tensor under `"{node}.{PyTorch name}"` keys (`lstm.weight_ih_l0`, `dense.weight`). */
  getWeights(): Record<string, Tensor> {
    this.checkUsable('getWeights')
    const tensors = callNative(() => this.native.getWeights())
    return Object.fromEntries(tensors.map(({ name, shape, data }) => [name, { data, shape }]))
  }

  /**
   * Every tensor as the bytes of a safetensors file under the {@link getWeights} keys: the
   * `model.safetensors` of a checkpoint (`save`), in the model's dtype (`F32` or `F64`). For
   * where there is no file system — a browser page offers them as a download.
   */
  toSafetensors(): Uint8Array {
    const tensors = Object.entries(this.getWeights()).map(([name, { data, shape }]) => ({
      name,
      dtype: data instanceof Float64Array ? ('F64' as const) : ('F32' as const),
      shape,
      data,
    }))
    return encodeSafetensors(tensors)
  }

  /**
   * Replaces tensors by key (any subset); every entry is checked — key, shape, dtype, finite
   * values — before anything changes.
   */
  setWeights(weights: Record<string, Tensor>): void {
    this.checkUsable('setWeights')
    const tensors = checkWeightTensors(weights, this.dtype, 'model')
    callNative(() => this.native.setWeights(tensors))
  }

  /**
   * Writes the model to `path` as ONNX (float32, IR 8, opset 17), atomically; see `exportOnnx`.
   * @throws OnnxUnsupportedError for the LSTM variants ONNX cannot express (NIG, NFG, NOG, FGR).
   */
  exportOnnx(path: string, options?: OnnxExportOptions): Promise<void> {
    return this.operation('exportOnnx', async () => exportOnnx(this.graph, this.getWeights(), path, options))
  }

  /**
   * Saves a checkpoint into `dir` (weights, optimizer state, counters, the specs, `metadata`)
   * on a worker thread. Crash-safe: the previous checkpoint stays until the new one is complete.
   */
  save(dir: string, metadata?: unknown): Promise<void> {
    return this.operation('save', () => this.saveNow(dir, metadata))
  }

  private async saveNow(dir: string, metadata?: unknown): Promise<void> {
    if (typeof dir !== 'string' || dir === '')
      throw new OdysseyRangeError('ODYSSEY_INVALID', `dir: expected a directory path, got ${JSON.stringify(dir)}`)
    const json = metadata === undefined ? undefined : metadataJson(metadata)
    await awaitNative(() => this.native.save(dir, json))
    this.savedMetadata = json === undefined ? undefined : JSON.parse(json)
  }

  /**
   * Loads a PyTorch `nn.LSTM` / `nn.GRU` / `nn.RNN` state dict — `safetensors.torch.save_file(module.state_dict(), path)` —
   * into the `lstm`, `gru` or `rnn` node `node`, on a worker thread. The file must hold exactly the node's
   * tensors (PyTorch names, shapes, `F32` for a float32 model, `F64` for float64); a plain `nn.LSTM`
   * has no peepholes, so build that node with `peepholes: false`. Nothing changes unless all fits.
   * @throws OdysseyError `ODYSSEY_CHECKPOINT` naming the file, the tensor and both shapes; `ODYSSEY_IO`.
   */
  importStateDict(node: string, path: string): Promise<void> {
    return this.operation('importStateDict', async () => {
      const args = checkStateDictArgs(this.graph, node, path, 'importStateDict')
      await awaitNative(() => this.native.importStateDict(args.node, args.path))
    })
  }

  /**
   * Writes the `lstm`, `gru` or `rnn` node `node` as a PyTorch state dict (safetensors, atomically) that
   * `module.load_state_dict(safetensors.torch.load_file(path))` reads; see `importStateDict`.
   */
  exportStateDict(node: string, path: string): Promise<void> {
    return this.operation('exportStateDict', async () => {
      const args = checkStateDictArgs(this.graph, node, path, 'exportStateDict')
      await awaitNative(() => this.native.exportStateDict(args.node, args.path))
    })
  }

  /** Frees the native model; every later call throws `ODYSSEY_STATE`. Throws while an operation is running. */
  dispose(): void {
    if (this.disposed) return
    callNative(() => this.native.dispose())
    this.disposed = true
  }

  /**
   * Refuses a disposed model, and any call while fit runs except from the callback window fit
   * is waiting for (returned then: the operation is part of it). The lease in the addon is the
   * authority on one operation at a time; this adds what only JS can know: who is calling.
   */
  private checkUsable(operation: string): CallbackWindow | undefined {
    if (this.disposed)
      throw new OdysseyRangeError('ODYSSEY_STATE', 'this model has been disposed; create or load another one')
    if (this.fitting === undefined) return undefined
    const window = callbackWindow()
    if (window !== undefined && window === this.fitting.window) return window
    throw new OdysseyRangeError(
      'ODYSSEY_STATE',
      `fit is already running on this model; ${operation} has to wait until it settles (fit's callbacks may use ` +
        'the model while fit waits for them: at epoch ends, and at batch ends with awaitBatchEnd)',
    )
  }

  /** Runs an async operation, as part of the callback window it is called from, if any. */
  private operation<T>(name: string, run: () => Promise<T>): Promise<T> {
    let window: CallbackWindow | undefined
    try {
      window = this.checkUsable(name)
    } catch (error) {
      return Promise.reject(error)
    }
    const promise = run()
    return window === undefined ? promise : window.track(promise)
  }
}

/**
 * A model that applies `layers` one after the other to a single input (Keras' `Sequential`).
 * Nodes are named after their type (`lstm`, `lstm_1`, `dense`) unless a layer sets `name`.
 */
export function sequential(config: SequentialConfig): Model {
  checkOptionKeys(config, SEQUENTIAL_KEYS, 'sequential')
  const { input, layers, loss, seed, dtype, ...training } = config
  const inputSpec = checkObject('input', input) as unknown as Omit<InputSpec, 'name'> & { name?: string }
  const graph = sequentialGraph(inputSpec, layers, loss)
  return Model.fromSpec({
    ...graph,
    ...training,
    ...(seed === undefined ? {} : { seed }),
    ...(dtype === undefined ? {} : { dtype }),
  })
}
