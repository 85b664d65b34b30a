/**
 * Errors of the training report. They extend the library's classes, so
 * `isOdysseyError` and `error.code` work as everywhere else.
 */
import { OdysseyError, OdysseyRangeError } from '../errors'

/**
 * A run-log record that does not have the documented shape (see `log.ts`):
 * a missing or mistyped field, an unknown record type. Code `ODYSSEY_INVALID`.
 * `field` names the offending field, e.g. `norms[3]` or `confusion.counts`.
 */
export class RunRecordError extends OdysseyRangeError {
  constructor(
    readonly field: string,
    readonly problem: string,
  ) {
    super('ODYSSEY_INVALID', `${field}: ${problem}`)
  }
}

/**
 * A run-log file that cannot be used: not JSON on some line or a line whose
 * record is malformed (code `ODYSSEY_FORMAT`), or a file that cannot be read
 * or written (`ODYSSEY_IO`). The message starts with `file:line:` (1-based),
 * as compilers write it.
 */
export class RunLogError extends OdysseyError {
  constructor(
    readonly file: string,
    /** 1-based line number, or undefined when the problem is the file itself. */
    readonly line: number | undefined,
    problem: string,
    options?: ErrorOptions,
    code: 'ODYSSEY_FORMAT' | 'ODYSSEY_IO' = 'ODYSSEY_FORMAT',
  ) {
    super(code, `${file}${line === undefined ? '' : `:${line}`}: ${problem}`, options)
  }
}

/**
 * `vega` / `vega-lite` are optional peer dependencies (only reports need them)
 * and are not installed. Code `ODYSSEY_DEPENDENCY`.
 */
export class ReportDependencyError extends OdysseyError {
  constructor(missing: string, options?: ErrorOptions) {
    super(
      'ODYSSEY_DEPENDENCY',
      `writing a report needs the optional peer dependencies vega@5 and vega-lite@5 (cannot load '${missing}'): ` +
        'npm install vega@^5.33.1 vega-lite@^5.23.0',
      options,
    )
  }
}

/** Command-line arguments of `odyssey report` that do not make sense. Code `ODYSSEY_INVALID`. */
export class ReportUsageError extends OdysseyRangeError {
  constructor(message: string) {
    super('ODYSSEY_INVALID', message)
  }
}
