'use strict'
/**
 * The VQA model's training step (SPEC §4, "deeper LSTM Q + norm I", Antol et al. 2015),
 * built by the package's own `resolveArchitecture` + `vqaGraph` (dist/vqa): question
 * tokens → 300-d word vectors → 2-layer LSTM 512 → every layer's last c and y →
 * dense 1024 tanh; image features → L2-normalised → dense 1024 tanh; product →
 * 2 × dense 1024 tanh → dense over the answers, softmax cross-entropy. Dropout is
 * set to 0 and peepholes off, so that every step does the same work as the PyTorch
 * twin in benches/pytorch_lstm.py.
 */
const path = require('node:path')

const { uniform } = require('../lib/data')
const { SkipCase } = require('../lib/skip')

function loadVqa(packageRoot) {
  try {
    return require(path.join(packageRoot, 'dist', 'vqa'))
  } catch (error) {
    throw new SkipCase(`the VQA model (dist/vqa) is not in this build (${error.message.split('\n')[0]})`)
  }
}

/** The graph for `Model.fromSpec`. */
function vqaGraph(packageRoot, { vocab, embedding, hidden, layers, image, joint, denseLayers, answers }) {
  const vqa = loadVqa(packageRoot)
  const architecture = vqa.resolveArchitecture({
    fusion: 'product',
    imageDim: image,
    vocabSize: vocab,
    answers,
    embeddingDim: embedding,
    lstm: { hiddenSize: hidden, numLayers: layers, peepholes: false, questionVector: 'states' },
    hiddenSize: joint,
    denseLayers,
    dropout: 0,
  })
  return vqa.vqaGraph(architecture)
}

/** A deterministic batch: token ids `[B, T]`, image features `[B, image]`, answer classes `[B]`. */
function vqaBatch({ B, T, vocab, image, answers }) {
  const ids = Uint32Array.from(uniform(B * T, 4), (u) => Math.floor(((u + 1) / 2) * vocab))
  const classes = Uint32Array.from(uniform(B, 5), (u) => Math.floor(((u + 1) / 2) * answers))
  return {
    x: { question: { ids, shape: [B, T] }, image: { data: uniform(B * image, 6), shape: [B, image] } },
    y: { classes, shape: [B] },
  }
}

module.exports = { vqaGraph, vqaBatch }
