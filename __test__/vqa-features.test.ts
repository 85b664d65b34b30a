/**
 * Image features in safetensors: a file written by the reference Python
 * implementation (fixtures/vqa/make_features_fixture.py), the writer, both
 * read modes (whole file, random access), lookups by image id, and corrupt
 * files — each must fail with a `VqaFileError` that names the file.
 */
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import {
  ImageFeatures,
  VqaFileError,
  VqaLookupError,
  VqaShapeError,
  readVqaQuestions,
  writeImageFeatures,
  type OpenImageFeaturesOptions,
} from '../ts/vqa'

const FIXTURE = join(__dirname, 'fixtures', 'vqa', 'features.safetensors')
/** Rows of the fixture by image id, as make_features_fixture.py wrote them. */
const FIXTURE_ROWS: Record<number, number[]> = {
  42: [0.5, 0.0, 1.25, 2.0],
  581929: [0.0, 3.5, 0.125, 1.0],
  9: [1.0, 0.25, 0.0, 0.75],
}
const MODES: [string, OpenImageFeaturesOptions][] = [
  ['read whole', {}],
  ['random access', { inMemoryLimitBytes: 0 }],
]

let directory: string
beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'vqa-features-'))
})
afterAll(async () => {
  await rm(directory, { recursive: true })
})

async function withFeatures<T>(
  file: string,
  options: OpenImageFeaturesOptions,
  use: (features: ImageFeatures) => Promise<T>,
) {
  const features = await ImageFeatures.open(file, options)
  try {
    return await use(features)
  } finally {
    await features.close()
  }
}

describe.each(MODES)('ImageFeatures (%s)', (_, options) => {
  it('reads the reference implementation file and looks rows up by image id', async () => {
    await withFeatures(FIXTURE, options, async (features) => {
      expect(features).toMatchObject({ count: 3, dim: 4, imageIds: [42, 581929, 9] })
      expect(features.has(581929)).toBe(true)
      expect(features.has(7)).toBe(false)
      const batch = await features.gather([9, 42, 9])
      expect(Array.from(batch)).toEqual([
        ...(FIXTURE_ROWS[9] ?? []),
        ...(FIXTURE_ROWS[42] ?? []),
        ...(FIXTURE_ROWS[9] ?? []),
      ])
    })
  })

  it('reads back what writeImageFeatures wrote', async () => {
    const file = join(directory, `round-trip-${options.inMemoryLimitBytes ?? 'auto'}.safetensors`)
    const dim = 5
    const imageIds = [1000, 3, 2 ** 40, 77]
    const values = Float32Array.from({ length: imageIds.length * dim }, (_, i) => Math.sin(i) * 10)
    await writeImageFeatures(file, { imageIds, features: values, dim })
    await withFeatures(file, options, async (features) => {
      expect(features.imageIds).toEqual(imageIds)
      expect(Array.from(await features.gather([2 ** 40, 1000]))).toEqual([
        ...values.subarray(2 * dim, 3 * dim),
        ...values.subarray(0, dim),
      ])
    })
  })

  it('throws VqaLookupError for an image id without features', async () => {
    await withFeatures(FIXTURE, options, async (features) => {
      const error = await features.gather([9, 77]).catch((thrown: unknown) => thrown)
      expect(error).toBeInstanceOf(VqaLookupError)
      expect(error).toMatchObject({ code: 'ODYSSEY_KEY', key: 77 })
      expect((error as Error).message).toBe(`${FIXTURE}: no features for image_id 77`)
    })
  })
})

describe('ImageFeatures checks against the data', () => {
  it('names the question whose image has no features', async () => {
    const questionsFile = join(__dirname, 'fixtures', 'vqa', 'questions_unknown_image.json')
    const questions = await readVqaQuestions(questionsFile)
    await withFeatures(FIXTURE, {}, async (features) => {
      expect(() => features.requireImages(questions.slice(1))).not.toThrow()
      expect(() => features.requireImages(questions, questionsFile)).toThrow(VqaLookupError)
      expect(() => features.requireImages(questions, questionsFile)).toThrow(
        `record 0 (question_id 9000) of ${questionsFile} needs image_id 77, which has no features in ${FIXTURE}`,
      )
    })
  })

  it('refuses a feature dimension other than the expected one', async () => {
    const error = await ImageFeatures.open(FIXTURE, { expectedDim: 4096 }).catch((thrown: unknown) => thrown)
    expect(error).toBeInstanceOf(VqaShapeError)
    expect(error).toMatchObject({ code: 'ODYSSEY_SHAPE', expected: [3, 4096], actual: [3, 4] })
    expect((error as Error).message).toBe(`${FIXTURE}: features are [3, 4], but D = 4096 is expected`)
  })

  it('refuses a row with a non-finite value when it is read', async () => {
    const file = join(directory, 'nan.safetensors')
    await writeImageFeatures(file, { imageIds: [5, 6], features: Float32Array.of(1, 2, 3, Number.NaN), dim: 2 })
    await withFeatures(file, {}, async (features) => {
      expect(Array.from(await features.gather([5]))).toEqual([1, 2])
      await expect(features.gather([6])).rejects.toThrow(`${file}: row 1 (image_id 6) has NaN at column 1`)
    })
  })

  it('writes atomically, 8-byte aligned, leaving no temporary file', async () => {
    const file = join(directory, 'aligned.safetensors')
    await writeImageFeatures(file, { imageIds: [1], features: Float32Array.of(1, 2, 3), dim: 3 })
    const bytes = await readFile(file)
    expect(Number(bytes.readBigUInt64LE(0)) % 8).toBe(0)
    expect((await readdir(directory)).filter((name) => name.endsWith('.tmp'))).toEqual([])
  })

  it('turns a read failure into ODYSSEY_IO naming the path', async () => {
    await expect(ImageFeatures.open(join(directory, 'absent.safetensors'))).rejects.toMatchObject({
      code: 'ODYSSEY_IO',
      message: expect.stringContaining('absent.safetensors: cannot open: ENOENT'),
    })
    if (process.platform !== 'win32') {
      await expect(ImageFeatures.open(directory)).rejects.toMatchObject({
        code: 'ODYSSEY_IO',
        message: expect.stringContaining(`${directory}: `),
      })
    }
  })

  it('refuses to write mismatched sizes or bad ids', async () => {
    const file = join(directory, 'never.safetensors')
    await expect(writeImageFeatures(file, { imageIds: [1, 2], features: new Float32Array(5), dim: 2 })).rejects.toThrow(
      /features has 5 values, expected \[2, 2\]/,
    )
    await expect(writeImageFeatures(file, { imageIds: [1, 1], features: new Float32Array(4), dim: 2 })).rejects.toThrow(
      /imageIds\[1\] = 1 is not a new non-negative integer id/,
    )
  })
})

/** A safetensors file from a header object and data bytes, laid out as the format says, for corrupting. */
function safetensorsBytes(header: unknown, data: Uint8Array, claimedHeaderLength?: bigint): Buffer {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header))
  const prefix = Buffer.alloc(8)
  prefix.writeBigUInt64LE(claimedHeaderLength ?? BigInt(json.length))
  return Buffer.concat([prefix, json, data])
}

const IDS = Buffer.from(BigInt64Array.of(1n, 2n, 3n).buffer)
const ROWS = Buffer.from(new Float32Array(12).fill(0.5).buffer)
const DATA = Buffer.concat([IDS, ROWS])
const GOOD_HEADER = {
  image_ids: { dtype: 'I64', shape: [3], data_offsets: [0, 24] },
  features: { dtype: 'F32', shape: [3, 4], data_offsets: [24, 72] },
}

describe('corrupt features files', () => {
  const cases: [string, () => Buffer, RegExp][] = [
    ['shorter than the length prefix', () => Buffer.from([1, 2, 3]), /3 bytes, shorter than the 8-byte header length/],
    [
      'a header length larger than the file',
      () => safetensorsBytes(GOOD_HEADER, DATA, 10_000n),
      /header length 10000 exceeds the \d+ bytes after the length prefix/,
    ],
    [
      'a header length of 2^64 − 1',
      () => safetensorsBytes(GOOD_HEADER, DATA, 2n ** 64n - 1n),
      /header length 18446744073709551615 exceeds/,
    ],
    ['a header that is not JSON', () => safetensorsBytes('{"image_ids": {"dtype": ', DATA), /the header is not JSON/],
    ['a header that is not an object', () => safetensorsBytes('[1, 2, 3]', DATA), /does not start with "\{"/],
    [
      'data cut short (truncated file)',
      () => safetensorsBytes(GOOD_HEADER, DATA.subarray(0, 68)),
      /"features" ends at data byte 72, past the 68 data bytes/,
    ],
    [
      'trailing bytes after the tensors',
      () => safetensorsBytes(GOOD_HEADER, Buffer.concat([DATA, Buffer.alloc(8)])),
      /cover 72 data bytes but the file has 80/,
    ],
    [
      'offsets out of range',
      () =>
        safetensorsBytes({ ...GOOD_HEADER, features: { dtype: 'F32', shape: [3, 4], data_offsets: [64, 112] } }, DATA),
      /"features" ends at data byte 112, past the 72 data bytes/,
    ],
    [
      'offsets that leave a gap',
      () =>
        safetensorsBytes(
          { ...GOOD_HEADER, features: { dtype: 'F32', shape: [3, 4], data_offsets: [32, 80] } },
          Buffer.concat([DATA, Buffer.alloc(8)]),
        ),
      /"features" starts at data byte 32, expected 24/,
    ],
    [
      'offsets that do not match the shape',
      () =>
        safetensorsBytes({ ...GOOD_HEADER, features: { dtype: 'F32', shape: [3, 5], data_offsets: [24, 72] } }, DATA),
      /"features" F32 \[3, 5\] needs 60 bytes, its data_offsets span 48/,
    ],
    [
      'reversed offsets',
      () =>
        safetensorsBytes({ ...GOOD_HEADER, features: { dtype: 'F32', shape: [3, 4], data_offsets: [72, 24] } }, DATA),
      /data_offsets \[72,24\], not \[begin, end\]/,
    ],
    [
      'an unknown dtype',
      () =>
        safetensorsBytes({ ...GOOD_HEADER, features: { dtype: 'F33', shape: [3, 4], data_offsets: [24, 72] } }, DATA),
      /"features" has unknown dtype "F33"/,
    ],
    [
      'features of the wrong dtype',
      () =>
        safetensorsBytes({ ...GOOD_HEADER, features: { dtype: 'I32', shape: [3, 4], data_offsets: [24, 72] } }, DATA),
      /"features" is I32, expected F32/,
    ],
    [
      'image ids of the wrong dtype',
      () =>
        safetensorsBytes(
          { image_ids: { dtype: 'F64', shape: [3], data_offsets: [0, 24] }, features: GOOD_HEADER.features },
          DATA,
        ),
      /"image_ids" is F64, expected I64/,
    ],
    [
      'no image ids',
      () => safetensorsBytes({ features: { dtype: 'F32', shape: [3, 4], data_offsets: [0, 48] } }, ROWS),
      /no tensor "image_ids" \(found: features\)/,
    ],
    [
      'features that are not a matrix',
      () => safetensorsBytes({ ...GOOD_HEADER, features: { dtype: 'F32', shape: [12], data_offsets: [24, 72] } }, DATA),
      /"features" has shape \[12\], expected 2 dimension\(s\)/,
    ],
    [
      'fewer ids than rows',
      () =>
        safetensorsBytes(
          {
            image_ids: { dtype: 'I64', shape: [2], data_offsets: [0, 16] },
            features: { dtype: 'F32', shape: [3, 4], data_offsets: [16, 64] },
          },
          Buffer.concat([IDS.subarray(0, 16), ROWS]),
        ),
      /"image_ids" has 2 entries for 3 feature rows/,
    ],
    [
      'a repeated image id',
      () => safetensorsBytes(GOOD_HEADER, Buffer.concat([Buffer.from(BigInt64Array.of(1n, 2n, 1n).buffer), ROWS])),
      /image_ids\[2\] = 1 repeats image_ids\[0\]/,
    ],
    [
      'a negative image id',
      () => safetensorsBytes(GOOD_HEADER, Buffer.concat([Buffer.from(BigInt64Array.of(1n, -2n, 3n).buffer), ROWS])),
      /image_ids\[1\] = -2 is not a valid id/,
    ],
    [
      'metadata that is not a string map',
      () => safetensorsBytes({ __metadata__: { version: 2 }, ...GOOD_HEADER }, DATA),
      /"__metadata__" must map strings to strings/,
    ],
  ]

  it('accepts the uncorrupted file these cases start from', async () => {
    const file = join(directory, 'good.safetensors')
    await writeFile(file, safetensorsBytes(GOOD_HEADER, DATA))
    await withFeatures(file, {}, async (features) => expect(features.imageIds).toEqual([1, 2, 3]))
  })

  it.each(cases)('refuses %s', async (name, bytes, pattern) => {
    const file = join(directory, `${name.replace(/\W+/g, '-')}.safetensors`)
    await writeFile(file, bytes())
    const error = await ImageFeatures.open(file).catch((thrown: unknown) => thrown)
    expect(error).toBeInstanceOf(VqaFileError)
    expect(error).toMatchObject({ code: 'ODYSSEY_FORMAT', file })
    expect((error as Error).message.startsWith(`${file}: `)).toBe(true)
    expect((error as Error).message).toMatch(pattern)
  })

  it('reports a file truncated after opening as truncated, in random-access mode', async () => {
    const file = join(directory, 'shrinks.safetensors')
    await writeFile(file, safetensorsBytes(GOOD_HEADER, DATA))
    await withFeatures(file, { inMemoryLimitBytes: 0 }, async (features) => {
      await writeFile(file, safetensorsBytes(GOOD_HEADER, DATA).subarray(0, -20))
      await expect(features.gather([3])).rejects.toThrow(/truncated: wanted 16 bytes, the file ends after/)
    })
  })
})
