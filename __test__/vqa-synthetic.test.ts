/**
 * The synthetic VQA set: deterministic, right (an independent solver reads
 * each question and answers it from the scene), balanced so the question
 * alone is near chance, with annotator noise that the official normalisation
 * folds, features that are the documented projection of the scene, and files
 * that load through the same readers as the real data.
 */
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import {
  POSITION_NAMES,
  SCENE_ENCODING_SIZE,
  SYNTHETIC_ANSWERS,
  SYNTHETIC_QUESTION_TYPES,
  SceneProjection,
  encodeScene,
  generateSyntheticVqa,
  normalizeAnswer,
  openVqaSplit,
  surfaceForms,
  vqaAccuracy,
  writeSyntheticVqa,
  type SyntheticObject,
  type SyntheticScene,
  type SyntheticVqa,
} from '../ts/vqa'

const data = generateSyntheticVqa({ seed: 3, images: 400 })

/** Answers a generated question from the scene, independently of the generator's code; throws if ambiguous. */
function solve(question: string, scene: SyntheticScene): string {
  const only = (objects: SyntheticObject[]) => {
    if (objects.length !== 1) throw new Error(`"${question}" refers to ${objects.length} objects`)
    return objects[0] as SyntheticObject
  }
  const withShape = (shape: string) => scene.filter((object) => object.shape === shape)
  const withColor = (color: string) => scene.filter((object) => object.color === color)
  const forms: [RegExp, (match: RegExpMatchArray) => string][] = [
    [
      /^what color is the object (left of|right of|above|below) the (\w+)\?$/,
      (match) => {
        const anchor = only(withShape(match[2] as string))
        const related = scene.filter((object) => {
          if (match[1] === 'left of') return object.row === anchor.row && object.column < anchor.column
          if (match[1] === 'right of') return object.row === anchor.row && object.column > anchor.column
          if (match[1] === 'above') return object.column === anchor.column && object.row < anchor.row
          return object.column === anchor.column && object.row > anchor.row
        })
        return only(related).color
      },
    ],
    [/^what (?:color is|is the color of) the (\w+)\?$/, (match) => only(withShape(match[1] as string)).color],
    [
      /^(?:what shape is the (\w+) object|which shape is (\w+))\?$/,
      (match) => only(withColor((match[1] ?? match[2]) as string)).shape,
    ],
    [
      /^where is the (\w+) (\w+)\?$/,
      (match) => {
        const object = only(withColor(match[1] as string).filter(({ shape }) => shape === match[2]))
        return POSITION_NAMES[object.row]?.[object.column] as string
      },
    ],
    [/^how many (\w+)s are there\?$/, (match) => String(withShape(match[1] as string).length)],
    [/^how many (\w+) objects are there\?$/, (match) => String(withColor(match[1] as string).length)],
    [
      /^is there a (\w+) (\w+)\?$/,
      (match) => (withColor(match[1] as string).some(({ shape }) => shape === match[2]) ? 'yes' : 'no'),
    ],
  ]
  for (const [form, answer] of forms) {
    const match = question.match(form)
    if (match) return answer(match)
  }
  throw new Error(`unknown question form: ${question}`)
}

function countBy<T>(items: readonly T[], key: (item: T) => string): Map<string, number> {
  const counts = new Map<string, number>()
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1)
  return counts
}

describe('generateSyntheticVqa', () => {
  it('is deterministic in its seed', () => {
    const again = generateSyntheticVqa({ seed: 3, images: 400 })
    expect(again.questions).toEqual(data.questions)
    expect(again.annotations).toEqual(data.annotations)
    expect(again.imageIds).toEqual(data.imageIds)
    expect(Buffer.from(again.features.buffer).equals(Buffer.from(data.features.buffer))).toBe(true)
    const other = generateSyntheticVqa({ seed: 4, images: 400 })
    expect(other.annotations).not.toEqual(data.annotations)
  })

  it('answers every question right: an independent solver agrees with multiple_choice_answer', () => {
    data.annotations.forEach((annotation, i) => {
      const question = data.questions[i]
      expect(question?.questionId).toBe(annotation.questionId)
      expect(solve(question?.question as string, data.scenes.get(annotation.imageId) as SyntheticScene)).toBe(
        annotation.multipleChoiceAnswer,
      )
    })
  })

  it('asks every question type, with answers of each type about equally often', () => {
    const byType = countBy(data.annotations, ({ questionType }) => questionType as string)
    expect([...byType.keys()].sort()).toEqual([...SYNTHETIC_QUESTION_TYPES].sort())
    for (const type of SYNTHETIC_QUESTION_TYPES) {
      const ofType = data.annotations.filter(({ questionType }) => questionType === type)
      const answers = countBy(ofType, ({ multipleChoiceAnswer }) => multipleChoiceAnswer)
      expect([...answers.keys()].sort()).toEqual([...SYNTHETIC_ANSWERS[type]].sort())
      // Within 20% of a uniform share: the greedy balance lags only on answers few scenes allow.
      const uniform = ofType.length / SYNTHETIC_ANSWERS[type].length
      for (const count of answers.values()) expect(Math.abs(count - uniform) / uniform, `${type}`).toBeLessThan(0.2)
    }
  })

  it('cannot be answered from the question alone: a per-question majority baseline stays near chance', () => {
    const big = generateSyntheticVqa({ seed: 5, images: 1000 })
    const half = Math.floor(big.questions.length / 2)
    const seen = new Map<string, Map<string, number>>()
    big.questions.slice(0, half).forEach(({ question }, i) => {
      const answers = seen.get(question) ?? new Map<string, number>()
      const answer = big.annotations[i]?.multipleChoiceAnswer as string
      seen.set(question, answers.set(answer, (answers.get(answer) ?? 0) + 1))
    })
    const majority = (question: string) =>
      [...(seen.get(question) ?? new Map([['yes', 1]]))].sort((a, b) => b[1] - a[1])[0]?.[0] as string
    const scores = big.questions
      .slice(half)
      .map(({ question }, i) => vqaAccuracy(majority(question), big.annotations[half + i]?.answers ?? []))
    const questionOnly = scores.reduce((sum, score) => sum + score, 0) / scores.length
    const withImage = big.annotations.reduce(
      (sum, { multipleChoiceAnswer, answers }) => sum + vqaAccuracy(multipleChoiceAnswer, answers),
      0,
    )
    // Chance is ≈ 0.3 (1 of 2–9 answers, plus partial credit from wrong annotators); the scene gives 1.
    expect(questionOnly).toBeLessThan(0.4)
    expect(withImage / big.annotations.length).toBe(1)
  })

  it('has 10 annotators, 0–2 wrong, whose right answers normalise to multiple_choice_answer', () => {
    const wrongCounts = new Set<number>()
    let variants = 0
    for (const { answers, multipleChoiceAnswer, questionType } of data.annotations) {
      expect(answers).toHaveLength(10)
      const normalised = answers.map(normalizeAnswer)
      expect(
        normalised.every((answer) =>
          SYNTHETIC_ANSWERS[questionType as keyof typeof SYNTHETIC_ANSWERS].includes(answer),
        ),
      ).toBe(true)
      wrongCounts.add(normalised.filter((answer) => answer !== multipleChoiceAnswer).length)
      variants += answers.filter((answer, i) => answer !== normalised[i]).length
    }
    expect([...wrongCounts].sort()).toEqual([0, 1, 2])
    expect(variants).toBeGreaterThan(0)
  })

  it('writes surface forms that the official normalisation folds back, for every answer', () => {
    for (const answer of Object.values(SYNTHETIC_ANSWERS).flat()) {
      for (const form of surfaceForms(answer)) expect(normalizeAnswer(form), form).toBe(answer)
    }
    expect(surfaceForms('2')).toEqual(expect.arrayContaining(['two', 'Two', '2.']))
    expect(surfaceForms('top right')).toContain('top-right')
  })

  it('makes features relu(W · scene + noise) with one W for every seed, rows shuffled against image order', () => {
    const projection = new SceneProjection(data.dim, 1234)
    const other = generateSyntheticVqa({ seed: 9, images: 5 })
    for (const sample of [data, other]) {
      sample.imageIds.slice(0, 20).forEach((imageId, row) => {
        const encoding = encodeScene(sample.scenes.get(imageId) as SyntheticScene)
        const features = sample.features.subarray(row * sample.dim, (row + 1) * sample.dim)
        for (let d = 0; d < sample.dim; d++) {
          let clean = 0
          for (let j = 0; j < SCENE_ENCODING_SIZE; j++)
            clean += (projection.weights[d * SCENE_ENCODING_SIZE + j] as number) * (encoding[j] as number)
          // Noise has std 0.1, so 6 std is never exceeded in a few thousand draws.
          expect(Math.abs((features[d] as number) - Math.max(0, clean))).toBeLessThan(0.6)
        }
      })
    }
    expect(data.imageIds).not.toEqual([...data.imageIds].sort((a, b) => a - b))
    expect(data.features.every((value) => value >= 0)).toBe(true)
  })

  it('refuses options out of range', () => {
    expect(() => generateSyntheticVqa({ images: 0 })).toThrow(/images must be an integer in 1\.\./)
    expect(() => generateSyntheticVqa({ noise: -1 })).toThrow(/noise must be finite and >= 0/)
  })
})

describe('writeSyntheticVqa', () => {
  let directory: string
  let written: Awaited<ReturnType<typeof writeSyntheticVqa>>
  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), 'vqa-synthetic-'))
    written = await writeSyntheticVqa(directory, { seed: 11, images: 30, featureDim: 16, split: 'val' })
  })
  afterAll(async () => {
    await rm(directory, { recursive: true })
  })

  it('writes the VQA v2 layout that loads through the real readers', async () => {
    expect(written.questionsFile).toBe(join(directory, 'synthetic_val_questions.json'))
    const split = await openVqaSplit(written, { expectedDim: 16 })
    try {
      const expected: SyntheticVqa = written.data
      expect(split.questions.map(({ questionId, imageId, question }) => ({ questionId, imageId, question }))).toEqual(
        expected.questions,
      )
      expect(split.annotations).toHaveLength(expected.annotations.length)
      expect(split.annotations).toMatchObject(expected.annotations)
      const someIds = expected.questions.slice(0, 7).map(({ imageId }) => imageId)
      const rows = someIds.map((imageId) => expected.imageIds.indexOf(imageId))
      const gathered = await split.features.gather(someIds)
      rows.forEach((row, i) => {
        expect(gathered.subarray(i * 16, (i + 1) * 16)).toEqual(expected.features.subarray(row * 16, (row + 1) * 16))
      })
    } finally {
      await split.features.close()
    }
    const raw = JSON.parse(await readFile(written.annotationsFile, 'utf8'))
    expect(raw.annotations[0]).toHaveProperty('question_type')
    expect(raw.annotations[0]).toHaveProperty('answer_type')
    expect(raw.annotations[0].answers[0]).toEqual({
      answer: expect.any(String),
      answer_confidence: 'yes',
      answer_id: 1,
    })
  })

  it('writes byte-identical files for the same seed', async () => {
    const elsewhere = join(directory, 'again')
    await mkdir(elsewhere)
    const again = await writeSyntheticVqa(elsewhere, { seed: 11, images: 30, featureDim: 16, split: 'val' })
    for (const key of ['questionsFile', 'annotationsFile', 'featuresFile'] as const) {
      const [first, second] = await Promise.all([readFile(written[key]), readFile(again[key])])
      expect(second.equals(first), key).toBe(true)
    }
  })
})
