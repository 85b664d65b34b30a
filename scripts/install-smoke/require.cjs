'use strict'
// `node require.cjs <scenario>`: the checks through the CommonJS entry points.
const subpaths = {
  onnx: require('odyssey-rnn/onnx'),
  report: require('odyssey-rnn/report'),
  vqa: require('odyssey-rnn/vqa'),
}
require('./checks.cjs')(require('odyssey-rnn'), subpaths, process.argv[2], 'require')
