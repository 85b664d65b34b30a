/**
 * `odyssey report --log <log.jsonl> [--log ...] --out <report.html>`, as a function the CLI calls
 * with the arguments after `report`.
 */
import { parseArgs } from 'node:util'

import { ReportUsageError } from './errors'
import { writeReport } from './report'

export const REPORT_USAGE = `Usage: odyssey report --log <log.jsonl> [--log <log.jsonl> ...] --out <report.html> [--title <text>]

Draws the training runs of the given run logs (loss, learning rate, gradient norm and
clipping, gradient flow, VQA accuracy) into one self-contained HTML file that opens
without a network connection.

  --log <file>    a run log written during training; repeat to compare runs
  --out <file>    the HTML file to write
  --title <text>  the page title (default: the run labels)
  --help          show this text`

/** Where the command writes: what it made (stdout) and what the chart library warned about (stderr). */
export interface CommandOutput {
  stdout: { write(text: string): unknown }
  stderr: { write(text: string): unknown }
}

/**
 * Runs `odyssey report` with `argv` (the arguments after `report`).
 * @throws ReportUsageError for arguments that make no sense (the caller shows `REPORT_USAGE`), and
 *   whatever `writeReport` throws (RunLogError naming a malformed line, ReportDependencyError).
 */
export async function reportCommand(argv: readonly string[], output: CommandOutput = process): Promise<void> {
  const args = parseReportArgs(argv)
  if (args.help) {
    output.stdout.write(`${REPORT_USAGE}\n`)
    return
  }
  const { log, out, title } = args
  const { warnings } = await writeReport(log, out, { title })
  for (const warning of warnings) output.stderr.write(`odyssey report: chart warning: ${warning}\n`)
  output.stdout.write(`wrote ${out} (${log.length} run log${log.length === 1 ? '' : 's'})\n`)
}

type ReportArgs = { help: true } | { help: false; log: string[]; out: string; title?: string }

const OPTIONS = {
  log: { type: 'string', multiple: true },
  out: { type: 'string' },
  title: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const

function parseReportArgs(argv: readonly string[]): ReportArgs {
  const { values } = parseStrict(argv)
  if (values.help) return { help: true }
  if (values.log === undefined)
    throw new ReportUsageError('odyssey report: --log <log.jsonl> is required (once per run log)')
  if (values.out === undefined) throw new ReportUsageError('odyssey report: --out <report.html> is required')
  return { help: false, log: values.log, out: values.out, title: values.title }
}

/** node:util's parser, strict: an unknown option or a missing value is a usage error. */
function parseStrict(argv: readonly string[]) {
  try {
    return parseArgs({ args: [...argv], options: OPTIONS, strict: true, allowPositionals: false })
  } catch (error) {
    throw new ReportUsageError(`odyssey report: ${(error as Error).message}`)
  }
}
