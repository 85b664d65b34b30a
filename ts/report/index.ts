/**
 * "See it": run logs written during training, and one self-contained HTML report drawn from
 * them (loss, learning rate, gradient norm and clipping, gradient flow, VQA), plus the
 * gradient-norm sparkline of the CLI's progress bar.
 */
export { reportCommand, REPORT_USAGE, type CommandOutput } from './command'
export {
  globalClipThreshold,
  logGradientFlow,
  logStep,
  logVqaEpoch,
  logVqaEvaluation,
  runLogCallbacks,
} from './fit-log'
export { ReportDependencyError, ReportUsageError, RunLogError, RunRecordError } from './errors'
export {
  RUN_LOG_FORMAT,
  RUN_LOG_VERSION,
  RunLogger,
  checkRecord,
  parseRunLog,
  readRunLog,
  runLogPath,
  type EpochRecord,
  type GradientFlowRecord,
  type RunHeaderRecord,
  type RunInfo,
  type RunLogRecord,
  type RunLoggerOptions,
  type StepRecord,
  type VqaRecord,
  type CallbackRecord,
} from './log'
export { buildReport, writeReport, type Report, type ReportInput, type ReportOptions } from './report'
export { GradNormHistory, gradNormSparkline } from './sparkline'
