'use strict'
/**
 * Runs each case in a child process of its own (peak RSS is then the case's),
 * Node cases through benches/worker.js, PyTorch and sgemm through Python.
 */
const { spawn } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const { IMPLEMENTATIONS } = require('./plan')

const BENCHES = path.join(__dirname, '..')
/** No case may take longer (a slow implementation at S2 needs a few minutes). */
const CASE_TIMEOUT_MS = 20 * 60 * 1000
const KEPT_OUTPUT = 4000

/** Debian's python3 (which has python3-torch) unless BENCH_PYTHON names another. */
function pythonExecutable() {
  if (process.env.BENCH_PYTHON) return process.env.BENCH_PYTHON
  return fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3'
}

/**
 * OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE may be set on this machine for old OpenBLAS builds;
 * they slow a current one, so the Python children run without both (and report the kernel used).
 * OMP_WAIT_POLICY=PASSIVE: idle OpenMP threads sleep instead of spinning on the 2 shared cores.
 */
function pythonEnvironment() {
  /** @type {NodeJS.ProcessEnv} */
  const env = { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' }
  delete env.OPENBLAS_CORETYPE
  delete env.OPENBLAS_L2_SIZE
  return env
}

function childCommand(spec, resultFile) {
  const json = JSON.stringify(spec)
  const script = spec.suite === 'sgemm' ? 'sgemm_peak.py' : IMPLEMENTATIONS[spec.impl].script
  if (script !== undefined) {
    return { file: pythonExecutable(), args: [path.join(BENCHES, script), json, resultFile], env: pythonEnvironment() }
  }
  return {
    file: process.execPath,
    args: ['--expose-gc', path.join(BENCHES, 'worker.js'), json, resultFile],
    env: process.env,
  }
}

function keepTail(text, chunk) {
  return (text + chunk).slice(-KEPT_OUTPUT)
}

/** Spawns the command and resolves with its exit code and the tail of its output. */
function spawnAndWait({ file, args, env }) {
  return new Promise((resolve) => {
    const child = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', (chunk) => (output = keepTail(output, chunk)))
    child.stderr.on('data', (chunk) => (output = keepTail(output, chunk)))
    const timer = setTimeout(() => child.kill('SIGKILL'), CASE_TIMEOUT_MS)
    child.on('error', (error) => resolve({ code: -1, output: String(error), spawnError: error }))
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code: code ?? signal, output })
    })
  })
}

/**
 * Runs one case (or `{ suite: 'probe' }` for the PyTorch probe) and returns what the child wrote,
 * or `{ error }` with the tail of its output when it wrote nothing.
 */
async function runInChild(spec, workDir) {
  const resultFile = path.join(workDir, `result-${process.hrtime.bigint()}.json`)
  const command = childCommand(spec, resultFile)
  const { code, output, spawnError } = await spawnAndWait(command)
  if (spawnError !== undefined) return { skipped: `${command.file} could not be started (${spawnError.message})` }
  if (!fs.existsSync(resultFile))
    return { error: `child exited with ${code} and no result: ${output.trim().slice(-600)}` }
  const result = JSON.parse(fs.readFileSync(resultFile, 'utf8'))
  fs.rmSync(resultFile)
  return result
}

/** PyTorch's version, threads and BLAS, or `{ error }` when `import torch` fails. */
async function probePytorch(workDir) {
  const resultFile = path.join(workDir, 'probe.json')
  const command = childCommand({ impl: 'pytorch' }, resultFile)
  command.args = [command.args[0], '--probe', resultFile]
  const { output } = await spawnAndWait(command)
  if (!fs.existsSync(resultFile)) return { error: output.trim().split('\n').pop() || 'python3 did not start' }
  return JSON.parse(fs.readFileSync(resultFile, 'utf8'))
}

function makeWorkDir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'odyssey-bench-'))
}

module.exports = { runInChild, probePytorch, makeWorkDir }
