// `node import.mjs <scenario>`: the checks through the ESM entry point, which
// must expose what `require` does, as the very same objects.
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import * as odyssey from 'odyssey-rnn'

const require = createRequire(import.meta.url)
const commonJs = require('odyssey-rnn')
for (const name of Object.keys(commonJs)) assert.equal(odyssey[name], commonJs[name], `import { ${name} }`)

require('./checks.cjs')(odyssey, process.argv[2], 'import')
