/**
 * Property tests (fast-check) of every file reader a user points at a file:
 * VQA image features (safetensors), VQA questions and annotations (JSON),
 * `Model.load` checkpoints and `importStateDict` state dicts. Each run takes
 * a file of the committed seed corpus (`__test__/fixtures/fuzz/`, see its
 * README), mutates it — truncation, bit flips, a wrong header length, inserted
 * bytes, an edited header or JSON value — and reads it: the reader must
 * succeed or throw one of the library's errors naming the file, never
 * anything else, and a refused import must leave the model's weights alone.
 * The Rust side of the same loaders is fuzzed in crates/core/tests/suite/fuzz_loaders.rs.
 *
 * Bounded: 250 mutations per reader (half for the two model loaders), a few
 * seconds; `ODYSSEY_FUZZ_RUNS=n` runs n. The seed is fixed so that `npm test`
 * gives the same verdict on every run (the "both outcomes seen" checks below
 * depend on the draw); `ODYSSEY_FUZZ_SEED=n` explores other seeds, and
 * fast-check prints the seed of a failure.
 * `ODYSSEY_UPDATE_FUZZ_CORPUS=1 npx vitest run __test__/hardening-fuzz-readers.test.ts` rewrites the corpus.
 */
import {
  copyFileSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import fc from 'fast-check'
import { afterAll, describe, expect, it } from 'vitest'

import { dense, embedding, isOdysseyError, lstm, Model, sequential } from '../ts'
import {
  ImageFeatures,
  readVqaAnnotations,
  readVqaQuestions,
  writeImageFeatures,
  writeVqaAnnotations,
  writeVqaQuestions,
} from '../ts/vqa'
import { weightValues } from './helpers/models'

const CORPUS = join(__dirname, 'fixtures', 'fuzz')
const scratch = mkdtempSync(join(tmpdir(), 'odyssey-fuzz-'))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

// ---------------------------------------------------------------------------------------------
// Mutations

/** Sizes, offsets and counts a careless or hostile writer puts in a file. */
const INTERESTING = [0, 1, 2, 7, 255, 65536, 2 ** 31, 2 ** 32, 2 ** 53, 1e15, 2 ** 64, -1, -(2 ** 31), 0.5, 1e300]

type Mutation =
  | { kind: 'truncate'; at: number }
  | { kind: 'flip'; flips: [number, number][] }
  | { kind: 'length'; value: bigint }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  /** Replace the value at `path` (child indices, taken modulo the child count) of the JSON header or document. */
  | { kind: 'json'; path: number[]; value: unknown }

/**
 * Positions are fractions of the file length, so one mutation applies to any file; unbiased,
 * because fast-check's bias towards 0 would put nearly every edit into the first bytes.
 */
const fraction = fc.noBias(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }))

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('truncate' as const), at: fraction }),
  fc.record({
    kind: fc.constant('flip' as const),
    flips: fc.array(fc.tuple(fraction, fc.integer({ min: 0, max: 7 })), { minLength: 1, maxLength: 8 }),
  }),
  fc.record({
    kind: fc.constant('length' as const),
    value: fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.bigInt({ min: 0n, max: 4096n })),
  }),
  fc.record({
    kind: fc.constant('insert' as const),
    at: fraction,
    bytes: fc.uint8Array({ minLength: 1, maxLength: 48 }),
  }),
  fc.record({
    kind: fc.constant('json' as const),
    path: fc.array(fc.nat(), { maxLength: 5 }),
    value: fc.oneof(
      fc.constantFrom(...INTERESTING),
      fc.jsonValue({ maxDepth: 2 }),
      fc.constantFrom('F16', 'I64', 'BOOL', '', '\u0000'),
    ),
  }),
)

/** A safetensors file's header JSON and data, if it parses that far. */
function splitSafetensors(bytes: Buffer): { header: unknown; data: Buffer } | undefined {
  if (bytes.length < 8) return undefined
  const length = Number(bytes.readBigUInt64LE(0))
  if (8 + length > bytes.length) return undefined
  try {
    return { header: JSON.parse(bytes.subarray(8, 8 + length).toString('utf8')), data: bytes.subarray(8 + length) }
  } catch {
    return undefined
  }
}

/** `document` with the value at `path` replaced (the last reachable container's child, or the root). */
function replaceAt(document: unknown, path: readonly number[], value: unknown): unknown {
  if (path.length === 0 || typeof document !== 'object' || document === null) return value
  const keys = Object.keys(document)
  if (keys.length === 0) return value
  const key = keys[path[0] % keys.length]
  const container = document as Record<string, unknown>
  container[key] = replaceAt(container[key], path.slice(1), value)
  return document
}

function mutate(bytes: Buffer, m: Mutation): Buffer {
  const at = (f: number) => Math.floor(f * bytes.length)
  switch (m.kind) {
    case 'truncate':
      return bytes.subarray(0, at(m.at))
    case 'flip': {
      const out = Buffer.from(bytes)
      for (const [position, bit] of m.flips) if (out.length > 0) out[at(position)] ^= 1 << bit
      return out
    }
    case 'length': {
      const out = Buffer.from(bytes)
      if (out.length >= 8) out.writeBigUInt64LE(m.value, 0)
      return out
    }
    case 'insert':
      return Buffer.concat([bytes.subarray(0, at(m.at)), m.bytes, bytes.subarray(at(m.at))])
    case 'json': {
      const split = splitSafetensors(bytes)
      if (split !== undefined) {
        const header = Buffer.from(JSON.stringify(replaceAt(split.header, m.path, m.value)), 'utf8')
        const prefix = Buffer.alloc(8)
        prefix.writeBigUInt64LE(BigInt(header.length))
        return Buffer.concat([prefix, header, split.data])
      }
      return Buffer.from(JSON.stringify(replaceAt(JSON.parse(bytes.toString('utf8')), m.path, m.value)), 'utf8')
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Properties

let cases = 0

/** A file name for one run's mutated copy. */
function caseFile(name: string): string {
  cases += 1
  return join(scratch, `case-${cases}-${name}`)
}

/**
 * Runs `read`; it may succeed, or fail with one of the library's errors whose message names `file`.
 * Returns whether it succeeded.
 */
async function succeedsOrNames(file: string, read: () => Promise<unknown>): Promise<boolean> {
  try {
    await read()
    return true
  } catch (error) {
    if (!isOdysseyError(error)) throw new Error(`not a library error: ${String(error)}`, { cause: error })
    expect(error.message).toContain(file)
    return false
  }
}

/** No change at all: each reader must accept its unmutated corpus file, or the properties test nothing. */
const UNCHANGED: Mutation = { kind: 'flip', flips: [] }

/**
 * Counts of both outcomes. A reader that refused every mutation would pass the properties without
 * reading anything, so each test also reads the unmutated file; and one that accepted every mutation
 * checked nothing, so some must be refused.
 */
class Outcomes {
  accepted = 0
  refused = 0
  add(ok: boolean) {
    if (ok) this.accepted += 1
    else this.refused += 1
  }
  expectRefusals() {
    if (process.env.ODYSSEY_FUZZ_VERBOSE) console.log(`accepted ${this.accepted}, refused ${this.refused}`)
    expect(this.refused, 'some mutated files must be refused').toBeGreaterThan(0)
  }
}

const RUNS = Number(process.env.ODYSSEY_FUZZ_RUNS ?? 250)
fc.configureGlobal({ seed: Number(process.env.ODYSSEY_FUZZ_SEED ?? 20261126) })

describe('file readers under mutation', () => {
  it('ImageFeatures.open + gather: a typed error naming the file, or features', async () => {
    const seed = readFileSync(join(CORPUS, 'features.safetensors'))
    const readMutated = async (m: Mutation, inMemory: boolean) => {
      const file = caseFile('features.safetensors')
      writeFileSync(file, mutate(seed, m))
      return succeedsOrNames(file, async () => {
        const features = await ImageFeatures.open(file, { inMemoryLimitBytes: inMemory ? Infinity : 0 })
        try {
          await features.gather(features.imageIds)
        } finally {
          await features.close()
        }
      })
    }
    expect(await readMutated(UNCHANGED, true)).toBe(true)
    expect(await readMutated(UNCHANGED, false)).toBe(true)
    const outcomes = new Outcomes()
    await fc.assert(
      fc.asyncProperty(mutation, fc.boolean(), async (m, inMemory) => outcomes.add(await readMutated(m, inMemory))),
      { numRuns: RUNS },
    )
    outcomes.expectRefusals()
  })

  for (const [name, read] of [
    ['questions.json', readVqaQuestions],
    ['annotations.json', readVqaAnnotations],
  ] as const) {
    it(`${read.name}: a typed error naming the file, or records`, async () => {
      const seed = readFileSync(join(CORPUS, name))
      const readMutated = async (m: Mutation) => {
        const file = caseFile(name)
        writeFileSync(file, mutate(seed, m))
        return succeedsOrNames(file, () => read(file))
      }
      expect(await readMutated(UNCHANGED)).toBe(true)
      const outcomes = new Outcomes()
      await fc.assert(
        fc.asyncProperty(mutation, async (m) => outcomes.add(await readMutated(m))),
        { numRuns: RUNS },
      )
      outcomes.expectRefusals()
    })
  }

  it('Model.load: a typed error naming the checkpoint, or a usable model', async () => {
    const loadMutated = async (source: string, pick: number, m: Mutation) => {
      const dir = caseFile(source)
      cpSync(join(CORPUS, source), dir, { recursive: true })
      const files = filesUnder(dir)
      const victim = files[pick % files.length]
      writeFileSync(victim, mutate(readFileSync(victim), m))
      return succeedsOrNames(dir, async () => (await Model.load(dir)).dispose())
    }
    expect(await loadMutated('checkpoint-f32', 0, UNCHANGED)).toBe(true)
    expect(await loadMutated('checkpoint-f64', 0, UNCHANGED)).toBe(true)
    const outcomes = new Outcomes()
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('checkpoint-f32', 'checkpoint-f64'),
        fc.noBias(fc.nat()),
        mutation,
        async (source, pick, m) => outcomes.add(await loadMutated(source, pick, m)),
      ),
      { numRuns: Math.ceil(RUNS / 2) },
    )
    outcomes.expectRefusals()
  })

  it('importStateDict: a typed error naming the file, and the weights untouched; or the import', async () => {
    const seed = readFileSync(join(CORPUS, 'lstm.safetensors'))
    const model = sequential({
      input: { kind: 'sequence', features: 3 },
      layers: [lstm({ hiddenSize: 4, numLayers: 2, bidirectional: true, peepholes: false, name: 'encoder' })],
      loss: 'mse',
      optimizer: { type: 'sgd', learningRate: 0.1 },
    })
    const importMutated = async (m: Mutation) => {
      const file = caseFile('lstm.safetensors')
      writeFileSync(file, mutate(seed, m))
      const before = weightValues(model)
      const imported = await succeedsOrNames(file, () => model.importStateDict('encoder', file))
      if (!imported) expect(weightValues(model)).toEqual(before)
      return imported
    }
    expect(await importMutated(UNCHANGED)).toBe(true)
    const outcomes = new Outcomes()
    await fc.assert(
      fc.asyncProperty(mutation, async (m) => outcomes.add(await importMutated(m))),
      { numRuns: Math.ceil(RUNS / 2) },
    )
    model.dispose()
    outcomes.expectRefusals()
  })
})

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((entry) => join(dir, entry))
    .filter((path) => statSync(path).isFile())
    .sort()
}

// ---------------------------------------------------------------------------------------------
// The seed corpus

describe.runIf(process.env.ODYSSEY_UPDATE_FUZZ_CORPUS === '1')('seed corpus', () => {
  it('writes __test__/fixtures/fuzz/', async () => {
    for (const entry of ['checkpoint-f32', 'checkpoint-f64'])
      rmSync(join(CORPUS, entry), { recursive: true, force: true })
    mkdirSync(CORPUS, { recursive: true })

    // A float32 LSTM regressor and a float64 token classifier (embedding, bidirectional FGR LSTM), each after two Adam steps.
    const regressor = sequential({
      input: { kind: 'sequence', features: 2 },
      layers: [lstm({ hiddenSize: 3, output: 'last' }), dense({ units: 1 })],
      loss: 'mse',
      optimizer: { type: 'adam', learningRate: 0.01 },
      seed: 1,
    })
    const x = {
      data: Float32Array.from({ length: 2 * 3 * 2 }, (_, k) => Math.sin(k)),
      shape: [2, 3, 2] as const,
      lengths: [3, 2],
    }
    for (let step = 0; step < 2; step++)
      regressor.trainStep({ x, y: { data: Float32Array.of(0.5, -0.5), shape: [2, 1] } })
    await regressor.save(join(CORPUS, 'checkpoint-f32'), { epoch: 1 })

    const classifier = sequential({
      input: { kind: 'tokens' },
      layers: [
        embedding({ vocabSize: 5, dim: 2 }),
        lstm({ hiddenSize: 2, bidirectional: true, variant: 'FGR', output: 'last' }),
        dense({ units: 3 }),
      ],
      loss: 'crossEntropy',
      optimizer: { type: 'adam', learningRate: 0.01 },
      dtype: 'float64',
      seed: 2,
    })
    const tokens = { ids: [1, 2, 3, 4, 0, 0], shape: [2, 3] as const, lengths: [3, 1] }
    for (let step = 0; step < 2; step++) classifier.trainStep({ x: tokens, y: { classes: [2, 0], shape: [2] } })
    await classifier.save(join(CORPUS, 'checkpoint-f64'))

    copyFileSync(
      join(__dirname, '..', 'crates', 'core', 'tests', 'fixtures', 'torch_lstm_2layer_bidirectional_f32.safetensors'),
      join(CORPUS, 'lstm.safetensors'),
    )
    await writeImageFeatures(join(CORPUS, 'features.safetensors'), {
      imageIds: [1, 7, 42],
      features: Float32Array.from({ length: 12 }, (_, k) => k / 4),
      dim: 4,
    })
    const questions = [
      { questionId: 10, imageId: 1, question: 'What color is the cube?' },
      { questionId: 11, imageId: 7, question: 'How many spheres are there?' },
      { questionId: 12, imageId: 42, question: 'Is there a red cylinder?' },
    ]
    await writeVqaQuestions(join(CORPUS, 'questions.json'), questions, { info: { description: 'fuzz seed' } })
    await writeVqaAnnotations(
      join(CORPUS, 'annotations.json'),
      questions.map(({ questionId, imageId }, k) => ({
        questionId,
        imageId,
        questionType: ['what color is the', 'how many', 'is there a'][k],
        answerType: ['other', 'number', 'yes/no'][k],
        multipleChoiceAnswer: ['blue', '2', 'yes'][k],
        answers: [
          ['blue', 'blue', 'navy'],
          ['2', '2', 'two'],
          ['yes', 'yes', 'no'],
        ][k],
      })),
    )
    expect(filesUnder(CORPUS).map((f) => relative(CORPUS, f))).toContain('lstm.safetensors')
  })
})
