/**
 * Around calls into the WebAssembly build, which runs on emnapi (Node-API in JavaScript); also
 * the browser example's (examples/browser/shims replaces ts/native.ts, not this file).
 */

import type { FloatArray } from './types'

/**
 * Runs a synchronous call into the WebAssembly build with V8's stack traces off. emnapi
 * (@emnapi/core 2.0.0-beta.2) tells a typed array's `ArrayBuffer` from a `SharedArrayBuffer` by
 * calling the latter's `byteLength` getter on it, which throws (and is caught) twice for every
 * typed-array argument: capturing those exceptions' stack traces took 64 µs of a 290 µs
 * streaming step (LSTM X 128, H 256; `node --cpu-prof`). An error the call itself throws is
 * made into a typed error, with its stack, after the limit is restored.
 */
export function withoutStackTraces<T>(call: () => T): T {
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  try {
    return call()
  } finally {
    Error.stackTraceLimit = limit
  }
}

/** What a stage needs of a model: `NativeModel.stepStage` (crates/node/src/stage.rs). */
interface Stager {
  stepStage(xLen: number, outLen: number): number
}

/** The views on the module's streaming stage, and what they were made for. */
interface Stage {
  float64: boolean
  x: FloatArray
  out: FloatArray
}

/** A `WebAssembly.Memory` (this package's TypeScript lib has no WebAssembly types). */
export interface WasmMemory {
  readonly buffer: ArrayBufferLike
}

/** The last stage: one per module instance (all models share it; the JS thread is the only caller). */
let stage: Stage | undefined

/**
 * The WebAssembly module's memory, which the Node loader exports (scripts/wasm-relaxed-simd.cjs
 * patches napi-rs's); undefined where it does not (the browser's loader).
 */
export function wasmMemory(binding: object): WasmMemory | undefined {
  return (binding as { __odysseyWasmMemory?: WasmMemory }).__odysseyWasmMemory
}

/**
 * Views on the module's streaming stage for a step of `xLength` values in and `outLength` out,
 * of x's type: a step writes x into `x`, calls `NativeModel.stepStaged` and reads `out`, and no
 * typed array crosses emnapi (which would copy each one into or out of the module's memory).
 * The module is asked for a new stage only when the sizes or the type change: the views of the
 * old one may then point at freed memory, so they are dropped here, where all of them are kept.
 */
export function stepStage(
  model: Stager,
  memory: WasmMemory,
  float64: boolean,
  xLength: number,
  outLength: number,
): { x: FloatArray; out: FloatArray } {
  if (stage?.float64 !== float64 || stage.x.length !== xLength || stage.out.length !== outLength) {
    stage = undefined
    const address = model.stepStage(xLength, outLength)
    // A shared memory's `buffer` is a new SharedArrayBuffer after it grows; the stage is inside both.
    const buffer = memory.buffer
    const view = (offset: number, length: number): FloatArray =>
      float64 ? new Float64Array(buffer, offset, length) : new Float32Array(buffer, offset, length)
    stage = { float64, x: view(address, xLength), out: view(address + xLength * (float64 ? 8 : 4), outLength) }
  }
  return stage
}
