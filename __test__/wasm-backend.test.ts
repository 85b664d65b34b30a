/**
 * The WebAssembly build of the Rust core (`npm run build:wasm`: native/odyssey-rnn.wasm32-wasi.wasm
 * and its loader) against the native addon: one workload through the built package in two child
 * processes, `ODYSSEY_BACKEND=wasm` and the default, gives the same numbers to float32 rounding
 * (a float32 LSTM layer's forward and backward, a fit's losses, predictions, and predictions of the
 * checkpoint loaded through WASI's file system, streaming steps), the same progress, abort and bad-input errors.
 *
 * Skips with a printed reason when the wasm build is absent, unless ODYSSEY_REQUIRE_WASM=1
 * (.ci/run builds it and sets that).
 */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'

const ROOT = resolve(__dirname, '..')
const CHILD = join(__dirname, 'helpers', 'backend-child.cjs')
const WASM = join(ROOT, 'native', 'odyssey-rnn.wasm32-wasi.wasm')
const present = existsSync(WASM)
if (!present && process.env.ODYSSEY_REQUIRE_WASM !== '1') {
  console.warn(`wasm-backend.test.ts skipped: ${WASM} is absent (npm run build:wasm builds it)`)
}

interface Outcome {
  binding: string
  wasmModule: string | null
  rayonThreads: string | null
  layer: { y: number[]; dx: number[] }
  losses: number[]
  batches: number
  predictions: number[]
  reloaded: number[]
  aborted: string
  badInput: string
  staged: boolean
  streamed: number[]
}

const scratch = mkdtempSync(join(tmpdir(), 'odyssey-wasm-'))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

function runChild(backend: 'native' | 'wasm', simd?: 'simd128'): Outcome {
  const dir = mkdtempSync(join(scratch, `${backend}-`))
  const env: NodeJS.ProcessEnv = { ...process.env, ODYSSEY_BACKEND: backend }
  delete env.NAPI_RS_FORCE_WASI
  delete env.RAYON_NUM_THREADS
  if (simd === undefined) delete env.ODYSSEY_WASM_SIMD
  else env.ODYSSEY_WASM_SIMD = simd
  const result = spawnSync(process.execPath, [CHILD, dir], { env, encoding: 'utf8', timeout: 120_000 })
  if (result.status !== 0)
    throw new Error(`${backend} child failed (${result.status ?? result.signal}):\n${result.stderr}`)
  return JSON.parse(result.stdout) as Outcome
}

/** Every element within `tolerance` of the other's, relative to the larger magnitude (floor 1). */
function expectClose(actual: number[], expected: number[], tolerance: number) {
  expect(actual).toHaveLength(expected.length)
  const worst = Math.max(...actual.map((a, i) => Math.abs(a - expected[i]) / Math.max(1, Math.abs(expected[i]))))
  expect(worst).toBeLessThanOrEqual(tolerance)
}

describe.skipIf(!present && process.env.ODYSSEY_REQUIRE_WASM !== '1')(
  'the WebAssembly build beside the native addon',
  () => {
    it('gives the same results to float32 rounding, and the same progress, abort and errors', () => {
      const wasm = runChild('wasm')
      const native = runChild('native')
      expect(wasm.binding).toBe('wasm')
      expect(native.binding).toBe('native')
      expectClose(wasm.layer.y, native.layer.y, 1e-5)
      expectClose(wasm.layer.dx, native.layer.dx, 1e-5)
      expectClose(wasm.losses, native.losses, 1e-5)
      expectClose(wasm.predictions, native.predictions, 1e-5)
      expect(wasm.reloaded).toEqual(wasm.predictions)
      expect(wasm.batches).toBe(native.batches)
      expect(wasm.aborted).toBe('AbortError')
      expect(native.aborted).toBe('AbortError')
      expect(wasm.badInput).toBe(native.badInput)
      // model.step through the module's stage (views on its memory), models of both dtypes interleaved.
      expect(wasm.staged).toBe(true)
      expectClose(wasm.streamed, native.streamed, 1e-5)
      // rayon's pool in the wasm build gets a thread per core, as the native addon's has.
      expect(wasm.rayonThreads).toBe(String(availableParallelism()))
      expect(native.rayonThreads).toBeNull()
    }, 240_000)

    it('runs the relaxed-SIMD module where the engine has relaxed SIMD, the plain one on request, alike', () => {
      const relaxed = runChild('wasm')
      const plain = runChild('wasm', 'simd128')
      const native = runChild('native')
      // Node 20 (V8 11.3) gets it through the loader's flag, Node >= 22 by default.
      expect(relaxed.wasmModule).toBe('odyssey-rnn.wasm32-wasi.relaxed.wasm')
      expect(plain.wasmModule).not.toContain('relaxed')
      for (const wasm of [relaxed, plain]) {
        expectClose(wasm.layer.y, native.layer.y, 1e-5)
        expectClose(wasm.layer.dx, native.layer.dx, 1e-5)
        expectClose(wasm.losses, native.losses, 1e-5)
        expectClose(wasm.predictions, native.predictions, 1e-5)
      }
    }, 240_000)
  },
)
