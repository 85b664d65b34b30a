/**
 * Loads the native addon on first use, so that `backend: 'js'` works on a
 * machine where the addon is missing or cannot load.
 */
import type * as Binding from '../native/binding'

import { OdysseyError } from './errors'

export type NativeBinding = typeof Binding

// `../native` is the package root's native/ from both ts/ (tests) and dist/ (the published build).
const BINDING_PATH = '../native/binding.cjs'

let binding: NativeBinding | undefined

/** The native addon; throws `OdysseyError` `ODYSSEY_NATIVE_LOAD` when it cannot be loaded. */
export function loadNative(): NativeBinding {
  if (binding === undefined) binding = requireBinding()
  return binding
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
        `Build it from source with \`npm run build:native\` (needs Rust >= 1.88), ` +
        `or pass \`backend: 'js'\` to use the pure-TypeScript implementation.`,
      { cause: error },
    )
  }
}
