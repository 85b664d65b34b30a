'use strict'
/**
 * The VQA paper's "deeper LSTM Q + norm I" model (SPEC §4, Antol et al. 2015) as a
 * Model API graph, and one batch for its training step:
 * question token ids → embedding 300 → 2-layer LSTM 512 → every layer's last c and y
 * (2048) → dense 1024 tanh; image features (4096) → L2-normalised → dense 1024 tanh;
 * elementwise product → dense over the top answers → softmax cross-entropy.
 * Dropout is left out so that every step does the same work.
 */
const { uniform } = require('../lib/data')

function vqaGraph({ vocab, embedding, hidden, layers, image, joint, answers }) {
  return {
    inputs: [
      { kind: 'tokens', name: 'question' },
      { kind: 'vector', name: 'image', features: image },
    ],
    nodes: [
      { name: 'words', inputs: ['question'], type: 'embedding', vocabSize: vocab, dim: embedding },
      { name: 'lstm', inputs: ['words'], type: 'lstm', hiddenSize: hidden, numLayers: layers, output: 'states', peepholes: false },
      { name: 'question_vector', inputs: ['lstm'], type: 'dense', units: joint, activation: 'tanh' },
      { name: 'image_norm', inputs: ['image'], type: 'l2Normalize' },
      { name: 'image_vector', inputs: ['image_norm'], type: 'dense', units: joint, activation: 'tanh' },
      { name: 'fused', inputs: ['question_vector', 'image_vector'], type: 'multiply' },
      { name: 'answer', inputs: ['fused'], type: 'dense', units: answers },
    ],
    output: 'answer',
    loss: 'crossEntropy',
  }
}

/** A deterministic batch: token ids `[B, T]`, image features `[B, 4096]`, answer classes `[B]`. */
function vqaBatch({ B, T, vocab, image, answers }) {
  const ids = Uint32Array.from(uniform(B * T, 4), (u) => Math.floor(((u + 1) / 2) * vocab))
  const classes = Uint32Array.from(uniform(B, 5), (u) => Math.floor(((u + 1) / 2) * answers))
  return {
    x: { question: { ids, shape: [B, T] }, image: { data: uniform(B * image, 6), shape: [B, image] } },
    y: { classes, shape: [B] },
  }
}

module.exports = { vqaGraph, vqaBatch }
