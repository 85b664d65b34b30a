/**
 * What the VQA model reads: pretrained word vectors from GloVe / word2vec
 * text files, questions as word indices, chunk inputs (padding, unknown-word
 * flags), and the synthetic set's object-level scene encoding.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { afterAll, describe, expect, it } from 'vitest'

import { isOdysseyError } from '../ts/errors'
import type { TokenTensor } from '../ts/model/data'
import {
  MemoryFeatures,
  QuestionVocab,
  SYNTHETIC_COLORS,
  SYNTHETIC_SHAPES,
  SceneProjection,
  SeededRandom,
  UNK_INDEX,
  VqaFileError,
  encodeScene,
  generateSyntheticVqa,
  indexQuestions,
  readWordVectors,
  resolveArchitecture,
  sceneEncodingSize,
  vqaConfusion,
  type SyntheticScene,
} from '../ts/vqa'
import { chunkInputs, unknownWordRows } from '../ts/vqa/inputs'

const work = mkdtempSync(join(tmpdir(), 'odyssey-vqa-model-data-'))
afterAll(() => rmSync(work, { recursive: true, force: true }))

function textFile(name: string, text: string): string {
  const file = join(work, name)
  writeFileSync(file, text)
  return file
}

describe('readWordVectors', () => {
  it('keeps only the wanted words of a GloVe file, with their values', async () => {
    const file = textFile('glove.txt', 'the 0.1 0.2 0.3\ncat -1 2.5e-1 3\ndog 4 5 6\n')
    const { dim, vectors, linesRead } = await readWordVectors(file, ['cat', 'the', 'zebra'])
    expect(dim).toBe(3)
    expect(linesRead).toBe(3)
    expect([...vectors.keys()].sort()).toEqual(['cat', 'the'])
    expect(Array.from(vectors.get('cat')!)).toEqual([-1, Math.fround(0.25), 3])
  })

  it('skips a word2vec header line and reads words that contain spaces', async () => {
    const file = textFile('w2v.txt', '2 2\nnew york 1 2\nparis 3 4\n')
    const { dim, vectors } = await readWordVectors(file, ['new york', 'paris'])
    expect(dim).toBe(2)
    expect(Array.from(vectors.get('new york')!)).toEqual([1, 2])
  })

  it('stops after maxLines', async () => {
    const file = textFile('long.txt', 'a 1\nb 2\nc 3\n')
    const { vectors, linesRead } = await readWordVectors(file, ['a', 'c'], { maxLines: 2 })
    expect(linesRead).toBe(2)
    expect([...vectors.keys()]).toEqual(['a'])
  })

  it('names the line of a short line, a non-number, and refuses a file without vectors', async () => {
    await expect(readWordVectors(textFile('short.txt', 'a 1 2\nb 3\n'), ['a'])).rejects.toThrow(
      /short\.txt: line 2: has 1 values, expected 2/,
    )
    await expect(readWordVectors(textFile('nan.txt', 'a 1 2\nb 3 x\n'), ['b'])).rejects.toThrow(
      /line 2: value 2 is "x", not a finite number/,
    )
    await expect(readWordVectors(textFile('empty.txt', '\n'), ['a'])).rejects.toBeInstanceOf(VqaFileError)
  })

  it('reports a missing file as ODYSSEY_IO', async () => {
    const error = await readWordVectors(join(work, 'absent.txt'), ['a']).catch((e: unknown) => e)
    expect(isOdysseyError(error) && error.code).toBe('ODYSSEY_IO')
  })
})

describe('question indices and chunk inputs', () => {
  const vocab = QuestionVocab.build(['what color is the cube?', 'is it red?'])
  const questions = [
    { questionId: 1, imageId: 10, question: 'what color is the ball?' },
    { questionId: 2, imageId: 20, question: 'is it red?' },
  ]
  const features = {
    dim: 2,
    gather: async (ids: ArrayLike<number>) => Float32Array.from(Array.from(ids).flatMap((id) => [id, -id])),
  }

  it('indexes words (unknown ones as UNK), cuts at the maximum length and refuses empty questions', () => {
    const indexed = indexQuestions(questions, vocab, 4)
    expect(indexed.imageIds).toEqual([10, 20])
    expect(indexed.words[0]).toHaveLength(4)
    expect(indexQuestions(questions, vocab, 26).words[0]![4]).toBe(UNK_INDEX)
    expect(() => indexQuestions([{ questionId: 7, imageId: 1, question: '   ' }], vocab, 26)).toThrow(/question_id 7/)
  })

  it('pads tokens to the chunk, gathers features in row order and flags unknown words for frozen vectors', async () => {
    const architecture = resolveArchitecture({
      fusion: 'product',
      imageDim: 2,
      vocabSize: vocab.size,
      answers: 3,
      wordVectors: 'pretrained-frozen',
    })
    const indexed = indexQuestions(questions, vocab, 26)
    const unknown = unknownWordRows(vocab.size, new Set([vocab.indexOf('what'), vocab.indexOf('is')]))
    const inputs = await chunkInputs(indexed, [1, 0], features, architecture, unknown)
    expect(inputs.image).toEqual({ data: Float32Array.from([20, -20, 10, -10]), shape: [2, 2] })
    const question = inputs.question as TokenTensor
    expect(question.shape).toEqual([2, 6])
    expect(Array.from(question.lengths ?? [])).toEqual([4, 6])
    const flags = (inputs.unknown as { ids: Uint32Array }).ids
    // Row 0 is "is it red ?" padded: only "is" has a vector; padding is not flagged.
    expect(Array.from(flags.subarray(0, 6))).toEqual([0, 1, 1, 1, 0, 0])
    expect(flags[6 + 5]).toBe(1)
  })

  it('looks features up by image id in memory, and names an id it lacks', async () => {
    const memory = new MemoryFeatures({ imageIds: [5, 3], features: Float32Array.from([1, 2, 3, 4]), dim: 2 })
    expect(await memory.gather([3, 5, 3])).toEqual(Float32Array.from([3, 4, 1, 2, 3, 4]))
    await expect(memory.gather([4])).rejects.toThrow(/no features for image_id 4/)
    expect(() => new MemoryFeatures({ imageIds: [1], features: new Float32Array(3), dim: 2 })).toThrow(
      /expected \[1, 2\]/,
    )
  })

  it('leaves out the input a single-modality model does not read', async () => {
    const indexed = indexQuestions(questions, vocab, 26)
    const questionOnly = resolveArchitecture({
      fusion: 'concat',
      modality: 'question',
      imageDim: 2,
      vocabSize: vocab.size,
      answers: 3,
    })
    const imageOnly = resolveArchitecture({
      fusion: 'concat',
      modality: 'image',
      imageDim: 2,
      vocabSize: vocab.size,
      answers: 3,
    })
    expect(Object.keys(await chunkInputs(indexed, [0], features, questionOnly, new Set()))).toEqual(['question'])
    expect(Object.keys(await chunkInputs(indexed, [0], features, imageOnly, new Set()))).toEqual(['image'])
  })
})

describe('vqaConfusion', () => {
  const annotation = (questionId: number, answer: string) => ({
    questionId,
    imageId: 1,
    multipleChoiceAnswer: answer,
    answers: [answer],
  })

  it('counts reference against predicted answer among the most frequent references, normalised', () => {
    const annotations = [
      annotation(1, 'yes'),
      annotation(2, 'Yes'),
      annotation(3, 'no'),
      annotation(4, 'two'),
      annotation(5, 'red'),
    ]
    const predictions = new Map([
      [1, 'yes'],
      [2, 'no'],
      [3, 'no'],
      [4, '2'],
      [5, 'yes'],
    ])
    const { answers, counts } = vqaConfusion(annotations, predictions, 3)
    // "yes" twice; "2", "no", "red" once each, ties in code-point order.
    expect(answers).toEqual(['yes', '2', 'no'])
    expect(counts).toEqual([
      [1, 0, 1],
      [0, 1, 0],
      [0, 0, 1],
    ])
  })
})

describe('synthetic scenes, objects encoding', () => {
  const scene: SyntheticScene = [
    { color: 'red', shape: 'circle', row: 0, column: 0 },
    { color: 'blue', shape: 'square', row: 2, column: 1 },
  ]

  it('sets one slot per object: its colour-shape pair in its cell', () => {
    const slots = SYNTHETIC_COLORS.length * SYNTHETIC_SHAPES.length
    expect(sceneEncodingSize('objects')).toBe(9 * slots)
    const encoding = encodeScene(scene, 'objects')
    const set = [...encoding.keys()].filter((k) => encoding[k] === 1)
    const slot = (color: string, shape: string) =>
      SYNTHETIC_COLORS.indexOf(color) * SYNTHETIC_SHAPES.length + SYNTHETIC_SHAPES.indexOf(shape)
    expect(set).toEqual([slot('red', 'circle'), 7 * slots + slot('blue', 'square')])
    expect(encodeScene(scene)).toEqual(encodeScene(scene, 'attributes'))
  })

  it('projects the objects encoding into the features and records the choice in the config', () => {
    const data = generateSyntheticVqa({ seed: 3, images: 4, featureDim: 8, noise: 0, sceneEncoding: 'objects' })
    expect(data.config.sceneEncoding).toBe('objects')
    const projection = new SceneProjection(8, 1234, 'objects')
    data.imageIds.forEach((imageId, row) => {
      const expected = projection.project(data.scenes.get(imageId)!, 0, new SeededRandom(0))
      expect(data.features.subarray(row * 8, (row + 1) * 8)).toEqual(expected)
    })
    expect(() => generateSyntheticVqa({ sceneEncoding: 'pixels' as never })).toThrow(
      /sceneEncoding must be one of attributes, objects/,
    )
  })
})
