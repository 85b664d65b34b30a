/**
 * Native work never keeps the process alive against its will: a process that calls
 * `process.exit()`, throws, or leaves a rejection unhandled while a fit, `predict` or `evaluate`
 * runs on a libuv worker (or right after aborting the fit) ends at once with Node's exit code,
 * instead of when the work is done (or never); a checkpoint being saved is complete or absent;
 * signals end the process as before. Each case runs __test__/helpers/exit-child.cjs on the
 * built package.
 */
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'

import { Model } from '../ts'

const CHILD = join(__dirname, 'helpers', 'exit-child.cjs')
const scratch = mkdtempSync(join(tmpdir(), 'odyssey-exit-'))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

/** Generous for a busy machine, and far below what the work would take (tens of seconds). */
const PROMPT_MS = 5000

interface Ended {
  code: number | null
  signal: NodeJS.Signals | null
  /** From the child's line (printed just before it ends itself, or is sent `kill`) to its end. */
  afterEndingMs: number
  line: { done?: number; total?: number }
}

/** Runs the child and, when `kill` is given, sends it that signal once it has printed its line. */
function run(args: string[], kill?: NodeJS.Signals): Promise<Ended> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let endingAt = Number.NaN
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString()
      if (Number.isNaN(endingAt) && stdout.includes('\n')) {
        endingAt = performance.now()
        if (kill !== undefined) child.kill(kill)
      }
    })
    child.on('error', reject)
    let stderr = ''
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString()
    })
    child.on('close', (code, signal) => {
      if (Number.isNaN(endingAt)) reject(new Error(`the child ended before its line (code ${code}):\n${stderr}`))
      else
        resolve({ code, signal, afterEndingMs: performance.now() - endingAt, line: JSON.parse(stdout.split('\n')[0]) })
    })
  })
}

/** What a fit had left to do when the process ended, at the pace it had kept until then. */
function remainingFitMs({ done, total }: Ended['line']): number {
  return (500 / Math.max(done!, 1)) * (total! - done!)
}

const ENDINGS = [
  ['exit', 7],
  ['throw', 1],
  ['reject', 1],
] as const

describe('the process ends when asked while native work runs', () => {
  for (const operation of ['fit', 'abort'] as const) {
    for (const [ending, code] of ENDINGS) {
      const when = operation === 'fit' ? '0.5 s into a 400-epoch fit' : 'right after aborting a fit'
      it(`${ending} ${when} ends the process with code ${code}`, async () => {
        const ended = await run([operation, ending])
        expect(ended).toMatchObject({ code, signal: null })
        expect(ended.afterEndingMs).toBeLessThan(PROMPT_MS)
        // The test can fail: the fit had far more than PROMPT_MS left to run.
        expect(remainingFitMs(ended.line)).toBeGreaterThan(4 * PROMPT_MS)
      })
    }
  }

  for (const operation of ['predict', 'evaluate'] as const) {
    for (const [ending, code] of ENDINGS) {
      it(`${ending} 0.5 s into a long ${operation} ends the process with code ${code}`, async () => {
        const ended = await run([operation, ending])
        expect(ended).toMatchObject({ code, signal: null })
        expect(ended.afterEndingMs).toBeLessThan(PROMPT_MS)
      })
    }
  }

  for (const [ending, code] of ENDINGS) {
    it(`${ending} while a checkpoint is saved leaves it complete or absent (code ${code})`, async () => {
      const dir = join(scratch, `save-${ending}`)
      const ended = await run(['save', ending, dir])
      expect(ended).toMatchObject({ code, signal: null })
      if (existsSync(join(dir, 'checkpoint.json'))) {
        const model = await Model.load(dir)
        expect(model.stepCount).toBe(0)
        model.dispose()
      }
    })
  }

  for (const [ending, code] of ENDINGS) {
    it(`${ending} while fit waits for its callback ends the process with code ${code}`, async () => {
      const ended = await run(['window', ending])
      expect(ended).toMatchObject({ code, signal: null })
      expect(ended.afterEndingMs).toBeLessThan(PROMPT_MS)
    })

    it(`${ending} during a fit whose modelCheckpoint saves every epoch leaves a checkpoint that loads (code ${code})`, async () => {
      const dir = join(scratch, `checkpoint-${ending}`)
      const ended = await run(['checkpoint', ending, dir])
      expect(ended).toMatchObject({ code, signal: null })
      expect(ended.afterEndingMs).toBeLessThan(PROMPT_MS)
      const model = await Model.load(dir)
      expect(model.epochs).toBeGreaterThan(0)
      expect(model.stepCount).toBe(8 * model.epochs)
      model.dispose()
    })
  }

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`${signal} during a fit ends the process by the signal, as without native work`, async () => {
      const ended = await run(['fit', 'wait'], signal)
      expect(ended).toMatchObject({ code: null, signal })
    })
  }
})
