/**
 * A one-line picture of gradient norms for a terminal progress bar.
 */
import { OdysseyRangeError } from '../errors'

const BLOCKS = '▁▂▃▄▅▆▇█'
/** Shown for a column holding a NaN or infinite norm: a failed step must not look like a small one. */
const NON_FINITE = '!'

/**
 * One Unicode block (▁▂▃▄▅▆▇█) per column, its height the logarithm of the norm scaled
 * between the smallest and largest positive norm shown: gradient norms span decades, and a
 * linear scale would flatten everything below the largest spike.
 *
 * With more values than `width`, each column shows the LARGEST norm of its consecutive group
 * (spikes are what a gradient-norm picture is for). Fewer values than `width` give a shorter
 * string. Norms ≤ 0 take the lowest block; a column with a NaN or ±Infinity norm shows `!`.
 *
 * @throws OdysseyRangeError `ODYSSEY_INVALID` when `width` is not an integer ≥ 1.
 */
export function gradNormSparkline(values: readonly number[], width: number): string {
  if (!Number.isInteger(width) || width < 1) {
    throw new OdysseyRangeError('ODYSSEY_INVALID', `gradNormSparkline width: expected an integer >= 1, got ${width}`)
  }
  const columns = columnMaxima(values, Math.min(width, values.length))
  const logs = columns.filter((v) => Number.isFinite(v) && v > 0).map(Math.log)
  // reduce, not Math.min(...logs): a whole run's history would overflow the argument list.
  const low = logs.reduce((a, b) => Math.min(a, b), Infinity)
  const span = logs.reduce((a, b) => Math.max(a, b), -Infinity) - low
  return columns
    .map((value) => {
      if (!Number.isFinite(value)) return NON_FINITE
      if (value <= 0 || span === 0) return BLOCKS[0]
      return BLOCKS[Math.round(((Math.log(value) - low) / span) * (BLOCKS.length - 1))]
    })
    .join('')
}

/** `values` cut into `columns` consecutive groups of near-equal size, each reduced to its maximum (NaN wins). */
function columnMaxima(values: readonly number[], columns: number): number[] {
  return Array.from({ length: columns }, (_, column) => {
    const group = values.slice(
      Math.floor((column * values.length) / columns),
      Math.floor(((column + 1) * values.length) / columns),
    )
    // Each group holds at least one value: columns <= values.length.
    return group.reduce((a, b) => (Number.isFinite(a) && Number.isFinite(b) ? Math.max(a, b) : NaN))
  })
}

/**
 * The most recent gradient norms of a run, for a progress bar's live sparkline: `add` each
 * step's pre-clip norm, draw with `sparkline(width)`. Keeps the last `capacity` norms, so a
 * long run's picture shows recent history rather than shrinking its spikes into one column.
 */
export class GradNormHistory {
  private readonly norms: number[] = []

  constructor(private readonly capacity = 240) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new OdysseyRangeError(
        'ODYSSEY_INVALID',
        `GradNormHistory capacity: expected an integer >= 1, got ${capacity}`,
      )
    }
  }

  add(norm: number): void {
    this.norms.push(norm)
    if (this.norms.length > this.capacity) this.norms.shift()
  }

  /** `gradNormSparkline` of the kept norms, padded with spaces to `width` columns (a steady bar layout). */
  sparkline(width: number): string {
    return this.norms.length === 0 ? ' '.repeat(width) : gradNormSparkline(this.norms, width).padEnd(width)
  }
}
