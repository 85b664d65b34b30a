/**
 * `node dist/cli/report.js --log <log.jsonl> [--log ...] --out report.html`: the report command on
 * its own, until an `odyssey` command dispatches `report` to `reportCommand`. Exit code 2 for
 * arguments that make no sense (with the usage), 1 for anything else that fails.
 */
import { isOdysseyError } from '../errors'
import { REPORT_USAGE, ReportUsageError, reportCommand } from '../report'

export async function main(argv: readonly string[] = process.argv.slice(2)): Promise<number> {
  try {
    await reportCommand(argv)
    return 0
  } catch (error) {
    if (error instanceof ReportUsageError) {
      process.stderr.write(`${error.message}\n\n${REPORT_USAGE}\n`)
      return 2
    }
    // Our errors carry a message meant for the user; anything else is a bug worth its stack.
    const text = isOdysseyError(error)
      ? `odyssey report: ${error.message}`
      : error instanceof Error
        ? error.stack
        : String(error)
    process.stderr.write(`${text}\n`)
    return 1
  }
}

if (require.main === module) {
  void main().then((code) => {
    process.exitCode = code
  })
}
