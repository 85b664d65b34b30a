import type { Dtype, Tensor } from '../types'
import { mulberry32, outputTensor, roundTo } from './math'

/** A parameter's PyTorch name and shape, e.g. `weight_ih_l0` `[4H, X]`. */
export interface ParameterSpec {
  name: string
  shape: number[]
}

/**
 * The parameters of one layer, by PyTorch name, stored in float64 (rounded to
 * float32 when the model's dtype is float32, so a getWeights/setWeights round
 * trip is exact in either dtype).
 */
export class ParameterStore {
  private readonly values = new Map<string, Float64Array>()
  private readonly shapes = new Map<string, number[]>()

  constructor(
    specs: readonly ParameterSpec[],
    private readonly dtype: Dtype,
  ) {
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

  /** Copies the given parameters in; shapes were checked by the facade, names are checked here. */
  setWeights(weights: Record<string, Tensor>): void {
    for (const [name, tensor] of Object.entries(weights)) {
      const value = this.get(name)
      for (let k = 0; k < value.length; k++) value[k] = roundTo(this.dtype, tensor.data[k])
    }
  }
}
