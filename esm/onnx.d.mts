// Types of the ESM entry point odyssey-rnn/onnx: the same declarations as the CommonJS build.
export * from '../dist/onnx/index.js'
