'use strict'
/**
 * `npm run build:wasm`'s second module. The first (`napi build`, `.cargo/config.toml`) is the
 * plain simd128 one, which every engine runs; this one is the same core built with relaxed SIMD
 * as well, whose `f32x4.relaxed_madd` the GEMM micro-kernel and the streaming step's dot products
 * use (kernels/microkernels_simd128.rs, `madd`): one fused multiply-add where simd128 needs a
 * multiply and an add. It goes beside the plain one as native/odyssey-rnn.wasm32-wasi.relaxed.wasm,
 * and napi-rs's generated Node loader (native/odyssey-rnn.wasi.cjs) is patched to load it where
 * the engine validates relaxed SIMD (V8 ≥ 11.4: Node ≥ 22, Chrome ≥ 114; on Node 20, V8 11.3, the
 * loader turns on its `--experimental-wasm-relaxed-simd`). `ODYSSEY_WASM_SIMD=simd128` keeps the
 * plain module. The browser loader keeps the plain module (Safari has no relaxed SIMD).
 *
 *   node scripts/wasm-relaxed-simd.cjs     (after the plain `napi build --target wasm32-wasip1-threads`)
 *
 * Every `napi build`, the native one too, writes the loaders of every target anew, so
 * `npm run build:native` is followed by `node scripts/wasm-relaxed-simd.cjs --loader-only` (npm's
 * `postbuild:native`, which leaves the flags passed to `build:native` to napi): it patches the
 * loader again without building, or a native build after `build:wasm` would leave a loader that
 * ignores the relaxed module and lacks the exports the streaming step reads.
 */
const { execFileSync } = require('node:child_process')
const { copyFileSync, existsSync, readFileSync, writeFileSync } = require('node:fs')
const { join, resolve } = require('node:path')

const ROOT = resolve(__dirname, '..')
const NATIVE = join(ROOT, 'native')
const PLAIN = 'odyssey-rnn.wasm32-wasi.wasm'
const RELAXED = 'odyssey-rnn.wasm32-wasi.relaxed.wasm'
const LOADER = join(NATIVE, 'odyssey-rnn.wasi.cjs')

/**
 * The build: `.cargo/config.toml`'s flags plus relaxed-simd (a RUSTFLAGS variable replaces them),
 * in a target dir of its own. cargo, not `napi build`: napi's post-processing of the module
 * (@napi-rs/wasm-tools, which strips its names) fails on relaxed-SIMD instructions, so this one
 * keeps its name section (5 % larger). EMNAPI_LINK_DIR is what `napi build` sets for this target.
 */
function build() {
  const rustflags = [
    '-C target-feature=+simd128,+relaxed-simd',
    '-C link-arg=--export=malloc',
    '-C link-arg=--export=free',
  ].join(' ')
  const targetDir = join('target', 'wasm-relaxed')
  execFileSync(
    'cargo',
    ['build', '--release', '--target', 'wasm32-wasip1-threads', '-p', 'odyssey-node', '--target-dir', targetDir],
    {
      cwd: ROOT,
      stdio: 'inherit',
      env: {
        ...process.env,
        RUSTFLAGS: rustflags,
        EMNAPI_LINK_DIR: join(require.resolve('emnapi'), '..', 'lib', 'wasm32-wasip1-threads'),
      },
    },
  )
  copyFileSync(join(ROOT, targetDir, 'wasm32-wasip1-threads', 'release', 'odyssey_node.wasm'), join(NATIVE, RELAXED))
}

/** Where the generated loader names its module, and where it starts choosing the file to load. */
const PICK = `let __wasmFilePath = __nodePath.join(__dirname, '${PLAIN}')\n`
const DEBUG_PICK = '\nif (__nodeFs.existsSync(__wasmDebugFilePath)) {'
const RELAXED_PICK = `
// odyssey-rnn (scripts/wasm-relaxed-simd.cjs): the module built with relaxed SIMD too, where the
// engine validates it; ODYSSEY_WASM_SIMD=simd128 keeps the plain one.
if (__odysseyRelaxedSimd() && __nodeFs.existsSync(__nodePath.join(__dirname, '${RELAXED}'))) {
  __wasmFilePath = __nodePath.join(__dirname, '${RELAXED}')
} else `
const DETECT = `
function __odysseyRelaxedSimd() {
  if (process.env.ODYSSEY_WASM_SIMD === 'simd128') return false
  // f32x4.relaxed_madd of three zero vectors, dropped: valid only where relaxed SIMD is on.
  const zeros = [253, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
  const probe = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 4, 1, 96, 0, 0, 3, 2, 1, 0, 10, 62, 1, 60, 0,
    ...zeros, ...zeros, ...zeros, 253, 133, 2, 26, 11])
  if (WebAssembly.validate(probe)) return true
  // V8 11.3 (Node 20) has the final relaxed SIMD behind a flag, read when a module is compiled:
  // turned on before this module is, it holds for the module's worker threads too.
  if (!process.versions.v8.startsWith('11.3.')) return false
  require('node:v8').setFlagsFromString('--experimental-wasm-relaxed-simd')
  return WebAssembly.validate(probe)
}
`

function patchLoader() {
  const source = readFileSync(LOADER, 'utf8')
  if (source.includes('__odysseyRelaxedSimd')) return
  if (source.split(PICK).length !== 2 || source.split(DEBUG_PICK).length !== 2)
    throw new Error(`${LOADER}: napi-rs's loader changed; the relaxed-SIMD patch cannot find where it picks the module`)
  const patched = source.replace(PICK, PICK + DETECT).replace(DEBUG_PICK, RELAXED_PICK + DEBUG_PICK.slice(1))
  // Which module loaded, for tests and the bench; and its memory, where the streaming step's
  // stage is (crates/node/src/stage.rs, ts/emnapi.ts).
  writeFileSync(
    LOADER,
    `${patched}module.exports.__odysseyWasmModule = __nodePath.basename(__wasmFilePath)\n` +
      'module.exports.__odysseyWasmMemory = __sharedMemory\n',
  )
}

if (process.argv.includes('--loader-only')) {
  if (existsSync(LOADER)) patchLoader()
} else {
  build()
  patchLoader()
}
