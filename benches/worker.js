'use strict'
/**
 * Runs ONE benchmark case of a JavaScript implementation in its own process,
 * so that the peak RSS it reports belongs to that case alone.
 *
 *   node --expose-gc benches/worker.js '<case JSON>' <result file>
 *
 * The result file receives one JSON object: timings, RSS, and what the
 * implementation reported about itself; `{ skipped }` or `{ error }` otherwise.
 */
const fs = require('node:fs')

const { memoryBudget } = require('./lib/memory')
const { peakRssMiB, sampleRssOverSteps, settledRssMiB, timeRepetitions } = require('./lib/measure')
const { SkipCase } = require('./lib/skip')

const MODULES = {
  'odyssey-native': './impl/odyssey',
  'odyssey-js': './impl/odyssey',
  'odyssey-wasm': './impl/odyssey',
  'tfjs-wasm': './impl/tfjs',
  'tfjs-cpu': './impl/tfjs',
  'brain.js': './impl/brain',
  onnxruntime: './impl/onnxruntime',
}

/**
 * What one timed repetition is: one call, or `spec.steps` streaming steps (each awaited when
 * the implementation's step is asynchronous, as onnxruntime's `session.run` is).
 */
function repetition({ step, async }, spec) {
  if (spec.mode !== 'stream') return step
  if (async)
    return async () => {
      for (let i = 0; i < spec.steps; i++) await step()
    }
  return () => {
    for (let i = 0; i < spec.steps; i++) step()
  }
}

/** Timings of each prepared step (interleaved when there are several); for a streaming case in ms per single step. */
async function timeSteps(prepared, spec) {
  const timings = await timeRepetitions(
    prepared.map((p) => repetition(p, spec)),
    spec.policy,
  )
  const perCall = spec.mode === 'stream' ? spec.steps : 1
  return timings.map(({ timesMs, warmup, firstValue, lastValue }) => {
    const loss = typeof firstValue === 'number' ? { lossFirst: firstValue, lossLast: lastValue } : {}
    return { timesMs: timesMs.map((ms) => ms / perCall), warmup, ...loss }
  })
}

/**
 * One result, or `{ variants: [result, …] }` for a case with `variants` (each merged into the
 * case): those are prepared in this one process and timed interleaved.
 */
async function runCase(spec) {
  const { prepare } = require(MODULES[spec.impl])
  const variants = spec.variants ?? [{}]
  const prepared = []
  for (const variant of variants) prepared.push(await prepare({ ...spec, ...variant }))
  const rssAfterSetupMiB = await settledRssMiB()
  if (spec.flatSteps !== undefined) {
    const flat = await sampleRssOverSteps(prepared[0].step, spec.flatSteps, spec.flatEvery)
    return { info: prepared[0].info, rssAfterSetupMiB, flat, peakRssMiB: peakRssMiB() }
  }
  const timings = await timeSteps(prepared, spec)
  const peak = peakRssMiB()
  const results = timings.map((timing, i) => ({
    info: prepared[i].info,
    rssAfterSetupMiB,
    ...timing,
    peakRssMiB: peak,
  }))
  if (spec.variants !== undefined) return { variants: results }
  const [result] = results
  if (spec.budget) return { ...result, memory: memoryBudget(spec, rssAfterSetupMiB, result.peakRssMiB) }
  return result
}

async function main() {
  const [caseJson, resultFile] = process.argv.slice(2)
  const spec = JSON.parse(caseJson)
  let result
  try {
    result = await runCase(spec)
  } catch (error) {
    result =
      error instanceof SkipCase
        ? { skipped: error.message }
        : { error: String(error instanceof Error && error.stack ? error.stack : error) }
  }
  fs.writeFileSync(resultFile, JSON.stringify(result))
}

main()
