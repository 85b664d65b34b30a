/**
 * odyssey-rnn: LSTMs (Greff et al., with peepholes and the eight variants) and
 * simple RNNs with exact backpropagation through time, for Node.js.
 */
export { LSTM, type LstmConfig } from './layers/lstm'
export { SimpleRNN, type SimpleRnnConfig } from './layers/simple-rnn'
export { exportOnnx, OnnxUnsupportedError, toOnnx, type OnnxExportOptions, type OnnxInputSpec, type OnnxModelSpec, type OnnxNodeSpec, type WeightRecord } from './onnx'
export {
  OdysseyError,
  OdysseyRangeError,
  OdysseyTypeError,
  isOdysseyError,
  type AnyOdysseyError,
  type ErrorCode,
} from './errors'
export { LSTM_VARIANTS } from './types'
export type {
  Backend,
  BackwardInput,
  BackwardResult,
  Dtype,
  FloatArray,
  ForwardResult,
  LstmOptions,
  LstmVariant,
  RecurrentBackend,
  RnnActivation,
  SequenceInput,
  SimpleRnnOptions,
  Tensor,
} from './types'
