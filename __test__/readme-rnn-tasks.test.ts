/**
 * Runs every example of the README's "The shapes of RNN tasks" section as it is
 * written (the package name pointed at the sources): each must finish without throwing.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'

const README = readFileSync(join(__dirname, '..', 'README.md'), 'utf8')
const section = README.slice(README.indexOf('## The shapes of RNN tasks'))
const body = section.slice(0, section.indexOf('\n## ', 3))
const examples = [...body.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1])
const scratch = mkdtempSync(join(__dirname, '.readme-'))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

describe('README: the shapes of RNN tasks', () => {
  it('has the five examples', () => expect(examples).toHaveLength(5))

  it.each(examples.map((code, k) => [k, code] as const))('example %i runs', async (k, code) => {
    const file = join(scratch, `example-${k}.ts`)
    writeFileSync(file, `${code.replace("from 'odyssey-rnn'", `from '${join(__dirname, '..', 'ts')}'`)}\nexport {}\n`)
    const log = console.log
    console.log = () => {}
    try {
      await import(file)
    } finally {
      console.log = log
    }
  })
})
