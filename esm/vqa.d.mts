// Types of the ESM entry point odyssey-rnn/vqa: the same declarations as the CommonJS build.
export * from '../dist/vqa/index.js'
