'use strict'
/** The command line of `npm run bench -- [options]`. */
const { IMPLEMENTATION_IDS, SHAPE_ORDER, SUITE_IDS } = require('./plan')

/** What --quick narrows the run to, unless --shape / --impl say otherwise. */
const QUICK = { shapes: ['S1'], impls: ['odyssey-native', 'pytorch'] }

const USAGE = `npm run bench -- [options]

  --suite LIST      suites to run (default all): ${SUITE_IDS.join(', ')}
  --impl LIST       implementations (default all): ${IMPLEMENTATION_IDS.join(', ')}
  --shape LIST      training shapes (default all): ${SHAPE_ORDER.join(', ')} (the streaming and sweep cases always run)
  --quick           S1 and streaming, odyssey-native and pytorch only (unless --shape / --impl),
                    shorter warm-up and time budget (still >= 5 repetitions)
  --full            also time the slow JavaScript implementations at the large shapes
  --reps N          at least N timed repetitions per case (never fewer than 5)
  --json FILE       write every record (suite, implementation, shape) as JSON
  --markdown FILE   replace the results section of FILE (BENCHMARKS.md) with this run
  --chart FILE      write the batch-size sweep (suite sweep) as an SVG chart to FILE (docs/batch-sweep.svg)
  --from-json FILE  measure nothing: print (and with --markdown write) the results of an earlier --json run
  --list            print the planned cases and exit
  --help`

function splitList(value, allowed, flag) {
  const items = value
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean)
  const unknown = items.filter((item) => !allowed.includes(item))
  if (unknown.length > 0)
    throw new Error(`${flag}: unknown ${unknown.join(', ')} (expected some of ${allowed.join(', ')})`)
  return items
}

function positiveInteger(value, flag) {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag}: expected a positive integer, got ${value}`)
  return n
}

/** @returns {{ suites: string[], impls: string[], shapes: string[], quick: boolean, full: boolean, minReps?: number, json?: string, markdown?: string, chart?: string, fromJson?: string, list: boolean, help: boolean }} */
function parseOptions(argv) {
  const options = {
    suites: SUITE_IDS,
    impls: IMPLEMENTATION_IDS,
    shapes: SHAPE_ORDER,
    quick: false,
    full: false,
    list: false,
    help: false,
  }
  const valueAt = (i, flag) => {
    if (i >= argv.length) throw new Error(`${flag} needs a value`)
    return argv[i]
  }
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]
    if (flag === '--suite') options.suites = splitList(valueAt(++i, flag), SUITE_IDS, flag)
    else if (flag === '--impl') options.impls = splitList(valueAt(++i, flag), IMPLEMENTATION_IDS, flag)
    else if (flag === '--shape') options.shapes = splitList(valueAt(++i, flag), SHAPE_ORDER, flag)
    else if (flag === '--reps') options.minReps = positiveInteger(valueAt(++i, flag), flag)
    else if (flag === '--json') options.json = valueAt(++i, flag)
    else if (flag === '--markdown') options.markdown = valueAt(++i, flag)
    else if (flag === '--chart') options.chart = valueAt(++i, flag)
    else if (flag === '--from-json') options.fromJson = valueAt(++i, flag)
    else if (flag === '--quick') options.quick = true
    else if (flag === '--full') options.full = true
    else if (flag === '--list') options.list = true
    else if (flag === '--help' || flag === '-h') options.help = true
    else throw new Error(`unknown option ${flag}\n\n${USAGE}`)
  }
  if (options.quick && !argv.includes('--shape')) options.shapes = QUICK.shapes
  if (options.quick && !argv.includes('--impl')) options.impls = QUICK.impls
  return options
}

module.exports = { parseOptions, USAGE }
