/**
 * Model data: the tensors users hand to `fit`, `evaluate`, `predict` and
 * `step`, their checks against the model graph, and their translation into
 * the native addon's arguments (which copies them before any worker runs).
 */
import type { DatasetArgs, InputArgs, TargetArgs, WeightsArgs } from '../../native/binding'
import { OdysseyRangeError, OdysseyTypeError } from '../errors'
import type { Dtype, FloatArray } from '../types'
import { checkLengths, checkObject, checkSize, checkTensorData, describe } from '../validate'
import type { DescribedGraph, InputSpec } from './spec'

/** Float sequences: `data` `[n, time, features]` flat, in the model's dtype; `lengths` `[n]` in 1..time (default: all `time`). */
export interface SequenceTensor<A extends FloatArray = FloatArray> {
  data: A
  shape: readonly [n: number, time: number, features: number]
  lengths?: ArrayLike<number>
}

/** Token ids `[n, time]` flat (non-negative integers below the embedding's vocabulary size). */
export interface TokenTensor {
  ids: Uint32Array | ArrayLike<number>
  shape: readonly [n: number, time: number]
  lengths?: ArrayLike<number>
}

/** Float vectors `[n, features]` flat, in the model's dtype. */
export interface VectorTensor<A extends FloatArray = FloatArray> {
  data: A
  shape: readonly [n: number, features: number]
}

export type InputTensor = SequenceTensor | TokenTensor | VectorTensor

/** The model's inputs: the tensor itself for a single-input model, or one tensor per input name. */
export type Inputs = InputTensor | Readonly<Record<string, InputTensor>>

/**
 * What the output is trained towards.
 * - `mse` / `binaryCrossEntropy`: `data` shaped like the output, `[n, width]` or `[n, time, width]`.
 * - `crossEntropy`: class indices in 0..width−1, `[n]` for vector outputs, `[n, time]` for sequence
 *   outputs (entries at padded steps are ignored but must still be valid indices).
 */
export type Targets =
  | { data: FloatArray; shape: readonly number[] }
  | { classes: Uint32Array | ArrayLike<number>; shape: readonly number[] }

/** One time step of an input for `Model.step`: sequences `[batch, features]`, token ids `[batch]`, vectors `[batch, features]`. */
export type StepTensor =
  | { data: FloatArray; shape: readonly [batch: number, features: number] }
  | { ids: Uint32Array | ArrayLike<number>; shape: readonly [batch: number] }

/** The step tensor itself for a single-input model, or one per input name. */
export type StepInputs = StepTensor | Readonly<Record<string, StepTensor>>

/**
 * How much each example counts in the loss, `shape` `[n]`, or each step of each example, `[n, time]`
 * (sequence outputs only): finite and ≥ 0; 0 leaves an example or step out, and padded steps stay out
 * whatever their weight. The loss becomes the weighted mean Σ w·loss / Σ w (over the output's
 * elements for `mse` and `binaryCrossEntropy`), PyTorch's `reduction='none'` weighted and divided
 * by the weight sum.
 */
export interface LossWeights {
  data: FloatArray | ArrayLike<number>
  shape: readonly [n: number] | readonly [n: number, time: number]
}

/** Inputs with their targets, and optionally their weights in the loss. */
export interface Dataset {
  x: Inputs
  y: Targets
  weights?: LossWeights
}

/** What the checks found out about a batch of inputs. */
interface CheckedInputs {
  args: InputArgs[]
  n: number
  /** Time axis of each sequence or token input, by name. */
  times: ReadonlyMap<string, number>
}

function shapeError(message: string): never {
  throw new OdysseyRangeError('ODYSSEY_SHAPE', message)
}

/** A shape of `names.length` positive integers. */
function checkShape(label: string, value: unknown, names: readonly string[]): number[] {
  const expected = `[${names.join(', ')}]`
  if (!Array.isArray(value))
    throw new OdysseyTypeError('ODYSSEY_TYPE', `${label}.shape: expected an array ${expected}, got ${describe(value)}`)
  if (value.length !== names.length)
    shapeError(`${label}.shape: expected ${names.length} dimensions ${expected}, got [${value.join(', ')}]`)
  return value.map((size, d) => checkSize(`${label}.shape[${d}] (${names[d]})`, size))
}

/** Integers in 0..limit−1 (ids and class indices), as a Uint32Array. */
function checkIndices(label: string, value: unknown, count: number, limit: number, what: string): Uint32Array {
  const isArrayLike =
    typeof value === 'object' && value !== null && typeof (value as ArrayLike<unknown>).length === 'number'
  if (!isArrayLike)
    throw new OdysseyTypeError(
      'ODYSSEY_TYPE',
      `${label}: expected a Uint32Array or an array of integers, got ${describe(value)}`,
    )
  const values = value as ArrayLike<unknown>
  if (values.length !== count) shapeError(`${label}: expected length ${count} for its shape, got ${values.length}`)
  for (let k = 0; k < count; k++) {
    const v = values[k]
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= limit) {
      throw new OdysseyRangeError(
        'ODYSSEY_INVALID',
        `${label}[${k}] = ${describe(v)}: expected ${what} in 0..${limit - 1}`,
      )
    }
  }
  return value instanceof Uint32Array ? value : Uint32Array.from(values as ArrayLike<number>)
}

/** How a tensor of this input is written, for messages. */
function tensorForm(spec: InputSpec, dtype: Dtype): string {
  return spec.kind === 'tokens' ? '{ ids: Uint32Array, shape }' : `{ data: ${ARRAY_NAMES[dtype]}, shape }`
}

const ARRAY_NAMES = { float32: 'Float32Array', float64: 'Float64Array' } as const

/** tfjs and Python users pass nested arrays: say what a tensor is here rather than fail on its keys. */
function checkNotNested(label: string, value: unknown, form: string): void {
  if (Array.isArray(value))
    throw new OdysseyTypeError(
      'ODYSSEY_TYPE',
      `${label}: expected ${form}, got a nested array (flatten it into one typed array and give its shape)`,
    )
}

function checkInput(
  spec: InputSpec,
  value: unknown,
  graph: DescribedGraph,
  label: string,
  finite: boolean,
): { arg: InputArgs; n: number; time?: number } {
  const dtype = graph.spec.dtype
  checkNotNested(label, value, tensorForm(spec, dtype))
  const fields = checkObject(label, value)
  const floats = (dims: [string, number][]) =>
    checkTensorData(`${label}.data`, fields.data, dtype, dims, '', 'model', finite)
  switch (spec.kind) {
    case 'sequence': {
      const [n, time, features] = checkShape(label, fields.shape, ['n', 'time', 'features'])
      if (features !== spec.features)
        shapeError(
          `${label}.shape: expected [n, time, features=${spec.features}] for input '${spec.name}', got [${n}, ${time}, ${features}]`,
        )
      const data = floats([
        ['n', n],
        ['time', time],
        ['features', features],
      ])
      return { arg: { data, shape: [n, time, features], lengths: lengthsArg(fields.lengths, n, time, label) }, n, time }
    }
    case 'tokens': {
      const [n, time] = checkShape(label, fields.shape, ['n', 'time'])
      const vocabulary = graph.vocabularies.get(spec.name) ?? 2 ** 32
      const ids = checkIndices(`${label}.ids`, fields.ids, n * time, vocabulary, 'a token id')
      return { arg: { ids, shape: [n, time], lengths: lengthsArg(fields.lengths, n, time, label) }, n, time }
    }
    case 'vector': {
      const [n, features] = checkShape(label, fields.shape, ['n', 'features'])
      if (features !== spec.features)
        shapeError(
          `${label}.shape: expected [n, features=${spec.features}] for input '${spec.name}', got [${n}, ${features}]`,
        )
      const data = floats([
        ['n', n],
        ['features', features],
      ])
      return { arg: { data, shape: [n, features] }, n }
    }
  }
}

function lengthsArg(value: unknown, n: number, time: number, label: string): Uint32Array | undefined {
  if (value === undefined) return undefined
  checkLengths(value, n, time, `${label}.lengths`)
  return value instanceof Uint32Array ? value : Uint32Array.from(value as ArrayLike<number>)
}

/** The tensor of each model input, in the graph's input order. */
function inputTensors(x: unknown, graph: DescribedGraph, label: string): [InputSpec, unknown, string][] {
  const specs = graph.spec.inputs
  const forms = specs.map((spec) => `${spec.name}: ${tensorForm(spec, graph.spec.dtype)}`)
  checkNotNested(label, x, specs.length === 1 ? tensorForm(specs[0], graph.spec.dtype) : `{ ${forms.join(', ')} }`)
  const fields = checkObject(label, x)
  if (specs.length === 1 && 'shape' in fields) return [[specs[0], x, label]]
  const names = specs.map((s) => s.name)
  const unknown = Object.keys(fields).find((key) => !names.includes(key))
  if (unknown !== undefined) {
    throw new OdysseyTypeError(
      'ODYSSEY_TYPE',
      `${label}: unknown input '${unknown}'; the model's inputs are ${names.map((n) => `'${n}'`).join(', ')}`,
    )
  }
  return specs.map((spec) => {
    if (fields[spec.name] === undefined)
      throw new OdysseyTypeError('ODYSSEY_TYPE', `${label}: missing input '${spec.name}' (${spec.kind})`)
    return [spec, fields[spec.name], `${label}.${spec.name}`]
  })
}

/**
 * Checks the inputs against the graph (kinds, dtype, shapes, lengths, token ids; finite values
 * when `finite`) and one example count across them.
 */
export function checkInputs(x: unknown, graph: DescribedGraph, label: string, finite = true): CheckedInputs {
  let n: number | undefined
  const times = new Map<string, number>()
  const args = inputTensors(x, graph, label).map(([spec, value, inputLabel]) => {
    const checked = checkInput(spec, value, graph, inputLabel, finite)
    if (n !== undefined && checked.n !== n)
      shapeError(`${inputLabel}.shape: expected n = ${n} examples (as the other inputs), got ${checked.n}`)
    n = checked.n
    if (checked.time !== undefined) times.set(spec.name, checked.time)
    return checked.arg
  })
  return { args, n: n!, times }
}

/** Checks targets against the graph's output and loss. */
function checkTargets(
  y: unknown,
  graph: DescribedGraph,
  inputs: CheckedInputs,
  label: string,
  finite: boolean,
): TargetArgs {
  const classes = graph.spec.loss === 'crossEntropy'
  checkNotNested(
    label,
    y,
    classes ? '{ classes: Uint32Array, shape }' : `{ data: ${ARRAY_NAMES[graph.spec.dtype]}, shape }`,
  )
  const fields = checkObject(label, y)
  const { n } = inputs
  const { output } = graph
  // A sequence output has the time axis of the input it was computed along (the core says which).
  const time = output.time === undefined ? undefined : inputs.times.get(output.time)
  const dims: [string, number][] =
    output.kind === 'sequence'
      ? [
          ['n', n],
          ['time', time!],
          ['width', output.width],
        ]
      : [
          ['n', n],
          ['width', output.width],
        ]
  const expectShape = (shape: number[], expected: [string, number][]) => {
    if (shape.length !== expected.length || shape.some((s, d) => s !== expected[d][1])) {
      const wanted = expected.map(([name, size]) => `${name}=${size}`).join(', ')
      shapeError(`${label}.shape: expected [${wanted}] (the model output's shape), got [${shape.join(', ')}]`)
    }
  }
  if (graph.spec.loss === 'crossEntropy') {
    if (fields.classes === undefined)
      throw new OdysseyTypeError(
        'ODYSSEY_TYPE',
        `${label}: the crossEntropy loss needs class indices { classes, shape }`,
      )
    const expected = dims.slice(0, -1)
    const shape = checkShape(
      label,
      fields.shape,
      expected.map(([name]) => name),
    )
    expectShape(shape, expected)
    const count = shape.reduce((a, b) => a * b, 1)
    return { classes: checkIndices(`${label}.classes`, fields.classes, count, output.width, 'a class index'), shape }
  }
  if (fields.data === undefined)
    throw new OdysseyTypeError(
      'ODYSSEY_TYPE',
      `${label}: the ${graph.spec.loss} loss needs float targets { data, shape }`,
    )
  const shape = checkShape(
    label,
    fields.shape,
    dims.map(([name]) => name),
  )
  expectShape(shape, dims)
  const values = checkTensorData(`${label}.data`, fields.data, graph.spec.dtype, dims, '', 'model', finite)
  return { values, shape }
}

/** The weights as the addon takes them; their values and shape are the core's to check. */
function weightsArg(value: unknown, label: string): WeightsArgs {
  const fields = checkObject(label, value)
  if (!Array.isArray(fields.shape))
    throw new OdysseyTypeError(
      'ODYSSEY_TYPE',
      `${label}.shape: expected [n] or [n, time], got ${describe(fields.shape)}`,
    )
  const shape = fields.shape.map((size, d) => checkSize(`${label}.shape[${d}]`, size))
  const { data } = fields
  if (typeof data !== 'object' || data === null || typeof (data as ArrayLike<unknown>).length !== 'number')
    throw new OdysseyTypeError(
      'ODYSSEY_TYPE',
      `${label}.data: expected a Float32Array, Float64Array or array of numbers, got ${describe(data)}`,
    )
  return { data: Float64Array.from(data as ArrayLike<number>), shape }
}

/**
 * Checks a dataset against the graph; the addon's arguments. With `finite: false` its float values
 * are left to the core, which checks them all anyway (in vector lanes, on the worker for the async
 * calls) where this loop took the JS thread 1.5 ns a value; see `explainNonFinite`.
 */
export function checkDataset(
  data: unknown,
  graph: DescribedGraph,
  label: string,
  finite = true,
): { args: DatasetArgs; n: number } {
  const fields = checkObject(label, data)
  const inputs = checkInputs(fields.x, graph, `${label}.x`, finite)
  const target = checkTargets(fields.y, graph, inputs, `${label}.y`, finite)
  const weights = fields.weights === undefined ? undefined : weightsArg(fields.weights, `${label}.weights`)
  return { args: { inputs: inputs.args, target, weights }, n: inputs.n }
}

/**
 * One time step of every input for `step`: sequences `[batch, features]`, tokens `[batch]`,
 * vectors `[batch, features]` as usual; returned with a time axis of 1 for the addon.
 */
export function checkStepInputs(x: unknown, graph: DescribedGraph): InputArgs[] {
  const withTime = inputTensors(x, graph, 'x').map(([spec, value, label]) => {
    if (spec.kind === 'vector') return [spec.name, value] as const
    const fields = checkObject(label, value)
    const names = spec.kind === 'sequence' ? ['batch', 'features'] : ['batch']
    const [batch, features] = checkShape(label, fields.shape, names)
    const shape = spec.kind === 'sequence' ? [batch, 1, features] : [batch, 1]
    return [spec.name, { ...fields, shape, lengths: undefined }] as const
  })
  const byName = Object.fromEntries(withTime)
  return checkInputs(graph.spec.inputs.length === 1 ? withTime[0][1] : byName, graph, 'x').args
}
