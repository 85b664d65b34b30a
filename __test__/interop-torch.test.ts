/**
 * PyTorch interop through the Model API: `nn.LSTM` / `nn.RNN` / `nn.GRU` state dicts
 * (2 layers, bidirectional, written by crates/core/tests/fixtures/
 * make_torch_state_dicts.py) imported with `model.importStateDict` reproduce
 * PyTorch's outputs through `predict`; `exportStateDict` writes PyTorch's keys
 * back; every mismatch is a typed error naming the tensor, and leaves the model as it was.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'

import {
  dense,
  gru,
  lstm,
  Model,
  OdysseyError,
  OdysseyRangeError,
  OdysseyTypeError,
  sequential,
  simpleRnn,
  type Dtype,
} from '../ts'
import { readSafetensorsHeader } from '../ts/vqa'
import { expectNear } from './helpers/layers'
import { weightValues } from './helpers/models'

const FIXTURES = join(__dirname, '..', 'crates', 'core', 'tests', 'fixtures')
const scratch = mkdtempSync(join(tmpdir(), 'odyssey-interop-'))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

/** One case of make_torch_state_dicts.py: configuration, input and PyTorch's output. */
interface TorchCase {
  module: 'lstm' | 'rnn' | 'gru'
  input_size: number
  hidden_size: number
  num_layers: number
  bidirectional: boolean
  batch: number
  time: number
  lengths: number[]
  /** `[batch, time, input_size]` */
  x: number[]
  /** `[batch, time, directions·hidden_size]`, zero at padded steps. */
  y: number[]
}

function torchCase(name: string): TorchCase {
  return JSON.parse(readFileSync(join(FIXTURES, `torch_${name}.json`), 'utf8')) as TorchCase
}

function stateDict(name: string, dtype: Dtype): string {
  return join(FIXTURES, `torch_${name}_${dtype === 'float32' ? 'f32' : 'f64'}.safetensors`)
}

/** A one-node model shaped like the case's module, as `sequential` builds it (PyTorch has no peepholes). */
function modelFor(c: TorchCase, dtype: Dtype, seed = 3): Model {
  const recurrent = {
    hiddenSize: c.hidden_size,
    numLayers: c.num_layers,
    bidirectional: c.bidirectional,
    output: 'sequence' as const,
  }
  return sequential({
    input: { kind: 'sequence', features: c.input_size },
    layers: [
      {
        lstm: () => lstm({ ...recurrent, peepholes: false, name: 'encoder' }),
        rnn: () => simpleRnn({ ...recurrent, activation: 'tanh', name: 'encoder' }),
        gru: () => gru({ ...recurrent, name: 'encoder' }),
      }[c.module](),
    ],
    loss: 'mse',
    optimizer: { type: 'sgd', learningRate: 0.1 },
    dtype,
    seed,
  })
}

async function predictCase(model: Model, c: TorchCase, dtype: Dtype) {
  const Float = dtype === 'float32' ? Float32Array : Float64Array
  return model.predict({ data: Float.from(c.x), shape: [c.batch, c.time, c.input_size], lengths: c.lengths })
}

const CASES = [
  'lstm_2layer_bidirectional',
  'lstm_2layer_bidirectional_varlen',
  'rnn_tanh_2layer_bidirectional',
  'gru_2layer_bidirectional_varlen',
] as const
const TOLERANCE: Record<Dtype, number> = { float32: 1e-5, float64: 1e-9 }

describe('importStateDict', () => {
  for (const name of CASES) {
    for (const dtype of ['float32', 'float64'] as const) {
      it(`${name} (${dtype}): predict reproduces PyTorch's y`, async () => {
        const c = torchCase(name)
        const model = modelFor(c, dtype)
        await model.importStateDict('encoder', stateDict(name, dtype))
        const { data, shape } = await predictCase(model, c, dtype)
        expect(shape).toEqual([c.batch, c.time, 2 * c.hidden_size])
        expect(data).toBeInstanceOf(dtype === 'float32' ? Float32Array : Float64Array)
        expectNear('y', data, c.y, TOLERANCE[dtype])
        model.dispose()
      })
    }
  }

  it('imports into one node of a Model.fromSpec graph and leaves the other nodes alone', async () => {
    const c = torchCase('lstm_2layer_bidirectional')
    const model = Model.fromSpec({
      inputs: [{ kind: 'sequence', name: 'words', features: 3 }],
      nodes: [
        {
          type: 'lstm',
          name: 'question',
          inputs: ['words'],
          hiddenSize: 4,
          numLayers: 2,
          bidirectional: true,
          peepholes: false,
          output: 'sequence',
        },
        { type: 'dense', name: 'head', inputs: ['question'], units: 2 },
      ],
      output: 'head',
      loss: 'mse',
      optimizer: { type: 'adam', learningRate: 1e-3 },
    })
    const head = weightValues(model)['head.weight']
    await model.importStateDict('question', stateDict('lstm_2layer_bidirectional', 'float32'))
    const weights = model.getWeights()
    expect(weightValues(model)['head.weight']).toEqual(head)
    // The head reads PyTorch's y: head(y) computed here from the imported encoder's output.
    const { data } = await model.predict({ data: Float32Array.from(c.x), shape: [c.batch, c.time, 3] })
    const { data: w } = weights['head.weight']
    const { data: b } = weights['head.bias']
    const expected = Array.from({ length: c.batch * c.time * 2 }, (_, k) => {
      const [row, unit] = [Math.floor(k / 2), k % 2]
      return (
        b[unit] + Array.from({ length: 8 }, (_, j) => w[unit * 8 + j] * c.y[row * 8 + j]).reduce((s, v) => s + v, 0)
      )
    })
    expectNear('head(y)', data, expected, 1e-5)
    model.dispose()
  })
})

describe('exportStateDict', () => {
  it.each(['lstm_2layer_bidirectional', 'gru_2layer_bidirectional_varlen'])(
    "%s: writes PyTorch's keys, shapes and dtype, and the file imports back to the same outputs",
    async (name) => {
      const c = torchCase(name)
      const source = modelFor(c, 'float32')
      await source.importStateDict('encoder', stateDict(name, 'float32'))
      const file = join(scratch, 'exported.safetensors')
      await source.exportStateDict('encoder', file)

      const [exported, original] = await Promise.all([readHeader(file), readHeader(stateDict(name, 'float32'))])
      expect(exported.metadata).toEqual({ format: 'pt' })
      const layout = (h: typeof exported) =>
        Object.fromEntries([...h.tensors].map(([key, t]) => [key, [t.dtype, t.shape]]))
      expect(layout(exported)).toEqual(layout(original))
      // Same tensors byte for byte, whatever order each writer laid them out in.
      for (const [key, entry] of exported.tensors) {
        const theirs = original.tensors.get(key)!
        expect(bytesAt(file, entry.fileOffset, entry.byteLength), key).toEqual(
          bytesAt(stateDict(name, 'float32'), theirs.fileOffset, theirs.byteLength),
        )
      }

      const copy = modelFor(c, 'float32', 99)
      await copy.importStateDict('encoder', file)
      expect(weightValues(copy)).toEqual(weightValues(source))
      source.dispose()
      copy.dispose()
    },
  )

  it('a float64 model writes F64 tensors', async () => {
    const c = torchCase('rnn_tanh_2layer_bidirectional')
    const model = modelFor(c, 'float64')
    const file = join(scratch, 'rnn64.safetensors')
    await model.exportStateDict('encoder', file)
    const header = await readHeader(file)
    expect(new Set([...header.tensors.values()].map((t) => t.dtype))).toEqual(new Set(['F64']))
    expect(header.tensors.get('weight_hh_l1_reverse')?.shape).toEqual([4, 4])
    model.dispose()
  })
})

describe('state-dict errors', () => {
  const name = 'lstm_2layer_bidirectional'

  async function rejection(promise: Promise<unknown>): Promise<Error> {
    const error = await promise.then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error, 'expected a rejection').toBeInstanceOf(Error)
    return error as Error
  }

  it('a node of another size: ODYSSEY_CHECKPOINT naming the tensor and both shapes; nothing changes', async () => {
    const model = sequential({
      input: { kind: 'sequence', features: 3 },
      layers: [lstm({ hiddenSize: 5, numLayers: 2, bidirectional: true, peepholes: false, name: 'encoder' })],
      loss: 'mse',
      optimizer: { type: 'sgd', learningRate: 0.1 },
    })
    const before = weightValues(model)
    const error = await rejection(model.importStateDict('encoder', stateDict(name, 'float32')))
    expect(error).toBeInstanceOf(OdysseyError)
    expect(error).toMatchObject({ code: 'ODYSSEY_CHECKPOINT' })
    expect(error.message).toMatch(/tensor `(weight|bias)_\w+_l0`/)
    expect(error.message).toContain('[16')
    expect(error.message).toContain('[20')
    expect(weightValues(model)).toEqual(before)
    model.dispose()
  })

  it('a node with peepholes and a plain nn.LSTM file: the error says to build it with peepholes: false', async () => {
    const model = sequential({
      input: { kind: 'sequence', features: 3 },
      layers: [lstm({ hiddenSize: 4, numLayers: 2, bidirectional: true, name: 'encoder' })],
      loss: 'mse',
      optimizer: { type: 'sgd', learningRate: 0.1 },
    })
    const error = await rejection(model.importStateDict('encoder', stateDict(name, 'float32')))
    expect(error).toMatchObject({ code: 'ODYSSEY_CHECKPOINT' })
    expect(error.message).toContain('peephole_i_l0')
    expect(error.message).toContain('peepholes: false')
    model.dispose()
  })

  it('an F64 file into a float32 model names the tensor and both dtypes', async () => {
    const model = modelFor(torchCase(name), 'float32')
    const error = await rejection(model.importStateDict('encoder', stateDict(name, 'float64')))
    expect(error).toMatchObject({ code: 'ODYSSEY_CHECKPOINT' })
    expect(error.message).toMatch(/F64.*F32/)
    model.dispose()
  })

  it('an RNN file into an LSTM node names a missing tensor', async () => {
    const model = modelFor(torchCase(name), 'float32')
    const error = await rejection(
      model.importStateDict('encoder', stateDict('rnn_tanh_2layer_bidirectional', 'float32')),
    )
    expect(error).toMatchObject({ code: 'ODYSSEY_CHECKPOINT' })
    expect(error.message).toMatch(/tensor `\w+`/)
    model.dispose()
  })

  it('refuses unknown and non-recurrent nodes, non-string arguments and a missing file, by name', async () => {
    const model = sequential({
      input: { kind: 'sequence', features: 3 },
      layers: [lstm({ hiddenSize: 4, peepholes: false, output: 'last' }), dense({ units: 1 })],
      loss: 'mse',
      optimizer: { type: 'sgd', learningRate: 0.1 },
    })
    const file = stateDict(name, 'float32')
    const unknown = await rejection(model.importStateDict('decoder', file))
    expect(unknown).toBeInstanceOf(OdysseyRangeError)
    expect(unknown).toMatchObject({ code: 'ODYSSEY_KEY' })
    expect(unknown.message).toContain("'decoder'")
    expect(unknown.message).toContain("'lstm'")
    const notRecurrent = await rejection(model.exportStateDict('dense', join(scratch, 'dense.safetensors')))
    expect(notRecurrent).toMatchObject({ code: 'ODYSSEY_INVALID' })
    expect(notRecurrent.message).toContain('dense node')
    const badNode = await rejection(model.importStateDict(7 as unknown as string, file))
    expect(badNode).toBeInstanceOf(OdysseyTypeError)
    expect(badNode.message).toContain('node')
    const badPath = await rejection(model.importStateDict('lstm', null as unknown as string))
    expect(badPath).toBeInstanceOf(OdysseyTypeError)
    expect(badPath.message).toContain('path')
    const missing = await rejection(model.importStateDict('lstm', join(scratch, 'no-such-file.safetensors')))
    expect(missing).toMatchObject({ code: 'ODYSSEY_IO' })
    expect(missing.message).toContain('no-such-file.safetensors')
    const unwritable = await rejection(model.exportStateDict('lstm', join(scratch, 'no-such-dir', 'x.safetensors')))
    expect(unwritable).toMatchObject({ code: 'ODYSSEY_IO' })
    model.dispose()
    const disposed = await rejection(model.importStateDict('lstm', file))
    expect(disposed).toMatchObject({ code: 'ODYSSEY_STATE' })
  })

  it('waits for no one: a second operation while an import runs is refused with ODYSSEY_STATE', async () => {
    const model = modelFor(torchCase(name), 'float32')
    const running = model.importStateDict('encoder', stateDict(name, 'float32'))
    expect(() => model.getWeights()).toThrow(expect.objectContaining({ code: 'ODYSSEY_STATE' }))
    await running
    model.dispose()
  })

  it('a NaN in the file is refused naming the tensor, and nothing changes', async () => {
    const source = stateDict(name, 'float32')
    const entry = (await readHeader(source)).tensors.get('bias_hh_l1')!
    const bytes = readFileSync(source)
    bytes.writeFloatLE(NaN, entry.fileOffset + 4 * 3)
    const file = join(scratch, 'nan.safetensors')
    writeFileSync(file, bytes)
    const model = modelFor(torchCase(name), 'float32')
    const before = weightValues(model)
    const error = await rejection(model.importStateDict('encoder', file))
    expect(error).toMatchObject({ code: 'ODYSSEY_CHECKPOINT' })
    expect(error.message).toContain('tensor `bias_hh_l1`: non-finite value NaN at flat index 3')
    expect(weightValues(model)).toEqual(before)
    model.dispose()
  })

  it('a corrupt file is an ODYSSEY_CHECKPOINT error naming it', async () => {
    const file = join(scratch, 'corrupt.safetensors')
    writeFileSync(file, readFileSync(stateDict(name, 'float32')).subarray(0, 100))
    const model = modelFor(torchCase(name), 'float32')
    const error = await rejection(model.importStateDict('encoder', file))
    expect(error).toMatchObject({ code: 'ODYSSEY_CHECKPOINT' })
    expect(error.message).toContain('corrupt.safetensors')
    model.dispose()
  })
})

async function readHeader(file: string) {
  const handle = await open(file, 'r')
  try {
    return await readSafetensorsHeader(handle, file, (await handle.stat()).size)
  } finally {
    await handle.close()
  }
}

function bytesAt(file: string, offset: number, length: number): Buffer {
  return readFileSync(file).subarray(offset, offset + length)
}
