/**
 * Loads the native addon on first use, so that `backend: 'js'` works on a
 * machine where the addon is missing or cannot load.
 */
import { availableParallelism } from 'node:os'

import type * as Binding from '../native/binding'

import { OdysseyError } from './errors'
import type { Backend } from './types'
import { BACKENDS, checkOneOf } from './validate'

export type NativeBinding = typeof Binding

// `../native` is the package root's native/ from both ts/ (tests) and dist/ (the published build).
const BINDING_PATH = '../native/binding.cjs'

let binding: NativeBinding | undefined

/** The values `ODYSSEY_BACKEND` accepts: a layer backend, or `wasm` (the `native` backend, run as WebAssembly). */
const BACKEND_VARIABLE_VALUES = [...BACKENDS, 'wasm'] as const

/**
 * The backend of a layer whose options name none: `ODYSSEY_BACKEND` when set, else `native`.
 * `wasm` selects the `native` backend, whose binding {@link loadNative} then loads as WebAssembly.
 */
export function defaultBackend(): Backend {
  const chosen = checkOneOf('ODYSSEY_BACKEND', process.env.ODYSSEY_BACKEND || 'native', BACKEND_VARIABLE_VALUES)
  return chosen === 'wasm' ? 'native' : chosen
}

/** The native addon; throws `OdysseyError` `ODYSSEY_NATIVE_LOAD` when it cannot be loaded. */
export function loadNative(): NativeBinding {
  if (binding === undefined) {
    binding = requireBinding()
    stopWorkOnExit(binding)
  }
  return binding
}

/**
 * Node ends a process (`process.exit()`, an uncaught exception, an unhandled rejection) by
 * joining libuv's worker threads after the 'exit' event: a fit still running there would keep
 * the process alive. So the 'exit' listener stops this environment's native work (a fit,
 * `predict` or `evaluate` stops before its next batch, a `save` completes); see crates/node/src/exit.rs.
 */
function stopWorkOnExit(native: NativeBinding): void {
  process.once('exit', () => native.stopWork())
}

/** Which build of the Rust core {@link loadNative} loaded: the platform's addon, or the WebAssembly one. */
export type BindingKind = 'native' | 'wasm'

let bindingKind: BindingKind | undefined

/** Which build {@link loadNative} loaded (it loads the binding first if need be). */
export function loadedBindingKind(): BindingKind {
  loadNative()
  return bindingKind as BindingKind
}

/** The WebAssembly build's package, which `napi create-npm-dirs` made (`cpu: ["wasm32"]`: npm installs it only when forced). */
export const WASM_PACKAGE = 'odyssey-rnn-wasm32-wasi'

/**
 * The loader napi-rs generated (native/binding.cjs) tries this platform's addon first and falls
 * back to the WebAssembly build (native/odyssey-rnn.wasi.cjs in a clone, else the package
 * `odyssey-rnn-wasm32-wasi`); `NAPI_RS_FORCE_WASI=error` makes it load the WebAssembly build or
 * throw. `ODYSSEY_BACKEND=wasm` sets that for the one `require`.
 */
function requireBinding(): NativeBinding {
  const wantWasm = process.env.ODYSSEY_BACKEND === 'wasm'
  const forced = process.env.NAPI_RS_FORCE_WASI
  if (wantWasm) process.env.NAPI_RS_FORCE_WASI = 'error'
  // WASI has no call for the number of cores (Rust's `available_parallelism` fails there), so
  // rayon's pool in the WebAssembly build would have one thread where the native addon's has
  // one per core: the wasm threads' environments (copies of this one) get Node's count unless
  // the caller set one. Left set once the wasm build is loaded (the pool reads it on first use,
  // on whichever thread); the native addon's rayon reads its own default.
  const threadsUnset = process.env.RAYON_NUM_THREADS === undefined
  if (threadsUnset) process.env.RAYON_NUM_THREADS = String(availableParallelism())
  try {
    const loaded = require(BINDING_PATH) as NativeBinding
    bindingKind = isWasmBinding(loaded) ? 'wasm' : 'native'
    return loaded
  } catch (error) {
    throw loadError(error, wantWasm)
  } finally {
    if (forced === undefined) delete process.env.NAPI_RS_FORCE_WASI
    else process.env.NAPI_RS_FORCE_WASI = forced
    if (threadsUnset && bindingKind !== 'wasm') delete process.env.RAYON_NUM_THREADS
  }
}

/** The generated loader stamps what it loaded: `'native'`, or the WebAssembly flavor (`'wasm32-wasi'`). */
function isWasmBinding(loaded: NativeBinding): boolean {
  const stamp: unknown = (loaded as { __napiBindingTarget?: unknown }).__napiBindingTarget
  return typeof stamp === 'string' && stamp.startsWith('wasm32')
}

function loadError(error: unknown, wantWasm: boolean): OdysseyError {
  const platform = `${process.platform}-${process.arch}`
  const reason = (error instanceof Error ? error.message : String(error)).split('\n')[0]
  const installWasm = `\`npm install --force ${WASM_PACKAGE}\``
  if (wantWasm) {
    return new OdysseyError(
      'ODYSSEY_NATIVE_LOAD',
      `odyssey-rnn: ODYSSEY_BACKEND=wasm, but the WebAssembly build could not be loaded (${reason}). ` +
        `It is the package \`${WASM_PACKAGE}\`: ${installWasm} (npm refuses it without --force: it is for cpu wasm32), ` +
        `or build it in a clone with \`npm run build:wasm\`. Needs Node.js >= 20.19.`,
      { cause: error },
    )
  }
  return new OdysseyError(
    'ODYSSEY_NATIVE_LOAD',
    `odyssey-rnn: the native addon could not be loaded on ${platform} (${reason}). ` +
      `Its prebuilt binary is the optional dependency \`${platformPackage()}\`: reinstall without ` +
      `\`--omit=optional\`, or \`npm install ${platformPackage()}\`. With no prebuilt binary for ${platform}, ` +
      `install the WebAssembly build of the same Rust core, which runs on any platform and is picked ` +
      `when no native binary loads: ${installWasm}. Or build from source (README, "Install"; needs ` +
      `Rust >= 1.89), or use the pure-TypeScript layers: set ODYSSEY_BACKEND=js or pass \`backend: 'js'\`.`,
    { cause: error },
  )
}

/** The package `napi create-npm-dirs` made for this platform, e.g. `odyssey-rnn-linux-x64-gnu`. */
function platformPackage(): string {
  const abi = process.platform === 'linux' ? (isMusl() ? '-musl' : '-gnu') : process.platform === 'win32' ? '-msvc' : ''
  return `odyssey-rnn-${process.platform}-${process.arch}${abi}`
}

/** glibc reports its version in the process report; musl (Alpine) does not. */
function isMusl(): boolean {
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined
  return report?.header?.glibcVersionRuntime === undefined
}
