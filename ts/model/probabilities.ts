/**
 * From a model's logits to probabilities: softmax over the last axis for the
 * crossEntropy loss, the logistic sigmoid of every element for binaryCrossEntropy.
 * `predict` returns logits unless asked for probabilities; `generate` samples from them.
 */
import { OdysseyTypeError } from '../errors'
import type { FloatArray, Tensor } from '../types'
import type { Loss } from './spec'

/** softmax(z / temperature) of one row `[width]`, shifted by its maximum so no exp overflows. */
export function softmax(logits: ArrayLike<number>, temperature = 1): Float64Array {
  let max = -Infinity
  for (let k = 0; k < logits.length; k++) max = Math.max(max, logits[k])
  const out = new Float64Array(logits.length)
  let sum = 0
  for (let k = 0; k < logits.length; k++) sum += out[k] = Math.exp((logits[k] - max) / temperature)
  for (let k = 0; k < out.length; k++) out[k] /= sum
  return out
}

/** σ(z) without overflow: e^z is only evaluated for z < 0. */
function sigmoid(z: number): number {
  if (z >= 0) return 1 / (1 + Math.exp(-z))
  const e = Math.exp(z)
  return e / (1 + e)
}

/**
 * The conversion from a model's output to the probabilities it stands for under `loss`,
 * in the output's dtype and shape.
 * @throws OdysseyTypeError for the `mse` loss, whose outputs are values, not logits.
 */
export function probabilitiesOf(loss: Loss): (output: Tensor) => Tensor {
  if (loss === 'mse')
    throw new OdysseyTypeError(
      'ODYSSEY_TYPE',
      'probabilities: the mse loss has no probabilities (crossEntropy and binaryCrossEntropy outputs are logits)',
    )
  return ({ data, shape }) => {
    const out = new (data.constructor as new (length: number) => FloatArray)(data.length)
    if (loss === 'binaryCrossEntropy') {
      for (let k = 0; k < data.length; k++) out[k] = sigmoid(data[k])
    } else {
      const width = shape[shape.length - 1]
      for (let start = 0; start < data.length; start += width)
        out.set(softmax(data.subarray(start, start + width)), start)
    }
    return { data: out, shape }
  }
}
