/**
 * Vega-Lite specs to SVG strings, on the server, with no DOM and no canvas:
 * `vl.compile(spec).spec` → `vega.parse` → a headless `vega.View` (`renderer: 'none'`) →
 * `toSVG()`. `vega` and `vega-lite` are optional peer dependencies, loaded on first use.
 */
import type * as Vega from 'vega'
import type * as VegaLite from 'vega-lite'
import type { TopLevelSpec } from 'vega-lite'

import { ReportDependencyError } from './errors'

interface Libraries {
  vega: typeof Vega
  vegaLite: typeof VegaLite
}

let libraries: Libraries | undefined

function loadLibraries(): Libraries {
  libraries ??= { vega: requirePeer('vega') as typeof Vega, vegaLite: requirePeer('vega-lite') as typeof VegaLite }
  return libraries
}

function requirePeer(name: string): unknown {
  try {
    return require(name)
  } catch (error) {
    if ((error as { code?: unknown }).code === 'MODULE_NOT_FOUND')
      throw new ReportDependencyError(name, { cause: error })
    throw error
  }
}

export interface RenderedChart {
  svg: string
  /** What Vega-Lite and Vega warned about (a field it could not find, a scale it had to change). */
  warnings: string[]
}

/** The chart of `spec` as a standalone `<svg>` element. */
export async function renderSvg(spec: TopLevelSpec): Promise<RenderedChart> {
  const { vega, vegaLite } = loadLibraries()
  const warnings: string[] = []
  const logger = vega.logger(vega.Warn, undefined, (_method: string, _level: string, input: readonly unknown[]) => {
    warnings.push(Array.from(input, String).join(' '))
  })
  const view = new vega.View(vega.parse(vegaLite.compile(spec, { logger }).spec), { renderer: 'none', logger })
  try {
    return { svg: await view.toSVG(), warnings }
  } finally {
    view.finalize()
  }
}
