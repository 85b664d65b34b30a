/** Setup of `npm run test:wasm` (vitest.wasm.config.ts): every file runs on the WebAssembly build, or fails. */
import { beforeAll, expect } from 'vitest'

import { loadedBindingKind } from '../../ts/native'

beforeAll(() => {
  expect(process.env.ODYSSEY_BACKEND).toBe('wasm')
  expect(loadedBindingKind()).toBe('wasm')
})
