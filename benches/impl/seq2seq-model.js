'use strict'
/**
 * The encoder–decoder training step of issue #11 (`seq2seq` suite): source tokens → embedding →
 * LSTM encoder whose final (h, c) (`output: 'states'`) is the initial state of an LSTM decoder
 * over the target tokens (teacher forcing) → a dense layer over the vocabulary at every decoder
 * step, softmax cross-entropy. Peepholes off, so that every step does the work of the PyTorch
 * twin in benches/pytorch_lstm.py (`nn.Embedding`, `decoder(tgt, encoder(src)[1])`, `nn.Linear`).
 */
const { uniform } = require('../lib/data')

/** The graph for `Model.fromSpec` at `SEQ2SEQ_SIZES`. */
function seq2seqGraph({ vocab, embedding, hidden }) {
  const recurrent = { type: 'lstm', hiddenSize: hidden, peepholes: false }
  return {
    inputs: [
      { kind: 'tokens', name: 'src' },
      { kind: 'tokens', name: 'tgt' },
    ],
    nodes: [
      { name: 'src_embed', inputs: ['src'], type: 'embedding', vocabSize: vocab, dim: embedding },
      { name: 'tgt_embed', inputs: ['tgt'], type: 'embedding', vocabSize: vocab, dim: embedding },
      { name: 'enc', inputs: ['src_embed'], ...recurrent, output: 'states' },
      { name: 'dec', inputs: ['tgt_embed'], ...recurrent, initialState: 'enc' },
      { name: 'out', inputs: ['dec'], type: 'dense', units: vocab },
    ],
    output: 'out',
    loss: 'crossEntropy',
  }
}

/** Token ids in [0, vocab) from the shared deterministic source. */
function tokens(length, vocab, seed) {
  return Uint32Array.from(uniform(length, seed), (u) => Math.min(vocab - 1, Math.floor(((u + 1) / 2) * vocab)))
}

/** A deterministic batch: source `[B, srcT]`, decoder input `[B, tgtT]`, target classes `[B, tgtT]`. */
function seq2seqBatch({ B, srcT, tgtT, vocab }) {
  return {
    x: {
      src: { ids: tokens(B * srcT, vocab, 7), shape: [B, srcT] },
      tgt: { ids: tokens(B * tgtT, vocab, 8), shape: [B, tgtT] },
    },
    y: { classes: tokens(B * tgtT, vocab, 9), shape: [B, tgtT] },
  }
}

module.exports = { seq2seqGraph, seq2seqBatch }
