/** ONNX export: see `exportOnnx`. */
export type { OnnxExportOptions } from './context'
export { OnnxUnsupportedError } from './errors'
export { exportOnnx, toOnnx } from './export'
export type { WeightRecord } from './weights'
