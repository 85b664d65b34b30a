// ESM entry point of odyssey-rnn/report (run logs and the HTML training report): re-exports the CommonJS build, as index.mjs does.
export * from '../dist/report/index.js'
