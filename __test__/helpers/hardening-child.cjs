/**
 * The child process of __test__/hardening-faults.test.ts, on the built package
 * (dist/ and the native addon, as users run it). Prints one JSON line per event.
 *
 *   node hardening-child.cjs save-loop <dir>     train a step, save, print {"saved": step}; forever (until killed)
 *   node --expose-gc hardening-child.cjs soak <steps> <fit|trainStep>
 *                                                 train <steps> small steps, print {"step", "rss"} at 1/4 and the end
 */
'use strict'
const { addingProblem, dense, lstm, sequential } = require('../../dist')

function model() {
  return sequential({
    input: { kind: 'sequence', features: 2 },
    layers: [lstm({ hiddenSize: 8, output: 'last' }), dense({ units: 1 })],
    loss: 'mse',
    optimizer: { type: 'adam', learningRate: 1e-3 },
    seed: 7,
  })
}

function print(record) {
  process.stdout.write(`${JSON.stringify(record)}\n`)
}

async function saveLoop(dir) {
  const m = model()
  const batch = addingProblem({ n: 8, time: 6, seed: 1 })
  for (;;) {
    m.trainStep(batch)
    await m.save(dir, { step: m.stepCount })
    print({ saved: m.stepCount })
  }
}

/** Resident memory after a full collection, so that only what training keeps counts. */
function settledRss() {
  global.gc()
  return process.memoryUsage().rss
}

async function soak(steps, how) {
  const m = model()
  const batchSize = 4
  const data = addingProblem({ n: batchSize * 25, time: 10, seed: 2 })
  const checkpoints = new Set([Math.floor(steps / 4), steps])
  const report = (step) => {
    if (checkpoints.has(step)) print({ step, rss: settledRss() })
  }
  if (how === 'fit') {
    // One update per batch: every step crosses the worker, the progress queue and the callback.
    await m.fit(data, {
      epochs: Math.ceil(steps / 25),
      batchSize,
      callbacks: { onBatchEnd: (log) => report(log.step) },
    })
  } else {
    const batch = addingProblem({ n: batchSize, time: 10, seed: 3 })
    for (let step = 1; step <= steps; step++) {
      m.trainStep(batch)
      if (step % 50 === 0) await m.predict(batch.x)
      report(step)
    }
  }
  m.dispose()
}

const [mode, arg, how] = process.argv.slice(2)
const run = mode === 'save-loop' ? saveLoop(arg) : soak(Number(arg), how)
run.catch((error) => {
  print({ error: String(error?.stack) })
  process.exit(1)
})
