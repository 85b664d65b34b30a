/**
 * The VQA workflow end to end, as the CLI and the demo run it: open the
 * training (and validation) files, build the vocabularies from the training
 * split, create a `VqaModel`, train it; and the experiment of the demo — the
 * fused model beside a question-only and an image-only model of the same
 * shape on the synthetic set.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { OdysseyRangeError } from '../errors'
import { openVqaSplit, type VqaSplit, type VqaSplitFiles } from './dataset'
import type { VqaAnnotation } from './files'
import type { VqaModality } from './graph'
import {
  VqaModel,
  type VqaData,
  type VqaFitOptions,
  type VqaHistory,
  type VqaModelOptions,
  type VqaScore,
} from './model'
import { MemoryFeatures } from './inputs'
import { generateSyntheticVqa, writeSyntheticVqa, type SyntheticVqaOptions } from './synthetic'
import { AnswerVocab, QuestionVocab } from './vocab'
import { readWordVectors } from './word-vectors'

/** A split with annotations (train, val): what `VqaModel.fit` and `evaluate` take. */
export type AnnotatedSplit = VqaSplit & { annotations: VqaAnnotation[] }

/** Opens a split with its annotations file (see `openVqaSplit` for the checks and errors). */
export async function openAnnotatedSplit(
  files: VqaSplitFiles & { annotationsFile: string },
  expectedDim?: number,
): Promise<AnnotatedSplit> {
  return (await openVqaSplit(files, expectedDim === undefined ? {} : { expectedDim })) as AnnotatedSplit
}

export interface VocabularyOptions {
  /** Answer classes K (default 1000). */
  topK?: number
  /** Occurrences a word needs for its own index (default 1). */
  minCount?: number
}

/** The question and answer vocabularies of a training split. */
export function buildVocabularies(
  train: VqaData,
  options: VocabularyOptions = {},
): { questionVocab: QuestionVocab; answerVocab: AnswerVocab } {
  return {
    questionVocab: QuestionVocab.build(
      train.questions.map(({ question }) => question),
      options.minCount === undefined ? {} : { minCount: options.minCount },
    ),
    answerVocab: AnswerVocab.build(train.annotations, { topK: options.topK ?? 1000 }),
  }
}

/** Model options apart from what the data decides (image width, vocabularies, pretrained vectors). */
export type VqaModelSettings = Omit<VqaModelOptions, 'imageDim' | 'questionVocab' | 'answerVocab' | 'embedding'> & {
  embedding?: { dim?: number; frozen?: boolean }
}

export interface TrainVqaOptions extends VocabularyOptions {
  model: VqaModelSettings
  /** A GloVe / word2vec text file: the question words' vectors are read from it. */
  wordVectorsFile?: string
}

/** A model created for `train`: vocabularies from its questions, D from its features, vectors from the file. */
export async function createVqaModel(train: VqaData, options: TrainVqaOptions): Promise<VqaModel> {
  const vocabularies = buildVocabularies(train, options)
  const embedding = { ...options.model.embedding }
  const pretrained =
    options.wordVectorsFile === undefined
      ? undefined
      : await readWordVectors(options.wordVectorsFile, vocabularies.questionVocab.words)
  return VqaModel.create({
    ...options.model,
    ...vocabularies,
    imageDim: train.features.dim,
    embedding: pretrained === undefined ? embedding : { ...embedding, pretrained },
  })
}

/** What one model of an experiment scored on validation (confusion among its 10 most frequent answers), and its history. */
export interface VqaRun extends VqaScore {
  modality: VqaModality
  history: VqaHistory
  /** Training time (validation excluded) and throughput over all epochs. */
  seconds: number
  questionsPerSecond: number
}

export interface VqaExperimentOptions {
  /** The synthetic set of the training split (default seed 1); validation uses `seed + 1`. */
  synthetic?: SyntheticVqaOptions
  /** Write the splits to disk and read them back through the loaders (default), or keep them in memory. */
  throughFiles?: boolean
  /** Images of the validation split (default 500). */
  validationImages?: number
  /** Answer classes (default 100: every synthetic answer). */
  topK?: number
  model: VqaModelSettings
  fit: Omit<VqaFitOptions, 'validation'>
  /** Epochs of the single-modality baselines (default: `fit.epochs`). */
  baselineEpochs?: number
  /** Which models to train, in order (default all three: both, question, image). */
  modalities?: readonly VqaModality[]
  /** Called before each model trains, with the model (disposed after scoring). */
  onModelStart?: (modality: VqaModality, model: VqaModel) => void
}

/**
 * Generates the synthetic training and validation splits — written into a temporary directory
 * and read back through the real loaders unless `throughFiles` is false — and trains and scores
 * one model per modality (validation scored once, after training).
 */
export async function runVqaExperiment(options: VqaExperimentOptions): Promise<VqaRun[]> {
  const trainOptions = { ...options.synthetic, seed: options.synthetic?.seed ?? 1 }
  const validationOptions = {
    ...trainOptions,
    seed: trainOptions.seed + 1,
    images: options.validationImages ?? 500,
    // Validation images get ids of their own, after the training ones.
    firstImageId: (trainOptions.firstImageId ?? 1) + (trainOptions.images ?? 200),
  }
  const splits = options.throughFiles === false ? inMemory : throughFiles
  return splits(trainOptions, validationOptions, async (train, validation) => {
    const runs: VqaRun[] = []
    for (const modality of options.modalities ?? (['both', 'question', 'image'] as const)) {
      runs.push(await trainAndScore(train, validation, modality, options))
    }
    return runs
  })
}

type WithSplits = <T>(
  train: SyntheticVqaOptions,
  validation: SyntheticVqaOptions,
  use: (train: VqaData, validation: VqaData) => Promise<T>,
) => Promise<T>

const inMemory: WithSplits = (train, validation, use) => {
  const asData = (options: SyntheticVqaOptions): VqaData => {
    const data = generateSyntheticVqa(options)
    return { questions: data.questions, annotations: data.annotations, features: new MemoryFeatures(data) }
  }
  return use(asData(train), asData(validation))
}

const throughFiles: WithSplits = async (train, validation, use) => {
  const directory = await mkdtemp(join(tmpdir(), 'odyssey-vqa-'))
  try {
    const trainSplit = await openAnnotatedSplit(await writeSyntheticVqa(directory, { ...train, split: 'train' }))
    try {
      const validationSplit = await openAnnotatedSplit(
        await writeSyntheticVqa(directory, { ...validation, split: 'val' }),
      )
      try {
        return await use(trainSplit, validationSplit)
      } finally {
        await validationSplit.features.close()
      }
    } finally {
      await trainSplit.features.close()
    }
  } finally {
    await rm(directory, { recursive: true, force: true })
  }
}

async function trainAndScore(
  train: VqaData,
  validation: VqaData,
  modality: VqaModality,
  options: VqaExperimentOptions,
): Promise<VqaRun> {
  const epochs = modality === 'both' ? options.fit.epochs : (options.baselineEpochs ?? options.fit.epochs)
  if (!(epochs >= 1)) throw new OdysseyRangeError('ODYSSEY_INVALID', `epochs: expected >= 1, got ${epochs}`)
  const model = await createVqaModel(train, { topK: options.topK ?? 100, model: { ...options.model, modality } })
  try {
    options.onModelStart?.(modality, model)
    const history = await model.fit(train, { ...options.fit, epochs })
    const { evaluation, confusion } = await model.score(validation)
    const seconds = history.epochs.reduce((sum, epoch) => sum + epoch.seconds, 0)
    const questions = history.epochs.reduce((sum, epoch) => sum + epoch.seconds * epoch.questionsPerSecond, 0)
    return { modality, evaluation, confusion, history, seconds, questionsPerSecond: questions / seconds }
  } finally {
    model.dispose()
  }
}
