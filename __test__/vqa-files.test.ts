/**
 * Loaders of the VQA v2 files on hand-made fixtures in the real layout, and
 * on malformed copies of them: each error must be a `VqaFileError` naming the
 * file and the record (index and question_id) or the byte offset.
 */
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { isOdysseyError } from '../ts/errors'
import {
  VqaFileError,
  joinVqa,
  readVqaAnnotations,
  readVqaExamples,
  readVqaQuestions,
  writeVqaAnnotations,
  writeVqaQuestions,
  type VqaAnnotation,
} from '../ts/vqa'

const FIXTURES = join(__dirname, 'fixtures', 'vqa')
const fixture = (name: string) => join(FIXTURES, name)

/** Awaits `promise`, expecting a `VqaFileError` about `file`; returns it for further checks. */
async function expectFileError(promise: Promise<unknown>, file: string, ...patterns: RegExp[]): Promise<VqaFileError> {
  const error = await promise.then(
    () => undefined,
    (thrown: unknown) => thrown,
  )
  expect(error).toBeInstanceOf(VqaFileError)
  const fileError = error as VqaFileError
  expect(isOdysseyError(fileError)).toBe(true)
  expect(fileError.code).toBe('ODYSSEY_FORMAT')
  expect(fileError.file).toBe(file)
  expect(fileError.message.startsWith(`${file}: `)).toBe(true)
  for (const pattern of patterns) expect(fileError.message).toMatch(pattern)
  return fileError
}

describe('readVqaQuestions and readVqaAnnotations on the real layout', () => {
  it('read every record with its fields', async () => {
    const questions = await readVqaQuestions(fixture('questions.json'))
    expect(questions).toHaveLength(4)
    expect(questions[3]).toEqual({ questionId: 581929002, imageId: 581929, question: 'What is the man holding?' })

    const annotations = await readVqaAnnotations(fixture('annotations.json'))
    expect(annotations.map((annotation) => annotation.questionId)).toEqual([9000, 9001, 42000, 581929002])
    expect(annotations[1]).toEqual({
      questionId: 9001,
      imageId: 9,
      questionType: 'how many',
      answerType: 'number',
      multipleChoiceAnswer: '2',
      answers: ['2', '2', '2', '2', '2', '2', 'two', 'two', '3', '2.'],
    })
  })

  it('join questions and annotations by question_id in question order', async () => {
    const examples = await readVqaExamples({
      questionsFile: fixture('questions.json'),
      annotationsFile: fixture('annotations.json'),
    })
    expect(
      examples.map(({ questionId, question, multipleChoiceAnswer }) => [questionId, question, multipleChoiceAnswer]),
    ).toEqual([
      [9000, 'What color is the bus?', 'red'],
      [9001, 'How many people are there?', '2'],
      [42000, 'Is the dog sleeping?', 'yes'],
      [581929002, 'What is the man holding?', 'frisbee'],
    ])
  })

  it('parse a file streamed in chunks smaller than one record the same as a whole one', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'vqa-files-'))
    try {
      // Pad past the 1 MiB read size so records straddle chunk boundaries.
      const text = await readFile(fixture('annotations.json'), 'utf8')
      const padded = text.replace('"info": {', `"info": {"padding": "${'x'.repeat(1 << 20)}",`)
      await writeFile(join(directory, 'big.json'), padded)
      const annotations = await readVqaAnnotations(join(directory, 'big.json'))
      expect(annotations).toEqual(await readVqaAnnotations(fixture('annotations.json')))
    } finally {
      await rm(directory, { recursive: true })
    }
  })
})

describe('malformed files name the file and the record', () => {
  it('malformed JSON: a missing comma, with the byte offset', async () => {
    const file = fixture('questions_bad_syntax.json')
    const text = await readFile(file, 'latin1')
    // The record after the missing comma starts at the "{" before its "image_id": 42.
    const unexpectedBrace = text.lastIndexOf('{', text.indexOf('"image_id": 42'))
    const error = await expectFileError(readVqaQuestions(file), file, /malformed JSON: Unexpected LEFT_BRACE/)
    expect(error.byteOffset).toBe(unexpectedBrace)
    expect(error.message).toContain(`at byte ${unexpectedBrace}: `)
  })

  it('malformed JSON: a file cut in the middle of a record', async () => {
    const file = fixture('annotations_truncated.json')
    const size = (await readFile(file)).length
    const error = await expectFileError(readVqaAnnotations(file), file, /ends in the middle of the document/)
    expect(error.byteOffset).toBe(size)
  })

  it('a missing field', async () => {
    const file = fixture('questions_missing_field.json')
    const error = await expectFileError(
      readVqaQuestions(file),
      file,
      /record 1 \(question_id 9001\): field "question" is missing/,
    )
    expect(error.record).toEqual({ index: 1, questionId: 9001 })
    await expectFileError(
      readVqaAnnotations(fixture('annotations_missing_field.json')),
      fixture('annotations_missing_field.json'),
      /record 3 \(question_id 581929002\): field "multiple_choice_answer" is missing/,
    )
  })

  it('a field of the wrong type', async () => {
    const file = fixture('annotations_bad_type.json')
    await expectFileError(
      readVqaAnnotations(file),
      file,
      /record 1 \(question_id 9001\): field "image_id" must be a non-negative integer, got "9"/,
    )
  })

  it('an empty answer list, and an answer without text', async () => {
    const empty = fixture('annotations_empty_answers.json')
    await expectFileError(readVqaAnnotations(empty), empty, /record 2 \(question_id 42000\): field "answers" is empty/)
    const textless = fixture('annotations_answer_without_text.json')
    await expectFileError(
      readVqaAnnotations(textless),
      textless,
      /record 0 \(question_id 9000\): answers\[4\]\.answer must be a string/,
    )
  })

  it('a duplicate question_id, naming both records', async () => {
    const file = fixture('questions_duplicate_id.json')
    await expectFileError(
      readVqaQuestions(file),
      file,
      /record 2 \(question_id 9000\): duplicate question_id 9000 \(first at record 0\)/,
    )
  })

  it('records under an object instead of an array, or no records at all', async () => {
    const file = fixture('annotations_not_array.json')
    await expectFileError(readVqaAnnotations(file), file, /"annotations" must be an array/)
    // A questions file has no "annotations" key.
    const questions = fixture('questions.json')
    await expectFileError(readVqaAnnotations(questions), questions, /no records: .*"annotations" is a non-empty array/)
  })

  it('a question without annotation, naming the question record and the annotations file', async () => {
    const files = { questionsFile: fixture('questions_unannotated.json'), annotationsFile: fixture('annotations.json') }
    const error = await expectFileError(
      readVqaExamples(files),
      files.questionsFile,
      /record 4 \(question_id 42001\): question has no annotation in .*annotations\.json/,
    )
    expect(error.record).toEqual({ index: 4, questionId: 42001 })
  })

  it('an annotation without question, and an image_id that disagrees', async () => {
    const annotations = await readVqaAnnotations(fixture('annotations.json'))
    const questions = (await readVqaQuestions(fixture('questions.json'))).slice(0, 3)
    const files = { questionsFile: 'q.json', annotationsFile: 'a.json' }
    expect(() => joinVqa(questions, annotations, files)).toThrow(
      /^a\.json: record 3 \(question_id 581929002\): annotation has no question in q\.json$/,
    )
    const mismatch = {
      questionsFile: fixture('questions_image_mismatch.json'),
      annotationsFile: fixture('annotations.json'),
    }
    await expectFileError(
      readVqaExamples(mismatch),
      mismatch.questionsFile,
      /record 3 \(question_id 581929002\): image_id 581930, but its annotation \(record 3 of .*\) says 581929/,
    )
  })

  it('a record that is not an object, and a question without text', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'vqa-records-'))
    try {
      const notObject = join(directory, 'not-object.json')
      await writeFile(notObject, '{"questions": [{"image_id": 1, "question": "Why?", "question_id": 10}, 5]}')
      await expectFileError(readVqaQuestions(notObject), notObject, /record 1: expected an object, got 5/)
      const blank = join(directory, 'blank.json')
      await writeFile(blank, '{"questions": [{"image_id": 1, "question": "  ", "question_id": 10}]}')
      await expectFileError(readVqaQuestions(blank), blank, /record 0 \(question_id 10\): field "question" is empty/)
    } finally {
      await rm(directory, { recursive: true })
    }
  })

  it('a file that does not exist', async () => {
    await expect(readVqaQuestions(fixture('nope.json'))).rejects.toThrow(/nope\.json: cannot read: ENOENT/)
  })
})

describe('writers', () => {
  let directory: string
  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), 'vqa-writers-'))
  })
  afterAll(async () => {
    await rm(directory, { recursive: true })
  })

  it('write the VQA v2 layout that the readers read back', async () => {
    const annotations: VqaAnnotation[] = await readVqaAnnotations(fixture('annotations.json'))
    const questions = await readVqaQuestions(fixture('questions.json'))
    const questionsFile = join(directory, 'q.json')
    const annotationsFile = join(directory, 'a.json')
    await writeVqaQuestions(questionsFile, questions, { data_subtype: 'copy' })
    await writeVqaAnnotations(annotationsFile, annotations)
    expect(await readVqaQuestions(questionsFile)).toEqual(questions)
    expect(await readVqaAnnotations(annotationsFile)).toEqual(annotations)
    const raw = JSON.parse(await readFile(annotationsFile, 'utf8'))
    expect(raw.annotations[0].answers[9]).toEqual({ answer: 'red and white', answer_confidence: 'yes', answer_id: 10 })
    expect(JSON.parse(await readFile(questionsFile, 'utf8')).data_subtype).toBe('copy')
  })

  it('fail with ODYSSEY_IO naming the file, leaving no temporary file, when the target cannot be written', async () => {
    const questions = await readVqaQuestions(fixture('questions.json'))
    const target = join(directory, 'missing-dir', 'q.json')
    await expect(writeVqaQuestions(target, questions)).rejects.toMatchObject({
      code: 'ODYSSEY_IO',
      message: expect.stringContaining(`${target}: cannot write`),
    })
    expect((await readdir(directory)).filter((name) => name.endsWith('.tmp'))).toEqual([])
  })
})
