/**
 * `VqaModel`: the graphs of both published shapes, training on a tiny
 * synthetic set (the fused model must beat the blind, question-only one),
 * save/load, pretrained word vectors frozen or fine-tuned with a learned
 * UNK vector, and the checks on features and options.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { OdysseyAbortError } from '../ts/errors'
import { describeGraph } from '../ts/model/spec'
import {
  AnswerVocab,
  MemoryFeatures,
  QuestionVocab,
  VQA_CONFIG_FILE,
  VqaModel,
  VqaShapeError,
  generateSyntheticVqa,
  resolveArchitecture,
  vqaGraph,
  type VqaData,
  type VqaModelOptions,
  type WordVectors,
} from '../ts/vqa'

const work = mkdtempSync(join(tmpdir(), 'odyssey-vqa-model-'))
afterAll(() => rmSync(work, { recursive: true, force: true }))

function split(options: Parameters<typeof generateSyntheticVqa>[0]): VqaData {
  const data = generateSyntheticVqa({ featureDim: 128, sceneEncoding: 'objects', ...options })
  return { questions: data.questions, annotations: data.annotations, features: new MemoryFeatures(data) }
}

/** A small model of either shape for the tiny set. */
function tinyOptions(train: VqaData, extra: Partial<VqaModelOptions> = {}): VqaModelOptions {
  return {
    fusion: 'product',
    imageDim: train.features.dim,
    questionVocab: QuestionVocab.build(train.questions.map((q) => q.question)),
    answerVocab: AnswerVocab.build(train.annotations, { topK: 100 }),
    embedding: { dim: 16 },
    lstm: { hiddenSize: 16, numLayers: 1 },
    hiddenSize: 128,
    denseLayers: 1,
    dropout: 0,
    optimizer: { type: 'adam', learningRate: 0.003 },
    seed: 3,
    ...extra,
  }
}

describe('vqaGraph', () => {
  const base = { imageDim: 10, vocabSize: 20, answers: 5 }

  it('builds the VQA paper shape: normalised image and question dense layers, product, MLP, answers', () => {
    const graph = vqaGraph(resolveArchitecture({ ...base, fusion: 'product' }))
    expect(graph.nodes.map((n) => `${n.name}:${n.type}`)).toEqual([
      'imageNorm:l2Normalize',
      'imageDense:dense',
      'words:embedding',
      'questionLstm:lstm',
      'questionDense:dense',
      'fused:multiply',
      'fusedDropout:dropout',
      'hidden1:dense',
      'hidden1Dropout:dropout',
      'hidden2:dense',
      'hidden2Dropout:dropout',
      'answer:dense',
    ])
    const lstm = graph.nodes.find((n) => n.name === 'questionLstm')
    expect(lstm).toMatchObject({ hiddenSize: 512, numLayers: 2, output: 'states' })
    expect(describeGraph(graph).output.width).toBe(5)
  })

  it('builds the Keras tutorial shape: raw image concatenated with the last LSTM output, three dense layers', () => {
    const graph = vqaGraph(resolveArchitecture({ ...base, fusion: 'concat', lstm: { variant: 'CIFG', numLayers: 3 } }))
    expect(graph.nodes.find((n) => n.name === 'fused')).toMatchObject({
      type: 'concat',
      inputs: ['image', 'questionLstm'],
    })
    expect(graph.nodes.find((n) => n.name === 'questionLstm')).toMatchObject({
      output: 'last',
      variant: 'CIFG',
      numLayers: 3,
    })
    expect(graph.nodes.filter((n) => n.type === 'dense').map((n) => n.name)).toEqual([
      'hidden1',
      'hidden2',
      'hidden3',
      'answer',
    ])
    describeGraph(graph)
  })

  it('gives frozen pretrained vectors a trainable unknown-word table beside them', () => {
    const graph = vqaGraph(
      resolveArchitecture({ ...base, fusion: 'product', wordVectors: 'pretrained-frozen', embeddingDim: 4 }),
    )
    expect(graph.inputs.map((i) => i.name)).toEqual(['image', 'question', 'unknown'])
    expect(graph.nodes.find((n) => n.name === 'words')).toMatchObject({ frozen: true, vocabSize: 20, dim: 4 })
    const unknownWords = graph.nodes.find((n) => n.name === 'unknownWords')
    expect(unknownWords).toMatchObject({ vocabSize: 2, dim: 4 })
    expect((unknownWords as { frozen?: boolean }).frozen ?? false).toBe(false)
    expect(describeGraph(graph).spec.nodes.find((n) => n.name === 'wordInput')?.type).toBe('concat')
  })

  it('leaves out the branch a single-modality model does not read', () => {
    const questionOnly = vqaGraph(resolveArchitecture({ ...base, fusion: 'product', modality: 'question' }))
    expect(questionOnly.inputs.map((i) => i.name)).toEqual(['question'])
    expect(questionOnly.nodes.some((n) => n.type === 'multiply')).toBe(false)
    const imageOnly = vqaGraph(resolveArchitecture({ ...base, fusion: 'concat', modality: 'image' }))
    expect(imageOnly.inputs.map((i) => i.name)).toEqual(['image'])
    describeGraph(questionOnly)
    describeGraph(imageOnly)
  })

  it('refuses more than three LSTM layers, unknown options and words for an image-only model', () => {
    expect(() => resolveArchitecture({ ...base, fusion: 'product', lstm: { numLayers: 4 } })).toThrow(
      /lstm.numLayers: expected 1..3, got 4/,
    )
    expect(() => resolveArchitecture({ ...base, fusion: 'sum' as never })).toThrow(/fusion/)
    expect(() => resolveArchitecture({ ...base, fusion: 'product', dropout: 1 })).toThrow(
      /dropout: expected a rate in \[0, 1\)/,
    )
    expect(() => resolveArchitecture({ ...base, fusion: 'product', width: 3 } as never)).toThrow(/width/)
    expect(() =>
      resolveArchitecture({ ...base, fusion: 'product', modality: 'image', wordVectors: 'pretrained-frozen' }),
    ).toThrow(/image-only model reads no words/)
  })
})

describe('VqaModel on a tiny synthetic set', () => {
  const train = split({ seed: 1, images: 800 })
  const validation = split({ seed: 2, images: 80, firstImageId: 10_000 })
  let fused: VqaModel
  let fusedAccuracy: number

  beforeAll(async () => {
    fused = VqaModel.create(tinyOptions(train))
    await fused.fit(train, { epochs: 10, batchSize: 32 })
    fusedAccuracy = (await fused.evaluate(validation)).overall
  })
  afterAll(() => fused.dispose())

  it('beats the blind model (the same shape without the image) by a wide margin', async () => {
    const blind = VqaModel.create(tinyOptions(train, { modality: 'question' }))
    try {
      await blind.fit(train, { epochs: 10, batchSize: 32 })
      const blindAccuracy = (await blind.evaluate(validation)).overall
      // Measured 43.5 vs 28.4: ten epochs on 4000 questions are enough to see the image being used.
      expect(fusedAccuracy).toBeGreaterThan(blindAccuracy + 8)
    } finally {
      blind.dispose()
    }
  })

  it('reports progress per batch and VQA accuracy per epoch, and trains only on answers among the K', async () => {
    const model = VqaModel.create(
      tinyOptions(train, { answerVocab: AnswerVocab.build(train.annotations, { topK: 3 }) }),
    )
    try {
      const batches: number[] = []
      const history = await model.fit(train, {
        epochs: 1,
        batchSize: 64,
        validation,
        callbacks: { onBatchEnd: (log) => batches.push(log.questionsDone) },
      })
      const kept = train.annotations.filter((a) => model.answerVocab.indexOf(a.multipleChoiceAnswer) >= 0).length
      expect(history.skippedQuestions).toBe(train.questions.length - kept)
      expect(batches).toHaveLength(Math.ceil(kept / 64))
      expect(batches[batches.length - 1]).toBe(kept)
      expect(history.epochs[0]!.validation!.questions).toBe(validation.questions.length)
      expect(Object.keys(history.epochs[0]!.validation!.perQuestionType).sort()).toEqual([
        'color',
        'count',
        'exist',
        'position',
        'relation',
        'shape',
      ])
    } finally {
      model.dispose()
    }
  })

  it('answers with probabilities, best first', async () => {
    const [answer] = await fused.predict(validation.questions.slice(0, 1), validation.features, { top: 4 })
    expect(answer!.questionId).toBe(validation.questions[0]!.questionId)
    expect(answer!.alternatives).toHaveLength(4)
    expect(answer!.alternatives[0]).toEqual({ answer: answer!.answer, probability: answer!.probability })
    const probabilities = answer!.alternatives.map((a) => a.probability)
    expect([...probabilities].sort((a, b) => b - a)).toEqual(probabilities)
    expect(probabilities.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(1 + 1e-9)
  })

  it('saves vqa.json beside the checkpoint and loads to the same answers', async () => {
    const dir = join(work, 'saved')
    await fused.save(dir)
    const saved = JSON.parse(readFileSync(join(dir, VQA_CONFIG_FILE), 'utf8'))
    expect(saved).toMatchObject({ kind: 'odyssey-vqa-model', version: 1, architecture: fused.architecture })
    const loaded = await VqaModel.load(dir)
    try {
      expect(loaded.questionVocab.words).toEqual(fused.questionVocab.words)
      expect(loaded.answerVocab.answers).toEqual(fused.answerVocab.answers)
      expect((await loaded.evaluate(validation)).overall).toBe(fusedAccuracy)
    } finally {
      loaded.dispose()
    }
  })

  it('refuses features of another width, and a directory without vqa.json', async () => {
    const narrow = { ...validation, features: { dim: 7, gather: validation.features.gather } }
    await expect(fused.predict(narrow.questions, narrow.features)).rejects.toBeInstanceOf(VqaShapeError)
    await expect(fused.fit(narrow, { epochs: 1 })).rejects.toThrow(/D = 7, the model was built for D = 128/)
    await expect(VqaModel.load(work)).rejects.toThrow(/vqa\.json: cannot read/)
  })

  it('stops when aborted, with the finished epochs as the result', async () => {
    const controller = new AbortController()
    const model = VqaModel.create(tinyOptions(train))
    try {
      const fit = model.fit(train, {
        epochs: 3,
        batchSize: 16,
        signal: controller.signal,
        callbacks: { onEpochEnd: () => controller.abort() },
      })
      const error = await fit.catch((e: unknown) => e)
      expect(error).toBeInstanceOf(OdysseyAbortError)
      expect((error as OdysseyAbortError<{ epochs: unknown[] }>).result!.epochs).toHaveLength(1)
    } finally {
      model.dispose()
    }
  })
})

describe('VqaModel with pretrained word vectors', () => {
  const train = split({ seed: 5, images: 40 })
  const vocab = QuestionVocab.build(train.questions.map((q) => q.question))
  const dim = 6
  // Vectors for every word but "circle"; that word and UNK read the learned unknown vector.
  const vectors = new Map(
    vocab.words
      .slice(2)
      .flatMap((word, k) =>
        word === 'circle' ? [] : [[word, Float32Array.from({ length: dim }, (_, d) => Math.sin(k + d))] as const],
      ),
  )
  const pretrained: WordVectors = { dim, vectors, linesRead: vectors.size }

  function create(frozen: boolean): VqaModel {
    return VqaModel.create(tinyOptions(train, { questionVocab: vocab, embedding: { pretrained, frozen } }))
  }

  it('keeps frozen vectors fixed while the unknown-word vector learns', async () => {
    const model = create(true)
    try {
      const before = model.model.getWeights()
      const row = vocab.indexOf('what')
      expect(Array.from(before['words.weight']!.data.subarray(row * dim, (row + 1) * dim))).toEqual(
        Array.from(vectors.get('what')!),
      )
      expect(
        Array.from(
          before['words.weight']!.data.subarray(vocab.indexOf('circle') * dim, (vocab.indexOf('circle') + 1) * dim),
        ),
      ).toEqual(new Array(dim).fill(0))
      await model.fit(train, { epochs: 2, batchSize: 16 })
      const after = model.model.getWeights()
      expect(after['words.weight']!.data).toEqual(before['words.weight']!.data)
      expect(after['unknownWords.weight']!.data).not.toEqual(before['unknownWords.weight']!.data)
    } finally {
      model.dispose()
    }
  })

  it('fine-tunes them when asked, starting from the file', async () => {
    const model = create(false)
    try {
      expect(model.architecture.wordVectors).toBe('pretrained-fine-tuned')
      const before = model.model.getWeights()['words.weight']!.data
      const row = vocab.indexOf('what')
      expect(Array.from(before.subarray(row * dim, (row + 1) * dim))).toEqual(Array.from(vectors.get('what')!))
      await model.fit(train, { epochs: 2, batchSize: 16 })
      expect(model.model.getWeights()['words.weight']!.data).not.toEqual(before)
    } finally {
      model.dispose()
    }
  })

  it('saves which words are unknown, so a loaded model flags them the same way', async () => {
    const model = create(true)
    const dir = join(work, 'pretrained')
    try {
      await model.save(dir)
      const saved = JSON.parse(readFileSync(join(dir, VQA_CONFIG_FILE), 'utf8'))
      expect(saved.unknownWords.sort((a: number, b: number) => a - b)).toEqual(
        [1, vocab.indexOf('circle')].sort((a, b) => a - b),
      )
      const loaded = await VqaModel.load(dir)
      const questions = train.questions.slice(0, 5)
      expect(await loaded.predict(questions, train.features)).toEqual(await model.predict(questions, train.features))
      loaded.dispose()
    } finally {
      model.dispose()
    }
    expect(existsSync(join(dir, 'checkpoint.json'))).toBe(true)
  })
})
