'use strict'
// A wasi-threads thread of run.cjs: instantiates the module on the shared memory and runs
// the thread's start function when @emnapi/wasi-threads says so.
const { WASI } = require('node:wasi')
const { parentPort, workerData } = require('node:worker_threads')
const { ThreadMessageHandler, WASIThreads } = require('@emnapi/wasi-threads')

const postMessage = (message) => parentPort.postMessage(message)

const handler = new ThreadMessageHandler({
  postMessage,
  async onLoad({ wasmModule, wasmMemory }) {
    const wasi = new WASI(workerData.options)
    const threads = new WASIThreads({ wasi, childThread: true, postMessage })
    const instance = await WebAssembly.instantiate(wasmModule, {
      env: { memory: wasmMemory },
      wasi_snapshot_preview1: wasi.wasiImport,
      ...threads.getImportObject(),
    })
    // A thread must not run `_start` (the main thread's), only `wasi_thread_start`.
    return { module: wasmModule, instance: threads.initialize(instance, wasmModule, wasmMemory) }
  },
})

parentPort.on('message', (data) => handler.handle({ data }))
