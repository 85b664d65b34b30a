/**
 * Argument checks of the facade. Every argument is checked here, before any
 * backend sees it: a wrong type throws `OdysseyTypeError`, a wrong size or
 * value `OdysseyRangeError`, and the message names the argument, what was
 * expected (with the shape it comes from) and what was given.
 */
import { OdysseyRangeError, OdysseyTypeError, type ErrorCode } from './errors'
import type { Backend, BackwardInput, Dtype, FloatArray, ForwardInput, Tensor } from './types'

export const DTYPES: readonly Dtype[] = ['float32', 'float64']
export const BACKENDS: readonly Backend[] = ['native', 'js']

/** What the checks need to know about a layer. */
export interface LayerSpec {
  /** `'LSTM'`, `'GRU'` or `'SimpleRNN'`, for messages. */
  label: string
  inputSize: number
  hiddenSize: number
  dtype: Dtype
  /** Whether the layer has a cell state (c0, cN, dcN, dc0). */
  hasCell: boolean
}

/** Batch and time of a checked forward input; backward's `dy` must match them. */
export interface BatchDims {
  batch: number
  time: number
}

/** A named dimension, e.g. `['batch', 2]`, used to describe shapes in messages. */
export type Dim = readonly [name: string, size: number]

/** Largest size the native addon accepts (sizes cross as u32). */
const MAX_SIZE = 0xffff_ffff

function typeError(code: ErrorCode, message: string): never {
  throw new OdysseyTypeError(code, message)
}

function rangeError(code: ErrorCode, message: string): never {
  throw new OdysseyRangeError(code, message)
}

/** What a value is, for messages: `Float64Array`, `Array`, `string`, `null`. */
export function describe(value: unknown): string {
  if (value === null) return 'null'
  if (typeof value === 'object') return (value as object).constructor?.name ?? 'object'
  return typeof value === 'number' ? `${typeof value} ${value}` : typeof value
}

function typedArrayName(dtype: Dtype): string {
  return dtype === 'float32' ? 'Float32Array' : 'Float64Array'
}

// ---------------------------------------------------------------------------------------------
// Options

/** Rejects keys outside `allowed` (a misspelt option would otherwise be ignored silently). */
export function checkOptionKeys(options: unknown, allowed: readonly string[], label: string): void {
  if (typeof options !== 'object' || options === null)
    typeError('ODYSSEY_TYPE', `${label} options: expected an object, got ${describe(options)}`)
  for (const key of Object.keys(options)) {
    if (!allowed.includes(key)) {
      typeError('ODYSSEY_TYPE', `${label} options: unknown option '${key}' (known: ${allowed.join(', ')})`)
    }
  }
}

/** A layer size: an integer in 1..2³²−1. */
export function checkSize(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value))
    typeError('ODYSSEY_TYPE', `${name}: expected an integer, got ${describe(value)}`)
  if (value < 1 || value > MAX_SIZE)
    rangeError('ODYSSEY_INVALID', `${name}: expected an integer in 1..${MAX_SIZE}, got ${value}`)
  return value
}

/** An initialisation seed: a safe integer ≥ 0. */
export function checkSeed(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value))
    typeError('ODYSSEY_TYPE', `${name}: expected a safe integer, got ${describe(value)}`)
  if (value < 0) rangeError('ODYSSEY_INVALID', `${name}: expected an integer >= 0, got ${value}`)
  return value
}

export function checkFiniteNumber(name: string, value: unknown): number {
  if (typeof value !== 'number') typeError('ODYSSEY_TYPE', `${name}: expected a number, got ${describe(value)}`)
  if (!Number.isFinite(value)) rangeError('ODYSSEY_NON_FINITE', `${name}: expected a finite number, got ${value}`)
  return value
}

export function checkBoolean(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') typeError('ODYSSEY_TYPE', `${name}: expected a boolean, got ${describe(value)}`)
  return value
}

/** One of a fixed set of strings. */
export function checkOneOf<T extends string>(name: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string') typeError('ODYSSEY_TYPE', `${name}: expected a string, got ${describe(value)}`)
  if (!(allowed as readonly string[]).includes(value)) {
    rangeError('ODYSSEY_INVALID', `${name}: expected one of ${allowed.map((a) => `'${a}'`).join(', ')}, got '${value}'`)
  }
  return value as T
}

// ---------------------------------------------------------------------------------------------
// Arrays

/** `'Float32Array'`, `'Float64Array'`, or undefined for anything else (robust across realms). */
function floatArrayKind(value: unknown): string | undefined {
  const tag = Object.prototype.toString.call(value)
  return tag === '[object Float32Array]' || tag === '[object Float64Array]' ? tag.slice(8, -1) : undefined
}

/** Whose dtype an array must have, for messages. */
export type DtypeOwner = 'layer' | 'model'

/** `name` must be the typed array of `dtype`, the dtype `owner` was built with. */
function checkFloatArray(name: string, value: unknown, dtype: Dtype, owner: DtypeOwner): FloatArray {
  const expected = typedArrayName(dtype)
  const kind = floatArrayKind(value)
  if (kind === undefined) typeError('ODYSSEY_TYPE', `${name}: expected a ${expected}, got ${describe(value)}`)
  if (kind !== expected)
    typeError('ODYSSEY_DTYPE', `${name}: expected a ${expected} (the ${owner}'s dtype is ${dtype}), got a ${kind}`)
  return value as FloatArray
}

/** The length `dims` imply, and a message naming them when `data` has another. */
function checkLength(name: string, data: FloatArray, dims: readonly Dim[], context = ''): void {
  const expected = dims.reduce((product, [, size]) => product * size, 1)
  if (data.length !== expected) {
    const factors = dims.map(([, size]) => size).join('*')
    const shape = dims.map(([dim, size]) => `${dim}=${size}`).join(', ')
    rangeError(
      'ODYSSEY_SHAPE',
      `${name}: expected length ${factors} = ${expected} for shape [${shape}]${context}, got ${data.length}`,
    )
  }
}

/** The first NaN or ±Infinity, located by its index along each named dimension. */
function checkFinite(name: string, data: FloatArray, dims: readonly Dim[]): void {
  if (allFinite(data)) return
  for (let k = 0; k < data.length; k++) {
    if (!Number.isFinite(data[k])) {
      rangeError('ODYSSEY_NON_FINITE', `${name}: non-finite value ${data[k]} at index ${k} = [${locate(k, dims)}]`)
    }
  }
}

/**
 * v·0 is ±0 for a finite v and NaN for NaN or ±Infinity, so four independent sums of it stay 0
 * exactly when every value is finite: no branch per element (half the time of a
 * `Number.isFinite` loop over a predict batch), the index searched for only after a failure.
 */
function allFinite(data: FloatArray): boolean {
  let [a, b, c, d] = [0, 0, 0, 0]
  const whole = data.length - (data.length % 4)
  for (let k = 0; k < whole; k += 4) {
    a += data[k] * 0
    b += data[k + 1] * 0
    c += data[k + 2] * 0
    d += data[k + 3] * 0
  }
  for (let k = whole; k < data.length; k++) a += data[k] * 0
  return a + b + c + d === 0
}

function locate(flatIndex: number, dims: readonly Dim[]): string {
  const coordinates: string[] = []
  let rest = flatIndex
  for (let d = dims.length - 1; d >= 0; d--) {
    const [dim, size] = dims[d]
    coordinates.unshift(`${dim}=${rest % size}`)
    rest = Math.floor(rest / size)
  }
  return coordinates.join(', ')
}

/**
 * A typed array of `owner`'s dtype, with the length and finite values of shape `dims` (the values
 * only when `finite`: the Model API leaves a dataset's to the core, see `checkDataset`).
 */
export function checkTensorData(
  name: string,
  value: unknown,
  dtype: Dtype,
  dims: readonly Dim[],
  context = '',
  owner: DtypeOwner = 'layer',
  finite = true,
): FloatArray {
  const data = checkOutputBuffer(name, value, dtype, dims, context, owner)
  if (finite) checkFinite(name, data, dims)
  return data
}

/** A typed array of `owner`'s dtype and the length of shape `dims`, to be written (its values do not matter). */
export function checkOutputBuffer(
  name: string,
  value: unknown,
  dtype: Dtype,
  dims: readonly Dim[],
  context = '',
  owner: DtypeOwner = 'layer',
): FloatArray {
  const data = checkFloatArray(name, value, dtype, owner)
  checkLength(name, data, dims, context)
  return data
}

export function checkObject(name: string, value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null)
    typeError('ODYSSEY_TYPE', `${name}: expected an object, got ${describe(value)}`)
  return value as Record<string, unknown>
}

// ---------------------------------------------------------------------------------------------
// forward / backward / weights

/** Checks a forward input against the layer; returns its batch and time. */
export function checkSequenceInput(input: ForwardInput, layer: LayerSpec): BatchDims {
  const fields = checkObject(`${layer.label}.forward input`, input)
  const [batch, time] = checkShape(fields.shape, layer)
  const { inputSize, hiddenSize, dtype } = layer
  // The values as `x`, or as `data` like a model's tensors.
  const name = fields.x === undefined && fields.data !== undefined ? 'data' : 'x'
  if (name === 'x' && fields.data !== undefined)
    typeError('ODYSSEY_TYPE', 'x, data: give the values once, as x or as data (the same thing), not both')
  checkTensorData(name, fields[name], dtype, [
    ['batch', batch],
    ['time', time],
    ['inputSize', inputSize],
  ])
  if (fields.lengths !== undefined) checkLengths(fields.lengths, batch, time)
  const state: Dim[] = [
    ['batch', batch],
    ['hiddenSize', hiddenSize],
  ]
  if (fields.h0 !== undefined) checkTensorData('h0', fields.h0, dtype, state)
  if (fields.c0 !== undefined) {
    checkHasCell('c0', layer)
    checkTensorData('c0', fields.c0, dtype, state)
  }
  return { batch, time }
}

/** `[batch, time, inputSize]`: three positive integers, the last the layer's input size. */
function checkShape(value: unknown, layer: LayerSpec): [number, number, number] {
  const expected = `[batch, time, inputSize=${layer.inputSize}]`
  if (!Array.isArray(value)) typeError('ODYSSEY_TYPE', `shape: expected an array ${expected}, got ${describe(value)}`)
  if (value.length !== 3)
    rangeError('ODYSSEY_SHAPE', `shape: expected 3 dimensions ${expected}, got [${value.join(', ')}]`)
  const names = ['batch', 'time', 'inputSize']
  value.forEach((size, d) => {
    checkSize(`shape[${d}] (${names[d]})`, size)
  })
  if (value[2] !== layer.inputSize) {
    rangeError('ODYSSEY_SHAPE', `shape: expected ${expected} for this ${layer.label}, got [${value.join(', ')}]`)
  }
  return value as [number, number, number]
}

export function checkLengths(value: unknown, batch: number, time: number, name = 'lengths'): void {
  const isArrayLike =
    typeof value === 'object' && value !== null && typeof (value as ArrayLike<unknown>).length === 'number'
  if (!isArrayLike) typeError('ODYSSEY_TYPE', `${name}: expected an array of ${batch} integers, got ${describe(value)}`)
  const lengths = value as ArrayLike<unknown>
  if (lengths.length !== batch)
    rangeError('ODYSSEY_SHAPE', `${name}: expected length batch = ${batch}, got ${lengths.length}`)
  for (let b = 0; b < batch; b++) {
    const length = lengths[b]
    if (typeof length !== 'number' || !Number.isInteger(length)) {
      typeError('ODYSSEY_TYPE', `${name}[${b}]: expected an integer, got ${describe(length)}`)
    }
    if (length < 1 || length > time) {
      rangeError('ODYSSEY_LENGTH', `${name}[${b}] = ${length}: every length must be in 1..${time} (time)`)
    }
  }
}

function checkHasCell(name: string, layer: LayerSpec): void {
  if (!layer.hasCell) typeError('ODYSSEY_TYPE', `${name}: a ${layer.label} has no cell state; leave ${name} out`)
}

/** Checks a backward input against the layer and the batch of its last forward pass. */
export function checkBackwardInput(input: BackwardInput, layer: LayerSpec, last: BatchDims | null): void {
  if (last === null) {
    rangeError(
      'ODYSSEY_STATE',
      `${layer.label}.backward: there is no forward pass to go back through; call forward first ` +
        `(setWeights discards the last forward pass)`,
    )
  }
  const fields = checkObject(`${layer.label}.backward input`, input)
  const { batch, time } = last
  const context = ' (the last forward pass)'
  const { hiddenSize, dtype } = layer
  checkTensorData(
    'dy',
    fields.dy,
    dtype,
    [
      ['batch', batch],
      ['time', time],
      ['hiddenSize', hiddenSize],
    ],
    context,
  )
  const state: Dim[] = [
    ['batch', batch],
    ['hiddenSize', hiddenSize],
  ]
  if (fields.dhN !== undefined) checkTensorData('dhN', fields.dhN, dtype, state, context)
  if (fields.dcN !== undefined) {
    checkHasCell('dcN', layer)
    checkTensorData('dcN', fields.dcN, dtype, state, context)
  }
  if (fields.recurrentClip !== undefined) {
    const clip = fields.recurrentClip
    if (typeof clip !== 'number') typeError('ODYSSEY_TYPE', `recurrentClip: expected a number, got ${describe(clip)}`)
    if (!(Number.isFinite(clip) && clip > 0))
      rangeError('ODYSSEY_INVALID', `recurrentClip: expected a finite number > 0, got ${clip}`)
  }
}

/** A tensor by name, as `setWeights` hands it on. */
export interface NamedWeight {
  name: string
  shape: number[]
  data: FloatArray
}

/**
 * The JS side of `setWeights`: an object of `{ data, shape }` tensors, each `shape` an array of
 * sizes and each `data` the typed array of `dtype` (the one `owner` was built with). Names, shapes,
 * lengths and finite values are checked by whoever owns the tensors (the core for native layers and models).
 */
export function checkWeightTensors(
  weights: Record<string, Tensor>,
  dtype: Dtype,
  owner: DtypeOwner = 'layer',
): NamedWeight[] {
  return Object.entries(checkObject('weights', weights)).map(([name, value]) => {
    const tensor = checkObject(name, value)
    const shape = tensor.shape
    const isSize = (size: unknown) =>
      typeof size === 'number' && Number.isInteger(size) && size >= 0 && size <= MAX_SIZE
    if (!Array.isArray(shape) || !shape.every(isSize))
      typeError('ODYSSEY_TYPE', `${name}.shape: expected an array of sizes, got ${describe(shape)}`)
    return { name, shape: [...shape], data: checkFloatArray(`${name}.data`, tensor.data, dtype, owner) }
  })
}
