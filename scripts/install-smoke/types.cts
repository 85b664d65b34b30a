// Type-checked (not run) by __test__/install.test.ts: the `require` condition's types.
import odyssey = require('odyssey-rnn')
import onnx = require('odyssey-rnn/onnx')
import report = require('odyssey-rnn/report')
import vqa = require('odyssey-rnn/vqa')

const lstm: odyssey.LSTM = new odyssey.LSTM({ inputSize: 1, hiddenSize: 2, backend: 'js' })
export const result: odyssey.ForwardResult = lstm.forward({ x: new Float32Array(1), shape: [1, 1, 1] })
export const exportOnnx: typeof onnx.exportOnnx = onnx.exportOnnx
export const logPath: string = report.runLogPath('runs/lstm')
export const fileError: odyssey.OdysseyError = new vqa.VqaFileError('questions.json', 'not JSON')
