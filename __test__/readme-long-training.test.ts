/**
 * The README's "Long training in production" example runs as written (on the built package,
 * in a child process with its own working directory): callbacks use the model, the built-ins
 * run, and the checkpoint they leave resumes.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'

const scratch = mkdtempSync(join(tmpdir(), 'odyssey-readme-'))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

/** The ```ts blocks of the README section `heading`. */
function examples(heading: string): string[] {
  const readme = readFileSync(join(__dirname, '..', 'README.md'), 'utf8')
  const start = readme.indexOf(`## ${heading}\n`)
  const section = readme.slice(start, readme.indexOf('\n## ', start + 3))
  return [...section.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1])
}

describe('README: Long training in production', () => {
  it('the example trains with the built-in callbacks, then resumes from the checkpoint', () => {
    const [code] = examples('Long training in production')
    const script = code.replace(
      /import (\{[^}]*\}) from 'odyssey-rnn'/,
      `const $1 = require(${JSON.stringify(join(__dirname, '..', 'dist'))})`,
    )
    writeFileSync(join(scratch, 'example.cjs'), script)
    const run = spawnSync(process.execPath, ['example.cjs'], { cwd: scratch, encoding: 'utf8' })
    expect(run.stderr).toBe('')
    expect(run.status).toBe(0)
    const lines = run.stdout.trim().split('\n')
    const epochLines = lines.filter((line) => /^\d+ (true|false)$/.test(line))
    expect(epochLines.length).toBeGreaterThan(0)
    expect(epochLines.every((line) => line.endsWith(' true'))).toBe(true)
    expect(lines).toContainEqual(expect.stringMatching(/^stopped early: (true|false)$/))
    const resumed = lines.find((line) => line.includes("task: 'adding'"))
    expect(resumed).toMatch(new RegExp(`^${epochLines.length} ${epochLines.length * 16} `))
  })
})
