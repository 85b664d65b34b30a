/**
 * Run logs grouped into runs, and the per-run numbers of the report's summary table.
 */
import { RunRecordError } from './errors'
import {
  checkRecord,
  type EpochRecord,
  type GradientFlowRecord,
  type RunHeaderRecord,
  type RunLogRecord,
  type StepRecord,
  type VqaRecord,
} from './log'

/** One training run: its header and its records by kind, in log order. */
export interface Run {
  /** The header's label, made unique within the report (`LSTM`, `LSTM (2)`). */
  label: string
  header: RunHeaderRecord
  /** The file the run came from, or `records`. */
  source: string
  steps: StepRecord[]
  epochs: EpochRecord[]
  gradientFlow: GradientFlowRecord[]
  vqa: VqaRecord[]
}

/** Records as read from one source (a log file, or an array given in code). */
export interface RunLogSource {
  source: string
  records: readonly RunLogRecord[]
}

/**
 * The runs of every source, in order: each `run` header starts a run, and the records after it
 * belong to it. Labels are made unique so two logs both called "LSTM" stay apart in the charts.
 * @throws RunRecordError when a source does not start with a `run` header.
 */
export function collectRuns(sources: readonly RunLogSource[]): Run[] {
  const runs = sources.flatMap(({ source, records }) => splitRuns(source, records))
  const seen = new Map<string, number>()
  for (const run of runs) {
    const n = (seen.get(run.label) ?? 0) + 1
    seen.set(run.label, n)
    if (n > 1) run.label = `${run.label} (${n})`
  }
  return runs
}

function splitRuns(source: string, records: readonly RunLogRecord[]): Run[] {
  const runs: Run[] = []
  for (const record of records) {
    if (record.type === 'run') {
      runs.push({ label: record.label, header: record, source, steps: [], epochs: [], gradientFlow: [], vqa: [] })
      continue
    }
    const run = runs.at(-1)
    // Files were checked for this by parseRunLog; records given in code reach it here.
    if (run === undefined)
      throw new RunRecordError(`${source}[0].type`, `the first record must be a run header, got "${record.type}"`)
    if (record.type === 'step') run.steps.push(record)
    else if (record.type === 'epoch') run.epochs.push(record)
    else if (record.type === 'gradientFlow') run.gradientFlow.push(record)
    else if (record.type === 'vqa') run.vqa.push(record)
  }
  return runs
}

/**
 * Records given in code, checked as a log file's lines are (`checkRecord`).
 * @throws RunRecordError naming `records[i].field`.
 */
export function checkRecords(records: readonly unknown[]): RunLogRecord[] {
  return records.map((record, i) => {
    try {
      return checkRecord(record)
    } catch (error) {
      if (!(error instanceof RunRecordError)) throw error
      throw new RunRecordError(`records[${i}].${error.field}`, error.problem)
    }
  })
}

/** The numbers of one row of the summary table; undefined where the log has nothing to say. */
export interface RunSummary {
  label: string
  task?: string
  steps: number
  epochs: number
  finalLoss?: number
  bestValidationLoss?: { value: number; epoch: number }
  /** Fraction of steps whose gradient was clipped. */
  clippedFraction?: number
  /** Steps skipped as non-finite. */
  skippedSteps: number
  medianExamplesPerSecond?: number
  seconds?: number
  vqaAccuracy?: number
}

export function summarize(run: Run): RunSummary {
  const lastEpochLoss = run.epochs.filter((e) => e.loss !== null).at(-1)?.loss
  const lastStepLoss = run.steps.filter((s) => s.loss !== null).at(-1)?.loss
  const timed = run.epochs.filter((e) => e.seconds !== undefined)
  return {
    label: run.label,
    task: run.header.task,
    steps: run.steps.length,
    epochs: run.epochs.length,
    finalLoss: lastEpochLoss ?? lastStepLoss ?? undefined,
    bestValidationLoss: bestValidation(run.epochs),
    clippedFraction: run.steps.length === 0 ? undefined : run.steps.filter((s) => s.clipped).length / run.steps.length,
    skippedSteps: run.steps.filter((s) => !s.applied).length,
    medianExamplesPerSecond: median(
      run.steps.flatMap((s) => (s.examplesPerSecond === null ? [] : [s.examplesPerSecond])),
    ),
    seconds: timed.length === 0 ? undefined : timed.reduce((sum, e) => sum + (e.seconds ?? 0), 0),
    vqaAccuracy: run.vqa.at(-1)?.accuracy,
  }
}

function bestValidation(epochs: readonly EpochRecord[]): RunSummary['bestValidationLoss'] {
  let best: RunSummary['bestValidationLoss']
  for (const { validationLoss, epoch } of epochs) {
    if (validationLoss == null) continue
    if (best === undefined || validationLoss < best.value) best = { value: validationLoss, epoch }
  }
  return best
}

function median(values: number[]): number | undefined {
  if (values.length === 0) return undefined
  const sorted = [...values].sort((a, b) => a - b)
  const middle = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}
