#!/usr/bin/env node
// Serves the built page (examples/browser/dist) on localhost with the two headers that make it
// cross-origin isolated, which the WebAssembly build's threads (SharedArrayBuffer) need:
//   node examples/browser/serve.mjs [--port 5173] [--dir <built page>]   (--port 0: any free port)
// Prints the page's URL on its first line.
import { createReadStream, statSync } from 'node:fs'
import { createServer } from 'node:http'
import { extname, join, normalize, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '5173' },
    dir: { type: 'string', default: fileURLToPath(new URL('./dist', import.meta.url)) },
  },
})
const root = resolve(values.dir)
const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.css': 'text/css',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
}

const server = createServer((request, response) => {
  const path = decodeURIComponent(new URL(request.url ?? '/', 'http://localhost').pathname)
  const file = normalize(join(root, path.endsWith('/') ? `${path}index.html` : path))
  let found = false
  try {
    found = file.startsWith(root + sep) && statSync(file).isFile()
  } catch {}
  if (!found) {
    response.writeHead(404, { 'Content-Type': 'text/plain' }).end(`not found: ${path}\n`)
    return
  }
  response.writeHead(200, {
    'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream',
    'Cross-Origin-Opener-Policy': 'same-origin',
    'Cross-Origin-Embedder-Policy': 'require-corp',
  })
  createReadStream(file).pipe(response)
})

server.listen(Number(values.port), '127.0.0.1', () => {
  const { port } = server.address()
  console.log(`http://127.0.0.1:${port}/`)
})
