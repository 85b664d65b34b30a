/** Small models and data shared by the Model tests. */
import { dense, lstm, sequential, type Dtype, type Model, type SequenceTensor } from '../../ts'
import { randomArray } from './layers'

/** LSTM(`hidden`) → dense(1) on `[n, time, 2]`; `output` `'sequence'` (many-to-many) or `'last'`. */
export function lstmRegressor(options: {
  output: 'sequence' | 'last'
  dtype?: Dtype
  hidden?: number
  seed?: number
  learningRate?: number
}): Model {
  return sequential({
    input: { kind: 'sequence', features: 2 },
    layers: [lstm({ hiddenSize: options.hidden ?? 8, output: options.output }), dense({ units: 1 })],
    loss: 'mse',
    optimizer: { type: 'adam', learningRate: options.learningRate ?? 0.01 },
    dtype: options.dtype ?? 'float32',
    seed: options.seed ?? 1,
  })
}

/** `[n, time, 2]` values in [0, 1) with targets: the running sum of feature 0 (`[n, time, 1]`), or its total (`[n, 1]`). */
export function runningSums(n: number, time: number, options: { total: boolean; dtype?: Dtype; seed?: number }) {
  const dtype = options.dtype ?? 'float32'
  const data = randomArray(dtype, n * time * 2, options.seed ?? 1).map((v) => Math.abs(v))
  const Float = dtype === 'float32' ? Float32Array : Float64Array
  const sums = new Float(n * time)
  for (let s = 0; s < n; s++) {
    let acc = 0
    for (let t = 0; t < time; t++) sums[s * time + t] = acc += 0.2 * data[(s * time + t) * 2]
  }
  const x: SequenceTensor = { data, shape: [n, time, 2] }
  if (!options.total) return { x, y: { data: sums, shape: [n, time, 1] } }
  const totals = new Float(n).map((_, s) => sums[s * time + time - 1])
  return { x, y: { data: totals, shape: [n, 1] } }
}

/** Every weight of the model as plain arrays, for exact comparisons. */
export function weightValues(model: Model): Record<string, number[]> {
  return Object.fromEntries(Object.entries(model.getWeights()).map(([k, t]) => [k, [...t.data]]))
}
