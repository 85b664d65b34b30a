/**
 * Loads the native addon on first use, so that `backend: 'js'` works on a
 * machine where the addon is missing or cannot load.
 */
import type * as Binding from '../native/binding'

import { OdysseyError } from './errors'
import type { Backend } from './types'
import { BACKENDS, checkOneOf } from './validate'

export type NativeBinding = typeof Binding

// `../native` is the package root's native/ from both ts/ (tests) and dist/ (the published build).
const BINDING_PATH = '../native/binding.cjs'

let binding: NativeBinding | undefined

/** The backend of a layer whose options name none: `ODYSSEY_BACKEND` (`native` or `js`) when set, else `native`. */
export function defaultBackend(): Backend {
  return checkOneOf('ODYSSEY_BACKEND', process.env.ODYSSEY_BACKEND || 'native', BACKENDS)
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

function requireBinding(): NativeBinding {
  try {
    return require(BINDING_PATH) as NativeBinding
  } catch (error) {
    const platform = `${process.platform}-${process.arch}`
    const reason = (error instanceof Error ? error.message : String(error)).split('\n')[0]
    throw new OdysseyError(
      'ODYSSEY_NATIVE_LOAD',
      `odyssey-rnn: the native addon could not be loaded on ${platform} (${reason}). ` +
        `Its prebuilt binary is the optional dependency \`${platformPackage()}\`: reinstall without ` +
        `\`--omit=optional\`, or \`npm install ${platformPackage()}\`. With no prebuilt binary for ${platform}, ` +
        `build from source (README, "Install"; needs Rust >= 1.88), or use the pure-TypeScript ` +
        `implementation: set ODYSSEY_BACKEND=js or pass \`backend: 'js'\`.`,
      { cause: error },
    )
  }
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
