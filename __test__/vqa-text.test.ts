/**
 * Text side of the VQA data path: question tokenisation, the question and
 * answer vocabularies, and the official answer normalisation. Every expected
 * normalisation was computed by running processPunctuation and
 * processDigitArticle of the official vqaEval.py on the input.
 */
import { describe, expect, it } from 'vitest'

import { OdysseyRangeError } from '../ts/errors'
import {
  AnswerVocab,
  PAD_INDEX,
  QuestionVocab,
  UNK_INDEX,
  normalizeAnswer,
  processDigitArticle,
  processPunctuation,
  tokenizeQuestion,
} from '../ts/vqa'

describe('tokenizeQuestion', () => {
  it('lowercases and splits punctuation into tokens of their own', () => {
    expect(tokenizeQuestion("What's on the TABLE?")).toEqual(['what', "'", 's', 'on', 'the', 'table', '?'])
    expect(tokenizeQuestion('Is it 2.5 m/s (fast)?')).toEqual([
      'is',
      'it',
      '2',
      '.',
      '5',
      'm',
      '/',
      's',
      '(',
      'fast',
      ')',
      '?',
    ])
  })

  it('treats any run of whitespace as one separator and keeps no empty tokens', () => {
    expect(tokenizeQuestion('  how\tmany \n dogs  ')).toEqual(['how', 'many', 'dogs'])
    expect(tokenizeQuestion('   ')).toEqual([])
  })

  it('splits off < and >, so no question word can spell a reserved token', () => {
    expect(tokenizeQuestion('<pad> <unk>')).toEqual(['<', 'pad', '>', '<', 'unk', '>'])
  })
})

describe('QuestionVocab', () => {
  const questions = ['What color is the bus?', 'What color is the cat?', 'Is the cat black?']

  it('reserves PAD = 0 and UNK = 1 and orders words by count, then code point', () => {
    const vocab = QuestionVocab.build(questions)
    expect(PAD_INDEX).toBe(0)
    expect(UNK_INDEX).toBe(1)
    // ?, is, the ×3; cat, color, what ×2; black, bus ×1
    expect(vocab.words).toEqual(['<pad>', '<unk>', '?', 'is', 'the', 'cat', 'color', 'what', 'black', 'bus'])
    expect(vocab.size).toBe(10)
  })

  it('maps words below minCount and unseen words to UNK', () => {
    const vocab = QuestionVocab.build(questions, { minCount: 2 })
    expect(vocab.words).not.toContain('bus')
    expect(vocab.indexOf('bus')).toBe(UNK_INDEX)
    expect(vocab.indexOf('zebra')).toBe(UNK_INDEX)
    expect(Array.from(vocab.encode('What color is the zebra?'))).toEqual([7, 6, 3, 4, UNK_INDEX, 2])
  })

  it('encodes a padded [batch, time] batch with lengths', () => {
    const vocab = QuestionVocab.build(questions)
    const batch = vocab.encodeBatch(['Is the cat black?', 'bus?'])
    expect(batch).toMatchObject({ batch: 2, time: 5, truncated: 0 })
    expect(Array.from(batch.lengths)).toEqual([5, 2])
    expect(Array.from(batch.tokens)).toEqual([3, 4, 5, 8, 2, 9, 2, PAD_INDEX, PAD_INDEX, PAD_INDEX])
  })

  it('cuts questions to maxLength and pads to a fixed time when asked', () => {
    const vocab = QuestionVocab.build(questions)
    const cut = vocab.encodeBatch(['What color is the bus?', 'bus?'], { maxLength: 3 })
    expect(cut).toMatchObject({ time: 3, truncated: 1 })
    expect(Array.from(cut.lengths)).toEqual([3, 2])
    expect(Array.from(cut.tokens)).toEqual([7, 6, 3, 9, 2, PAD_INDEX])
    const fixed = vocab.encodeBatch(['bus?'], { time: 4 })
    expect(Array.from(fixed.tokens)).toEqual([9, 2, PAD_INDEX, PAD_INDEX])
  })

  it('refuses a question without tokens, naming it', () => {
    const vocab = QuestionVocab.build(questions)
    expect(() => vocab.encodeBatch(['bus?', ' '])).toThrow(OdysseyRangeError)
    expect(() => vocab.encodeBatch(['bus?', ' '])).toThrow(/questions\[1\] = " " has no tokens/)
  })

  it('refuses a non-positive minCount, maxLength or time', () => {
    expect(() => QuestionVocab.build(questions, { minCount: 0 })).toThrow(/minCount must be a positive integer, got 0/)
    const vocab = QuestionVocab.build(questions)
    expect(() => vocab.encodeBatch(['bus'], { maxLength: 1.5 })).toThrow(/maxLength/)
    expect(() => vocab.encodeBatch(['bus'], { time: 0 })).toThrow(/time/)
  })

  it('survives a JSON round trip and rejects a mangled one', () => {
    const vocab = QuestionVocab.build(questions)
    const copy = QuestionVocab.fromJSON(JSON.parse(JSON.stringify(vocab)))
    expect(copy.words).toEqual(vocab.words)
    expect(() => QuestionVocab.fromJSON({ kind: 'odyssey-vqa-question-vocab', words: ['cat', 'dog'] })).toThrow(
      /must start/,
    )
    expect(() =>
      QuestionVocab.fromJSON({ kind: 'odyssey-vqa-question-vocab', words: ['<pad>', '<unk>', 'a', 'a'] }),
    ).toThrow(/"a" twice/)
    expect(() => QuestionVocab.fromJSON({ words: [] })).toThrow(/expected \{"kind"/)
  })
})

describe('official answer normalisation', () => {
  // [input, normalizeAnswer(input)] from the official code.
  const officialCases: [string, string][] = [
    ['Two', '2'],
    ['2.', '2'],
    ['two.', '2'],
    ['none', '0'],
    ['Zero', '0'],
    ['ten dogs', '10 dogs'],
    ['1,000', '1000'],
    ['1,000.5', '1000.5'],
    ['1,2,3', '123'],
    ['12,5 , x', '125 x'],
    ['red,blue', 'red blue'],
    ['red, blue', 'red blue'],
    ['a,b,c', 'b c'],
    ['t-shirt', 't shirt'],
    ['one-way', '1 way'],
    ['top-right', 'top right'],
    ['  Top-Right  ', 'top right'],
    ['\tred\n', 'red'],
    ['yes!', 'yes'],
    ['wow!!', 'wow'],
    ['left )', 'left'],
    ['(left)', 'left'],
    ['1/2', '1 2'],
    ['4 / 5', '4 5'],
    ['a+b', 'b'],
    ['x=y', 'x y'],
    ['me@home', 'me home'],
    ['"quoted"', 'quoted'],
    ['back\\slash', 'back slash'],
    ['3.5', '3.5'],
    ['3.', '3'],
    ['5.0.', '5.0'],
    ['e.g.', 'eg'],
    ['U.S.A.', 'usa'],
    ['mr. smith', 'mr smith'],
    ['..', ''],
    ['10:30', '10:30'],
    ['$5', '$5'],
    ['100%', '100%'],
    ['the dog', 'dog'],
    ['A  B   C', 'b c'],
    ['an apple', 'apple'],
    ['on the left', 'on left'],
    ['none of the above', '0 of above'],
    ['dont', "don't"],
    ['isnt', "isn't"],
    ["isn't", "isn't"],
    ['hes', "he's"],
    ['oclock', "o'clock"],
    ['twas', "'twas"],
    ["somebody'd", 'somebodyd'],
    ['Im', 'im'],
    ['Ive', 'ive'],
    ["cat's toy", "cat's toy"],
  ]

  it.each(officialCases)('normalizeAnswer(%j) = %j', (input, expected) => {
    expect(normalizeAnswer(input)).toBe(expected)
  })

  it('deletes a mark that touches a space, and any mark once a digit-comma-digit occurs', () => {
    expect(processPunctuation('red ,blue')).toBe('red blue')
    expect(processPunctuation('red,blue')).toBe('red blue')
    expect(processPunctuation('1,5;x')).toBe('15x')
  })

  it('strips periods not followed by a digit, only the first 32, as the official re.sub(..., re.UNICODE) does', () => {
    expect(processPunctuation(`xxx${'.'.repeat(40)}`)).toBe(`xxx${'.'.repeat(8)}`)
  })

  it('maps number words and drops articles word by word, after lowercasing', () => {
    expect(processDigitArticle('The  THREE   Cats')).toBe('3 cats')
    expect(processDigitArticle('a')).toBe('')
    expect(processDigitArticle('constructor toString')).toBe('constructor tostring')
  })
})

describe('AnswerVocab', () => {
  const annotations = [
    { multipleChoiceAnswer: 'yes', answers: ['yes', 'yes', 'no'] },
    { multipleChoiceAnswer: 'Yes', answers: ['yes'] },
    { multipleChoiceAnswer: 'two', answers: ['2', 'two', '2', '3'] },
    { multipleChoiceAnswer: '2', answers: ['2'] },
    { multipleChoiceAnswer: 'no', answers: ['no'] },
    { multipleChoiceAnswer: 'red', answers: ['red'] },
    { multipleChoiceAnswer: 'blue', answers: ['blue'] },
  ]

  it('keeps the top K normalised multiple_choice_answers, ties in code-point order', () => {
    const vocab = AnswerVocab.build(annotations, { topK: 4 })
    expect(vocab.answers).toEqual(['2', 'yes', 'blue', 'no'])
    expect(vocab.indexOf('Two.')).toBe(0)
    expect(vocab.indexOf('red')).toBe(-1)
    expect(Array.from(vocab.encodeLabels(annotations))).toEqual([1, 1, 0, 0, 3, -1, 2])
    expect(vocab.coverage(annotations)).toBeCloseTo(6 / 7, 12)
  })

  it('gives soft targets equal to the official accuracy of each class', () => {
    const vocab = AnswerVocab.build(annotations, { topK: 4 })
    const scores = vocab.scoreTargets([annotations[2] as (typeof annotations)[number]])
    // Humans 2, two, 2, 3 → "2" ×3 and "3" ×1 after normalisation; "3" is not a class.
    // Leave-one-out over 4 humans: (3 · 2/3 + 1 · 1) / 4 = 0.75.
    expect(Array.from(scores)).toEqual([0.75, 0, 0, 0])
  })

  it('survives a JSON round trip and refuses an unknown class', () => {
    const vocab = AnswerVocab.build(annotations)
    expect(AnswerVocab.fromJSON(JSON.parse(JSON.stringify(vocab))).answers).toEqual(vocab.answers)
    expect(() => vocab.answerAt(vocab.size)).toThrow(/answer class 5 is outside 0\.\.4/)
  })
})
