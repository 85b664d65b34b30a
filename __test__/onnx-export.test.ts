/**
 * ONNX export: onnxruntime runs the exported graph and must reproduce odyssey's own forward
 * pass (the layers run by hand, heads in plain arithmetic) to 1e-5 in float32, for the
 * LSTM with and without peepholes, the variants ONNX can express, stacked bidirectional
 * stacks over variable lengths with a softmax head, the simple RNN, the GRU and an embedding front
 * end; the variants it cannot express are refused by name.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as ort from 'onnxruntime-node'
import { afterAll, describe, expect, it } from 'vitest'

import { LSTM, type GraphSpec, type LstmVariant, type Tensor } from '../ts'
import { exportOnnx, OnnxUnsupportedError } from '../ts/onnx'
// The implementation itself: the package's `toOnnx` loads it with `require`, which finds only the
// built JavaScript (newcomer.test.ts calls that one).
import { toOnnx } from '../ts/onnx/export'
import { expectNear, randomArray } from './helpers/layers'
import {
  denseForward,
  denseWeights,
  lastOutput,
  makeStack,
  runOnnx,
  runStack,
  softmaxRows,
  stackWeights,
} from './helpers/onnx'

const TOLERANCE = 1e-5
const [BATCH, TIME, INPUT, HIDDEN] = [3, 5, 4, 6]
const LENGTHS = [5, 2, 4]
const DIMS = { batch: BATCH, time: TIME, width: INPUT }

const x = randomArray('float32', BATCH * TIME * INPUT, 1) as Float32Array
const lengthsFeed = { data: Int32Array.from(LENGTHS), dims: [BATCH] }
const xFeed = { data: x, dims: [BATCH, TIME, INPUT] }

function sequenceModel(node: GraphSpec['nodes'][number], extra: GraphSpec['nodes'] = []): GraphSpec {
  const nodes = [node, ...extra]
  return {
    inputs: [{ kind: 'sequence', name: 'x', features: INPUT }],
    nodes,
    output: nodes[nodes.length - 1].name,
    loss: 'mse',
  }
}

describe('single-layer LSTM, every step, variable lengths, initial state in and final state out', () => {
  const variants: LstmVariant[] = ['vanilla', 'NP', 'NIAF', 'NOAF', 'CIFG']
  for (const variant of variants) {
    it(`${variant}${variant === 'NP' ? '' : ' with peepholes'}`, async () => {
      const stack = makeStack('lstm', INPUT, HIDDEN, { layers: 1, bidirectional: false }, { variant, forgetBias: 0.5 })
      const h0 = randomArray('float32', BATCH * HIDDEN, 2, 0.5) as Float32Array
      const c0 = randomArray('float32', BATCH * HIDDEN, 3, 0.5) as Float32Array
      const expected = runStack(stack, x, DIMS, LENGTHS, [{ h0, c0 }])
      const spec = sequenceModel({ name: 'lstm', inputs: ['x'], type: 'lstm', hiddenSize: HIDDEN, variant })
      const onnx = toOnnx(spec, stackWeights(stack), { state: true })
      const state = { dims: [1, BATCH, HIDDEN] }
      const out = await runOnnx(onnx, {
        x: xFeed,
        x_lengths: lengthsFeed,
        lstm_h0: { ...state, data: h0 },
        lstm_c0: { ...state, data: c0 },
      })
      expectNear('y', out.lstm, expected.y, TOLERANCE)
      expectNear('hN', out.lstm_hN, expected.finals[0].h, TOLERANCE)
      expectNear('cN', out.lstm_cN, expected.finals[0].c!, TOLERANCE)
    })
  }
})

describe('vanilla LSTM without peepholes', () => {
  it('matches with peepholes: false on a vanilla variant', async () => {
    const stack = makeStack('lstm', INPUT, HIDDEN, { layers: 1, bidirectional: false }, { peepholes: false })
    const spec = sequenceModel({ name: 'lstm', inputs: ['x'], type: 'lstm', hiddenSize: HIDDEN, peepholes: false })
    const out = await runOnnx(toOnnx(spec, stackWeights(stack)), { x: xFeed, x_lengths: lengthsFeed })
    expectNear('y', out.lstm, runStack(stack, x, DIMS, LENGTHS).y, TOLERANCE)
  })
})

describe('two-layer bidirectional LSTM over variable lengths', () => {
  const CLASSES = 3
  // The variants with per-direction attributes (activations, their α and β) in both directions.
  const cases = [
    { merge: 'concat', variant: 'NIAF' },
    { merge: 'sum', variant: 'NOAF' },
    { merge: 'concat', variant: 'vanilla' },
  ] as const
  for (const { merge, variant } of cases) {
    it(`${variant}, last step → dense → softmax (merge ${merge})`, async () => {
      const stack = makeStack('lstm', INPUT, HIDDEN, { layers: 2, bidirectional: true, merge }, { variant })
      const width = merge === 'concat' ? 2 * HIDDEN : HIDDEN
      const head = denseWeights('head', width, CLASSES, 7)
      const spec: GraphSpec = {
        ...sequenceModel(
          {
            name: 'lstm',
            inputs: ['x'],
            type: 'lstm',
            hiddenSize: HIDDEN,
            numLayers: 2,
            bidirectional: true,
            merge,
            output: 'last',
            variant,
          },
          [{ name: 'head', inputs: ['lstm'], type: 'dense', units: CLASSES }],
        ),
        loss: 'crossEntropy',
      }
      const out = await runOnnx(toOnnx(spec, { ...stackWeights(stack), ...head }, { probabilities: true }), {
        x: xFeed,
        x_lengths: lengthsFeed,
      })
      const last = lastOutput(stack, runStack(stack, x, DIMS, LENGTHS), BATCH)
      const probabilities = softmaxRows(denseForward(last, head['head.weight'], head['head.bias']), CLASSES)
      expectNear('probabilities', out.head, probabilities, TOLERANCE)
    })
  }

  it('every step (padding included) → dense tanh, and the final states of all four layer entries', async () => {
    const stack = makeStack('lstm', INPUT, HIDDEN, { layers: 2, bidirectional: true }, { variant: 'NP' })
    const head = denseWeights('head', 2 * HIDDEN, 2, 9)
    const spec = sequenceModel(
      {
        name: 'lstm',
        inputs: ['x'],
        type: 'lstm',
        hiddenSize: HIDDEN,
        numLayers: 2,
        bidirectional: true,
        variant: 'NP',
      },
      [{ name: 'head', inputs: ['lstm'], type: 'dense', units: 2, activation: 'tanh' }],
    )
    const entries = 4
    const states = (seed: number) => randomArray('float32', entries * BATCH * HIDDEN, seed, 0.5) as Float32Array
    const [h0, c0] = [states(20), states(21)]
    const slice = (s: Float32Array, i: number) => s.subarray(i * BATCH * HIDDEN, (i + 1) * BATCH * HIDDEN)
    const initial = Array.from({ length: entries }, (_, i) => ({ h0: slice(h0, i), c0: slice(c0, i) }))
    const expected = runStack(stack, x, DIMS, LENGTHS, initial)
    const dims = [entries, BATCH, HIDDEN]
    const out = await runOnnx(toOnnx(spec, { ...stackWeights(stack), ...head }, { state: true }), {
      x: xFeed,
      x_lengths: lengthsFeed,
      lstm_h0: { data: h0, dims },
      lstm_c0: { data: c0, dims },
    })
    expectNear(
      'head',
      out.head,
      denseForward(expected.y, head['head.weight'], head['head.bias']).map(Math.tanh),
      TOLERANCE,
    )
    expectNear('hN', out.lstm_hN, Float32Array.from(expected.finals.flatMap((f) => [...f.h])), TOLERANCE)
    expectNear('cN', out.lstm_cN, Float32Array.from(expected.finals.flatMap((f) => [...f.c!])), TOLERANCE)
  })

  it("'states' output: every entry's final y then c, layer-major", async () => {
    const stack = makeStack('lstm', INPUT, HIDDEN, { layers: 2, bidirectional: true }, {})
    const spec = sequenceModel({
      name: 'lstm',
      inputs: ['x'],
      type: 'lstm',
      hiddenSize: HIDDEN,
      numLayers: 2,
      bidirectional: true,
      output: 'states',
    })
    const out = await runOnnx(toOnnx(spec, stackWeights(stack)), { x: xFeed, x_lengths: lengthsFeed })
    const { finals } = runStack(stack, x, DIMS, LENGTHS)
    const expected = new Float32Array(BATCH * finals.length * 2 * HIDDEN)
    for (let b = 0; b < BATCH; b++) {
      finals.forEach(({ h, c }, i) => {
        const row = (b * finals.length + i) * 2 * HIDDEN
        expected.set(h.subarray(b * HIDDEN, (b + 1) * HIDDEN), row)
        expected.set(c!.subarray(b * HIDDEN, (b + 1) * HIDDEN), row + HIDDEN)
      })
    }
    expectNear('states', out.lstm, expected, TOLERANCE)
  })
})

describe('simple RNN', () => {
  for (const activation of ['relu', 'tanh'] as const) {
    it(`${activation}: bidirectional, every step and the last step, with state in and out`, async () => {
      const stack = makeStack('rnn', INPUT, HIDDEN, { layers: 1, bidirectional: true }, { rnn: true, activation })
      const h0 = randomArray('float32', 2 * BATCH * HIDDEN, 30, 0.5) as Float32Array
      const initial = [0, 1].map((i) => ({ h0: h0.subarray(i * BATCH * HIDDEN, (i + 1) * BATCH * HIDDEN) }))
      const expected = runStack(stack, x, DIMS, LENGTHS, initial)
      const spec = sequenceModel({
        name: 'rnn',
        inputs: ['x'],
        type: 'rnn',
        hiddenSize: HIDDEN,
        bidirectional: true,
        activation,
      })
      const out = await runOnnx(toOnnx(spec, stackWeights(stack), { state: true }), {
        x: xFeed,
        x_lengths: lengthsFeed,
        rnn_h0: { data: h0, dims: [2, BATCH, HIDDEN] },
      })
      expectNear('y', out.rnn, expected.y, TOLERANCE)
      expectNear('hN', out.rnn_hN, Float32Array.from(expected.finals.flatMap((f) => [...f.h])), TOLERANCE)
      expect(Object.keys(out).sort()).toEqual(['rnn', 'rnn_hN'])
    })
  }
})

describe('GRU (linear_before_reset = 1)', () => {
  it('2 layers, bidirectional: every step over variable lengths, with state in and out', async () => {
    const stack = makeStack('gru', INPUT, HIDDEN, { layers: 2, bidirectional: true }, { gru: true })
    const h0 = randomArray('float32', 4 * BATCH * HIDDEN, 40, 0.5) as Float32Array
    const initial = [0, 1, 2, 3].map((i) => ({ h0: h0.subarray(i * BATCH * HIDDEN, (i + 1) * BATCH * HIDDEN) }))
    const expected = runStack(stack, x, DIMS, LENGTHS, initial)
    const spec = sequenceModel({
      name: 'gru',
      inputs: ['x'],
      type: 'gru',
      hiddenSize: HIDDEN,
      numLayers: 2,
      bidirectional: true,
    })
    const out = await runOnnx(toOnnx(spec, stackWeights(stack), { state: true }), {
      x: xFeed,
      x_lengths: lengthsFeed,
      gru_h0: { data: h0, dims: [4, BATCH, HIDDEN] },
    })
    expectNear('y', out.gru, expected.y, TOLERANCE)
    expectNear('hN', out.gru_hN, Float32Array.from(expected.finals.flatMap((f) => [...f.h])), TOLERANCE)
    expect(Object.keys(out).sort()).toEqual(['gru', 'gru_hN'])
  })

  it('the last step of a summed bidirectional layer', async () => {
    const shape = { layers: 1, bidirectional: true, merge: 'sum' } as const
    const stack = makeStack('gru', INPUT, HIDDEN, shape, { gru: true })
    const spec = sequenceModel({
      name: 'gru',
      inputs: ['x'],
      type: 'gru',
      hiddenSize: HIDDEN,
      bidirectional: true,
      merge: 'sum',
      output: 'last',
    })
    const out = await runOnnx(toOnnx(spec, stackWeights(stack)), { x: xFeed, x_lengths: lengthsFeed })
    expectNear('last', out.gru, lastOutput(stack, runStack(stack, x, DIMS, LENGTHS), BATCH), TOLERANCE)
  })
})

describe('graph interface', () => {
  it('names: inputs, their lengths and initial states in; the model output first, then final states', async () => {
    const stack = makeStack('lstm', INPUT, HIDDEN, { layers: 2, bidirectional: false }, {})
    const spec = sequenceModel({
      name: 'lstm',
      inputs: ['x'],
      type: 'lstm',
      hiddenSize: HIDDEN,
      numLayers: 2,
      output: 'last',
    })
    const session = await ort.InferenceSession.create(toOnnx(spec, stackWeights(stack), { state: true }))
    expect(session.inputNames).toEqual(['x', 'x_lengths', 'lstm_h0', 'lstm_c0'])
    expect(session.outputNames).toEqual(['lstm', 'lstm_hN', 'lstm_cN'])
    await session.release()
  })

  it('a float64 model is exported in float32', async () => {
    const layer = new LSTM({ inputSize: INPUT, hiddenSize: HIDDEN, dtype: 'float64', seed: 5 })
    const weights = Object.fromEntries(
      Object.entries(layer.getWeights()).map(([key, tensor]) => [`lstm.${key}`, tensor]),
    )
    const spec = sequenceModel({ name: 'lstm', inputs: ['x'], type: 'lstm', hiddenSize: HIDDEN })
    const out = await runOnnx(toOnnx(spec, weights), { x: xFeed, x_lengths: lengthsFeed })
    const expected = layer.forward({ x: Float64Array.from(x), shape: [BATCH, TIME, INPUT], lengths: LENGTHS })
    expectNear('y', out.lstm, expected.y.data, TOLERANCE)
  })
})

describe('fixed lengths', () => {
  it('variableLengths: false drops the lengths input and runs every sequence over the whole time axis', async () => {
    const stack = makeStack('lstm', INPUT, HIDDEN, { layers: 1, bidirectional: true }, {})
    const spec = sequenceModel({
      name: 'lstm',
      inputs: ['x'],
      type: 'lstm',
      hiddenSize: HIDDEN,
      bidirectional: true,
      output: 'last',
    })
    const out = await runOnnx(toOnnx(spec, stackWeights(stack), { variableLengths: false }), { x: xFeed })
    const full = Array(BATCH).fill(TIME)
    expectNear('last', out.lstm, lastOutput(stack, runStack(stack, x, DIMS, full), BATCH), TOLERANCE)
  })
})

describe('embedding front end and a two-input graph', () => {
  const [VOCAB, DIM, FEATURES, JOINT, CLASSES] = [11, 5, 7, 4, 3]
  const ids = [3, 1, 4, 1, 5, 9, 2, 6, 0, 0, 10, 8, 7, 2, 0]
  const image = randomArray('float32', BATCH * FEATURES, 40) as Float32Array
  const table = randomArray('float32', VOCAB * DIM, 41) as Float32Array

  /** tokens → embedding → LSTM states → dense tanh; image → l2Normalize → dense tanh; product and concat → dropout → softmax head. */
  const spec: GraphSpec = {
    inputs: [
      { kind: 'tokens', name: 'question' },
      { kind: 'vector', name: 'image', features: FEATURES },
    ],
    nodes: [
      { name: 'embed', inputs: ['question'], type: 'embedding', vocabSize: VOCAB, dim: DIM },
      { name: 'lstm', inputs: ['embed'], type: 'lstm', hiddenSize: HIDDEN, output: 'states' },
      { name: 'q', inputs: ['lstm'], type: 'dense', units: JOINT, activation: 'tanh' },
      { name: 'unit', inputs: ['image'], type: 'l2Normalize' },
      { name: 'v', inputs: ['unit'], type: 'dense', units: JOINT, activation: 'tanh' },
      { name: 'fused', inputs: ['q', 'v'], type: 'multiply' },
      { name: 'joined', inputs: ['fused', 'v'], type: 'concat' },
      { name: 'drop', inputs: ['joined'], type: 'dropout', rate: 0.5 },
      { name: 'answer', inputs: ['drop'], type: 'dense', units: CLASSES },
    ],
    output: 'answer',
    loss: 'crossEntropy',
  }

  it('matches the layers chained by hand', async () => {
    const stack = makeStack('lstm', DIM, HIDDEN, { layers: 1, bidirectional: false }, {})
    const dense = {
      ...denseWeights('q', 2 * HIDDEN, JOINT, 42),
      ...denseWeights('v', FEATURES, JOINT, 44),
      ...denseWeights('answer', 2 * JOINT, CLASSES, 46),
    }
    const weights = { 'embed.weight': { data: table, shape: [VOCAB, DIM] }, ...stackWeights(stack), ...dense }
    const out = await runOnnx(toOnnx(spec, weights, { probabilities: true }), {
      question: { data: BigInt64Array.from(ids, BigInt), dims: [BATCH, TIME] },
      question_lengths: lengthsFeed,
      image: { data: image, dims: [BATCH, FEATURES] },
    })

    const embedded = Float32Array.from(ids.flatMap((id) => [...table.subarray(id * DIM, (id + 1) * DIM)]))
    const { finals } = runStack(stack, embedded, { batch: BATCH, time: TIME, width: DIM }, LENGTHS)
    const states = Float32Array.from({ length: BATCH * 2 * HIDDEN }, (_, i) => {
      const [b, j] = [Math.floor(i / (2 * HIDDEN)), i % (2 * HIDDEN)]
      return j < HIDDEN ? finals[0].h[b * HIDDEN + j] : finals[0].c![b * HIDDEN + j - HIDDEN]
    })
    const q = denseForward(states, dense['q.weight'], dense['q.bias']).map(Math.tanh)
    const unit = image.map((value, i) => {
      const row = image.subarray(Math.floor(i / FEATURES) * FEATURES, (Math.floor(i / FEATURES) + 1) * FEATURES)
      return value / Math.sqrt(row.reduce((sum, r) => sum + r * r, 0) + 1e-12)
    })
    const v = denseForward(unit, dense['v.weight'], dense['v.bias']).map(Math.tanh)
    const joined = Float32Array.from({ length: BATCH * 2 * JOINT }, (_, i) => {
      const [b, j] = [Math.floor(i / (2 * JOINT)), i % (2 * JOINT)]
      return j < JOINT ? q[b * JOINT + j] * v[b * JOINT + j] : v[b * JOINT + j - JOINT]
    })
    const expected = softmaxRows(denseForward(joined, dense['answer.weight'], dense['answer.bias']), CLASSES)
    expectNear('answer', out.answer, expected, TOLERANCE)
  })
})

describe('exportOnnx writes the file atomically', () => {
  const dir = mkdtempSync(join(tmpdir(), 'odyssey-onnx-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('onnxruntime loads it from the path; no temporary file is left; a second export replaces it', async () => {
    const stack = makeStack(
      'rnn',
      INPUT,
      HIDDEN,
      { layers: 1, bidirectional: false },
      { rnn: true, activation: 'relu' },
    )
    const spec = sequenceModel({
      name: 'rnn',
      inputs: ['x'],
      type: 'rnn',
      hiddenSize: HIDDEN,
      activation: 'relu',
      output: 'last',
    })
    const path = join(dir, 'rnn.onnx')
    await exportOnnx(spec, stackWeights(stack), path, { variableLengths: false })
    await exportOnnx(spec, stackWeights(stack), path)
    expect(readdirSync(dir)).toEqual(['rnn.onnx'])
    const out = await runOnnx(path, { x: xFeed, x_lengths: lengthsFeed })
    expectNear('last', out.rnn, lastOutput(stack, runStack(stack, x, DIMS, LENGTHS), BATCH), TOLERANCE)
  })

  it('a missing directory is an ODYSSEY_IO error naming the path', async () => {
    const stack = makeStack('rnn', INPUT, HIDDEN, { layers: 1, bidirectional: false }, { rnn: true })
    const spec = sequenceModel({ name: 'rnn', inputs: ['x'], type: 'rnn', hiddenSize: HIDDEN })
    const path = join(dir, 'missing', 'rnn.onnx')
    await expect(exportOnnx(spec, stackWeights(stack), path)).rejects.toMatchObject({
      name: 'OdysseyError',
      code: 'ODYSSEY_IO',
      message: expect.stringContaining(path),
    })
  })
})

describe('what the export refuses', () => {
  const lstmSpec = (variant: LstmVariant) =>
    sequenceModel({ name: 'lstm', inputs: ['x'], type: 'lstm', hiddenSize: HIDDEN, variant })
  const weightsOf = (variant: LstmVariant) =>
    stackWeights(makeStack('lstm', INPUT, HIDDEN, { layers: 1, bidirectional: false }, { variant }))

  for (const variant of ['NIG', 'NFG', 'NOG', 'FGR'] as const) {
    it(`LSTM variant ${variant}: OnnxUnsupportedError naming the node and the variant`, () => {
      const attempt = () => toOnnx(lstmSpec(variant), weightsOf(variant))
      expect(attempt).toThrow(OnnxUnsupportedError)
      expect(attempt).toThrow(
        expect.objectContaining({ code: 'ODYSSEY_UNSUPPORTED', node: 'lstm', feature: `LSTM variant ${variant}` }),
      )
      expect(attempt).toThrow(new RegExp(`node "lstm" uses LSTM variant ${variant}`))
    })
  }

  it('a missing weight (ODYSSEY_KEY) and a misshapen one (ODYSSEY_SHAPE), by name', () => {
    const weights: Record<string, Tensor> = weightsOf('vanilla')
    const { 'lstm.bias_hh_l0': bias, ...missing } = weights
    expect(() => toOnnx(lstmSpec('vanilla'), missing)).toThrow(
      expect.objectContaining({ code: 'ODYSSEY_KEY', message: expect.stringContaining('"lstm.bias_hh_l0"') }),
    )
    const misshapen = { ...weights, 'lstm.bias_hh_l0': { data: bias.data.subarray(1), shape: [4 * HIDDEN - 1] } }
    expect(() => toOnnx(lstmSpec('vanilla'), misshapen)).toThrow(
      expect.objectContaining({ code: 'ODYSSEY_SHAPE', message: expect.stringContaining(`[${4 * HIDDEN}]`) }),
    )
  })

  it('probabilities for an mse model and an unknown option', () => {
    const weights = weightsOf('vanilla')
    expect(() => toOnnx(lstmSpec('vanilla'), weights, { probabilities: true })).toThrow(
      expect.objectContaining({ code: 'ODYSSEY_INVALID', message: expect.stringContaining('"mse"') }),
    )
    expect(() => toOnnx(lstmSpec('vanilla'), weights, { sate: true } as never)).toThrow(
      expect.objectContaining({ code: 'ODYSSEY_TYPE', message: expect.stringContaining("'sate'") }),
    )
  })

  it("graph input/output names that collide, or contain '/' (kept for internal names)", () => {
    const renamed = (name: string): GraphSpec => ({
      ...lstmSpec('vanilla'),
      nodes: [{ ...lstmSpec('vanilla').nodes[0], name }],
      output: name,
    })
    const weightsAs = (name: string) =>
      Object.fromEntries(Object.entries(weightsOf('vanilla')).map(([k, t]) => [k.replace(/^lstm\./, `${name}.`), t]))
    expect(() => toOnnx(renamed('x_lengths'), weightsAs('x_lengths'))).toThrow(
      expect.objectContaining({ code: 'ODYSSEY_INVALID', message: expect.stringContaining('"x_lengths" is taken') }),
    )
    expect(() => toOnnx(renamed('rnn/out'), weightsAs('rnn/out'))).toThrow(
      expect.objectContaining({ code: 'ODYSSEY_INVALID', message: expect.stringContaining(`"rnn/out" contains '/'`) }),
    )
  })
})
