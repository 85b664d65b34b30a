/**
 * The native backend: a small adapter from `RecurrentBackend` to the napi class
 * `NativeRecurrent` (crates/node). It attaches shapes to the flat arrays the
 * addon returns and turns every native exception into a typed error.
 */
import type {
  BackwardOutput,
  GruInit,
  LstmInit,
  NamedTensorOutput,
  NativeRecurrent,
  SimpleRnnInit,
} from '../../native/binding'
import { fromNativeError } from '../errors'
import { loadNative } from '../native'
import type { BackwardInput, BackwardResult, ForwardResult, RecurrentBackend, SequenceInput, Tensor } from '../types'

/** Runs a call into the addon; its exceptions become `OdysseyTypeError` / `OdysseyRangeError` / `OdysseyError`. */
function callNative<T>(call: () => T): T {
  try {
    return call()
  } catch (error) {
    throw fromNativeError(error)
  }
}

function byName(tensors: NamedTensorOutput[]): Record<string, Tensor> {
  return Object.fromEntries(tensors.map(({ name, shape, data }) => [name, { data, shape }]))
}

export class NativeBackend implements RecurrentBackend {
  /** `[batch, time, inputSize]` of the last forward pass: the shape of backward's `dx`. */
  private lastShape: readonly [number, number, number] | null = null

  private constructor(
    private readonly layer: NativeRecurrent,
    private readonly hiddenSize: number,
  ) {}

  static lstm(init: LstmInit): NativeBackend {
    return NativeBackend.create((native) => native.lstm(init), init.hiddenSize)
  }

  static gru(init: GruInit): NativeBackend {
    return NativeBackend.create((native) => native.gru(init), init.hiddenSize)
  }

  static simpleRnn(init: SimpleRnnInit): NativeBackend {
    return NativeBackend.create((native) => native.simpleRnn(init), init.hiddenSize)
  }

  /** A layer made by one of the addon's `NativeRecurrent` factories. */
  private static create(make: (native: typeof NativeRecurrent) => NativeRecurrent, hiddenSize: number): NativeBackend {
    const { NativeRecurrent } = loadNative()
    return new NativeBackend(
      callNative(() => make(NativeRecurrent)),
      hiddenSize,
    )
  }

  forward(input: SequenceInput): ForwardResult {
    this.lastShape = null
    const [batch, time] = input.shape
    const output = callNative(() =>
      this.layer.forward({
        x: input.x,
        shape: [...input.shape],
        lengths: input.lengths === undefined ? undefined : Uint32Array.from(input.lengths),
        h0: input.h0,
        c0: input.c0,
      }),
    )
    this.lastShape = input.shape
    const state = [batch, this.hiddenSize]
    const result: ForwardResult = {
      y: { data: output.y, shape: [batch, time, this.hiddenSize] },
      hN: { data: output.hN, shape: state },
    }
    if (output.cN !== undefined) result.cN = { data: output.cN, shape: [...state] }
    return result
  }

  backward(input: BackwardInput): BackwardResult {
    const output: BackwardOutput = callNative(() => this.layer.backward(input))
    // The addon refuses backward without a forward pass, so lastShape is set here.
    const [batch, time, inputSize] = this.lastShape!
    const state = [batch, this.hiddenSize]
    const result: BackwardResult = {
      dx: { data: output.dx, shape: [batch, time, inputSize] },
      dh0: { data: output.dh0, shape: state },
      grads: byName(output.grads),
      stepGradNorms: output.stepGradNorms,
    }
    if (output.dc0 !== undefined) result.dc0 = { data: output.dc0, shape: [...state] }
    return result
  }

  getWeights(): Record<string, Tensor> {
    return byName(callNative(() => this.layer.getWeights()))
  }

  setWeights(weights: Record<string, Tensor>): void {
    const tensors = Object.entries(weights).map(([name, { data, shape }]) => ({ name, shape, data }))
    callNative(() => this.layer.setWeights(tensors))
    this.lastShape = null
  }

  dispose(): void {
    callNative(() => this.layer.dispose())
    this.lastShape = null
  }
}
