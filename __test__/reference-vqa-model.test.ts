/**
 * `ReferenceVqaModel` against the native model it mirrors: both start from the native
 * model's weights and take three SGD steps on one small batch (variable question lengths,
 * one of them a single token) in float64; every loss and every weight afterwards must agree.
 * Once with the demo's shape (`DEMO_MODEL` at toy sizes, peepholes on as the demo has them),
 * once with its other choices turned the other way (two LSTM layers, the 'last' question
 * vector, relu, no image normalisation, no peepholes, two dense layers).
 */
import { describe, expect, it } from 'vitest'

import { DEMO_MODEL } from '../ts/cli/vqa-demo'
import { Model } from '../ts'
import { ReferenceVqaModel, type ReferenceVqaBatch } from '../ts/vqa/reference-model'
import type { Tensor } from '../ts/types'
import { resolveArchitecture, vqaGraph, type VqaArchitectureOptions } from '../ts/vqa/graph'
import { expectNear, randomArray, seededRandom } from './helpers/layers'

const TOLERANCE = 1e-9
const LEARNING_RATE = 0.1
const STEPS = 3
const [BATCH, TIME, IMAGE, VOCAB, ANSWERS] = [4, 5, 6, 9, 4]
const LENGTHS = [5, 1, 3, 4]

/** The demo's architecture with toy widths. */
const DEMO_TOY: VqaArchitectureOptions = {
  fusion: DEMO_MODEL.fusion,
  lstm: { ...DEMO_MODEL.lstm, hiddenSize: 3 },
  denseLayers: DEMO_MODEL.denseLayers,
  imageDim: IMAGE,
  vocabSize: VOCAB,
  answers: ANSWERS,
  embeddingDim: 4,
  hiddenSize: 5,
  dropout: 0,
}

const CASES: [string, VqaArchitectureOptions][] = [
  ['the demo shape', DEMO_TOY],
  [
    'two layers, last, relu, no normalisation, no peepholes',
    {
      ...DEMO_TOY,
      lstm: { hiddenSize: 3, numLayers: 2, questionVector: 'last', peepholes: false },
      activation: 'relu',
      normalizeImage: false,
      denseLayers: 2,
    },
  ],
]

function batch(): ReferenceVqaBatch {
  const random = seededRandom(7)
  const integers = (length: number, limit: number) => Array.from({ length }, () => Math.floor(random() * limit))
  return {
    x: {
      question: { ids: integers(BATCH * TIME, VOCAB), shape: [BATCH, TIME], lengths: LENGTHS },
      image: { data: randomArray('float64', BATCH * IMAGE, 8), shape: [BATCH, IMAGE] },
    },
    y: { classes: integers(BATCH, ANSWERS), shape: [BATCH] },
  }
}

/** A native float64 model with plain SGD and no clipping (Model.fromSpec clips only when asked). */
function nativeModel(options: VqaArchitectureOptions) {
  const architecture = resolveArchitecture(options)
  const model = Model.fromSpec({
    ...vqaGraph(architecture),
    dtype: 'float64',
    optimizer: { type: 'sgd', learningRate: LEARNING_RATE },
  })
  return { architecture, model }
}

function maxChange(before: Record<string, Tensor>, after: Record<string, Tensor>): number {
  return Math.max(
    ...Object.keys(before).map((name) =>
      Math.max(...before[name].data.map((v, k) => Math.abs(v - after[name].data[k]))),
    ),
  )
}

describe('ReferenceVqaModel', () => {
  it.each(CASES)('trains exactly as the native model: %s', (_, options) => {
    const { architecture, model } = nativeModel(options)
    const initial = model.getWeights()
    const reference = new ReferenceVqaModel({ architecture, weights: initial, learningRate: LEARNING_RATE })
    const data = batch()
    for (let step = 0; step < STEPS; step++) {
      const native = model.trainStep(data).loss
      const ours = reference.trainStep(data)
      expect(Math.abs(ours - native), `loss of step ${step}: ${ours} vs ${native}`).toBeLessThanOrEqual(
        TOLERANCE * Math.abs(native),
      )
    }
    const expected = model.getWeights()
    const actual = reference.getWeights()
    expect(Object.keys(actual).sort()).toEqual(Object.keys(expected).sort())
    for (const name of Object.keys(expected)) expectNear(name, actual[name].data, expected[name].data, TOLERANCE)
    // The comparison means something only if the steps moved the weights well beyond the tolerance.
    expect(maxChange(initial, expected)).toBeGreaterThan(1e-4)
    model.dispose()
  })

  it('rejects what it does not implement and incomplete weights with typed errors', () => {
    const { architecture, model } = nativeModel(DEMO_TOY)
    const weights = model.getWeights()
    const make =
      (changes: Partial<typeof architecture>, given = weights) =>
      () =>
        new ReferenceVqaModel({
          architecture: { ...architecture, ...changes },
          weights: given,
          learningRate: LEARNING_RATE,
        })
    expect(make({ fusion: 'concat' })).toThrow(
      expect.objectContaining({ name: 'OdysseyRangeError', code: 'ODYSSEY_UNSUPPORTED' }),
    )
    expect(make({ dropout: 0.5 })).toThrow(expect.objectContaining({ code: 'ODYSSEY_UNSUPPORTED' }))
    const incomplete = Object.fromEntries(Object.entries(weights).filter(([name]) => name !== 'answer.bias'))
    expect(make({}, incomplete)).toThrow(
      expect.objectContaining({ code: 'ODYSSEY_KEY', message: 'weights: missing answer.bias' }),
    )
    const reference = make({})()
    const wrongLengths = { ...batch(), x: { ...batch().x, question: { ...batch().x.question, lengths: [5, 0, 3, 4] } } }
    expect(() => reference.trainStep(wrongLengths)).toThrow(expect.objectContaining({ code: 'ODYSSEY_LENGTH' }))
    model.dispose()
  })
})
