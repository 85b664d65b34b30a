// `node import.mjs <scenario>`: the checks through the ESM entry points, which
// must expose what `require` does, as the very same objects.
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import * as odyssey from 'odyssey-rnn'
import * as onnx from 'odyssey-rnn/onnx'
import * as report from 'odyssey-rnn/report'
import * as vqa from 'odyssey-rnn/vqa'

const require = createRequire(import.meta.url)
const entryPoints = {
  'odyssey-rnn': odyssey,
  'odyssey-rnn/onnx': onnx,
  'odyssey-rnn/report': report,
  'odyssey-rnn/vqa': vqa,
}
for (const [specifier, imported] of Object.entries(entryPoints)) {
  const commonJs = require(specifier)
  assert.ok(Object.keys(commonJs).length > 0, `${specifier} exports nothing`)
  for (const name of Object.keys(commonJs))
    assert.equal(imported[name], commonJs[name], `import { ${name} } from '${specifier}'`)
}

require('./checks.cjs')(odyssey, { onnx, report, vqa }, process.argv[2], 'import')
