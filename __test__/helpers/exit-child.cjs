/**
 * The child process of __test__/exit.test.ts, on the built package (dist/ and the native addon,
 * as users run it): starts a long native operation, then ends the process while it runs.
 *
 *   node exit-child.cjs <operation> <ending> [dir]
 *
 * operation: `fit` (400 epochs, minutes), `abort` (the same fit, aborted just before the
 * ending), `predict` and `evaluate` (seconds of batches), `save` (a checkpoint into `dir`),
 * `window` (a fit waiting for a callback that never settles), `checkpoint` (a fit whose
 * `modelCheckpoint` saves into `dir` after every short epoch).
 * ending: `exit` (process.exit(7)), `throw` (an uncaught exception), `reject` (an unhandled rejection),
 * `wait` (nothing: the test sends a signal).
 * Prints one JSON line, {"ending", "done", "total"} (batches done and in all, for the fit), just
 * before it ends the process.
 */
'use strict'
const { addingProblem, dense, lstm, modelCheckpoint, sequential } = require('../../dist')

const [operation, ending, dir] = process.argv.slice(2)

function model(hiddenSize) {
  return sequential({
    input: { kind: 'sequence', features: 2 },
    layers: [lstm({ hiddenSize, output: 'last' }), dense({ units: 1 })],
    loss: 'mse',
    optimizer: { type: 'adam', learningRate: 1e-3 },
  })
}

function end(progress) {
  process.stdout.write(`${JSON.stringify({ ending, ...progress })}\n`)
  if (ending === 'wait') return
  if (ending === 'exit') process.exit(7)
  if (ending === 'throw') throw new Error('thrown while native work runs')
  Promise.reject(new Error('rejected while native work runs'))
}

/** Long enough that a faster engine still has minutes left when the process ends at 0.5 s. */
const FIT_EPOCHS = 400

/** A fit of FIT_EPOCHS epochs of 128 batches; `abort` aborts it right before ending the process. */
function runFit() {
  const m = model(64)
  const controller = new AbortController()
  let done = 0
  m.fit(addingProblem({ n: 4096, time: 50, seed: 1 }), {
    epochs: FIT_EPOCHS,
    batchSize: 32,
    signal: controller.signal,
    callbacks: { onBatchEnd: () => done++ },
  }).catch(() => {})
  setTimeout(() => {
    if (operation === 'abort') controller.abort()
    end({ done, total: FIT_EPOCHS * 128 })
  }, 500)
}

/** `predict` or `evaluate` over 20 000 sequences of 100 steps with a 256-unit LSTM. */
function infer() {
  const m = model(256)
  const data = addingProblem({ n: 20_000, time: 100, seed: 2 })
  const running = operation === 'predict' ? m.predict(data.x, { batchSize: 64 }) : m.evaluate(data, { batchSize: 64 })
  running.catch(() => {})
  setTimeout(() => end({}), 500)
}

/** A save of a 512-unit LSTM (about 4 MB), ended on the next turn of the loop. */
function save() {
  const m = model(512)
  m.save(dir).catch(() => {})
  setImmediate(() => end({}))
}

/** A fit waiting in a callback window (a batch callback that never settles), or saving a checkpoint every epoch. */
function inCallbacks() {
  const m = model(64)
  const callbacks =
    operation === 'window'
      ? { awaitBatchEnd: true, onBatchEnd: () => new Promise(() => {}) }
      : modelCheckpoint({ dir, monitor: 'loss' })
  m.fit(addingProblem({ n: 256, time: 50, seed: 3 }), { epochs: 1000, batchSize: 32, callbacks }).catch(() => {})
  setTimeout(() => end({}), 500)
}

if (operation === 'fit' || operation === 'abort') runFit()
else if (operation === 'window' || operation === 'checkpoint') inCallbacks()
else if (operation === 'predict' || operation === 'evaluate') infer()
else if (operation === 'save') save()
else throw new Error(`unknown operation ${operation}`)
