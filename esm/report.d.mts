// Types of the ESM entry point odyssey-rnn/report: the same declarations as the CommonJS build.
export * from '../dist/report/index.js'
