'use strict'
// `node require.cjs <scenario>`: the checks through the CommonJS entry point.
require('./checks.cjs')(require('odyssey-rnn'), process.argv[2], 'require')
