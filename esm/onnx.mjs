// ESM entry point of odyssey-rnn/onnx (ONNX export): re-exports the CommonJS build, as index.mjs does.
export * from '../dist/onnx/index.js'
