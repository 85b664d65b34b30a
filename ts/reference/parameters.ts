import { OdysseyRangeError } from '../errors'
import type { Dtype, Tensor } from '../types'
import type { NamedWeight } from '../validate'
import { mulberry32 } from '../util/random'
import { outputTensor, roundTo } from './math'

/** A parameter's PyTorch name and shape, e.g. `weight_ih_l0` `[4H, X]`. */
export interface ParameterSpec {
  name: string
  shape: number[]
}

/**
 * The most weights the reference backend allocates: the core's `MAX_PARAMETERS` (2^28,
 * crates/core/src/params.rs). The reference runs without the native addon, so it keeps the
 * core's rules for itself here, with the core's messages.
 */
const MAX_PARAMETERS = 2 ** 28

/**
 * Checks `weights` (typed arrays of the right dtype, see `checkWeightTensors`) against the
 * parameter shapes by name, as the core's `assign_named` does: a known name, its shape, as many
 * values as the shape holds, all finite.
 */
export function checkNamedWeights(
  weights: readonly NamedWeight[],
  shapes: ReadonlyMap<string, readonly number[]>,
  owner: string,
): void {
  const fail = (code: 'ODYSSEY_KEY' | 'ODYSSEY_SHAPE' | 'ODYSSEY_NON_FINITE', message: string): never => {
    throw new OdysseyRangeError(code, message)
  }
  for (const { name, shape, data } of weights) {
    const expected =
      shapes.get(name) ??
      fail('ODYSSEY_KEY', `weights: unknown weight '${name}'; ${owner} has ${[...shapes.keys()].join(', ')}`)
    const list = (sizes: readonly number[]) => `[${sizes.join(', ')}]`
    if (shape.length !== expected.length || shape.some((size, d) => size !== expected[d]))
      fail('ODYSSEY_SHAPE', `${name}: expected shape ${list(expected)}, got ${list(shape)}`)
    const count = expected.reduce((a, b) => a * b, 1)
    if (data.length !== count)
      fail('ODYSSEY_SHAPE', `${name}.data: expected shape ${list(expected)} (${count} elements), got [${data.length}]`)
    const bad = data.findIndex((v) => !Number.isFinite(v))
    if (bad >= 0) fail('ODYSSEY_NON_FINITE', `${name}.data: non-finite value ${data[bad]} at flat index ${bad}`)
  }
}

/**
 * The parameters of one layer, by PyTorch name, stored in float64 (rounded to
 * float32 when the model's dtype is float32, so a getWeights/setWeights round
 * trip is exact in either dtype).
 */
export class ParameterStore {
  private readonly values = new Map<string, Float64Array>()
  private readonly shapes = new Map<string, number[]>()

  /** `what`: the sizes the parameters come from, for the message when there are too many. */
  constructor(
    specs: readonly ParameterSpec[],
    private readonly dtype: Dtype,
    what = 'the sizes',
  ) {
    const count = specs.reduce((sum, { shape }) => sum + shape.reduce((a, b) => a * b, 1), 0)
    if (count > MAX_PARAMETERS) {
      throw new OdysseyRangeError(
        'ODYSSEY_INVALID',
        `${what} need ${count} weights, and a model or layer may hold at most ${MAX_PARAMETERS} (2^28); check the sizes`,
      )
    }
    for (const { name, shape } of specs) {
      this.values.set(name, new Float64Array(shape.reduce((a, b) => a * b, 1)))
      this.shapes.set(name, [...shape])
    }
  }

  /** The live values of a parameter (not a copy). */
  get(name: string): Float64Array {
    const value = this.values.get(name)
    if (value === undefined) throw new Error(`reference backend: no parameter named '${name}'`)
    return value
  }

  /** The live values, or null for a parameter this configuration does not have. */
  optional(name: string): Float64Array | null {
    return this.values.get(name) ?? null
  }

  /** PyTorch's recurrent initialisation U(−bound, bound), parameters in declaration order. */
  initUniform(bound: number, seed: number): void {
    const random = mulberry32(seed)
    for (const value of this.values.values()) {
      for (let k = 0; k < value.length; k++) value[k] = roundTo(this.dtype, (2 * random() - 1) * bound)
    }
  }

  /** Zero-filled float64 arrays under the same names, for gradients. */
  zerosLike(): Map<string, Float64Array> {
    const zeros = new Map<string, Float64Array>()
    for (const [name, value] of this.values) zeros.set(name, new Float64Array(value.length))
    return zeros
  }

  /** Float64 arrays named like the parameters, converted to the model's dtype with their shapes. */
  toTensors(arrays: Map<string, Float64Array>): Record<string, Tensor> {
    const tensors: Record<string, Tensor> = {}
    for (const [name, value] of arrays) tensors[name] = outputTensor(value, this.shapes.get(name)!, this.dtype)
    return tensors
  }

  /** Copies of every parameter in the model's dtype. */
  getWeights(): Record<string, Tensor> {
    return this.toTensors(this.values)
  }

  /** Copies the given parameters in once every entry passes `checkNamedWeights`. */
  setWeights(weights: Record<string, Tensor>): void {
    const named = Object.entries(weights).map(([name, { shape, data }]) => ({ name, shape, data }))
    checkNamedWeights(named, this.shapes, 'this layer')
    for (const [name, tensor] of Object.entries(weights)) {
      const value = this.get(name)
      for (let k = 0; k < value.length; k++) value[k] = roundTo(this.dtype, tensor.data[k])
    }
  }
}
