#!/usr/bin/env node
'use strict'
// `cargo test --target wasm32-wasip1-threads` runs each test binary through this script
// (.cargo/config.toml's runner): Node's WASI with the wasi-threads imports of
// @emnapi/wasi-threads (the runtime the napi-rs package itself loads with), so tests that
// spawn threads (rayon, the lock-step scheduler) run too. wasmtime is not needed.
// `run.cjs <test.wasm> [libtest args…]`; the exit code is the test binary's.
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { WASI } = require('node:wasi')
const { Worker } = require('node:worker_threads')
const { WASIThreads } = require('@emnapi/wasi-threads')

const [wasmPath, ...args] = process.argv.slice(2)
if (wasmPath === undefined) {
  console.error('usage: run.cjs <test.wasm> [args…]')
  process.exit(2)
}

/** The same options in every thread: the tests see the crate directory and the temp directory. */
function wasiOptions(argv) {
  return {
    version: 'preview1',
    args: [path.basename(wasmPath), ...argv],
    env: process.env,
    preopens: { '.': process.cwd(), [os.tmpdir()]: os.tmpdir() },
    returnOnExit: true,
  }
}

async function main() {
  const wasi = new WASI(wasiOptions(args))
  const threads = new WASIThreads({
    wasi,
    // A thread's creation waits for its worker (Atomics.wait on the main thread is allowed in
    // Node); starting a worker takes seconds on a loaded machine.
    waitThreadStart: 120_000,
    onCreateWorker: () =>
      new Worker(path.join(__dirname, 'worker.cjs'), { workerData: { options: wasiOptions(args) } }),
  })
  const module = await WebAssembly.compile(fs.readFileSync(wasmPath))
  // Shared, as the threads target's module imports it; its maximum is the 1 GiB rustc declares.
  const memory = new WebAssembly.Memory({ initial: 256, maximum: 16384, shared: true })
  const instance = await WebAssembly.instantiate(module, {
    env: { memory },
    wasi_snapshot_preview1: wasi.wasiImport,
    ...threads.getImportObject(),
  })
  threads.setup(instance, module, memory)
  const code = wasi.start(instance)
  threads.terminateAllThreads()
  process.exit(code)
}

main().catch((error) => {
  // A panic is an `unreachable` trap (wasm has no unwinding): libtest has printed the panic message.
  console.error(error)
  process.exit(101)
})
