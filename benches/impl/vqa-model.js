'use strict'
/**
 * The VQA model's training step (SPEC §4, "deeper LSTM Q + norm I", Antol et al. 2015),
 * built by the package's own `resolveArchitecture` + `vqaGraph` (dist/vqa): question
 * tokens → 300-d word vectors → 2-layer LSTM 512 → every layer's last c and y →
 * dense 1024 tanh; image features → L2-normalised → dense 1024 tanh; product →
 * 2 × dense 1024 tanh → dense over the answers, softmax cross-entropy (those are the
 * paper's sizes; the `VQA-demo` cases use the demo's). Dropout is set to 0 and peepholes
 * off, so that every step does the same work as the PyTorch twin in benches/pytorch_lstm.py
 * and as the pure-TypeScript `ReferenceVqaModel` (dist/vqa/reference-model).
 */
const path = require('node:path')

const { uniform } = require('../lib/data')
const { SkipCase } = require('../lib/skip')

/** `dist/<module>` of the package, or a skipped case naming `what` when this build lacks it. */
function loadBuilt(packageRoot, module, what) {
  try {
    return require(path.join(packageRoot, 'dist', module))
  } catch (error) {
    throw new SkipCase(
      `${what} (dist/${module}) is not in this build (${/** @type {Error} */ (error).message.split('\n')[0]})`,
    )
  }
}

/** The checked architecture of the product shape at `sizes`, dropout 0 and peepholes off. */
function vqaArchitecture(packageRoot, { vocab, embedding, hidden, layers, image, joint, denseLayers, answers }) {
  return loadBuilt(packageRoot, 'vqa', 'the VQA model').resolveArchitecture({
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
}

/** The graph for `Model.fromSpec`. */
function vqaGraph(packageRoot, sizes) {
  return loadBuilt(packageRoot, 'vqa', 'the VQA model').vqaGraph(vqaArchitecture(packageRoot, sizes))
}

/** The pure-TypeScript model of the same graph, from `weights` (a native model's `getWeights()`), plain SGD at `learningRate`. */
function referenceVqaModel(packageRoot, sizes, weights, learningRate) {
  const { ReferenceVqaModel } = loadBuilt(packageRoot, 'vqa/reference-model', 'the reference VQA model')
  if (ReferenceVqaModel === undefined)
    throw new SkipCase('the reference VQA model (ReferenceVqaModel in dist/vqa/reference-model) is not in this build')
  return new ReferenceVqaModel({ architecture: vqaArchitecture(packageRoot, sizes), weights, learningRate })
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

module.exports = { vqaGraph, vqaBatch, referenceVqaModel }
