/**
 * A decoder started from a vector instead of an encoder (image captioning's
 * shape): `initialState` names a `vector` model input or a dense node of the
 * states' width. A vector input holding what an encoder's `'states'` output
 * gives starts the decoder exactly as the encoder does (the layout is the
 * same, layer by layer, h then c), and a learned state (a linear map of an
 * "image" vector) is enough for `decode` to write its caption: without the
 * state the decoder never sees the image.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { REVERSAL_BATCH, REVERSAL_DECODE } from '../ts/cli/demo-seq2seq'
import {
  type DigitReversal,
  digitReversal,
  exactMatch,
  Model,
  type NodeSpec,
  REVERSAL_VOCABULARY,
  type Tensor,
} from '../ts'

const HIDDEN = 5
const LAYERS = 2

/** Token embedding → 2-layer LSTM started from `initialState` → dense over the vocabulary. */
const decoderNodes = (initialState: string): NodeSpec[] => [
  { name: 'dec_emb', type: 'embedding', inputs: ['dec'], vocabSize: REVERSAL_VOCABULARY, dim: 4 },
  { name: 'decoder', type: 'lstm', inputs: ['dec_emb'], hiddenSize: HIDDEN, numLayers: LAYERS, initialState },
  { name: 'out', type: 'dense', inputs: ['decoder'], units: REVERSAL_VOCABULARY },
]
const encoderNodes: NodeSpec[] = [
  { name: 'src_emb', type: 'embedding', inputs: ['src'], vocabSize: REVERSAL_VOCABULARY, dim: 4 },
  { name: 'enc', type: 'lstm', inputs: ['src_emb'], hiddenSize: HIDDEN, numLayers: LAYERS, output: 'states' },
]
const training = { loss: 'crossEntropy', optimizer: { type: 'sgd', learningRate: 0.1 }, dtype: 'float64' } as const

describe('a decoder started from a vector model input', () => {
  it('holding the encoder’s states, predicts what the encoder → decoder model predicts', async () => {
    const encoderDecoder = Model.fromSpec({
      inputs: [
        { kind: 'tokens', name: 'src' },
        { kind: 'tokens', name: 'dec' },
      ],
      nodes: [...encoderNodes, ...decoderNodes('enc')],
      output: 'out',
      ...training,
      seed: 3,
    })
    const encoder = Model.fromSpec({
      inputs: [{ kind: 'tokens', name: 'src' }],
      nodes: encoderNodes,
      output: 'enc',
      ...training,
      loss: 'mse',
    })
    const fromVector = Model.fromSpec({
      inputs: [
        { kind: 'vector', name: 'state', features: LAYERS * 2 * HIDDEN },
        { kind: 'tokens', name: 'dec' },
      ],
      nodes: decoderNodes('state'),
      output: 'out',
      ...training,
    })
    const weights = encoderDecoder.getWeights()
    const of = (nodes: string[]) =>
      Object.fromEntries(Object.entries(weights).filter(([key]) => nodes.includes(key.split('.')[0]))) as Record<
        string,
        Tensor
      >
    encoder.setWeights(of(['src_emb', 'enc']))
    fromVector.setWeights(of(['dec_emb', 'decoder', 'out']))

    const data = digitReversal({ n: 6, seed: 5 })
    const encoded = await encoder.predict({ src: data.x.src })
    expect(encoded.shape).toEqual([6, LAYERS * 2 * HIDDEN])
    const states = { data: encoded.data, shape: [6, LAYERS * 2 * HIDDEN] as const }
    const expected = await encoderDecoder.predict(data.x)
    const got = await fromVector.predict({ state: states, dec: data.x.dec })
    expect(got.shape).toEqual(expected.shape)
    const gap = Math.max(...got.data.map((v, k) => Math.abs(v - expected.data[k])))
    expect(gap).toBeLessThan(1e-12)
    // The state matters: zeros give other logits.
    const zeros = await fromVector.predict({
      state: { data: new Float64Array(states.data.length), shape: states.shape },
      dec: data.x.dec,
    })
    expect(Math.max(...zeros.data.map((v, k) => Math.abs(v - expected.data[k])))).toBeGreaterThan(1e-3)
    for (const model of [encoderDecoder, encoder, fromVector]) model.dispose()
  })
})

/** One-hot digits by position, `[n, maxDigits·10]` (zeros past a source's end): an "image" of the digits. */
function picture({ sources, x }: DigitReversal): { data: Float32Array; shape: [number, number] } {
  const width = x.src.shape[1] * 10
  const data = new Float32Array(sources.length * width)
  sources.forEach((digits, s) => {
    digits.forEach((digit, position) => {
      data[s * width + position * 10 + digit] = 1
    })
  })
  return { data, shape: [sources.length, width] }
}

describe('captioning: a learned state from an image vector', () => {
  const TRAIN = 8000
  const EPOCHS = 10
  const H = 64
  const train = digitReversal({ n: TRAIN, seed: 11 })
  const heldOut = digitReversal({ n: 300, seed: 12, exclude: train.sources })
  const model = Model.fromSpec({
    inputs: [
      { kind: 'vector', name: 'image', features: 80 },
      { kind: 'tokens', name: 'dec' },
    ],
    nodes: [
      { name: 'init', type: 'dense', inputs: ['image'], units: 2 * H },
      { name: 'dec_emb', type: 'embedding', inputs: ['dec'], vocabSize: REVERSAL_VOCABULARY, dim: 16 },
      { name: 'decoder', type: 'lstm', inputs: ['dec_emb'], hiddenSize: H, initialState: 'init' },
      { name: 'out', type: 'dense', inputs: ['decoder'], units: REVERSAL_VOCABULARY },
    ],
    output: 'out',
    loss: 'crossEntropy',
    optimizer: { type: 'adam', learningRate: 1e-2 },
    schedule: { type: 'cosine', tMax: EPOCHS * Math.ceil(TRAIN / REVERSAL_BATCH), etaMin: 1e-4 },
    clip: { globalNorm: 1 },
    seed: 2,
  })
  beforeAll(async () => {
    await model.fit(
      { x: { image: picture(train), dec: train.x.dec }, y: train.y },
      { epochs: EPOCHS, batchSize: REVERSAL_BATCH },
    )
  }, 600_000)
  afterAll(() => model.dispose())

  it('decode writes the caption of ≥ 95 % of held-out images, greedy and by beam search', async () => {
    const image = picture(heldOut)
    const greedy = await model.decode({ image }, REVERSAL_DECODE)
    expect(exactMatch(greedy, heldOut.targets)).toBeGreaterThanOrEqual(0.95)
    const beam = await model.decode({ image }, { ...REVERSAL_DECODE, beamWidth: 3 })
    expect(exactMatch(beam, heldOut.targets)).toBeGreaterThanOrEqual(0.95)
  })
})
