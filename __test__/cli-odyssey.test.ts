/**
 * The `odyssey` command as users run it: `node dist/cli/odyssey.js` (built
 * here with `npm run build:ts`) on a tiny synthetic set in a temporary
 * directory — synth, train, eval, predict, report — and, for bad input, a
 * non-zero exit code with exactly one line on stderr.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const root = resolve(__dirname, '..')
const cli = join(root, 'dist', 'cli', 'odyssey.js')
const work = mkdtempSync(join(tmpdir(), 'odyssey-cli-'))
afterAll(() => rmSync(work, { recursive: true, force: true }))

function odyssey(...args: string[]) {
  const { status, stdout, stderr } = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 120_000 })
  return { status, stdout, stderr }
}

const data = join(work, 'data')
const model = join(work, 'model')
const file = (split: string, kind: string) =>
  join(data, `synthetic_${split}_${kind}.${kind === 'features' ? 'safetensors' : 'json'}`)
const splitArgs = (split: string, prefix = '') => [
  `--${prefix}questions`,
  file(split, 'questions'),
  `--${prefix}annotations`,
  file(split, 'annotations'),
  `--${prefix}features`,
  file(split, 'features'),
]
const smallModel = [
  '--embedding-dim',
  '8',
  '--lstm-hidden',
  '8',
  '--lstm-layers',
  '1',
  '--hidden',
  '16',
  '--dense-layers',
  '1',
  '--top-k',
  '20',
]

/** A failure as the user sees it: the exit code and the single line on stderr. */
function expectOneLineFailure(result: ReturnType<typeof odyssey>, code: number, pattern: RegExp) {
  expect(result.status, result.stderr).toBe(code)
  const lines = result.stderr.trimEnd().split('\n')
  expect(lines, result.stderr).toHaveLength(1)
  expect(lines[0]).toMatch(pattern)
  expect(result.stderr).not.toMatch(/\n\s+at /)
}

/** The newest (or oldest) modification time of the files under `dir`; undefined when it has none. */
function mtimes(dir: string, pick: (a: number, b: number) => number): number | undefined {
  if (!existsSync(dir)) return undefined
  const files = readdirSync(dir, { recursive: true, withFileTypes: true }).filter((entry) => entry.isFile())
  const times = files.map((entry) => statSync(join(entry.parentPath, entry.name)).mtimeMs)
  return times.length === 0 ? undefined : times.reduce(pick)
}

// tsc over dist/ in place, not `npm run build:ts`: that empties dist/ first, and the test files
// that run in parallel child processes on the built package would find it missing. Only when a
// source is newer than the build: tsc rewriting a file a child is loading made that child fail
// once ("sequential is not a function"), and after `npm install` or `npm run build` it is current.
beforeAll(() => {
  const built = mtimes(join(root, 'dist'), Math.min)
  const source = mtimes(join(root, 'ts'), Math.max)
  if (built !== undefined && source !== undefined && source <= built) return
  try {
    execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.json'], {
      cwd: root,
      encoding: 'utf8',
      stdio: 'pipe',
    })
  } catch (error) {
    throw new Error(`tsc -p tsconfig.json failed:\n${(error as { stdout?: string }).stdout ?? error}`)
  }
}, 180_000)

describe('odyssey vqa', () => {
  beforeAll(() => {
    const result = odyssey(
      'vqa',
      'synth',
      '--out',
      data,
      '--images',
      '120',
      '--val-images',
      '30',
      '--feature-dim',
      '16',
    )
    expect(result.status, result.stderr).toBe(0)
  })

  it('synth writes both splits and says how to train on them', () => {
    for (const split of ['train', 'val'])
      for (const kind of ['questions', 'annotations', 'features']) expect(existsSync(file(split, kind))).toBe(true)
  })

  it('train saves the model, its vocabularies and its run log, one line per epoch', () => {
    const result = odyssey(
      'vqa',
      'train',
      ...splitArgs('train'),
      ...splitArgs('val', 'val-'),
      '--epochs',
      '2',
      '--out',
      model,
      ...smallModel,
    )
    expect(result.status, result.stderr).toBe(0)
    expect(result.stdout).toMatch(/^epoch 1\/2: loss \d+\.\d+, validation VQA accuracy \d+\.\d+%/m)
    expect(result.stdout).toMatch(/^epoch 2\/2: /m)
    for (const name of ['vqa.json', 'checkpoint.json', 'log.jsonl'])
      expect(existsSync(join(model, name)), name).toBe(true)
    const records = readFileSync(join(model, 'log.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line))
    expect(records.filter((r) => r.type === 'epoch')).toHaveLength(2)
    const vqa = records.filter((r) => r.type === 'vqa')
    expect(vqa.map((r) => r.epoch)).toEqual([0, 1])
    expect(Object.keys(vqa[1].accuracyByQuestionType).sort()).toEqual([
      'color',
      'count',
      'exist',
      'position',
      'relation',
      'shape',
    ])
    expect(vqa[1].confusion.counts).toHaveLength(vqa[1].confusion.answers.length)
  })

  it('eval prints overall and per-type accuracy, or the same as JSON', () => {
    const text = odyssey('vqa', 'eval', '--model', model, ...splitArgs('val'))
    expect(text.status, text.stderr).toBe(0)
    expect(text.stdout).toMatch(/^VQA accuracy \d+\.\d\d% over \d+ questions$/m)
    for (const type of ['color', 'count', 'exist', 'position', 'relation', 'shape'])
      expect(text.stdout).toMatch(new RegExp(`^  ${type} +\\d+\\.\\d\\d%`, 'm'))
    const json = odyssey('vqa', 'eval', '--model', model, ...splitArgs('val'), '--json')
    expect(json.status).toBe(0)
    const evaluation = JSON.parse(json.stdout)
    expect(evaluation.questions).toBeGreaterThan(0)
    expect(text.stdout).toContain(`${evaluation.overall.toFixed(2)}%`)
  })

  it('predict answers one question with probabilities', () => {
    const result = odyssey(
      'vqa',
      'predict',
      '--model',
      model,
      '--features',
      file('val', 'features'),
      '--image-id',
      '121',
      '--question',
      'What color is the circle?',
      '--top',
      '3',
    )
    expect(result.status, result.stderr).toBe(0)
    const lines = result.stdout.trimEnd().split('\n')
    expect(lines).toHaveLength(3)
    for (const line of lines) expect(line).toMatch(/^[a-z0-9 ]+\t\d+\.\d%$/)
  })

  it('report draws the run log of a training run', () => {
    const out = join(work, 'report.html')
    const result = odyssey('report', '--log', join(model, 'log.jsonl'), '--out', out)
    expect(result.status, result.stderr).toBe(0)
    expect(readFileSync(out, 'utf8')).toContain('<html')
  })
})

describe('odyssey vqa on bad input', () => {
  it('names a missing file', () => {
    const result = odyssey(
      'vqa',
      'eval',
      '--model',
      model,
      '--questions',
      join(work, 'nope.json'),
      '--annotations',
      file('val', 'annotations'),
      '--features',
      file('val', 'features'),
    )
    expectOneLineFailure(result, 1, /^odyssey: .*nope\.json: cannot (open|read)/)
  })

  it('names a malformed JSON file and where it breaks', () => {
    const broken = join(work, 'broken.json')
    writeFileSync(broken, '{"questions": [{"image_id": 1, "question": "what?", ')
    const result = odyssey(
      'vqa',
      'eval',
      '--model',
      model,
      '--questions',
      broken,
      '--annotations',
      file('val', 'annotations'),
      '--features',
      file('val', 'features'),
    )
    expectOneLineFailure(result, 1, /^odyssey: .*broken\.json: /)
  })

  it('names an image id that has no features', () => {
    const result = odyssey(
      'vqa',
      'predict',
      '--model',
      model,
      '--features',
      file('val', 'features'),
      '--image-id',
      '999999',
      '--question',
      'what color is the circle?',
    )
    expectOneLineFailure(result, 1, /^odyssey: .*image_id 999999/)
    // Training questions asked about validation images: the first missing one is named at load time.
    const mixed = odyssey(
      'vqa',
      'eval',
      '--model',
      model,
      '--questions',
      file('train', 'questions'),
      '--annotations',
      file('train', 'annotations'),
      '--features',
      file('val', 'features'),
    )
    expectOneLineFailure(mixed, 1, /^odyssey: record 0 .*needs image_id \d+, which has no features/)
  })

  it('names a feature width that does not fit the model', () => {
    const other = join(work, 'other')
    expect(
      odyssey('vqa', 'synth', '--out', other, '--images', '5', '--val-images', '5', '--feature-dim', '8').status,
    ).toBe(0)
    const result = odyssey(
      'vqa',
      'predict',
      '--model',
      model,
      '--features',
      join(other, 'synthetic_val_features.safetensors'),
      '--image-id',
      '6',
      '--question',
      'is there a red circle?',
    )
    expectOneLineFailure(result, 1, /^odyssey: .*but D = 16 is expected/)
  })

  it('refuses a directory that is no model, and half a validation split', () => {
    expectOneLineFailure(
      odyssey('vqa', 'eval', '--model', work, ...splitArgs('val')),
      1,
      /^odyssey: .*vqa\.json: cannot read/,
    )
    const half = odyssey(
      'vqa',
      'train',
      ...splitArgs('train'),
      '--val-questions',
      file('val', 'questions'),
      '--epochs',
      '1',
      '--out',
      join(work, 'x'),
    )
    expectOneLineFailure(half, 1, /give all three or none/)
  })

  it('exits with 2 for arguments that make no sense', () => {
    expectOneLineFailure(
      odyssey('vqa', 'train', '--epochs', '1'),
      2,
      /required option '--questions <file>' not specified/,
    )
    const notANumber = odyssey('vqa', 'train', ...splitArgs('train'), '--epochs', 'many', '--out', join(work, 'y'))
    expectOneLineFailure(notANumber, 2, /--epochs <n>' argument 'many' is invalid\. expected an integer >= 1/)
    expect(
      odyssey('vqa', 'train', ...splitArgs('train'), '--epochs', '1', '--out', 'z', '--fusion', 'sum').status,
    ).toBe(2)
    expect(odyssey('frobnicate').status).toBe(2)
  })

  it('prints help and exits with 0', () => {
    const help = odyssey('vqa', 'train', '--help')
    expect(help.status).toBe(0)
    expect(help.stdout).toContain('--fusion <kind>')
  })
})
