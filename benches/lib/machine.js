'use strict'
/** What the numbers were measured on: CPU, cores, memory, load, versions, commit. */
const { execFileSync } = require('node:child_process')
const os = require('node:os')
const path = require('node:path')

function quietly(file, args) {
  try {
    return execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  } catch {
    return undefined
  }
}

function cpuModel() {
  const lscpu = quietly('lscpu', [])
  const line = lscpu?.split('\n').find((l) => l.startsWith('Model name:'))
  return line ? line.slice('Model name:'.length).trim() : (os.cpus()[0]?.model ?? 'unknown')
}

function describeMachine() {
  const root = path.join(__dirname, '..', '..')
  const commit = quietly('git', ['-C', root, 'rev-parse', '--short', 'HEAD'])
  const dirty = quietly('git', ['-C', root, 'status', '--porcelain', '--untracked-files=no'])
  return {
    cpu: cpuModel(),
    cores: os.availableParallelism(),
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    commit: commit === undefined ? 'unknown' : `${commit}${dirty ? ' (with uncommitted changes)' : ''}`,
    date: new Date().toISOString(),
  }
}

/** 1-minute load average: on a shared machine it tells how much the numbers can be trusted. */
function loadAverage() {
  return Number(os.loadavg()[0].toFixed(2))
}

module.exports = { describeMachine, loadAverage }
