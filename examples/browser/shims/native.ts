/**
 * ts/native.ts for the browser (vite.config.ts puts it in that module's place): the
 * WebAssembly build of the Rust core, through the ES module loader napi-rs generates for
 * browsers (native/odyssey-rnn.wasi-browser.js, `npm run build:wasm`). That loader fetches and
 * instantiates the module with a top-level `await`, which a module that the library loads with
 * `require` may not wait for; so the page awaits {@link loadWebAssembly} once before it uses the
 * library. The module's threads — `fit`'s worker and the kernels' pool — are Web Workers sharing
 * its memory, so the page must be cross-origin isolated (serve.mjs sends COOP and COEP).
 */
import type { BindingKind, NativeBinding } from '../../../ts/native'
import type { Backend } from '../../../ts/types'

let binding: NativeBinding | undefined

/** Fetches and instantiates the WebAssembly build; resolves once the library can use it. */
export async function loadWebAssembly(): Promise<void> {
  // @ts-expect-error napi-rs generates no types for its browser loader (its exports are the binding's).
  binding ??= (await import('../../../native/odyssey-rnn.wasi-browser.js')).default as NativeBinding
}

/** There is no `ODYSSEY_BACKEND` in a browser: layers that name no backend run on the WebAssembly build. */
export function defaultBackend(): Backend {
  return 'native'
}

export function loadNative(): NativeBinding {
  if (binding === undefined) throw new Error('odyssey-rnn: await loadWebAssembly() before using the library')
  return binding
}

/** The page always runs the WebAssembly build (whose typed-array arguments are copies: see `model.step`). */
export function loadedBindingKind(): BindingKind {
  loadNative()
  return 'wasm'
}
