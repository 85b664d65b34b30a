/**
 * Faults, in child processes on the built package (dist/ and the addon):
 * - `kill -9` in the middle of `model.save` (a loop of train-and-save, killed
 *   at a random moment after its first committed save) leaves a checkpoint
 *   that `Model.load` restores, and no older than the last save the child
 *   reported as done;
 * - thousands of small training steps keep the resident memory flat (no leak
 *   per step, through `trainStep`/`predict` and through `fit`'s worker and
 *   progress callbacks): 2000 steps here, 10 000 with `ODYSSEY_SOAK=1`.
 *
 * A Rust panic becoming a JS exception is covered in layers.test.ts: no input
 * reaches a panic (the fuzz tests look for one), so the test checks that every
 * export runs under `guard` (catch_unwind → ODYSSEY_PANIC) instead.
 */
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'

import { Model } from '../ts'

const CHILD = join(__dirname, 'helpers', 'hardening-child.cjs')
const scratch = mkdtempSync(join(tmpdir(), 'odyssey-faults-'))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

/** Runs the save loop until its first committed save, then kills it with SIGKILL `delayMs` later. */
function killDuringSaves(dir: string, delayMs: number): Promise<{ lastSaved: number; killed: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, 'save-loop', dir], { stdio: ['ignore', 'pipe', 'pipe'] })
    let lastSaved = 0
    let buffered = ''
    let stderr = ''
    const watchdog = setTimeout(() => child.kill('SIGKILL'), 60_000)
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString()
      const lines = buffered.split('\n')
      buffered = lines.pop()!
      for (const line of lines) {
        const record = JSON.parse(line) as { saved?: number; error?: string }
        if (record.error !== undefined) reject(new Error(record.error))
        if (record.saved === undefined) continue
        if (lastSaved === 0) setTimeout(() => child.kill('SIGKILL'), delayMs)
        lastSaved = record.saved
      }
    })
    child.on('close', (code, signal) => {
      clearTimeout(watchdog)
      if (lastSaved === 0) reject(new Error(`the child exited (${code ?? signal}) before its first save: ${stderr}`))
      else resolve({ lastSaved, killed: signal === 'SIGKILL' })
    })
  })
}

describe('kill -9 during model.save', () => {
  // Delays spread over a save's duration (a few ms): the kill lands before, inside and between saves.
  const delays = Array.from({ length: 8 }, (_, k) => Math.round(Math.random() * 40) + 5 * k)
  it(`leaves the last committed checkpoint loadable (delays ${delays.join(', ')} ms)`, async () => {
    for (const [k, delay] of delays.entries()) {
      const dir = join(scratch, `kill-${k}`)
      const { lastSaved, killed } = await killDuringSaves(dir, delay)
      expect(killed, 'the child must die by the signal, not by an error').toBe(true)
      const model = await Model.load(dir)
      // A save the child reported is committed; the one it was writing may or may not be.
      expect(model.stepCount, `delay ${delay} ms`).toBeGreaterThanOrEqual(lastSaved)
      expect(model.stepCount).toBeLessThanOrEqual(lastSaved + 1)
      const { data } = await model.predict({ data: new Float32Array(12).fill(0.5), shape: [1, 6, 2] })
      expect(Number.isFinite(data[0])).toBe(true)
      model.dispose()
    }
  }, 120_000)
})

const SOAK_STEPS = process.env.ODYSSEY_SOAK === '1' ? 10_000 : 2000
const SOAK_GROWTH_LIMIT = 20 * 2 ** 20

describe(`soak: ${SOAK_STEPS} training steps`, () => {
  for (const how of ['trainStep', 'fit'] as const) {
    it(`${how}: resident memory grows by less than 20 MB from step ${SOAK_STEPS / 4} to ${SOAK_STEPS}`, () => {
      const result = spawnSync(process.execPath, ['--expose-gc', CHILD, 'soak', String(SOAK_STEPS), how], {
        encoding: 'utf8',
        timeout: 600_000,
      })
      expect(result.status, result.stderr + result.stdout).toBe(0)
      const [early, late] = result.stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { step: number; rss: number })
      expect([early.step, late.step]).toEqual([SOAK_STEPS / 4, SOAK_STEPS])
      const growth = late.rss - early.rss
      const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MB`
      console.log(
        `soak ${how}: rss ${mb(early.rss)} at step ${early.step}, ${mb(late.rss)} at step ${late.step} (growth ${mb(growth)})`,
      )
      expect(growth).toBeLessThan(SOAK_GROWTH_LIMIT)
    }, 660_000)
  }
})
