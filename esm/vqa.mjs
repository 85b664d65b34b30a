// ESM entry point of odyssey-rnn/vqa (visual question answering): re-exports the CommonJS build, as index.mjs does.
export * from '../dist/vqa/index.js'
