/**
 * `npm run test:wasm`: the suite's core against the WebAssembly build of the Rust core
 * (`npm run build:wasm`), through ODYSSEY_BACKEND=wasm — the reference comparisons, the PyTorch
 * fixtures, the Model API (fit with progress and abort, save/load through WASI's file system) and
 * bad inputs. __test__/helpers/wasm-setup.ts fails every file whose binding is not the wasm one.
 */
import { defineConfig } from 'vitest/config'

import base from './vitest.config'

// Spread, not mergeConfig: that would append this include list to the base's whole suite.
export default defineConfig({
  ...base,
  test: {
    ...base.test,
    include: [
      '__test__/native-vs-reference.test.ts',
      '__test__/pytorch-fixtures.test.ts',
      '__test__/interop-torch.test.ts',
      '__test__/model-api.test.ts',
      '__test__/model-save-load.test.ts',
      '__test__/fit-callbacks.test.ts',
      '__test__/hardening-bad-input.test.ts',
    ],
    env: { ODYSSEY_BACKEND: 'wasm' },
    setupFiles: ['__test__/helpers/wasm-setup.ts'],
  },
})
