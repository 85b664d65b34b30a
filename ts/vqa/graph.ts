/**
 * The VQA model's shape (SPEC §4) as a model graph for the core: question
 * tokens → word vectors → 1–3 LSTM layers → a question vector, an image
 * feature vector, a fusion, dense layers, logits over the K answers.
 *
 * - `concat` (Keras tutorial): concat(image, question) → n × [Dense tanh, Dropout] → Dense K.
 * - `product` (Antol et al. 2015, "deeper LSTM Q + norm I"): question → Dense tanh;
 *   l2Normalize(image) → Dense tanh; elementwise product → Dropout → n × [Dense tanh,
 *   Dropout] → Dense K.
 * Either shape can normalise the image or not (`normalizeImage`); normalising removes the
 * vector's magnitude, which is where summed features keep how many things an image holds.
 *
 * Node names are stable: they are the prefixes of the weight keys in checkpoints.
 */
import { OdysseyRangeError } from '../errors'
import type { GraphSpec, InputSpec, NodeSpec } from '../model/spec'
import { LSTM_VARIANTS, type LstmVariant } from '../types'
import {
  checkBoolean,
  checkFiniteNumber,
  checkObject,
  checkOneOf,
  checkOptionKeys,
  checkSeed,
  checkSize,
} from '../validate'

export type VqaFusion = 'concat' | 'product'
export const VQA_FUSIONS: readonly VqaFusion[] = ['concat', 'product']

/**
 * Which inputs the model sees: both, or one of them alone — the single-modality
 * baselines that show how much of the accuracy needs the other input.
 */
export type VqaModality = 'both' | 'question' | 'image'
export const VQA_MODALITIES: readonly VqaModality[] = ['both', 'question', 'image']

/** Word vectors: a trainable table, or pretrained vectors kept fixed or fine-tuned. */
export type VqaWordVectors = 'trainable' | 'pretrained-frozen' | 'pretrained-fine-tuned'

/** Every size and choice of a VQA model, defaults filled in (what `vqa.json` stores). */
export interface VqaArchitecture {
  fusion: VqaFusion
  modality: VqaModality
  /** Image feature width D (VGG-16: 4096). */
  imageDim: number
  /** Rows of the word table (the question vocabulary's size). */
  vocabSize: number
  /** Answer classes K. */
  answers: number
  wordVectors: VqaWordVectors
  /** Word vector width (the pretrained vectors' width when there are any). */
  embeddingDim: number
  lstm: {
    hiddenSize: number
    /** 1–3 stacked layers. */
    numLayers: number
    variant: LstmVariant
    peepholes: boolean
    forgetBias: number
    /** `'last'`: the top layer's last y; `'states'`: every layer's last c and y (VQA paper). */
    questionVector: 'last' | 'states'
  }
  /** Scale each image vector to unit L2 norm first (the paper's "norm I"; the Keras tutorial does not). */
  normalizeImage: boolean
  /** Width of every dense layer of the fusion (1024 in both published shapes). */
  hiddenSize: number
  /** Activation of every hidden dense layer (tanh in both published shapes). */
  activation: 'tanh' | 'relu'
  /** Dense tanh layers between the fusion and the answer layer (concat: 3, product: 2 in the paper). */
  denseLayers: number
  /** Dropout rate after the fusion and every hidden dense layer (0.5 in both published shapes). */
  dropout: number
  /** Questions are cut to this many tokens (26 in the VQA LSTM baseline). */
  maxQuestionLength: number
  seed: number
}

/** What a caller may set; everything not given takes the published defaults. */
export interface VqaArchitectureOptions {
  fusion: VqaFusion
  modality?: VqaModality
  imageDim: number
  vocabSize: number
  answers: number
  wordVectors?: VqaWordVectors
  /** Default 300 (ignored: the pretrained vectors' width, when there are any). */
  embeddingDim?: number
  lstm?: Partial<VqaArchitecture['lstm']>
  normalizeImage?: boolean
  hiddenSize?: number
  activation?: 'tanh' | 'relu'
  denseLayers?: number
  dropout?: number
  maxQuestionLength?: number
  seed?: number
}

export const MAX_LSTM_LAYERS = 3

const LSTM_KEYS = ['hiddenSize', 'numLayers', 'variant', 'peepholes', 'forgetBias', 'questionVector'] as const
const ARCHITECTURE_KEYS = [
  'fusion',
  'modality',
  'imageDim',
  'vocabSize',
  'answers',
  'wordVectors',
  'embeddingDim',
  'lstm',
  'normalizeImage',
  'hiddenSize',
  'activation',
  'denseLayers',
  'dropout',
  'maxQuestionLength',
  'seed',
] as const

function invalid(message: string): never {
  throw new OdysseyRangeError('ODYSSEY_INVALID', message)
}

/**
 * Checks the options and fills in the defaults: the VQA paper's sizes (300-d words,
 * 2 × 512 LSTM with `'states'`, 1024 hidden, 2 dense layers) for `product`, the Keras
 * tutorial's (1 LSTM layer with `'last'`, 3 dense layers) for `concat`; dropout 0.5.
 * @throws OdysseyTypeError / OdysseyRangeError naming the option.
 */
export function resolveArchitecture(options: VqaArchitectureOptions): VqaArchitecture {
  const fields = checkObject('architecture', options)
  checkOptionKeys(fields, ARCHITECTURE_KEYS, 'architecture')
  const fusion = checkOneOf('fusion', fields.fusion, VQA_FUSIONS)
  const paper = fusion === 'product'
  const lstm = checkObject('lstm', fields.lstm ?? {})
  checkOptionKeys(lstm, LSTM_KEYS, 'lstm')
  const numLayers = checkSize('lstm.numLayers', lstm.numLayers ?? (paper ? 2 : 1))
  if (numLayers > MAX_LSTM_LAYERS) invalid(`lstm.numLayers: expected 1..${MAX_LSTM_LAYERS}, got ${numLayers}`)
  const dropout = checkFiniteNumber('dropout', fields.dropout ?? 0.5)
  if (!(dropout >= 0 && dropout < 1)) invalid(`dropout: expected a rate in [0, 1), got ${dropout}`)
  const denseLayers = checkSeed('denseLayers', fields.denseLayers ?? (paper ? 2 : 3))
  const architecture: VqaArchitecture = {
    fusion,
    modality: checkOneOf('modality', fields.modality ?? 'both', VQA_MODALITIES),
    imageDim: checkSize('imageDim', fields.imageDim),
    vocabSize: checkSize('vocabSize', fields.vocabSize),
    answers: checkSize('answers', fields.answers),
    wordVectors: checkOneOf('wordVectors', fields.wordVectors ?? 'trainable', [
      'trainable',
      'pretrained-frozen',
      'pretrained-fine-tuned',
    ] as const),
    embeddingDim: checkSize('embeddingDim', fields.embeddingDim ?? 300),
    lstm: {
      hiddenSize: checkSize('lstm.hiddenSize', lstm.hiddenSize ?? 512),
      numLayers,
      variant: checkOneOf('lstm.variant', lstm.variant ?? 'vanilla', LSTM_VARIANTS),
      peepholes: checkBoolean('lstm.peepholes', lstm.peepholes ?? true),
      forgetBias: checkFiniteNumber('lstm.forgetBias', lstm.forgetBias ?? 1),
      questionVector: checkOneOf('lstm.questionVector', lstm.questionVector ?? (paper ? 'states' : 'last'), [
        'last',
        'states',
      ] as const),
    },
    normalizeImage: checkBoolean('normalizeImage', fields.normalizeImage ?? paper),
    hiddenSize: checkSize('hiddenSize', fields.hiddenSize ?? 1024),
    activation: checkOneOf('activation', fields.activation ?? 'tanh', ['tanh', 'relu'] as const),
    denseLayers,
    dropout,
    maxQuestionLength: checkSize('maxQuestionLength', fields.maxQuestionLength ?? 26),
    seed: checkSeed('seed', fields.seed ?? 0),
  }
  if (architecture.wordVectors !== 'trainable' && architecture.modality === 'image') {
    invalid(`wordVectors: an image-only model reads no words, got '${architecture.wordVectors}'`)
  }
  return architecture
}

/** Names of the graph's inputs and of the nodes other code reads weights of. */
export const VQA_NAMES = {
  image: 'image',
  question: 'question',
  /** Frozen pretrained vectors only: 1 where the word has no vector (or is unknown), else 0. */
  unknownFlags: 'unknown',
  words: 'words',
  unknownWords: 'unknownWords',
  answer: 'answer',
} as const

/** The graph of `architecture`, for `Model.fromSpec`. */
export function vqaGraph(architecture: VqaArchitecture): GraphSpec {
  const builder = new GraphBuilder()
  const { modality } = architecture
  const image = modality === 'question' ? undefined : imageBranch(builder, architecture)
  const question = modality === 'image' ? undefined : questionBranch(builder, architecture)
  const fused = fuse(
    builder,
    architecture,
    [image, question].filter((branch): branch is string => branch !== undefined),
  )
  let top = fused
  for (let layer = 1; layer <= architecture.denseLayers; layer++) {
    top = builder.add({
      name: `hidden${layer}`,
      inputs: [top],
      type: 'dense',
      units: architecture.hiddenSize,
      activation: architecture.activation,
    })
    top = dropout(builder, architecture, `hidden${layer}Dropout`, top)
  }
  builder.add({ name: VQA_NAMES.answer, inputs: [top], type: 'dense', units: architecture.answers })
  return {
    inputs: builder.inputs,
    nodes: builder.nodes,
    output: VQA_NAMES.answer,
    loss: 'crossEntropy',
    dtype: 'float32',
    seed: architecture.seed,
  }
}

class GraphBuilder {
  readonly inputs: InputSpec[] = []
  readonly nodes: NodeSpec[] = []

  input(spec: InputSpec): string {
    this.inputs.push(spec)
    return spec.name
  }

  add(node: NodeSpec): string {
    this.nodes.push(node)
    return node.name
  }
}

function dropout(builder: GraphBuilder, architecture: VqaArchitecture, name: string, input: string): string {
  return architecture.dropout === 0
    ? input
    : builder.add({ name, inputs: [input], type: 'dropout', rate: architecture.dropout })
}

/** `[n, D]` features, normalised if asked; the product shape maps them to the hidden width. */
function imageBranch(builder: GraphBuilder, architecture: VqaArchitecture): string {
  const image = builder.input({ kind: 'vector', name: VQA_NAMES.image, features: architecture.imageDim })
  const vector = architecture.normalizeImage
    ? builder.add({ name: 'imageNorm', inputs: [image], type: 'l2Normalize' })
    : image
  if (architecture.fusion === 'concat') return vector
  return builder.add({
    name: 'imageDense',
    inputs: [vector],
    type: 'dense',
    units: architecture.hiddenSize,
    activation: architecture.activation,
  })
}

/** Tokens → word vectors → LSTM stack → question vector (mapped to the hidden width for the product shape). */
function questionBranch(builder: GraphBuilder, architecture: VqaArchitecture): string {
  const { lstm } = architecture
  const vectors = wordVectors(builder, architecture)
  const encoded = builder.add({
    name: 'questionLstm',
    inputs: [vectors],
    type: 'lstm',
    hiddenSize: lstm.hiddenSize,
    numLayers: lstm.numLayers,
    variant: lstm.variant,
    peepholes: lstm.peepholes,
    forgetBias: lstm.forgetBias,
    output: lstm.questionVector,
  })
  if (architecture.fusion === 'concat') return encoded
  return builder.add({
    name: 'questionDense',
    inputs: [encoded],
    type: 'dense',
    units: architecture.hiddenSize,
    activation: architecture.activation,
  })
}

/**
 * `[n, time, dim]` word vectors. A frozen table cannot keep one row trainable, so with frozen
 * pretrained vectors the learned UNK vector lives in a second, trainable 2-row table read
 * through the `unknown` flags (row 1 for unknown words, row 0 — a learned constant — for the
 * others), concatenated to the frozen vectors: `[n, time, 2·dim]`.
 */
function wordVectors(builder: GraphBuilder, architecture: VqaArchitecture): string {
  const { vocabSize, embeddingDim, wordVectors: kind } = architecture
  const question = builder.input({ kind: 'tokens', name: VQA_NAMES.question })
  const frozen = kind === 'pretrained-frozen'
  const words = builder.add({
    name: VQA_NAMES.words,
    inputs: [question],
    type: 'embedding',
    vocabSize,
    dim: embeddingDim,
    frozen,
  })
  if (!frozen) return words
  const flags = builder.input({ kind: 'tokens', name: VQA_NAMES.unknownFlags })
  const unknown = builder.add({
    name: VQA_NAMES.unknownWords,
    inputs: [flags],
    type: 'embedding',
    vocabSize: 2,
    dim: embeddingDim,
  })
  return builder.add({ name: 'wordInput', inputs: [words, unknown], type: 'concat' })
}

function fuse(builder: GraphBuilder, architecture: VqaArchitecture, branches: string[]): string {
  if (architecture.fusion === 'concat') {
    const joined =
      branches.length === 1 ? branches[0] : builder.add({ name: 'fused', inputs: branches, type: 'concat' })
    return joined as string
  }
  const product =
    branches.length === 1 ? branches[0] : builder.add({ name: 'fused', inputs: branches, type: 'multiply' })
  return dropout(builder, architecture, 'fusedDropout', product as string)
}
