/**
 * Every public entry point fed a corpus of bad inputs: wrong shapes and
 * dtypes, plain arrays, strings, null, NaN and ±Infinity, empty batches,
 * lengths outside 1..time, negative, fractional and gigantic sizes. Each call
 * must throw (or reject with) one of the library's errors — a TypeError or
 * RangeError subclass for a bad argument, an OdysseyError for a bad file —
 * whose message names the argument; within a per-case time limit, and
 * without the process ever growing past 1.5 GB (no size reaches an allocation).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'

import {
  dense,
  dropout,
  embedding,
  isOdysseyError,
  lstm,
  LSTM,
  Model,
  OdysseyError,
  sequential,
  simpleRnn,
  SimpleRNN,
  type Backend,
  type ModelConfig,
} from '../ts'
import { ImageFeatures, readVqaAnnotations, readVqaQuestions } from '../ts/vqa'

const CASE_TIMEOUT_MS = 10_000
const RSS_LIMIT_BYTES = 1.5 * 2 ** 30
const FUZZ_CORPUS = join(__dirname, 'fixtures', 'fuzz')
const scratch = mkdtempSync(join(tmpdir(), 'odyssey-bad-input-'))
const disposables: Model[] = []
afterAll(() => {
  disposables.forEach((model) => {
    model.dispose()
  })
  rmSync(scratch, { recursive: true, force: true })
})

/** One bad call and the words its error message must contain (the argument's name, the offending value). */
interface BadCase {
  name: string
  call: () => unknown
  names: RegExp
}

const bad = (name: string, call: () => unknown, names: RegExp): BadCase => ({ name, call, names })

/** The error `call` throws or rejects with, or a failure after the time limit. */
async function failureOf(call: () => unknown): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${CASE_TIMEOUT_MS} ms`)), CASE_TIMEOUT_MS)
  })
  try {
    await Promise.race([Promise.resolve().then(call), timeout])
  } catch (error) {
    return error
  } finally {
    clearTimeout(timer)
  }
  throw new Error('the call succeeded; it must be refused')
}

let peakRss = 0

function runCorpus(cases: BadCase[]): void {
  for (const { name, call, names } of cases) {
    it(
      name,
      async () => {
        const error = await failureOf(call)
        if (!isOdysseyError(error)) throw new Error(`not a library error: ${String(error)}`, { cause: error })
        const argumentError = error instanceof TypeError || error instanceof RangeError
        expect(
          argumentError ||
            (error instanceof OdysseyError &&
              ['ODYSSEY_IO', 'ODYSSEY_FORMAT', 'ODYSSEY_CHECKPOINT'].includes(error.code)),
          `${error.name} ${error.code}`,
        ).toBe(true)
        expect(error.message).toMatch(names)
        peakRss = Math.max(peakRss, process.memoryUsage().rss)
        expect(process.memoryUsage().rss).toBeLessThan(RSS_LIMIT_BYTES)
      },
      CASE_TIMEOUT_MS + 1000,
    )
  }
}

const F32 = (length: number, value = 0.5) => new Float32Array(length).fill(value)
const withNaN = (length: number, at: number, value = NaN) => {
  const data = F32(length)
  data[at] = value
  return data
}
const GIGANTIC = [2 ** 31, 2 ** 32, 2 ** 53, 1e15] as const

// ---------------------------------------------------------------------------------------------
// Layers

type LayerClass = typeof LSTM | typeof SimpleRNN

function layerCases(Layer: LayerClass, backend: Backend): BadCase[] {
  const label = `${Layer.name} (${backend})`
  const make = (options: Record<string, unknown>) => () => new Layer({ backend, ...options } as never)
  const layer = () => new Layer({ inputSize: 3, hiddenSize: 4, backend })
  const forward = (input: unknown) => () => layer().forward(input as never)
  const x = F32(2 * 5 * 3)
  const afterForward = () => {
    const l = layer()
    l.forward({ x, shape: [2, 5, 3] })
    return l
  }
  const extra = Layer === LSTM ? { variant: 'XYZ' } : { activation: 'sigmoid' }
  return [
    bad(`${label}: options null`, () => new Layer(null as never), /options/),
    bad(`${label}: options a string`, () => new Layer('lstm' as never), /options/),
    bad(`${label}: hiddenSize missing`, make({ inputSize: 3 }), /hiddenSize/),
    ...[0, -1, 1.5, NaN, Infinity, '3', null].map((v) =>
      bad(`${label}: inputSize ${String(v)}`, make({ inputSize: v, hiddenSize: 4 }), /inputSize/),
    ),
    ...GIGANTIC.map((v) => bad(`${label}: hiddenSize ${v}`, make({ inputSize: 3, hiddenSize: v }), /hiddenSize/)),
    ...GIGANTIC.map((v) => bad(`${label}: inputSize ${v}`, make({ inputSize: v, hiddenSize: 1 }), /inputSize/)),
    bad(`${label}: hiddenSize 1e6 (4e12 weights)`, make({ inputSize: 1, hiddenSize: 1e6 }), /hiddenSize/),
    bad(`${label}: misspelt option`, make({ inputSize: 3, hiddenSize: 4, hidenSize: 4 }), /hidenSize/),
    bad(`${label}: dtype float16`, make({ inputSize: 3, hiddenSize: 4, dtype: 'float16' }), /dtype/),
    bad(`${label}: seed -1`, make({ inputSize: 3, hiddenSize: 4, seed: -1 }), /seed/),
    bad(`${label}: seed 1.5`, make({ inputSize: 3, hiddenSize: 4, seed: 1.5 }), /seed/),
    bad(
      `${label}: ${Object.keys(extra)[0]} unknown`,
      make({ inputSize: 3, hiddenSize: 4, ...extra }),
      new RegExp(Object.keys(extra)[0]),
    ),
    bad(`${label}: backend gpu`, () => new Layer({ inputSize: 3, hiddenSize: 4, backend: 'gpu' } as never), /backend/),

    bad(`${label}.forward: null`, forward(null), /forward input/),
    bad(
      `${label}.forward: x a Float64Array`,
      forward({ x: new Float64Array(30), shape: [2, 5, 3] }),
      /\bx\b.*Float32Array/,
    ),
    bad(`${label}.forward: x a plain array`, forward({ x: Array(30).fill(0), shape: [2, 5, 3] }), /\bx\b/),
    bad(`${label}.forward: x a string`, forward({ x: 'x'.repeat(30), shape: [2, 5, 3] }), /\bx\b/),
    bad(`${label}.forward: x null`, forward({ x: null, shape: [2, 5, 3] }), /\bx\b/),
    bad(`${label}.forward: x an Int32Array`, forward({ x: new Int32Array(30), shape: [2, 5, 3] }), /\bx\b/),
    bad(`${label}.forward: NaN in x`, forward({ x: withNaN(30, 7), shape: [2, 5, 3] }), /\bx\b.*NaN/),
    bad(
      `${label}.forward: Infinity in x`,
      forward({ x: withNaN(30, 29, -Infinity), shape: [2, 5, 3] }),
      /\bx\b.*Infinity/,
    ),
    bad(`${label}.forward: shape of rank 2`, forward({ x, shape: [2, 5] }), /shape/),
    bad(`${label}.forward: empty batch`, forward({ x: F32(0), shape: [0, 5, 3] }), /shape\[0\] \(batch\)/),
    bad(`${label}.forward: time 0`, forward({ x: F32(0), shape: [2, 0, 3] }), /shape\[1\] \(time\)/),
    bad(`${label}.forward: negative batch`, forward({ x, shape: [-2, 5, 3] }), /batch/),
    bad(`${label}.forward: fractional time`, forward({ x, shape: [2, 2.5, 3] }), /time/),
    bad(`${label}.forward: shape [1e6, 1e6, 1e6]`, forward({ x, shape: [1e6, 1e6, 1e6] }), /shape|\bx\b/),
    bad(`${label}.forward: batch 2^32`, forward({ x, shape: [2 ** 32, 1, 3] }), /batch/),
    bad(
      `${label}.forward: shape [2^31, 2^31, 3] with a small x`,
      forward({ x, shape: [2 ** 31, 2 ** 31, 3] }),
      /\bx\b/,
    ),
    bad(`${label}.forward: another inputSize`, forward({ x: F32(40), shape: [2, 5, 4] }), /inputSize=3/),
    bad(`${label}.forward: shape a string`, forward({ x, shape: '2,5,3' }), /shape/),
    bad(`${label}.forward: length 0`, forward({ x, shape: [2, 5, 3], lengths: [0, 5] }), /lengths\[0\]/),
    bad(`${label}.forward: length > time`, forward({ x, shape: [2, 5, 3], lengths: [5, 6] }), /lengths\[1\]/),
    bad(`${label}.forward: negative length`, forward({ x, shape: [2, 5, 3], lengths: [-1, 5] }), /lengths\[0\]/),
    bad(`${label}.forward: fractional length`, forward({ x, shape: [2, 5, 3], lengths: [1.5, 5] }), /lengths\[0\]/),
    bad(`${label}.forward: NaN length`, forward({ x, shape: [2, 5, 3], lengths: [5, NaN] }), /lengths\[1\]/),
    bad(`${label}.forward: lengths a string`, forward({ x, shape: [2, 5, 3], lengths: 'ab' }), /lengths/),
    bad(`${label}.forward: one length for two sequences`, forward({ x, shape: [2, 5, 3], lengths: [5] }), /lengths/),
    bad(`${label}.forward: h0 of another batch`, forward({ x, shape: [2, 5, 3], h0: F32(4) }), /h0/),
    bad(`${label}.forward: h0 a Float64Array`, forward({ x, shape: [2, 5, 3], h0: new Float64Array(8) }), /h0/),
    Layer === LSTM
      ? bad(`${label}.forward: NaN in c0`, forward({ x, shape: [2, 5, 3], c0: withNaN(8, 3) }), /c0/)
      : bad(`${label}.forward: c0 for a layer without cells`, forward({ x, shape: [2, 5, 3], c0: F32(8) }), /c0/),

    bad(`${label}.backward: before any forward`, () => layer().backward({ dy: F32(40) }), /forward/),
    bad(`${label}.backward: dy of another length`, () => afterForward().backward({ dy: F32(39) }), /dy/),
    bad(`${label}.backward: NaN in dy`, () => afterForward().backward({ dy: withNaN(40, 0) }), /dy/),
    bad(`${label}.backward: dy null`, () => afterForward().backward({ dy: null as never }), /dy/),
    bad(
      `${label}.backward: recurrentClip -1`,
      () => afterForward().backward({ dy: F32(40), recurrentClip: -1 }),
      /recurrentClip/,
    ),
    bad(
      `${label}.backward: recurrentClip NaN`,
      () => afterForward().backward({ dy: F32(40), recurrentClip: NaN }),
      /recurrentClip/,
    ),
    bad(
      `${label}.backward: recurrentClip a string`,
      () => afterForward().backward({ dy: F32(40), recurrentClip: '1' as never }),
      /recurrentClip/,
    ),

    bad(`${label}.setWeights: null`, () => layer().setWeights(null as never), /weights/),
    bad(`${label}.setWeights: unknown name`, () => layer().setWeights({ nope: { data: F32(1), shape: [1] } }), /nope/),
    bad(
      `${label}.setWeights: another shape`,
      () => layer().setWeights({ weight_ih_l0: { data: F32(8), shape: [2, 4] } }),
      /weight_ih_l0/,
    ),
    bad(
      `${label}.setWeights: NaN`,
      () =>
        layer().setWeights({
          bias_ih_l0: { data: withNaN(Layer === LSTM ? 16 : 4, 1), shape: [Layer === LSTM ? 16 : 4] },
        }),
      /bias_ih_l0/,
    ),
    bad(
      `${label}.setWeights: Float64Array`,
      () =>
        layer().setWeights({
          bias_ih_l0: { data: new Float64Array(Layer === LSTM ? 16 : 4), shape: [Layer === LSTM ? 16 : 4] },
        }),
      /bias_ih_l0/,
    ),
    bad(
      `${label}.setWeights: a plain array`,
      () => layer().setWeights({ bias_hh_l0: { data: [0, 0] as never, shape: [Layer === LSTM ? 16 : 4] } }),
      /bias_hh_l0/,
    ),
    bad(
      `${label}.setWeights: shape a string`,
      () => layer().setWeights({ bias_hh_l0: { data: F32(4), shape: '4' as never } }),
      /bias_hh_l0/,
    ),
  ]
}

for (const Layer of [LSTM, SimpleRNN]) {
  for (const backend of ['native', 'js'] as const)
    describe(`${Layer.name} (${backend})`, () => runCorpus(layerCases(Layer, backend)))
}

// ---------------------------------------------------------------------------------------------
// Model constructors

const sgd = { type: 'sgd', learningRate: 0.1 } as const
const seq = (features: number) => ({ kind: 'sequence' as const, features })
const build =
  (layers: () => ReturnType<typeof lstm>[], features = 2) =>
  () =>
    sequential({ input: seq(features), layers: layers(), loss: 'mse', optimizer: sgd })

/** A valid `fromSpec` config with `change` applied. */
function spec(change: (config: Record<string, unknown>) => void): () => Model {
  const config: Record<string, unknown> = {
    inputs: [{ kind: 'sequence', name: 'x', features: 2 }],
    nodes: [
      { type: 'lstm', name: 'lstm', inputs: ['x'], hiddenSize: 4, output: 'last' },
      { type: 'dense', name: 'head', inputs: ['lstm'], units: 1 },
    ],
    output: 'head',
    loss: 'mse',
    optimizer: { ...sgd },
  }
  change(config)
  return () => Model.fromSpec(config as unknown as ModelConfig)
}

describe('Model constructors', () =>
  runCorpus([
    bad('sequential: null', () => sequential(null as never), /sequential/),
    bad(
      'sequential: no input',
      () => sequential({ layers: [dense({ units: 1 })], loss: 'mse', optimizer: sgd } as never),
      /input/,
    ),
    bad(
      'sequential: no layers',
      build(() => []),
      /layers/,
    ),
    bad(
      'sequential: lstm hiddenSize 2^31 (Rust size cap)',
      build(() => [lstm({ hiddenSize: 2 ** 31 })]),
      /lstm.*2\^28/,
    ),
    bad(
      'sequential: lstm numLayers 2^31',
      build(() => [lstm({ hiddenSize: 4, numLayers: 2 ** 31 })]),
      /lstm.*2\^28/,
    ),
    bad(
      'sequential: features 2^31',
      build(() => [lstm({ hiddenSize: 1 })], 2 ** 31),
      /lstm.*2\^28/,
    ),
    bad(
      'sequential: rnn hiddenSize 2^32 - 1',
      build(() => [simpleRnn({ hiddenSize: 2 ** 32 - 1 })]),
      /rnn.*2\^28/,
    ),
    bad(
      'sequential: dense units 2^31',
      build(() => [lstm({ hiddenSize: 2, output: 'last' }), dense({ units: 2 ** 31 })]),
      /dense.*2\^28/,
    ),
    bad(
      'sequential: embedding 2^32 - 1 × 2^20',
      () =>
        sequential({
          input: { kind: 'tokens' },
          layers: [embedding({ vocabSize: 2 ** 32 - 1, dim: 2 ** 20 })],
          loss: 'mse',
          optimizer: sgd,
        }),
      /embedding.*2\^28/,
    ),
    bad('lstm: hiddenSize 2^32', () => lstm({ hiddenSize: 2 ** 32 }), /hiddenSize/),
    bad('lstm: hiddenSize -1', () => lstm({ hiddenSize: -1 }), /hiddenSize/),
    bad('lstm: options null', () => lstm(null as never), /lstm options/),
    bad('lstm: output all', () => lstm({ hiddenSize: 4, output: 'all' as never }), /output/),
    bad('lstm: forgetBias Infinity', () => lstm({ hiddenSize: 4, forgetBias: Infinity }), /forgetBias/),
    bad('dropout: rate 1', () => dropout({ rate: 1 }), /rate/),
    bad('dense: units 0', () => dense({ units: 0 }), /units/),
    bad('Model.fromSpec: null', () => Model.fromSpec(null as never), /Model.fromSpec/),
    bad(
      'Model.fromSpec: a node reads nothing known',
      spec((c) => ((c.nodes as { inputs: string[] }[])[0].inputs = ['nope'])),
      /'nope'/,
    ),
    bad(
      'Model.fromSpec: a duplicate node name',
      spec((c) => ((c.nodes as { name: string }[])[1].name = 'lstm')),
      /duplicate/,
    ),
    bad(
      'Model.fromSpec: output not the last node',
      spec((c) => (c.output = 'lstm')),
      /spec.output/,
    ),
    bad(
      'Model.fromSpec: loss foo',
      spec((c) => (c.loss = 'foo')),
      /spec.loss/,
    ),
    bad(
      'Model.fromSpec: dtype float16',
      spec((c) => (c.dtype = 'float16')),
      /spec.dtype/,
    ),
    bad(
      'Model.fromSpec: seed -1',
      spec((c) => (c.seed = -1)),
      /spec.seed/,
    ),
    bad(
      'Model.fromSpec: input features 0',
      spec((c) => ((c.inputs as { features: number }[])[0].features = 0)),
      /features/,
    ),
    bad(
      'Model.fromSpec: no optimizer',
      spec((c) => delete c.optimizer),
      /optimizer/,
    ),
    bad(
      'Model.fromSpec: learningRate NaN',
      spec((c) => (c.optimizer = { type: 'adam', learningRate: NaN })),
      /learningRate/,
    ),
    bad(
      'Model.fromSpec: learningRate -1',
      spec((c) => (c.optimizer = { type: 'adam', learningRate: -1 })),
      /learningRate/,
    ),
    bad(
      'Model.fromSpec: schedule type',
      spec((c) => (c.schedule = { type: 'linear' })),
      /schedule.type/,
    ),
    bad(
      'Model.fromSpec: cosine tMax 0',
      spec((c) => (c.schedule = { type: 'cosine', tMax: 0 })),
      /schedule.tMax/,
    ),
    bad(
      'Model.fromSpec: clip.globalNorm -1',
      spec((c) => (c.clip = { globalNorm: -1 })),
      /clip.globalNorm/,
    ),
    bad(
      'Model.fromSpec: recurrentClip 0',
      spec((c) => (c.recurrentClip = 0)),
      /recurrentClip/,
    ),
  ]))

// ---------------------------------------------------------------------------------------------
// Model methods

function keep(model: Model): Model {
  disposables.push(model)
  return model
}

/** `[n, time, 2]` sequences → LSTM(4, last) → dense(1), mse, float32. */
const regressor = keep(
  sequential({
    input: seq(2),
    layers: [lstm({ hiddenSize: 4, output: 'last' }), dense({ units: 1 })],
    loss: 'mse',
    optimizer: sgd,
  }),
)
/** Token ids (vocabulary 5) → embedding → LSTM → 3 classes. */
const classifier = keep(
  sequential({
    input: { kind: 'tokens' },
    layers: [embedding({ vocabSize: 5, dim: 2 }), lstm({ hiddenSize: 3, output: 'last' }), dense({ units: 3 })],
    loss: 'crossEntropy',
    optimizer: sgd,
  }),
)

const x = () => ({ data: F32(4 * 3 * 2), shape: [4, 3, 2] as [number, number, number] })
const y = () => ({ data: F32(4), shape: [4, 1] })
const data = (xChange: Record<string, unknown> = {}, yChange: Record<string, unknown> = {}) => ({
  x: { ...x(), ...xChange },
  y: { ...y(), ...yChange },
})

/** `data` variants that every dataset-taking method must refuse, with what the message names (under `label`). */
function badDatasets(label: string): [string, unknown, RegExp][] {
  const at = (path: string) => new RegExp(`${label}.${path}`.replace(/[.[\]]/g, '\\$&'))
  return [
    ['null', null, new RegExp(label)],
    ['x missing', { y: y() }, at('x')],
    ['x a Float64Array', data({ data: new Float64Array(24) }), at('x.data')],
    ['x a plain array', data({ data: Array(24).fill(0) }), at('x.data')],
    ['x a string', data({ data: 'abc' }), at('x.data')],
    ['NaN in x', data({ data: withNaN(24, 5) }), at('x.data')],
    ['Infinity in y', data({}, { data: withNaN(4, 3, Infinity) }), at('y.data')],
    ['empty batch', data({ data: F32(0), shape: [0, 3, 2] }, { data: F32(0), shape: [0, 1] }), at('x.shape')],
    ['time 0', data({ data: F32(0), shape: [4, 0, 2] }), at('x.shape')],
    ['negative n', data({ shape: [-4, 3, 2] }), at('x.shape')],
    ['fractional time', data({ shape: [4, 1.5, 2] }), at('x.shape')],
    ['shape [1e6, 1e6, 1e6]', data({ shape: [1e6, 1e6, 1e6] }), at('x.shape')],
    ['shape [1e6, 1e6, 2] with 24 values', data({ shape: [1e6, 1e6, 2] }), at('x.data')],
    ['other features', data({ data: F32(36), shape: [4, 3, 3] }), at('x.shape')],
    ['length 0', data({ lengths: [3, 0, 3, 3] }), at('x.lengths[1]')],
    ['length > time', data({ lengths: [3, 3, 3, 4] }), at('x.lengths[3]')],
    ['lengths null', data({ lengths: null }), at('x.lengths')],
    ['y of another shape', data({}, { data: F32(8), shape: [4, 2] }), at('y.shape')],
    ['y for another n', data({}, { data: F32(3), shape: [3, 1] }), at('y.shape')],
  ]
}

describe('Model methods', () => {
  const fitCases = badDatasets('data').map(([what, value, names]) =>
    bad(`fit: ${what}`, () => regressor.fit(value as never, { epochs: 1 }), names),
  )
  const trainCases = badDatasets('batch').map(([what, value, names]) =>
    bad(`trainStep: ${what}`, () => regressor.trainStep(value as never), names),
  )
  const flowCases = badDatasets('batch').map(([what, value, names]) =>
    bad(`gradientFlow: ${what}`, () => regressor.gradientFlow(value as never), names),
  )
  const evaluateCases = badDatasets('data').map(([what, value, names]) =>
    bad(`evaluate: ${what}`, () => regressor.evaluate(value as never), names),
  )
  runCorpus([
    ...fitCases,
    ...trainCases,
    ...flowCases,
    ...evaluateCases,
    bad('fit: options null', () => regressor.fit(data(), null as never), /fit options/),
    ...[0, -1, 1.5, NaN, '1', 2 ** 32].map((v) =>
      bad(`fit: epochs ${String(v)}`, () => regressor.fit(data(), { epochs: v as never }), /epochs/),
    ),
    ...[0, -1, 2.5, 2 ** 32].map((v) =>
      bad(`fit: batchSize ${v}`, () => regressor.fit(data(), { epochs: 1, batchSize: v }), /batchSize/),
    ),
    bad('fit: initialEpoch past epochs', () => regressor.fit(data(), { epochs: 2, initialEpoch: 2 }), /epochs/),
    bad('fit: tbptt k1 0', () => regressor.fit(data(), { epochs: 1, tbptt: { k1: 0, k2: 1 } }), /tbptt.k1/),
    bad(
      'fit: a callback that is not a function',
      () => regressor.fit(data(), { epochs: 1, callbacks: { onBatchEnd: 5 as never } }),
      /onBatchEnd/,
    ),
    bad('fit: signal not an AbortSignal', () => regressor.fit(data(), { epochs: 1, signal: {} as never }), /signal/),
    bad(
      'fit: bad validationData',
      () => regressor.fit(data(), { epochs: 1, validationData: data({ data: withNaN(24, 0) }) }),
      /validationData\.x\.data/,
    ),
    bad('evaluate: batchSize 0', () => regressor.evaluate(data(), { batchSize: 0 }), /batchSize/),
    bad('evaluate: options a string', () => regressor.evaluate(data(), 'x' as never), /evaluate options/),
    bad('predict: null', () => regressor.predict(null as never), /\bx\b/),
    bad('predict: batchSize -1', () => regressor.predict(x(), { batchSize: -1 }), /batchSize/),
    bad('predict: x a Float64Array', () => regressor.predict({ ...x(), data: new Float64Array(24) }), /x\.data/),
    bad('predict: n 2^32', () => regressor.predict({ ...x(), shape: [2 ** 32, 3, 2] }), /x\.shape/),
    bad('predict: unknown input name', () => regressor.predict({ words: x() } as never), /words/),
    bad('trainStep: tbptt k2 < k1', () => regressor.trainStep(data(), { tbptt: { k1: 2, k2: 1 } }), /tbptt/),
    bad('step: null', () => regressor.step(null as never), /\bx\b/),
    bad('step: other features', () => regressor.step({ data: F32(12), shape: [4, 3] }), /x\.shape/),
    bad('step: a Float64Array', () => regressor.step({ data: new Float64Array(8), shape: [4, 2] }), /x\.data/),
    bad('step: empty batch', () => regressor.step({ data: F32(0), shape: [0, 2] }), /x\.shape/),
    bad('step: NaN', () => regressor.step({ data: withNaN(8, 2), shape: [4, 2] }), /x\.data/),
    bad(
      'classifier fit: class 3 of 3',
      () => classifier.trainStep({ x: { ids: [1, 2], shape: [1, 2] }, y: { classes: [3], shape: [1] } }),
      /batch\.y\.classes\[0\]/,
    ),
    bad(
      'classifier fit: class -1',
      () => classifier.trainStep({ x: { ids: [1, 2], shape: [1, 2] }, y: { classes: [-1], shape: [1] } }),
      /batch\.y\.classes\[0\]/,
    ),
    bad(
      'classifier fit: class 1.5',
      () => classifier.trainStep({ x: { ids: [1, 2], shape: [1, 2] }, y: { classes: [1.5], shape: [1] } }),
      /batch\.y\.classes\[0\]/,
    ),
    bad(
      'classifier predict: id 5 of vocabulary 5',
      () => classifier.predict({ ids: [1, 5], shape: [1, 2] }),
      /x\.ids\[1\]/,
    ),
    bad('classifier predict: id -1', () => classifier.predict({ ids: [-1, 1], shape: [1, 2] }), /x\.ids\[0\]/),
    bad('classifier predict: ids a string', () => classifier.predict({ ids: 'ab' as never, shape: [1, 2] }), /x\.ids/),
    bad(
      'classifier predict: float data for token ids',
      () => classifier.predict({ data: F32(2), shape: [1, 2] } as never),
      /x\.ids/,
    ),
    bad('setWeights: null', () => regressor.setWeights(null as never), /weights/),
    bad('setWeights: unknown key', () => regressor.setWeights({ nope: { data: F32(1), shape: [1] } }), /nope/),
    bad(
      'setWeights: another shape',
      () => regressor.setWeights({ 'lstm.weight_ih_l0': { data: F32(8), shape: [4, 2] } }),
      /lstm\.weight_ih_l0/,
    ),
    bad(
      'setWeights: NaN',
      () => regressor.setWeights({ 'dense.bias': { data: withNaN(1, 0), shape: [1] } }),
      /dense\.bias/,
    ),
    bad(
      'setWeights: Float64Array',
      () => regressor.setWeights({ 'dense.bias': { data: new Float64Array(1), shape: [1] } }),
      /dense\.bias/,
    ),
  ])
})

// ---------------------------------------------------------------------------------------------
// Files

describe('save, load, importStateDict and the VQA readers', () => {
  const aFile = join(scratch, 'a-file')
  writeFileSync(aFile, 'not a directory')
  const disposed = sequential({ input: seq(2), layers: [lstm({ hiddenSize: 2 })], loss: 'mse', optimizer: sgd })
  disposed.dispose()
  const circular: Record<string, unknown> = {}
  circular.self = circular
  runCorpus([
    bad("save: ''", () => regressor.save(''), /dir/),
    bad('save: null', () => regressor.save(null as never), /dir/),
    bad('save: 42', () => regressor.save(42 as never), /dir/),
    bad('save: BigInt metadata', () => regressor.save(join(scratch, 'm1'), { epoch: 1n }), /metadata/),
    bad('save: circular metadata', () => regressor.save(join(scratch, 'm2'), circular), /metadata/),
    bad('save: a function as metadata', () => regressor.save(join(scratch, 'm3'), () => 1), /metadata/),
    bad('save: under a regular file', () => regressor.save(join(aFile, 'checkpoint')), /a-file/),
    bad("load: ''", () => Model.load(''), /dir/),
    bad('load: null', () => Model.load(null as never), /dir/),
    bad('load: a directory with no checkpoint', () => Model.load(join(scratch, 'nothing-here')), /nothing-here/),
    bad('load: a regular file', () => Model.load(aFile), /a-file/),
    bad('a disposed model', () => disposed.predict(x()), /disposed/),
    bad('importStateDict: node null', () => regressor.importStateDict(null as never, aFile), /node/),
    bad('importStateDict: path 42', () => regressor.importStateDict('lstm', 42 as never), /path/),
    bad('importStateDict: unknown node', () => regressor.importStateDict('nope', aFile), /'nope'/),
    bad('importStateDict: a dense node', () => regressor.importStateDict('dense', aFile), /'dense'/),
    bad('importStateDict: not a safetensors file', () => regressor.importStateDict('lstm', aFile), /a-file/),
    bad(
      'readVqaQuestions: a missing file',
      () => readVqaQuestions(join(scratch, 'questions-missing.json')),
      /questions-missing\.json/,
    ),
    bad('readVqaQuestions: not JSON', () => readVqaQuestions(aFile), /a-file/),
    bad(
      'readVqaAnnotations: the questions file',
      () => readVqaAnnotations(join(FUZZ_CORPUS, 'questions.json')),
      /questions\.json/,
    ),
    bad(
      'ImageFeatures.open: a missing file',
      () => ImageFeatures.open(join(scratch, 'features-missing')),
      /features-missing/,
    ),
    bad(
      'ImageFeatures.open: another D',
      () => ImageFeatures.open(join(FUZZ_CORPUS, 'features.safetensors'), { expectedDim: 5 }),
      /D = 5/,
    ),
    bad(
      'ImageFeatures.gather: an unknown image id',
      async () => {
        const features = await ImageFeatures.open(join(FUZZ_CORPUS, 'features.safetensors'))
        return features.gather([1, 999])
      },
      /999/,
    ),
  ])
})

describe('memory', () => {
  it('the process stayed under 1.5 GB through the whole corpus', () => {
    expect(peakRss).toBeGreaterThan(0)
    expect(peakRss).toBeLessThan(RSS_LIMIT_BYTES)
  })
})
