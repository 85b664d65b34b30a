/**
 * odyssey-rnn: LSTMs (Greff et al., with peepholes and the eight variants), GRUs and
 * simple RNNs with exact backpropagation through time, for Node.js.
 *
 * This entry point is the library: layers, models, their specs and errors. The
 * applications built on it have their own: `odyssey-rnn/onnx` (ONNX export),
 * `odyssey-rnn/report` (run logs and the HTML training report) and
 * `odyssey-rnn/vqa` (visual question answering).
 */
export { GRU, type GruConfig } from './layers/gru'
export { LSTM, type LstmConfig } from './layers/lstm'
export { SimpleRNN, type SimpleRnnConfig } from './layers/simple-rnn'
export {
  Model,
  sequential,
  type Evaluation,
  type GradientFlow,
  type ModelConfig,
  type RecurrentState,
  type SequentialConfig,
  type StepReport,
} from './model'
export { dense, dropout, embedding, gru, lstm, simpleRnn, type Layer } from './model/layers'
export type {
  DenseActivation,
  GraphSpec,
  GruLayerOptions,
  InputSpec,
  Loss,
  LstmLayerOptions,
  Merge,
  NodeSpec,
  OpSpec,
  RecurrentOutput,
  RnnLayerOptions,
} from './model/spec'
export type { ClipConfig, OptimizerConfig, ScheduleConfig, TrainingConfig } from './model/training'
export type { GenerateOptions } from './model/generate'
export type { DecodeOptions, ScoredDecoding } from './model/decode'
export type {
  Dataset,
  Inputs,
  InputTensor,
  LossWeights,
  SequenceTensor,
  StepInputs,
  StepTensor,
  Targets,
  TokenTensor,
  VectorTensor,
} from './model/data'
export type {
  BatchLog,
  EpochLog,
  FitCallbacks,
  FitContext,
  FitModel,
  FitOptions,
  History,
  PartialEpochLog,
} from './model/fit'
export {
  earlyStopping,
  modelCheckpoint,
  reduceLrOnPlateau,
  type EarlyStoppingOptions,
  type Mode,
  type ModelCheckpointOptions,
  type Monitor,
  type ReduceLrOnPlateauOptions,
} from './model/callbacks'
export {
  ADDING_BASELINE_MSE,
  addingProblem,
  copyMemory,
  digitReversal,
  exactMatch,
  REVERSAL_START,
  REVERSAL_STOP,
  REVERSAL_VOCABULARY,
  type AddingProblem,
  type AddingProblemOptions,
  type CopyMemory,
  type CopyMemoryOptions,
  type DigitReversal,
  type DigitReversalOptions,
} from './data'
export {
  OdysseyAbortError,
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
  ForwardInput,
  ForwardResult,
  GruOptions,
  LstmOptions,
  LstmVariant,
  RecurrentBackend,
  RnnActivation,
  SequenceInput,
  SimpleRnnOptions,
  Tensor,
} from './types'
