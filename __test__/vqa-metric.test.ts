/**
 * VQA accuracy against hand-computed values: min(#humans / 3, 1) averaged
 * over the 10 leave-one-out subsets of 9 humans, the official normalisation
 * (and its all-humans-agree exception), and the per-type breakdown.
 */
import { join } from 'node:path'

import { describe, expect, it } from 'vitest'

import {
  VqaLookupError,
  evaluateVqa,
  normalizeAnswer,
  readVqaAnnotations,
  vqaAccuracy,
  type VqaAnnotation,
} from '../ts/vqa'

const FIXTURES = join(__dirname, 'fixtures', 'vqa')

/** Ten humans, `matching` of whom said "cat". */
function humans(matching: number): string[] {
  return [...Array(10)].map((_, i) => (i < matching ? 'cat' : `other${i}`))
}

/** The definition spelled out: every subset of n − 1 humans, min(matches / 3, 1), averaged. */
function bruteForceAccuracy(predicted: string, answers: string[]): number {
  const normalised = answers.map(normalizeAnswer)
  const prediction = normalizeAnswer(predicted)
  let total = 0
  for (let left = 0; left < answers.length; left++) {
    const subset = normalised.filter((_, i) => i !== left)
    total += Math.min(subset.filter((answer) => answer === prediction).length / 3, 1)
  }
  return total / answers.length
}

describe('vqaAccuracy', () => {
  it.each([
    [0, 0],
    [1, 0.3],
    [2, 0.6],
    // 3 subsets (a matching human left out) see 2 matches: 2/3; 7 see 3: 1 → (3·2/3 + 7) / 10.
    [3, 0.9],
    [4, 1],
    [10, 1],
  ])('%i of 10 humans matching scores %f', (matching, expected) => {
    expect(vqaAccuracy('cat', humans(matching))).toBeCloseTo(expected, 12)
  })

  it('equals the explicit average over the 10-choose-9 subsets', () => {
    const pool = ['2', 'two', 'Two.', '3', 'three', 'red', 'a red', 'Red!', 'blue', 'yes']
    let seed = 7
    const next = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31
      return seed / 2 ** 31
    }
    for (let trial = 0; trial < 200; trial++) {
      const answers = [...Array(10)].map(() => pool[Math.floor(next() * pool.length)] as string)
      if (new Set(answers).size === 1) continue
      const predicted = pool[Math.floor(next() * pool.length)] as string
      expect(vqaAccuracy(predicted, answers)).toBeCloseTo(bruteForceAccuracy(predicted, answers), 12)
    }
  })

  it('compares after normalisation when the humans disagree', () => {
    const answers = ['2', '2', '2', '2', '2', '2', 'two', 'two', '3', '2.']
    expect(vqaAccuracy('Two', answers)).toBe(1)
    expect(vqaAccuracy('three', answers)).toBeCloseTo(0.3, 12)
  })

  it('compares raw strings when every human gave the same answer, as the official code does', () => {
    const answers = Array<string>(10).fill('yes')
    expect(vqaAccuracy(' yes\n', answers)).toBe(1)
    expect(vqaAccuracy('Yes', answers)).toBe(0)
  })

  it('needs at least one human answer', () => {
    expect(() => vqaAccuracy('yes', [])).toThrow(/at least one human answer/)
  })
})

describe('evaluateVqa', () => {
  it('scores the fixture overall and per question and answer type, in percent', async () => {
    const annotations = await readVqaAnnotations(join(FIXTURES, 'annotations.json'))
    const predictions = [
      { question_id: 9000, answer: 'Red.' }, // 8 of 10 say red after normalisation → 1
      { question_id: 9001, answer: '3' }, // 1 of 10 → 0.3
      { question_id: 42000, answer: 'Yes' }, // all 10 wrote "yes", so no normalisation → 0
      { question_id: 581929002, answer: 'disc' }, // 3 of 10 → 0.9
    ]
    const result = evaluateVqa(annotations, predictions, { includePerQuestion: true })
    expect(result).toEqual({
      questions: 4,
      overall: 55,
      perQuestionType: {
        'what color is the': { accuracy: 100, questions: 1 },
        'how many': { accuracy: 30, questions: 1 },
        'is the': { accuracy: 0, questions: 1 },
        'what is the': { accuracy: 90, questions: 1 },
      },
      perAnswerType: {
        other: { accuracy: 95, questions: 2 },
        number: { accuracy: 30, questions: 1 },
        'yes/no': { accuracy: 0, questions: 1 },
      },
      perQuestion: { '9000': 100, '9001': 30, '42000': 0, '581929002': 90 },
    })
    expect(JSON.parse(JSON.stringify(result))).toEqual(result)
  })

  const untyped: VqaAnnotation[] = [1, 2, 3].map((questionId) => ({
    questionId,
    imageId: 1,
    multipleChoiceAnswer: 'a',
    answers: Array<string>(10).fill('dog'),
  }))
  const threeAnswers = new Map([
    [1, 'dog'],
    [2, 'cat'],
    [3, 'cat'],
  ])

  it('rounds like the official tool unless told not to, and uses the caller types when the file has none', () => {
    const rounded = evaluateVqa(untyped, threeAnswers, {
      questionTypeOf: ({ questionId }) => (questionId < 3 ? 'early' : 'late'),
    })
    expect(rounded.overall).toBe(33.33)
    expect(rounded.perQuestionType).toEqual({
      early: { accuracy: 50, questions: 2 },
      late: { accuracy: 0, questions: 1 },
    })
    expect(rounded.perAnswerType).toEqual({})
    expect(evaluateVqa(untyped, threeAnswers, { decimals: null }).overall).toBeCloseTo(100 / 3, 12)
  })

  it('refuses a missing, unexpected or repeated prediction, naming the question_id', () => {
    const missing = new Map([...threeAnswers].slice(0, 2))
    expect(() => evaluateVqa(untyped, missing)).toThrow(VqaLookupError)
    expect(() => evaluateVqa(untyped, missing)).toThrow(/no prediction for annotated question_id 3/)
    const extra = new Map([...threeAnswers, [4, 'dog']])
    expect(() => evaluateVqa(untyped, extra)).toThrow(/question_id 4, which has no annotation/)
    const repeated = [1, 2, 3, 2].map((questionId) => ({ question_id: questionId, answer: 'dog' }))
    expect(() => evaluateVqa(untyped, repeated)).toThrow(/predictions\[3\] repeats question_id 2/)
  })
})
