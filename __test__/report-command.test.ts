/**
 * `odyssey report` as the CLI calls it: arguments, what it prints, the file it
 * writes, usage errors that name the problem, and the exit codes of `odyssey`.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { afterAll, describe, expect, it } from 'vitest'

import { main } from '../ts/cli/odyssey'
import { REPORT_USAGE, ReportUsageError, RunLogError, RunLogger, reportCommand } from '../ts/report'
import { syntheticRun } from './helpers/report-records'

const work = mkdtempSync(join(tmpdir(), 'odyssey-report-command-'))
afterAll(() => rmSync(work, { recursive: true, force: true }))

function capture() {
  const stdout: string[] = []
  const stderr: string[] = []
  return {
    stdout,
    stderr,
    output: { stdout: { write: (t: string) => stdout.push(t) }, stderr: { write: (t: string) => stderr.push(t) } },
  }
}

function writeLog(name: string, label: string): string {
  const file = join(work, name, 'log.jsonl')
  const log = new RunLogger(file, { label })
  for (const record of syntheticRun({ label, quantity: 'h', decay: 0.7, seed: 5, epochs: 2 }).slice(1))
    log.write(record)
  log.close()
  return file
}

describe('reportCommand', () => {
  it('writes the report of every --log to --out and says so', async () => {
    const logs = [writeLog('a', 'first'), writeLog('b', 'second')]
    const out = join(work, 'report.html')
    const { stdout, stderr, output } = capture()
    await reportCommand(['--log', logs[0], '--log', logs[1], '--out', out, '--title', 'Comparison'], output)
    expect(stdout).toEqual([`wrote ${out} (2 run logs)\n`])
    expect(stderr).toEqual([])
    const html = readFileSync(out, 'utf8')
    expect(html).toContain('<title>Comparison</title>')
    expect(html).toMatch(/<td>first<\/td>[\s\S]*<td>second<\/td>/)
  })

  it('prints the usage for --help and writes nothing', async () => {
    const { stdout, output } = capture()
    await reportCommand(['--help'], output)
    expect(stdout).toEqual([`${REPORT_USAGE}\n`])
    expect(REPORT_USAGE).toMatch(/^Usage: odyssey report --log <log\.jsonl>/)
  })

  const usageErrors: [string[], RegExp][] = [
    [[], /--log <log\.jsonl> is required/],
    [['--out', 'x.html'], /--log <log\.jsonl> is required/],
    [['--log', 'a.jsonl'], /--out <report\.html> is required/],
    [['--log', 'a.jsonl', '--out', 'x.html', '--colour', 'red'], /Unknown option '--colour'/],
    [['--log'], /--log <value>' argument missing/],
    [['--log', 'a.jsonl', '--out', 'x.html', 'extra'], /Unexpected argument 'extra'/],
  ]
  it.each(usageErrors)('refuses %j with a ReportUsageError', async (argv, message) => {
    const { output } = capture()
    const attempt = reportCommand(argv, output)
    await expect(attempt).rejects.toThrow(ReportUsageError)
    await expect(attempt).rejects.toThrow(message)
  })

  it('passes on the file and line of a malformed log, and writes no report', async () => {
    const out = join(work, 'not-written.html')
    const { output } = capture()
    const missing = join(work, 'missing.jsonl')
    await expect(reportCommand(['--log', missing, '--out', out], output)).rejects.toThrow(RunLogError)
    await expect(reportCommand(['--log', missing, '--out', out], output)).rejects.toThrow(`${missing}: cannot read`)
    expect(existsSync(out)).toBe(false)
  })
})

describe('odyssey report (main)', () => {
  async function run(argv: string[]) {
    const { stderr, output } = capture()
    const io = output as unknown as Parameters<typeof main>[1]
    return { code: await main(['node', 'odyssey', 'report', ...argv], io), stderr: stderr.join('') }
  }

  it('exits 0 after writing the report', async () => {
    const out = join(work, 'main.html')
    expect(await run(['--log', writeLog('main', 'run'), '--out', out])).toEqual({ code: 0, stderr: '' })
    expect(existsSync(out)).toBe(true)
  })

  it('exits 2 with the problem and the usage for bad arguments', async () => {
    const { code, stderr } = await run(['--out', 'x.html'])
    expect(code).toBe(2)
    expect(stderr).toBe(`odyssey report: --log <log.jsonl> is required (once per run log)\n\n${REPORT_USAGE}\n`)
  })

  it('exits 1 with the message of a failure', async () => {
    const missing = join(work, 'nope.jsonl')
    const { code, stderr } = await run(['--log', missing, '--out', join(work, 'x.html')])
    expect(code).toBe(1)
    expect(stderr.startsWith(`odyssey: ${missing}: cannot read: ENOENT`)).toBe(true)
  })
})
