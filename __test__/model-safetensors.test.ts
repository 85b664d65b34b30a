/**
 * `model.toSafetensors()`: the weights as the bytes of a checkpoint's `model.safetensors`, for
 * where there is no file system (the browser example downloads them). Put in place of a saved
 * checkpoint's file, `Model.load` reads them and predicts as the model does, in both dtypes.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'

import { addingProblem, dense, lstm, Model, sequential, type Dtype } from '../ts'

const scratch = mkdtempSync(join(tmpdir(), 'odyssey-to-safetensors-'))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

function generation(dir: string): string {
  return join(dir, readdirSync(dir).find((entry) => entry.startsWith('gen-')) as string)
}

describe('model.toSafetensors', () => {
  it.each(['float32', 'float64'] as Dtype[])(
    'gives %s weights that Model.load reads in a checkpoint',
    async (dtype) => {
      const data = addingProblem({ n: 64, time: 6, seed: 3, dtype })
      const build = () =>
        sequential({
          input: { kind: 'sequence', features: 2 },
          layers: [lstm({ hiddenSize: 5, output: 'last' }), dense({ units: 1 })],
          loss: 'mse',
          optimizer: { type: 'adam', learningRate: 1e-2 },
          dtype,
          seed: 11,
        })
      const trained = build()
      await trained.fit(data, { epochs: 2, batchSize: 16 })
      const bytes = trained.toSafetensors()
      const length = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true))
      const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + length))) as Record<
        string,
        { dtype: string }
      >
      expect(length % 8).toBe(0)
      expect(Object.keys(header).sort()).toEqual(Object.keys(trained.getWeights()).sort())
      for (const entry of Object.values(header)) expect(entry.dtype).toBe(dtype === 'float32' ? 'F32' : 'F64')

      // An untrained model's checkpoint with the trained model's bytes in place of its weights.
      const dir = join(scratch, dtype)
      const untrained = build()
      await untrained.save(dir)
      const before = await untrained.predict(data.x)
      writeFileSync(join(generation(dir), 'model.safetensors'), bytes)
      const restored = await Model.load(dir)
      const expected = await trained.predict(data.x)
      const got = await restored.predict(data.x)
      expect(Array.from(got.data)).toEqual(Array.from(expected.data))
      expect(Array.from(got.data)).not.toEqual(Array.from(before.data))
      for (const model of [trained, untrained, restored]) model.dispose()
    },
  )
})
