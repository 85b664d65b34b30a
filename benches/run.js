#!/usr/bin/env node
'use strict'
/**
 * `npm run bench`: odyssey-rnn beside PyTorch, TensorFlow.js (wasm, cpu),
 * brain.js and its own pure-TypeScript backend, in one run, each case in a
 * child process of its own. Prints a table and the issue's targets; see
 * `npm run bench -- --help` and BENCHMARKS.md.
 */
const fs = require('node:fs')
const path = require('node:path')

const { makeWorkDir, probePytorch, runInChild } = require('./lib/child')
const { describeMachine, loadAverage } = require('./lib/machine')
const { parseOptions, USAGE } = require('./lib/options')
const { planCases } = require('./lib/plan')
const { toRecord, variantOf } = require('./lib/records')
const { environmentLines, markdownSection, replaceResults, sweepText, targetsText, textTable } = require('./lib/report')
const { sweepSvg } = require('./lib/sweep')
const { evaluateTargets } = require('./lib/targets')

function caseLabel(c) {
  return [c.suite, c.shape, c.impl, variantOf(c)].filter(Boolean).join(' ')
}

function progressLine(record) {
  if (record.skipped !== undefined) return `skipped (${record.skipped})`
  if (record.error !== undefined) return `ERROR ${record.error.split('\n')[0]}`
  if (record.medianMs !== undefined) return `median ${record.medianMs.toFixed(3)} ms over ${record.reps}`
  return 'done'
}

async function runCase(c, pytorch, workDir) {
  if (c.skip !== undefined) return { skipped: c.skip }
  if (c.impl === 'pytorch' && pytorch.error !== undefined) return { skipped: `PyTorch not available: ${pytorch.error}` }
  return runInChild(c, workDir)
}

/** The records of one case: one, or one per variant for a case timed with interleaved variants. */
function recordsOf(c, result, loadBefore) {
  if (c.variants === undefined) return [toRecord(c, result, loadBefore)]
  return c.variants.map((variant, i) =>
    toRecord({ ...c, ...variant, variants: undefined }, result.variants?.[i] ?? result, loadBefore),
  )
}

async function measureAll(cases, pytorch, workDir) {
  const records = []
  for (const [i, c] of cases.entries()) {
    process.stderr.write(`[${i + 1}/${cases.length}] ${caseLabel(c)} … `)
    const loadBefore = loadAverage()
    const caseRecords = recordsOf(c, await runCase(c, pytorch, workDir), loadBefore)
    process.stderr.write(`${caseRecords.map(progressLine).join('; ')}\n`)
    records.push(...caseRecords)
  }
  return records
}

function commandLine(argv) {
  const npm = process.env.npm_lifecycle_event === 'bench'
  const args = argv.join(' ')
  return npm ? `npm run bench${args ? ` -- ${args}` : ''}` : `node benches/run.js ${args}`.trimEnd()
}

function writeOutputs(run, options) {
  console.log(environmentLines(run).join('\n'))
  console.log(`\n${textTable(run.records)}\n\n${targetsText(run.targets)}`)
  const sweep = sweepText(run.records)
  if (sweep) console.log(`\n${sweep}`)
  if (options.json !== undefined) {
    fs.mkdirSync(path.dirname(options.json), { recursive: true })
    fs.writeFileSync(options.json, `${JSON.stringify(run, null, 2)}\n`)
    console.log(`\nrecords: ${options.json}`)
  }
  if (options.chart !== undefined) {
    const when = `${run.machine.date.slice(0, 16).replace('T', ' ')} UTC, commit ${run.machine.commit}`
    const svg = sweepSvg(run.records, `${when}, 1-minute load ${run.loadStart} → ${run.loadEnd}`)
    if (svg === undefined) console.log(`\nno batch-size sweep in this run: ${options.chart} not written`)
    else {
      fs.mkdirSync(path.dirname(options.chart), { recursive: true })
      fs.writeFileSync(options.chart, svg)
      console.log(`batch-size sweep chart: ${options.chart}`)
    }
  }
  if (options.markdown !== undefined) {
    const document = fs.existsSync(options.markdown) ? fs.readFileSync(options.markdown, 'utf8') : ''
    fs.writeFileSync(options.markdown, replaceResults(document, markdownSection(run)))
    console.log(`results section of ${options.markdown} updated`)
  }
}

async function main() {
  const argv = process.argv.slice(2)
  const options = parseOptions(argv)
  if (options.help) return console.log(USAGE)
  if (options.fromJson !== undefined) {
    const run = JSON.parse(fs.readFileSync(options.fromJson, 'utf8'))
    return writeOutputs({ ...run, targets: evaluateTargets(run.records) }, { ...options, json: undefined })
  }
  const cases = planCases(options)
  if (options.list)
    return console.log(cases.map((c) => `${caseLabel(c)}${c.skip ? ` (skipped: ${c.skip})` : ''}`).join('\n'))
  const workDir = makeWorkDir()
  try {
    const machine = describeMachine()
    const loadStart = loadAverage()
    const needsPython = cases.some((c) => c.impl === 'pytorch' && c.skip === undefined)
    const pytorch = needsPython ? await probePytorch(workDir) : { error: 'not selected' }
    const records = await measureAll(cases, pytorch, workDir)
    const { config, ...pytorchSummary } = pytorch
    const run = {
      machine,
      command: commandLine(argv),
      loadStart,
      loadEnd: loadAverage(),
      pytorch: pytorchSummary,
      records,
    }
    writeOutputs({ ...run, targets: evaluateTargets(records) }, options)
  } finally {
    fs.rmSync(workDir, { recursive: true, force: true })
  }
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error)
  process.exitCode = 1
})
