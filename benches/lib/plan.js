'use strict'
/**
 * Which cases a run measures: the suites of the issue "Performance", each a
 * list of (implementation, shape, variant) cases, filtered by the command line.
 */
const { SWEEP_MODES } = require('./sweep')
const { SEQ2SEQ_SIZES, SHAPES, STREAM_STEPS, SWEEP_BATCHES, VQA_DEMO_SIZES, VQA_SIZES } = require('./shapes')

/**
 * `largest`: the largest shape an implementation's training step is timed at. The
 * pure-JavaScript ones take seconds to minutes per step from S2 up (≥ 5 repetitions
 * each), so they stop earlier; their skipped records say so.
 */
const IMPLEMENTATIONS = {
  'odyssey-native': { runtime: 'node', largest: 'S3' },
  'odyssey-js': { runtime: 'node', largest: 'S2' },
  // The same Rust core as WebAssembly (npm run build:wasm), through ODYSSEY_BACKEND=wasm.
  'odyssey-wasm': { runtime: 'node', largest: 'S2' },
  pytorch: { runtime: 'python', script: 'pytorch_lstm.py', largest: 'S3' },
  'tfjs-wasm': { runtime: 'node', largest: 'S2' },
  'tfjs-cpu': { runtime: 'node', largest: 'S1' },
  'brain.js': { runtime: 'node', largest: 'S1' },
  // Inference only: odyssey's own ONNX export run by onnxruntime-node (a devDependency).
  onnxruntime: { runtime: 'node', largest: 'S3', suites: ['forward', 'stream', 'sweep'] },
}
const IMPLEMENTATION_IDS = Object.keys(IMPLEMENTATIONS)
const SHAPE_ORDER = ['S1', 'S2', 'S3']
/** The shape label of the VQA cases at the demo's sizes. */
const VQA_DEMO_SHAPE = 'VQA-demo'
/** The shape label of the encoder–decoder cases. */
const SEQ2SEQ_SHAPE = 'seq2seq'

const POLICIES = {
  full: { minWarmup: 1, warmupMs: 500, minReps: 5, maxReps: 30, budgetMs: 3000 },
  quick: { minWarmup: 1, warmupMs: 100, minReps: 5, maxReps: 10, budgetMs: 500 },
}

/** A case of `suite`: the shape's sizes plus the defaults every suite shares. */
function makeCase(suite, impl, shapeName, extra = {}) {
  const { name, ...sizes } = shapeName === 'stream' ? SHAPES.STREAM : SHAPES[shapeName]
  return {
    suite,
    impl,
    shape: name,
    ...sizes,
    cell: 'lstm',
    mode: 'train',
    layers: 1,
    bidirectional: false,
    peepholes: false,
    ...extra,
  }
}

/** The shape a case costs as much as, for the `largest` limit (a 2-layer bidirectional S1 costs ≈ 6× S1). */
function costClass(c) {
  return c.layers > 1 ? 'S2' : c.shape
}

/** A VQA model case at `sizes`, which also fill the fields every record has (X: the embedding width feeding its LSTM). */
function vqaCase(impl, shape, sizes) {
  const { B, T, embedding, hidden, layers } = sizes
  return { ...makeCase('vqa', impl, 'S1'), B, T, X: embedding, H: hidden, layers, shape, model: 'vqa', vqa: sizes }
}

/** The encoder–decoder case (fields every record has: T the decoder's steps, X the embedding width). */
function seq2seqCase(impl) {
  const { B, tgtT, embedding, hidden } = SEQ2SEQ_SIZES
  return {
    ...makeCase('seq2seq', impl, 'S1'),
    B,
    T: tgtT,
    X: embedding,
    H: hidden,
    shape: SEQ2SEQ_SHAPE,
    model: 'seq2seq',
    seq2seq: SEQ2SEQ_SIZES,
  }
}

/** A batch-size sweep case: S2 at batch `B` (the shape label `B<n>`), predict (`forward`) or one training step. */
function sweepCase(impl, B, mode) {
  return { ...makeCase('sweep', impl, 'S2', { mode }), B, shape: `B${B}` }
}

/** A case of every implementation that takes part in `suite` (all of them unless an entry lists its `suites`). */
function everyImplementation(suite, shapeName, extra) {
  return IMPLEMENTATION_IDS.filter((impl) => IMPLEMENTATIONS[impl].suites?.includes(suite) ?? true).map((impl) =>
    makeCase(suite, impl, shapeName, extra),
  )
}

const SUITES = {
  train: () => SHAPE_ORDER.flatMap((shape) => everyImplementation('train', shape)),
  forward: () => everyImplementation('forward', 'S2', { mode: 'forward' }),
  stream: () => everyImplementation('stream', 'stream', { mode: 'stream', steps: STREAM_STEPS }),
  // Both variants in one process, timed interleaved: their ratio is the target.
  peephole: () =>
    ['S1', 'S2'].map((shape) =>
      makeCase('peephole', 'odyssey-native', shape, { variants: [{ peepholes: false }, { peepholes: true }] }),
    ),
  rnn: () => everyImplementation('rnn', 'S2', { cell: 'rnn' }),
  bidir: () => everyImplementation('bidir', 'S1', { layers: 2, bidirectional: true }),
  // Issue #11: the GRU beside nn.GRU, and an LSTM encoder–decoder beside its PyTorch twin (Model API only).
  gru: () => ['odyssey-native', 'pytorch'].map((impl) => makeCase('gru', impl, 'S2', { cell: 'gru' })),
  seq2seq: () => ['odyssey-native', 'pytorch'].map(seq2seqCase),
  // The paper's sizes beside PyTorch; the demo's beside the pure-TS reference (issue #4), which the paper's would keep for minutes.
  vqa: () => [
    ...['odyssey-native', 'pytorch'].map((impl) => vqaCase(impl, 'VQA', VQA_SIZES)),
    ...['odyssey-native', 'odyssey-js'].map((impl) => vqaCase(impl, VQA_DEMO_SHAPE, VQA_DEMO_SIZES)),
  ],
  memory: () => [
    makeCase('memory', 'odyssey-native', 'S2', { budget: true }),
    makeCase('memory', 'odyssey-native', 'S1', { flatSteps: STREAM_STEPS, flatEvery: 100 }),
    // Streaming steps are cheap: 10× more of them make a small per-step leak visible above allocator noise.
    makeCase('memory', 'odyssey-native', 'stream', {
      mode: 'stream',
      steps: 1,
      flatSteps: 10 * STREAM_STEPS,
      flatEvery: STREAM_STEPS,
    }),
  ],
  sgemm: () => [{ suite: 'sgemm', impl: 'numpy', shape: '2048³', mode: 'sgemm', n: 2048 }],
  // Issue #13: where odyssey stands at each batch size (S2's T, X and H), predict and training.
  sweep: () =>
    SWEEP_BATCHES.flatMap((B) =>
      SWEEP_MODES.flatMap(({ mode, impls }) => impls.map((impl) => sweepCase(impl, B, mode))),
    ),
}
const SUITE_IDS = Object.keys(SUITES)

/** Why a case is not run, or undefined when it is. */
function skipReason(c, full) {
  const implementation = IMPLEMENTATIONS[c.impl]
  if (full || implementation === undefined || c.shape === 'stream') return undefined
  if (SHAPE_ORDER.indexOf(costClass(c)) > SHAPE_ORDER.indexOf(implementation.largest)) {
    return `too slow for this run above ${implementation.largest} (pass --full to time it anyway)`
  }
  return undefined
}

/**
 * @param {{ suites: string[], impls: string[], shapes: string[], quick: boolean, full: boolean, minReps?: number }} options
 * @returns {object[]} the cases in run order; a case with `skip` set is reported, not run
 */
function planCases(options) {
  const policy = { ...(options.quick ? POLICIES.quick : POLICIES.full) }
  if (options.minReps !== undefined) policy.minReps = Math.max(policy.minReps, options.minReps)
  return options.suites
    .flatMap((suite) => SUITES[suite]())
    .filter((c) => c.suite === 'sgemm' || options.impls.includes(c.impl))
    .filter((c) => !SHAPE_ORDER.includes(c.shape) || options.shapes.includes(c.shape))
    .map((c) => ({ ...c, policy, skip: skipReason(c, options.full) }))
}

module.exports = {
  planCases,
  IMPLEMENTATIONS,
  IMPLEMENTATION_IDS,
  SUITE_IDS,
  SHAPE_ORDER,
  VQA_DEMO_SHAPE,
  SEQ2SEQ_SHAPE,
}
