'use strict'
/**
 * The timing loop every Node implementation shares (benches/pytorch_lstm.py
 * mirrors it): warm up, then at least `minReps` timed repetitions, more while
 * the time budget lasts.
 */

/**
 * @typedef {object} RepPolicy
 * @property {number} minWarmup  warm-up calls at least
 * @property {number} warmupMs   keep warming up until this much time has passed (and minWarmup is reached)
 * @property {number} minReps    timed repetitions at least (≥ 5 in every preset)
 * @property {number} maxReps    timed repetitions at most
 * @property {number} budgetMs   stop adding repetitions past minReps once this much time was spent timing
 */

const nowMs = () => Number(process.hrtime.bigint()) / 1e6

/**
 * Lets the event loop turn once. Node runs the finalizers of external ArrayBuffers (the
 * typed arrays a native addon returns) only on a later turn, so a loop that never yields
 * keeps every output alive; a real application yields between steps, and so does this loop
 * (outside the timed region).
 */
const nextTurn = () => new Promise(setImmediate)

/** Calls `run` and waits for it when it returns a promise (tfjs's trainOnBatch does). */
async function call(run) {
  const result = run()
  return result instanceof Promise ? await result : result
}

/**
 * Times one or more runs; several are interleaved (A B A B …) so that other work on a shared
 * machine hits them alike, which makes their ratio trustworthy (peepholes on vs off).
 * @param {(() => unknown)[]} runs each is one repetition (a training step, a forward pass, or 1000 streaming steps)
 * @param {RepPolicy} policy
 * @returns {Promise<{ timesMs: number[], warmup: number, firstValue: unknown, lastValue: unknown }[]>} per run;
 *   `firstValue` / `lastValue`: what its first warm-up call and last timed call returned (the loss)
 */
async function timeRepetitions(runs, policy) {
  /** @type {{ timesMs: number[], warmup: number, firstValue: unknown, lastValue: unknown }[]} */
  const results = []
  for (const run of runs) results.push({ timesMs: [], warmup: 1, firstValue: await call(run), lastValue: undefined })
  const warmStart = nowMs()
  while (results[0].warmup < policy.minWarmup || (nowMs() - warmStart < policy.warmupMs && results[0].warmup < 20)) {
    for (const [i, run] of runs.entries()) {
      await nextTurn()
      await call(run)
      results[i].warmup++
    }
  }
  const start = nowMs()
  const reps = () => results[0].timesMs.length
  while (reps() < policy.minReps || (nowMs() - start < policy.budgetMs && reps() < policy.maxReps)) {
    for (const [i, run] of runs.entries()) {
      await nextTurn()
      const t0 = nowMs()
      results[i].lastValue = await call(run)
      results[i].timesMs.push(nowMs() - t0)
    }
  }
  return results
}

/** Resident set size in MiB once garbage is collected (with --expose-gc) and pending finalizers ran. */
async function settledRssMiB() {
  if (typeof global.gc === 'function') global.gc()
  await nextTurn()
  return process.memoryUsage().rss / 2 ** 20
}

/** Peak resident set size of this process so far, in MiB. */
function peakRssMiB() {
  // resourceUsage().maxRSS is in KiB.
  return process.resourceUsage().maxRSS / 1024
}

/**
 * Runs `step` `steps` times and samples the RSS every `every` steps: does memory stay flat?
 * @returns {Promise<{ steps: number, every: number, rssMiB: number[] }>}
 */
async function sampleRssOverSteps(step, steps, every) {
  const rssMiB = [await settledRssMiB()]
  for (let i = 1; i <= steps; i++) {
    await call(step)
    await nextTurn()
    if (i % every === 0) rssMiB.push(await settledRssMiB())
  }
  return { steps, every, rssMiB }
}

module.exports = { timeRepetitions, settledRssMiB, peakRssMiB, sampleRssOverSteps }
