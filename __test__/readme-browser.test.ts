/**
 * Runs the README's "In the browser" Node example as it is written (its import pointed at
 * examples/browser/adding.ts by absolute path): the page's training code trains both models
 * in Node and gives their weights as safetensors bytes.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'

const README = readFileSync(join(__dirname, '..', 'README.md'), 'utf8')
const section = README.slice(README.indexOf('## In the browser'))
const body = section.slice(0, section.indexOf('\n## ', 3))
const examples = [...body.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1])
const scratch = mkdtempSync(join(__dirname, '.readme-browser-'))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

describe('README: in the browser', () => {
  it('has the Node example', () => expect(examples).toHaveLength(1))

  it('trains both models with the page’s code and prints their MSE and weight bytes', async () => {
    const adding = join(__dirname, '..', 'examples', 'browser', 'adding')
    const code = examples[0].replace("from './examples/browser/adding'", `from '${adding}'`)
    expect(code).not.toBe(examples[0])
    const file = join(scratch, 'example.ts')
    // main() is not awaited by the example; the test awaits the lines it prints.
    const printed: unknown[][] = []
    let done: () => void = () => {}
    const finished = new Promise<void>((resolve) => {
      done = resolve
    })
    const log = console.log
    console.log = (...args: unknown[]) => {
      printed.push(args)
      if (printed.length === 2) done()
    }
    try {
      writeFileSync(file, `${code}\nexport {}\n`)
      await import(file)
      await finished
    } finally {
      console.log = log
    }
    expect(printed.map((line) => line[0])).toEqual(['LSTM', 'simple RNN'])
    for (const line of printed) {
      expect(line[2]).toBeGreaterThan(0)
      expect(line[4]).toBeGreaterThan(8)
    }
    // The LSTM learns T = 20 in the README's 8 epochs: below the 1/6 of always predicting the mean.
    expect(printed[0][2]).toBeLessThan(1 / 6)
  }, 120_000)
})
