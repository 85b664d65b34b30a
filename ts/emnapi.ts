/**
 * Around calls into the WebAssembly build, which runs on emnapi (Node-API in JavaScript); also
 * the browser example's (examples/browser/shims replaces ts/native.ts, not this file).
 */

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
