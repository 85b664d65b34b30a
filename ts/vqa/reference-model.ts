/**
 * The VQA model of SPEC §4 in the VQA paper's `product` shape, written out with plain loops:
 * the pure-TypeScript twin of the training step of `Model.fromSpec({ ...vqaGraph(architecture),
 * optimizer: { type: 'sgd', learningRate } })` — the oracle that training step is tested
 * against and the js baseline of the `vqa` benchmark.
 *
 *   question ids → words → LSTM stack → question vector → questionDense (act)
 *   image → l2Normalize (if asked) → imageDense (act)
 *   imageDense ⊙ questionDense → hidden1..n (act) → answer → softmax cross-entropy (mean)
 *
 * The recurrence and its BPTT are `ReferenceLstm`'s, one per stacked layer; this file adds the
 * rest. Dropout must be 0: a mask would have to repeat the core's random stream to be compared.
 */
import { OdysseyRangeError } from '../errors'
import { checkDataset, type TokenTensor, type VectorTensor } from '../model/data'
import { describeGraph, type DescribedGraph } from '../model/spec'
import type { Dtype, FloatArray, ForwardResult, Tensor } from '../types'
import { checkFiniteNumber, checkObject, checkWeightTensors } from '../validate'
import { resolveArchitecture, VQA_NAMES, vqaGraph, type VqaArchitecture } from './graph'
import { ReferenceLstm } from '../reference/lstm'
import { addInto, addMatTVec, addMatVec, addOuter, toFloat64 } from '../reference/math'
import { checkNamedWeights, ParameterStore, type ParameterSpec } from '../reference/parameters'
import { row } from '../reference/sequence'

export interface ReferenceVqaModelOptions {
  /** What `resolveArchitecture` returned: `product` fusion, both inputs, trainable (or fine-tuned) words, dropout 0. */
  architecture: VqaArchitecture
  /**
   * Every tensor, keyed as `Model.getWeights()` keys them (`questionLstm.weight_ih_l0`,
   * `answer.weight`); Float32Array or Float64Array data, which sets the model's dtype.
   */
  weights: Record<string, Tensor>
  /** Of the plain SGD update w ← w − learningRate · ∂J/∂w. */
  learningRate: number
}

/** A batch as `Model.trainStep` takes it for the VQA graph. */
export interface ReferenceVqaBatch {
  x: { question: TokenTensor; image: VectorTensor }
  /** Answer classes `[batch]`. */
  y: { classes: Uint32Array | ArrayLike<number>; shape: readonly [n: number] }
}

type Activation = 'tanh' | 'relu' | 'none'

/** A dense node of the graph: `weight` `[units, inputs]` and `bias` `[units]` under `${name}.`. */
interface DenseLayer {
  name: string
  inputs: number
  units: number
  activation: Activation
}

/** Which final state of which stacked layer fills each `H`-wide slot of the question vector. */
interface StateSlot {
  layer: number
  state: 'hN' | 'cN'
}

/** A checked batch in float64. */
interface VqaInputs {
  batch: number
  time: number
  /** `[batch, time]` */
  ids: Uint32Array
  /** `[batch]`, each in 1..time. */
  lengths: Uint32Array
  /** `[batch, imageDim]` */
  image: Float64Array
  /** `[batch]` */
  classes: Uint32Array
}

/** The values one forward pass keeps for backward. */
interface ForwardCache {
  inputs: VqaInputs
  /** `[batch, imageDim]`: what imageDense read (normalised or not). */
  image: Float64Array
  /** `[batch, hiddenSize]` */
  imageHidden: Float64Array
  /** `[batch, Q]`: the LSTM stack's final states as the question vector. */
  question: Float64Array
  /** `[batch, hiddenSize]` */
  questionHidden: Float64Array
  /** The fused product `[batch, hiddenSize]`, then every trunk layer's output; the last is the logits `[batch, answers]`. */
  trunk: Float64Array[]
}

/** `vqaGraph`'s node names (the prefixes of the weight keys) that `VQA_NAMES` does not hold: the LSTM stack, the dense layers. */
const LSTM_NODE = 'questionLstm'
/** The word table `[vocabSize, embeddingDim]`. */
const WORDS = `${VQA_NAMES.words}.weight`

export class ReferenceVqaModel {
  private readonly architecture: VqaArchitecture
  private readonly dtype: Dtype
  private readonly learningRate: number
  /** For `checkDataset`: the same checks and typed errors as the native model's `trainStep`. */
  private readonly graph: DescribedGraph
  /** Word table and every dense layer, under their full keys. */
  private readonly params: ParameterStore
  private readonly lstms: ReferenceLstm[]
  private readonly slots: StateSlot[]
  private readonly imageDense: DenseLayer
  private readonly questionDense: DenseLayer
  /** hidden1..n, then answer. */
  private readonly trunk: DenseLayer[]

  /** @throws OdysseyTypeError / OdysseyRangeError naming an unsupported option or a missing, unknown or misshapen weight. */
  constructor(options: ReferenceVqaModelOptions) {
    const fields = checkObject('options', options)
    const architecture = resolveArchitecture(options.architecture)
    checkSupported(architecture)
    this.architecture = architecture
    this.learningRate = checkLearningRate(fields.learningRate)
    this.dtype = dtypeOf(options.weights)
    this.graph = describeGraph({ ...vqaGraph(architecture), dtype: this.dtype })
    const { hiddenSize, activation, lstm } = architecture
    const questionWidth = lstm.questionVector === 'states' ? 2 * lstm.numLayers * lstm.hiddenSize : lstm.hiddenSize
    this.imageDense = { name: 'imageDense', inputs: architecture.imageDim, units: hiddenSize, activation }
    this.questionDense = { name: 'questionDense', inputs: questionWidth, units: hiddenSize, activation }
    this.trunk = Array.from({ length: architecture.denseLayers }, (_, k) => ({
      name: `hidden${k + 1}`,
      inputs: hiddenSize,
      units: hiddenSize,
      activation,
    }))
    this.trunk.push({ name: VQA_NAMES.answer, inputs: hiddenSize, units: architecture.answers, activation: 'none' })
    const dense = [this.imageDense, this.questionDense, ...this.trunk]
    const specs = [
      { name: WORDS, shape: [architecture.vocabSize, architecture.embeddingDim] },
      ...dense.flatMap(denseSpecs),
    ]
    this.params = new ParameterStore(specs, this.dtype)
    this.lstms = Array.from({ length: lstm.numLayers }, (_, k) =>
      this.createLstm(k === 0 ? architecture.embeddingDim : lstm.hiddenSize),
    )
    this.slots = stateSlots(lstm.numLayers, lstm.questionVector)
    this.setWeights(options.weights)
  }

  /**
   * One training step: forward, the mean softmax cross-entropy over the batch, the full
   * backward pass, one SGD update of every weight. Returns the loss before the update.
   * @throws OdysseyTypeError / OdysseyRangeError naming what in `batch` does not fit the model.
   */
  trainStep(batch: ReferenceVqaBatch): number {
    const cache = this.forward(this.readBatch(batch))
    const { loss, dLogits } = softmaxCrossEntropy(
      cache.trunk[cache.trunk.length - 1],
      cache.inputs.classes,
      this.architecture.answers,
    )
    this.backwardAndUpdate(cache, dLogits)
    return loss
  }

  /** Copies of every tensor, under the keys `Model.getWeights()` uses. */
  getWeights(): Record<string, Tensor> {
    const lstmWeights = this.lstms.flatMap((lstm, k) =>
      Object.entries(lstm.getWeights()).map(([name, tensor]) => [lstmKey(name, k), tensor]),
    )
    return { ...this.params.getWeights(), ...Object.fromEntries(lstmWeights) }
  }

  /** One layer of the stack; its random initial weights are replaced by `setWeights` at once. */
  private createLstm(inputSize: number): ReferenceLstm {
    const { hiddenSize, variant, peepholes } = this.architecture.lstm
    return new ReferenceLstm({ inputSize, hiddenSize, variant, peepholes, dtype: this.dtype, forgetBias: 0, seed: 0 })
  }

  /** Every key must be given: a reference that kept some of its own weights would compare nothing. */
  private setWeights(weights: Record<string, Tensor>): void {
    const shapes = new Map(Object.entries(this.getWeights()).map(([name, tensor]) => [name, tensor.shape]))
    checkNamedWeights(checkWeightTensors(weights, this.dtype), shapes, 'this model')
    const missing = [...shapes.keys()].filter((name) => weights[name] === undefined)
    if (missing.length > 0) throw new OdysseyRangeError('ODYSSEY_KEY', `weights: missing ${missing.join(', ')}`)
    const pick = (names: string[], key: (name: string) => string) =>
      Object.fromEntries(names.map((name) => [name, weights[key(name)]]))
    this.params.setWeights(pick(Object.keys(this.params.getWeights()), (name) => name))
    this.lstms.forEach((lstm, k) => {
      lstm.setWeights(pick(Object.keys(lstm.getWeights()), (name) => lstmKey(name, k)))
    })
  }

  private readBatch(batch: ReferenceVqaBatch): VqaInputs {
    const { args, n } = checkDataset(batch, this.graph, 'batch')
    const input = (name: string) => args.inputs[this.graph.spec.inputs.findIndex((spec) => spec.name === name)]
    // The graph's checks guarantee these fields: ids for the tokens input, data for the vector input, classes for crossEntropy.
    const question = input(VQA_NAMES.question)
    const time = question.shape[1]
    return {
      batch: n,
      time,
      ids: question.ids!,
      lengths: question.lengths ?? new Uint32Array(n).fill(time),
      image: toFloat64(input(VQA_NAMES.image).data!),
      classes: args.target!.classes!,
    }
  }

  private forward(inputs: VqaInputs): ForwardCache {
    const { batch } = inputs
    const { imageDim, embeddingDim, lstm } = this.architecture
    const image = this.architecture.normalizeImage ? l2Normalize(inputs.image, imageDim) : inputs.image
    const imageHidden = denseForward(this.imageDense, this.params, image, batch)
    const words = embed(this.params.get(WORDS), inputs.ids, embeddingDim)
    const question = gatherStates(this.encodeQuestion(words, inputs), this.slots, batch, lstm.hiddenSize)
    const questionHidden = denseForward(this.questionDense, this.params, question, batch)
    const trunk = [multiply(imageHidden, questionHidden)]
    for (const layer of this.trunk) trunk.push(denseForward(layer, this.params, trunk[trunk.length - 1], batch))
    return { inputs, image, imageHidden, question, questionHidden, trunk }
  }

  /** Runs the stacked layers over the word vectors `[batch, time, embeddingDim]`; each layer's y feeds the next. */
  private encodeQuestion(words: Float64Array, { batch, time, lengths }: VqaInputs): ForwardResult[] {
    const results: ForwardResult[] = []
    let x: FloatArray = words
    let width = this.architecture.embeddingDim
    for (const lstm of this.lstms) {
      const result = lstm.forward({ x, shape: [batch, time, width], lengths })
      results.push(result)
      x = result.y.data
      width = this.architecture.lstm.hiddenSize
    }
    return results
  }

  /** Backward from ∂J/∂logits `[batch, answers]` to every weight, then the SGD update (all gradients use the old weights). */
  private backwardAndUpdate(cache: ForwardCache, dLogits: Float64Array): void {
    const { batch, ids } = cache.inputs
    const grads = this.params.zerosLike()
    let dy = dLogits
    for (let k = this.trunk.length - 1; k >= 0; k--) {
      const delta = denseBackward(this.trunk[k], grads, cache.trunk[k], cache.trunk[k + 1], dy, batch)
      dy = denseInputGrad(this.trunk[k], this.params, delta, batch)
    }
    // dy is ∂J/∂(product): each branch receives it times the other branch.
    denseBackward(this.imageDense, grads, cache.image, cache.imageHidden, multiply(dy, cache.questionHidden), batch)
    const questionDelta = denseBackward(
      this.questionDense,
      grads,
      cache.question,
      cache.questionHidden,
      multiply(dy, cache.imageHidden),
      batch,
    )
    const { dWords, lstmGrads } = this.backwardQuestion(
      denseInputGrad(this.questionDense, this.params, questionDelta, batch),
      cache.inputs,
    )
    addEmbeddingGrads(grads.get(WORDS)!, ids, dWords, this.architecture.embeddingDim)
    const weights = this.params.getWeights()
    sgd(weights, this.params.toTensors(grads), this.learningRate)
    this.params.setWeights(weights)
    this.lstms.forEach((lstm, k) => {
      const layerWeights = lstm.getWeights()
      sgd(layerWeights, lstmGrads[k], this.learningRate)
      lstm.setWeights(layerWeights)
    })
  }

  /** BPTT down the stack from ∂J/∂(question vector) `[batch, Q]`: ∂J/∂(word vectors) `[batch, time, embeddingDim]` and each layer's gradients. */
  private backwardQuestion(dQuestion: Float64Array, { batch, time }: VqaInputs) {
    const H = this.architecture.lstm.hiddenSize
    const stateGrads = scatterStates(dQuestion, this.slots, this.lstms.length, batch, H)
    // Only final states leave the stack, so the top layer's sequence output gets no gradient.
    let dy: FloatArray = new Float64Array(batch * time * H)
    const lstmGrads: Record<string, Tensor>[] = []
    for (let k = this.lstms.length - 1; k >= 0; k--) {
      const result = this.lstms[k].backward({ dy, ...stateGrads[k] })
      lstmGrads[k] = result.grads
      dy = result.dx.data
    }
    return { dWords: toFloat64(dy), lstmGrads }
  }
}

function unsupported(option: string, value: unknown, supported: string): never {
  throw new OdysseyRangeError(
    'ODYSSEY_UNSUPPORTED',
    `ReferenceVqaModel: ${option} ${JSON.stringify(value)} is not supported (${supported})`,
  )
}

function checkSupported({ fusion, modality, wordVectors, dropout }: VqaArchitecture): void {
  if (fusion !== 'product') unsupported('fusion', fusion, "only 'product'")
  if (modality !== 'both') unsupported('modality', modality, "only 'both'")
  if (wordVectors === 'pretrained-frozen') unsupported('wordVectors', wordVectors, 'the word table is trained')
  if (dropout !== 0) unsupported('dropout', dropout, "only 0: the core's dropout masks cannot be repeated")
}

function checkLearningRate(value: unknown): number {
  const learningRate = checkFiniteNumber('learningRate', value)
  if (learningRate < 0)
    throw new OdysseyRangeError('ODYSSEY_INVALID', `learningRate: expected a number >= 0, got ${learningRate}`)
  return learningRate
}

/** float32 when the weights hold Float32Arrays; `checkWeightTensors` then holds every tensor to that type. */
function dtypeOf(weights: unknown): Dtype {
  const first = Object.values(checkObject('weights', weights))[0] as Tensor | undefined
  return first?.data instanceof Float32Array ? 'float32' : 'float64'
}

/** `questionLstm.weight_ih_l{layer}` for the single-layer name `weight_ih_l0` of stacked layer `layer`. */
function lstmKey(name: string, layer: number): string {
  return `${LSTM_NODE}.${name.replace(/_l0$/, `_l${layer}`)}`
}

function denseSpecs({ name, inputs, units }: DenseLayer): ParameterSpec[] {
  return [
    { name: `${name}.weight`, shape: [units, inputs] },
    { name: `${name}.bias`, shape: [units] },
  ]
}

/** `'states'`: every layer's final y then c, layer by layer (the core's order); `'last'`: the top layer's final y. */
function stateSlots(layers: number, questionVector: 'last' | 'states'): StateSlot[] {
  if (questionVector === 'last') return [{ layer: layers - 1, state: 'hN' }]
  return Array.from({ length: layers }, (_, layer): StateSlot[] => [
    { layer, state: 'hN' },
    { layer, state: 'cN' },
  ]).flat()
}

/** The question vector `[batch, slots·H]` from the layers' final states `[batch, H]`. */
function gatherStates(results: ForwardResult[], slots: StateSlot[], batch: number, H: number): Float64Array {
  const width = slots.length * H
  const out = new Float64Array(batch * width)
  slots.forEach(({ layer, state }, s) => {
    const values = results[layer][state]!.data
    for (let b = 0; b < batch; b++) out.set(values.subarray(b * H, (b + 1) * H), b * width + s * H)
  })
  return out
}

/** ∂J/∂(final y) and ∂J/∂(final c) `[batch, H]` of every layer, from ∂J/∂(question vector) `[batch, slots·H]`. */
function scatterStates(dQuestion: Float64Array, slots: StateSlot[], layers: number, batch: number, H: number) {
  const grads = Array.from({ length: layers }, () => ({
    dhN: new Float64Array(batch * H),
    dcN: new Float64Array(batch * H),
  }))
  const width = slots.length * H
  slots.forEach(({ layer, state }, s) => {
    const target = grads[layer][state === 'hN' ? 'dhN' : 'dcN']
    for (let b = 0; b < batch; b++) target.set(dQuestion.subarray(b * width + s * H, b * width + (s + 1) * H), b * H)
  })
  return grads
}

/** Word vectors `[batch, time, dim]` of ids `[batch, time]` from the table `[vocab, dim]` (padded steps too, as the core does). */
function embed(table: Float64Array, ids: Uint32Array, dim: number): Float64Array {
  const out = new Float64Array(ids.length * dim)
  ids.forEach((id, k) => {
    out.set(row(table, id, dim), k * dim)
  })
  return out
}

/** ∂J/∂table `[vocab, dim]` += each step's ∂J/∂(word vector) `[batch, time, dim]` at its id (zero at padded steps). */
function addEmbeddingGrads(grad: Float64Array, ids: Uint32Array, dWords: Float64Array, dim: number): void {
  ids.forEach((id, k) => {
    addInto(row(grad, id, dim), row(dWords, k, dim))
  })
}

/** Rows of `x` `[batch, D]` scaled to unit L2 norm as the core does, x / √(‖x‖² + 1e−12). The image takes no gradient, so there is no backward. */
function l2Normalize(x: Float64Array, D: number): Float64Array {
  const out = new Float64Array(x.length)
  for (let b = 0; b < x.length / D; b++) {
    const values = row(x, b, D)
    let squares = 0
    for (const v of values) squares += v * v
    const norm = Math.sqrt(squares + 1e-12)
    row(out, b, D).set(values.map((v) => v / norm))
  }
  return out
}

/** a ⊙ b, elementwise. */
function multiply(a: Float64Array, b: Float64Array): Float64Array {
  return a.map((value, k) => value * b[k])
}

/** act(x Wᵀ + b): `[batch, inputs]` → `[batch, units]`. */
function denseForward(layer: DenseLayer, params: ParameterStore, x: Float64Array, batch: number): Float64Array {
  const weight = params.get(`${layer.name}.weight`)
  const bias = params.get(`${layer.name}.bias`)
  const y = new Float64Array(batch * layer.units)
  for (let b = 0; b < batch; b++) {
    const out = row(y, b, layer.units)
    out.set(bias)
    addMatVec(out, weight, row(x, b, layer.inputs))
    for (let j = 0; j < out.length; j++) out[j] = activate(out[j], layer.activation)
  }
  return y
}

function activate(z: number, activation: Activation): number {
  if (activation === 'tanh') return Math.tanh(z)
  if (activation === 'relu') return Math.max(0, z)
  return z
}

/** act′ from the activated value y: tanh′ = 1 − y², relu′ = [y > 0]. */
function activationSlope(y: number, activation: Activation): number {
  if (activation === 'tanh') return 1 - y * y
  if (activation === 'relu') return y > 0 ? 1 : 0
  return 1
}

/**
 * From ∂J/∂y `[batch, units]`, the layer's input x `[batch, inputs]` and output y: adds ∂J/∂W
 * and ∂J/∂b into `grads` and returns δ = ∂J/∂(pre-activation) `[batch, units]`.
 */
function denseBackward(
  layer: DenseLayer,
  grads: Map<string, Float64Array>,
  x: Float64Array,
  y: Float64Array,
  dy: Float64Array,
  batch: number,
): Float64Array {
  const delta = dy.map((d, k) => d * activationSlope(y[k], layer.activation))
  const weightGrad = grads.get(`${layer.name}.weight`)!
  const biasGrad = grads.get(`${layer.name}.bias`)!
  for (let b = 0; b < batch; b++) {
    addOuter(weightGrad, row(delta, b, layer.units), row(x, b, layer.inputs))
    addInto(biasGrad, row(delta, b, layer.units))
  }
  return delta
}

/** ∂J/∂x = δ W: `[batch, units]` → `[batch, inputs]`. Kept apart from `denseBackward` because the image needs none. */
function denseInputGrad(layer: DenseLayer, params: ParameterStore, delta: Float64Array, batch: number): Float64Array {
  const weight = params.get(`${layer.name}.weight`)
  const dx = new Float64Array(batch * layer.inputs)
  for (let b = 0; b < batch; b++) addMatTVec(row(dx, b, layer.inputs), weight, row(delta, b, layer.units))
  return dx
}

/**
 * Mean softmax cross-entropy of logits `[batch, K]` against classes `[batch]`, and
 * ∂J/∂logits = (softmax − onehot) / batch. Each row is shifted by its maximum so no exp overflows.
 */
function softmaxCrossEntropy(
  logits: Float64Array,
  classes: Uint32Array,
  K: number,
): { loss: number; dLogits: Float64Array } {
  const batch = classes.length
  const dLogits = new Float64Array(logits.length)
  let total = 0
  for (let b = 0; b < batch; b++) {
    const z = row(logits, b, K)
    const max = Math.max(...z)
    const exps = z.map((v) => Math.exp(v - max))
    const sum = exps.reduce((a, v) => a + v, 0)
    total += max + Math.log(sum) - z[classes[b]]
    const grad = row(dLogits, b, K)
    for (let k = 0; k < K; k++) grad[k] = (exps[k] / sum - (k === classes[b] ? 1 : 0)) / batch
  }
  return { loss: total / batch, dLogits }
}

/** w ← w − lr · g for every tensor of `weights`, in place (`grads` under the same names). */
function sgd(weights: Record<string, Tensor>, grads: Record<string, Tensor>, learningRate: number): void {
  for (const [name, { data }] of Object.entries(weights)) {
    const grad = grads[name].data
    for (let k = 0; k < data.length; k++) data[k] -= learningRate * grad[k]
  }
}
