/**
 * The progress bar's gradient-norm sparkline: log-scaled block heights, spikes
 * kept when squeezing many steps into few columns, failures visible.
 */
import { describe, expect, it } from 'vitest'

import { GradNormHistory, gradNormSparkline } from '../ts/report'

describe('gradNormSparkline', () => {
  it('scales heights by the logarithm: 10 sits halfway between 1 and 100', () => {
    // Linear scaling would put 10 at 9% of the range, the second-lowest block.
    expect(gradNormSparkline([1, 10, 100], 3)).toBe('▁▅█')
    expect(gradNormSparkline([1e-6, 1e-3, 1], 3)).toBe('▁▅█')
  })

  it('uses all eight blocks for eight evenly spaced decades', () => {
    expect(gradNormSparkline([1, 10, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7], 8)).toBe('▁▂▃▄▅▆▇█')
  })

  it('shows the largest norm of each group when there are more values than columns', () => {
    const values = [1, 1, 1, 50, 1, 1, 1, 1, 1, 1, 1, 2]
    expect(gradNormSparkline(values, 3)).toBe('█▁▂')
    expect(gradNormSparkline(values, 3)).toHaveLength(3)
  })

  it('returns one column per value when there are fewer values than the width', () => {
    expect(gradNormSparkline([2, 4], 10)).toBe('▁█')
    expect(gradNormSparkline([], 10)).toBe('')
  })

  it('marks a column holding a NaN or infinite norm with !, and puts zero at the bottom', () => {
    expect(gradNormSparkline([1, NaN, 100, 0], 4)).toBe('▁!█▁')
    expect(gradNormSparkline([1, 1, Infinity, 100], 2)).toBe('▁!')
  })

  it('draws a constant norm as a flat line', () => {
    expect(gradNormSparkline([3, 3, 3], 3)).toBe('▁▁▁')
  })

  it('refuses a width that is not a positive integer', () => {
    for (const width of [0, -1, 2.5, NaN]) {
      expect(() => gradNormSparkline([1], width)).toThrow(/width: expected an integer >= 1/)
    }
  })
})

describe('GradNormHistory', () => {
  it('draws the last `capacity` norms, padded to the bar width', () => {
    const history = new GradNormHistory(3)
    expect(history.sparkline(5)).toBe('     ')
    for (const norm of [1000, 1, 10, 100]) history.add(norm)
    // The 1000 has fallen out: 1, 10, 100 span the blocks.
    expect(history.sparkline(5)).toBe('▁▅█  ')
  })

  it('refuses a capacity that is not a positive integer', () => {
    expect(() => new GradNormHistory(0)).toThrow(RangeError)
  })
})
