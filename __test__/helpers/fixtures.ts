/**
 * Loads the PyTorch reference fixtures written by `__test__/fixtures/make_fixtures.py`
 * and compares our arrays against them.
 */
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { assert, expect } from 'vitest'

import type { Dtype, FloatArray, LstmVariant, RnnActivation, Tensor } from '../../ts/types'

export const FIXTURE_DIR = join(__dirname, '..', 'fixtures')

/** A tensor as stored in JSON: flat row-major `data` with its `shape`. */
export interface FixtureTensor {
  shape: number[]
  data: number[]
}

export interface FixtureConfig {
  batch: number
  time: number
  inputSize: number
  hiddenSize: number
  numLayers: number
  /** LSTM only. */
  variant?: LstmVariant
  /** LSTM only. */
  peepholes?: boolean
  /** Simple RNN only. */
  activation?: RnnActivation
}

export interface Fixture {
  name: string
  description: string
  kind: 'lstm' | 'rnn' | 'gru'
  source: string
  config: FixtureConfig
  /** PyTorch names; layer l's end in `_l{l}`. */
  weights: Record<string, FixtureTensor>
  /** `[batch, time, inputSize]` */
  x: FixtureTensor
  /** `[batch]`; null: every sequence is `time` long. */
  lengths: number[] | null
  /** `[numLayers, batch, hiddenSize]`; null: zeros. */
  h0: FixtureTensor | null
  c0: FixtureTensor | null
  /** `[batch, time, hiddenSize]`, zero at padded steps. */
  target: FixtureTensor
  expected: {
    /** `[batch, time, hiddenSize]` of the top layer, zero at padded steps. */
    y: FixtureTensor
    /** `[numLayers, batch, hiddenSize]` */
    hN: FixtureTensor
    cN?: FixtureTensor
    /** 0.5 · Σ over valid steps of (y − target)² */
    loss: number
    /** `[batch, time, inputSize]` */
    dx: FixtureTensor
    /** `[numLayers, batch, hiddenSize]` */
    dh0: FixtureTensor
    dc0?: FixtureTensor
    grads: Record<string, FixtureTensor>
  }
}

/** Fixture names (file names without `.json`), sorted. */
export function listFixtures(): string[] {
  return readdirSync(FIXTURE_DIR)
    .filter((file) => file.endsWith('.json'))
    .map((file) => file.slice(0, -'.json'.length))
    .sort()
}

export function loadFixture(name: string): Fixture {
  return JSON.parse(readFileSync(join(FIXTURE_DIR, `${name}.json`), 'utf8')) as Fixture
}

export function typedArray(dtype: Dtype, values: ArrayLike<number>): FloatArray {
  return dtype === 'float32' ? Float32Array.from(values) : Float64Array.from(values)
}

export function toTensor(tensor: FixtureTensor, dtype: Dtype): Tensor {
  return { data: typedArray(dtype, tensor.data), shape: [...tensor.shape] }
}

/** The `_l{layer}` entries of a by-name map, renamed to `_l0` as a single layer sees them. */
export function entriesOfLayer<T>(byName: Record<string, T>, layer: number): Record<string, T> {
  const suffix = `_l${layer}`
  const entries = Object.entries(byName)
    .filter(([name]) => name.endsWith(suffix))
    .map(([name, value]): [string, T] => [`${name.slice(0, -suffix.length)}_l0`, value])
  return Object.fromEntries(entries)
}

/** Layer `layer` of a `[numLayers, batch, hidden]` state as flat `[batch, hidden]` values. */
export function stateOfLayer(state: FixtureTensor, layer: number): number[] {
  const [, batch, hidden] = state.shape
  return state.data.slice(layer * batch * hidden, (layer + 1) * batch * hidden)
}

/** `[batch, time]` validity as 0/1 per step: 1 at t < length. */
export function stepMask(batch: number, time: number, lengths: number[] | null): Uint8Array {
  const mask = new Uint8Array(batch * time)
  for (let b = 0; b < batch; b++) {
    const length = lengths ? lengths[b] : time
    mask.fill(1, b * time, b * time + length)
  }
  return mask
}

/**
 * Every element within `tolerance · (1 + |expected|)` (absolute plus relative); on failure the
 * message names the worst element. NaN never passes.
 */
export function expectClose(label: string, actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number) {
  expect(actual.length, `${label}: length`).toBe(expected.length)
  let worst = -1
  let worstExcess = 0
  for (let k = 0; k < expected.length; k++) {
    const error = Math.abs(actual[k] - expected[k])
    const excess = error - tolerance * (1 + Math.abs(expected[k]))
    if (!(excess <= worstExcess)) {
      worst = k
      worstExcess = Number.isNaN(excess) ? Infinity : excess
    }
  }
  if (worst >= 0) {
    assert.fail(
      `${label} differs from PyTorch beyond ${tolerance}: element ${worst} is ${actual[worst]}, PyTorch ${expected[worst]}`,
    )
  }
}
