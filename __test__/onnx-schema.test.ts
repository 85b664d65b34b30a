/**
 * ts/onnx/schema/onnx_pb.ts is generated from the vendored official onnx.proto; regenerating
 * it with the pinned buf and protoc-gen-es must give the committed file byte for byte, so
 * neither can drift from the other unnoticed.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, join, resolve } from 'node:path'
import { afterAll, expect, it } from 'vitest'

const ROOT = resolve(__dirname, '..')
const SCHEMA = 'ts/onnx/schema'

const out = mkdtempSync(join(tmpdir(), 'odyssey-onnx-schema-'))
afterAll(() => rmSync(out, { recursive: true, force: true }))

it('onnx_pb.ts is what buf generate makes of onnx.proto', () => {
  // buf's launcher is a Node script (run through node, so Windows needs no .cmd shim); buf finds the
  // protoc-gen-es plugin on PATH.
  const buf = join(ROOT, 'node_modules', '@bufbuild', 'buf', 'bin', 'buf')
  const bin = join(ROOT, 'node_modules', '.bin')
  execFileSync(
    process.execPath,
    [buf, 'generate', SCHEMA, '--template', join(SCHEMA, 'buf.gen.yaml'), '--output', out],
    {
      cwd: ROOT,
      env: { ...process.env, PATH: `${bin}${delimiter}${process.env.PATH}` },
      stdio: 'pipe',
    },
  )
  // A checkout may have turned line ends into CRLF.
  const read = (path: string) => readFileSync(path, 'utf8').replace(/\r\n/g, '\n')
  const regenerated = read(join(out, SCHEMA, 'onnx_pb.ts'))
  const committed = read(join(ROOT, SCHEMA, 'onnx_pb.ts'))
  expect(
    regenerated === committed,
    `${SCHEMA}/onnx_pb.ts is stale: run npx buf generate ${SCHEMA} --template ${SCHEMA}/buf.gen.yaml`,
  ).toBe(true)
})
