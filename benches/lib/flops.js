'use strict'
/**
 * Nominal FLOP counts used for GFLOP/s. Only the matrix products count: a
 * layer's forward pass is 2·T·B·G·H·(X_l + H) with G = 4 gate blocks for the
 * LSTM, 3 for the GRU and 1 for the simple RNN, X_l the layer's input width (X for the first
 * layer, H·directions above it). A training step counts as 3× the forward pass
 * (forward, then two products of the same size in backward: δx/δh and δW).
 * Elementwise work (activations, peepholes, the loss) is not counted.
 */
/**
 * @param {{ cell: 'lstm' | 'gru' | 'rnn', B: number, T: number, X: number, H: number, layers?: number, bidirectional?: boolean }} c
 * @returns {number} FLOPs of one forward pass over the whole batch
 */
function forwardFlops({ cell, B, T, X, H, layers = 1, bidirectional = false }) {
  const gates = { lstm: 4, gru: 3, rnn: 1 }[cell]
  const directions = bidirectional ? 2 : 1
  let total = 0
  for (let layer = 0; layer < layers; layer++) {
    const inputWidth = layer === 0 ? X : H * directions
    total += directions * 2 * T * B * gates * H * (inputWidth + H)
  }
  return total
}

/** The VQA model's forward pass: its LSTM stack and dense layers (the embedding is a lookup). */
function vqaForwardFlops({ B, T, embedding, hidden, layers, image, joint, denseLayers, answers }) {
  const lstm = forwardFlops({ cell: 'lstm', B, T, X: embedding, H: hidden, layers })
  const statesWidth = layers * 2 * hidden
  return lstm + 2 * B * (statesWidth * joint + image * joint + denseLayers * joint * joint + joint * answers)
}

/** The encoder–decoder's forward pass: both LSTMs and the dense layer over the vocabulary at every decoder step. */
function seq2seqForwardFlops({ B, srcT, tgtT, embedding, hidden, vocab }) {
  const lstm = (T) => forwardFlops({ cell: 'lstm', B, T, X: embedding, H: hidden })
  return lstm(srcT) + lstm(tgtT) + 2 * B * tgtT * hidden * vocab
}

/** @param {Parameters<typeof forwardFlops>[0] & { mode: string, model?: string, vqa?: object, seq2seq?: object }} c FLOPs of one timed call */
function caseFlops(c) {
  const models = { vqa: () => vqaForwardFlops(c.vqa), seq2seq: () => seq2seqForwardFlops(c.seq2seq) }
  const forward = c.model === undefined ? forwardFlops(c) : models[c.model]()
  return c.mode === 'train' ? 3 * forward : forward
}

module.exports = { forwardFlops, caseFlops }
