/**
 * Question tokenisation as in the VQA LSTM baseline's preprocessing
 * (GT-Vision-Lab/VQA_LSTM_CNN, prepro.py, `tokenize`): lowercase, split at
 * whitespace, and split off each punctuation mark as a token of its own, so
 * "What's on the table?" → ["what", "'", "s", "on", "the", "table", "?"].
 */

/** The baseline's delimiter class; the capture group keeps each mark as a token. */
const PUNCTUATION_OR_SPACE = /([-."',:?!$#@~()*&^%;[\]/\\+<>=]|\s+)/

/** Tokens of one question, lowercased; never contains whitespace or empty strings. */
export function tokenizeQuestion(question: string): string[] {
  return question
    .toLowerCase()
    .split(PUNCTUATION_OR_SPACE)
    .filter((token) => token.trim() !== '')
}
