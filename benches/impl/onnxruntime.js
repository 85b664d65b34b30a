'use strict'
/**
 * onnxruntime-node (CPU execution provider) running odyssey's own ONNX export of the case's
 * model: `model.exportOnnx` of the same sequential LSTM the odyssey-native cases build, so the
 * graph is the one a user would deploy. Inference only (ONNX Runtime does not train here).
 *
 * - forward: one `session.run` on `[B, T, X]`, exported with `variableLengths: false` (every
 *   sequence is full, as in the odyssey and PyTorch cases; no `x_lengths` input to feed).
 * - stream: one `session.run` per step on `[1, 1, X]`, exported with `state: true`: the node's
 *   `{node}_h0` / `{node}_c0` inputs take the `{node}_hN` / `{node}_cN` outputs of the previous step.
 *
 * `intraOpNumThreads` = the cores (2 here), one inter-op thread, every graph optimisation on.
 * `session.run` is asynchronous (it runs on a libuv worker and resolves on the event loop);
 * that round trip is part of what a Node user pays per call, so it is timed.
 */
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const { makeBatch, uniform } = require('../lib/data')
const { SkipCase } = require('../lib/skip')
const { loadOdyssey, recurrentModel } = require('./odyssey')

function loadOrt() {
  try {
    return require('onnxruntime-node')
  } catch (error) {
    throw new SkipCase(`onnxruntime-node could not be loaded (${/** @type {Error} */ (error).message})`)
  }
}

/** Exports the case's model to a temporary file and opens it with `threads` intra-op threads. */
async function openSession(ort, spec, options, threads) {
  const odyssey = loadOdyssey()
  const model = recurrentModel(odyssey, spec)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'odyssey-bench-onnx-'))
  const file = path.join(dir, 'model.onnx')
  try {
    await model.exportOnnx(file, options)
    return await ort.InferenceSession.create(file, {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    })
  } finally {
    model.dispose()
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

function nameEndingWith(names, suffix) {
  const name = names.find((n) => n.endsWith(suffix))
  if (name === undefined) throw new Error(`the exported graph has no ${suffix} (names: ${names.join(', ')})`)
  return name
}

async function forwardPass(ort, spec, threads) {
  const { B, T, X } = spec
  const session = await openSession(ort, spec, { variableLengths: false }, threads)
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', makeBatch(spec, spec.H).x, [B, T, X]) }
  return () => session.run(feeds)
}

async function streamingStep(ort, spec, threads) {
  const session = await openSession(ort, spec, { variableLengths: false, state: true }, threads)
  const { inputNames, outputNames } = session
  const [h0, c0] = [nameEndingWith(inputNames, '_h0'), nameEndingWith(inputNames, '_c0')]
  const [hN, cN] = [nameEndingWith(outputNames, '_hN'), nameEndingWith(outputNames, '_cN')]
  const zeros = () => new ort.Tensor('float32', new Float32Array(spec.H), [1, 1, spec.H])
  const feeds = {
    [inputNames[0]]: new ort.Tensor('float32', uniform(spec.X, 3), [1, 1, spec.X]),
    [h0]: zeros(),
    [c0]: zeros(),
  }
  return async () => {
    const out = await session.run(feeds)
    feeds[h0] = out[hN]
    feeds[c0] = out[cN]
  }
}

/** @returns {Promise<{ step: () => Promise<unknown>, info: object, async?: boolean }>} */
async function prepare(spec) {
  const ort = loadOrt()
  if (spec.cell !== 'lstm' || spec.layers !== 1 || spec.peepholes) throw new SkipCase('only the plain LSTM cases')
  const threads = Number(process.env.ORT_THREADS) || os.availableParallelism()
  const version = ort.env.versions.common
  if (spec.mode === 'forward') {
    const api = `session.run on model.exportOnnx (variableLengths: false), ${threads} intra-op threads`
    return { step: await forwardPass(ort, spec, threads), info: { api, threads, version } }
  }
  if (spec.mode === 'stream') {
    const api = `session.run per step on model.exportOnnx (state: true), h/c carried, ${threads} intra-op threads`
    return { step: await streamingStep(ort, spec, threads), info: { api, threads, version }, async: true }
  }
  throw new SkipCase('inference only')
}

module.exports = { prepare }
