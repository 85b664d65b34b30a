/**
 * ONNX export: see `exportOnnx`. The exporter (and `@bufbuild/protobuf` with the ONNX schema)
 * loads on the first export, not with the package: most programs never export.
 */
import type * as Exporter from './export'

export type { OnnxExportOptions } from './context'
export { OnnxUnsupportedError } from './errors'
export type { WeightRecord } from './weights'

/**
 * Writes the ONNX model (IR 8, opset 17, float32) of `spec` with `weights` to `path` atomically;
 * `await model.exportOnnx(path, options)` does the same for a model.
 * @throws OnnxUnsupportedError for the LSTM variants ONNX cannot express (NIG, NFG, NOG, FGR).
 */
export const exportOnnx: typeof Exporter.exportOnnx = async (...args) => (await import('./export')).exportOnnx(...args)

/**
 * The ONNX model of `spec` with `weights`, serialized (what `exportOnnx` writes). Synchronous, so
 * the exporter is loaded with `require` (from the built package; the TypeScript sources' tests
 * import it from `./export`).
 */
export const toOnnx: typeof Exporter.toOnnx = (...args) => (require('./export') as typeof Exporter).toOnnx(...args)
