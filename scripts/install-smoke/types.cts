// Type-checked (not run) by __test__/install.test.ts: the `require` condition's types.
import odyssey = require('odyssey-rnn')

const lstm: odyssey.LSTM = new odyssey.LSTM({ inputSize: 1, hiddenSize: 2, backend: 'js' })
export const result: odyssey.ForwardResult = lstm.forward({ x: new Float32Array(1), shape: [1, 1, 1] })
