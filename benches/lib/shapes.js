'use strict'
/**
 * The problem sizes of the issue "Performance". B = batch, T = time steps,
 * X = input features, H = hidden units. Every case is float32 and returns all steps.
 */

/** @typedef {{ name: string, B: number, T: number, X: number, H: number }} Shape */

/** @type {Record<string, Shape>} */
const SHAPES = {
  S1: { name: 'S1', B: 32, T: 50, X: 64, H: 128 },
  S2: { name: 'S2', B: 64, T: 100, X: 128, H: 256 },
  S3: { name: 'S3', B: 64, T: 100, X: 512, H: 512 },
  // One sequence, one step per call: the latency of `step()` including the N-API crossing.
  STREAM: { name: 'stream', B: 1, T: 1, X: 128, H: 256 },
}

/**
 * The VQA model's training batch (SPEC §4, "deeper LSTM Q + norm I", the paper's sizes):
 * VQA v1-like vocabulary, questions padded to T = 14 tokens, 4096 image features,
 * 2 dense layers after the fusion, top 1000 answers.
 */
const VQA_SIZES = {
  B: 64,
  T: 14,
  vocab: 10000,
  embedding: 300,
  hidden: 512,
  layers: 2,
  image: 4096,
  joint: 1024,
  denseLayers: 2,
  answers: 1000,
}

/**
 * The same shape at the sizes `npm run demo` trains (`DEMO_MODEL` in ts/cli/vqa-demo.ts, its
 * batch of 256 and 1024 image features), with 8-token questions, 100 answers and 200 words.
 */
const VQA_DEMO_SIZES = {
  B: 256,
  T: 8,
  vocab: 200,
  embedding: 32,
  hidden: 32,
  layers: 1,
  image: 1024,
  joint: 256,
  denseLayers: 1,
  answers: 100,
}

/**
 * The encoder–decoder case of issue #11: source and target sequences of 30 tokens from a
 * vocabulary of 1000, 128-d embeddings, an LSTM encoder of H 256 whose final (h, c) starts the
 * LSTM decoder, a dense layer over the vocabulary at every decoder step, batch 64.
 */
const SEQ2SEQ_SIZES = { B: 64, srcT: 30, tgtT: 30, vocab: 1000, embedding: 128, hidden: 256 }

/** The batch sizes of the batch-size sweep (issue #13), each at S2's T, X and H. */
const SWEEP_BATCHES = [1, 8, 32, 128]

/** Calls per repetition of the streaming case, and steps of the memory-flatness runs. */
const STREAM_STEPS = 1000

/** Learning rate of the SGD update every training step applies (small, so 1000 steps stay finite). */
const LEARNING_RATE = 0.01

module.exports = { SHAPES, VQA_SIZES, VQA_DEMO_SIZES, SEQ2SEQ_SIZES, STREAM_STEPS, SWEEP_BATCHES, LEARNING_RATE }
