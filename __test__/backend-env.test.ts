/** `ODYSSEY_BACKEND`: the backend of every layer whose options name none. */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'

import { LSTM, OdysseyRangeError, SimpleRNN } from '../ts'

const SIZES = { inputSize: 2, hiddenSize: 3 }
// A layer built under ODYSSEY_BACKEND=wasm loads the WebAssembly build, which only
// `npm run build:wasm` makes: README's `npm install && npm test` has the native addon alone.
const wasmBuilt = existsSync(join(__dirname, '..', 'native', 'odyssey-rnn.wasm32-wasi.wasm'))
const wasmRequired = wasmBuilt || process.env.ODYSSEY_REQUIRE_WASM === '1'
if (!wasmRequired) console.warn('backend-env.test.ts: the wasm case is skipped (npm run build:wasm builds the module)')

describe('ODYSSEY_BACKEND', () => {
  afterEach(() => {
    vi.unstubAllEnvs()
  })

  it('js makes both layer kinds default to the pure-TypeScript backend', () => {
    vi.stubEnv('ODYSSEY_BACKEND', 'js')
    expect(new LSTM(SIZES).config.backend).toBe('js')
    expect(new SimpleRNN(SIZES).config.backend).toBe('js')
  })

  it('yields to a backend named in the options', () => {
    vi.stubEnv('ODYSSEY_BACKEND', 'native')
    expect(new LSTM({ ...SIZES, backend: 'js' }).config.backend).toBe('js')
  })

  it.runIf(wasmRequired)(
    'wasm makes layers default to the native backend (the Rust core, loaded as WebAssembly)',
    () => {
      vi.stubEnv('ODYSSEY_BACKEND', 'wasm')
      expect(new LSTM(SIZES).config.backend).toBe('native')
      expect(new SimpleRNN({ ...SIZES, backend: 'js' }).config.backend).toBe('js')
    },
  )

  it('empty counts as unset: native', () => {
    vi.stubEnv('ODYSSEY_BACKEND', '')
    expect(new LSTM(SIZES).config.backend).toBe('native')
  })

  it('any other value is refused with the variable named', () => {
    vi.stubEnv('ODYSSEY_BACKEND', 'gpu')
    expect(() => new SimpleRNN(SIZES)).toThrow(OdysseyRangeError)
    expect(() => new SimpleRNN(SIZES)).toThrow(/ODYSSEY_BACKEND: expected one of 'native', 'js', 'wasm', got 'gpu'/)
  })
})
