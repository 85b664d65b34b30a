// Type-checked (not run) by __test__/install.test.ts: the `import` condition's types.
import { LSTM, OdysseyError, type ForwardResult } from 'odyssey-rnn'
import { exportOnnx, type OnnxExportOptions } from 'odyssey-rnn/onnx'
import { runLogPath } from 'odyssey-rnn/report'
import { VqaFileError } from 'odyssey-rnn/vqa'

const lstm = new LSTM({ inputSize: 1, hiddenSize: 2, backend: 'js' })
export const result: ForwardResult = lstm.forward({ x: new Float32Array(1), shape: [1, 1, 1] })
export const isLoadError = (error: unknown): boolean =>
  error instanceof OdysseyError && error.code === 'ODYSSEY_NATIVE_LOAD'
export const exported: typeof exportOnnx = exportOnnx
export const options: OnnxExportOptions = {}
export const logPath: string = runLogPath('runs/lstm')
export const fileError: OdysseyError = new VqaFileError('questions.json', 'not JSON')
