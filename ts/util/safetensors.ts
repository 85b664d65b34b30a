/**
 * A small, strict reader and writer of the safetensors format
 * (huggingface/safetensors): an 8-byte little-endian header length N, N
 * bytes of JSON `{name: {dtype, shape, data_offsets: [begin, end]}, …,
 * "__metadata__"?: {string: string}}`, then the raw little-endian data, with
 * offsets relative to its start. No npm reader is maintained, so this one
 * checks what the reference implementation checks: the header fits the file
 * (and 100 MB), every dtype is known, every byte range matches its shape,
 * and the ranges tile the data exactly, with no gap, overlap or excess.
 * Only the header is read here; tensor bytes are read by the caller, at
 * `dataStart + begin`, as much or as little as it needs.
 */
import type { FileHandle } from 'node:fs/promises'

import { OdysseyError, OdysseyFileError, OdysseyRangeError } from '../errors'
import { writeFileAtomic } from './fs'

/** Bytes per element of each safetensors dtype. */
export const SAFETENSORS_DTYPE_BYTES = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  U16: 2,
  I16: 2,
  F16: 2,
  BF16: 2,
  U32: 4,
  I32: 4,
  F32: 4,
  U64: 8,
  I64: 8,
  F64: 8,
} as const

export type SafetensorsDtype = keyof typeof SAFETENSORS_DTYPE_BYTES

/** Header limit of the reference implementation; a larger claimed length means a corrupt file. */
const MAX_HEADER_BYTES = 100_000_000
const LENGTH_PREFIX_BYTES = 8

/** Where one tensor lives in the file. */
export interface SafetensorsEntry {
  dtype: SafetensorsDtype
  shape: number[]
  /** Absolute file offset of the first byte. */
  fileOffset: number
  byteLength: number
}

export interface SafetensorsHeader {
  tensors: Map<string, SafetensorsEntry>
  metadata: Record<string, string>
  /** Absolute file offset of the data section. */
  dataStart: number
}

/** Reads and validates the header of an open safetensors file of `fileSize` bytes; `file` names it in errors. */
export async function readSafetensorsHeader(
  handle: FileHandle,
  file: string,
  fileSize: number,
): Promise<SafetensorsHeader> {
  const fail = (problem: string, byteOffset?: number): never => {
    throw new OdysseyFileError(file, `not a valid safetensors file: ${problem}`, { byteOffset })
  }
  if (fileSize < LENGTH_PREFIX_BYTES) fail(`${fileSize} bytes, shorter than the 8-byte header length`, 0)
  const prefix = await readExactly(handle, file, LENGTH_PREFIX_BYTES, 0)
  const claimed = Buffer.from(prefix.buffer, prefix.byteOffset, LENGTH_PREFIX_BYTES).readBigUInt64LE(0)
  const available = fileSize - LENGTH_PREFIX_BYTES
  if (claimed > BigInt(Math.min(available, MAX_HEADER_BYTES))) {
    fail(
      `header length ${claimed} exceeds the ${available} bytes after the length prefix (limit ${MAX_HEADER_BYTES})`,
      0,
    )
  }
  const headerBytes = Number(claimed)
  const text = Buffer.from(await readExactly(handle, file, headerBytes, LENGTH_PREFIX_BYTES)).toString('utf8')
  const dataStart = LENGTH_PREFIX_BYTES + headerBytes
  const header = parseHeaderJson(text, fail)
  const { tensors, metadata } = validateEntries(header, dataStart, fileSize - dataStart, fail)
  return { tensors, metadata, dataStart }
}

type Fail = (problem: string, byteOffset?: number) => never

function parseHeaderJson(text: string, fail: Fail): Record<string, unknown> {
  if (!text.startsWith('{')) fail('the header does not start with "{"', LENGTH_PREFIX_BYTES)
  let header: unknown
  try {
    header = JSON.parse(text)
  } catch (error) {
    fail(`the header is not JSON (${(error as Error).message})`, LENGTH_PREFIX_BYTES)
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('the header is not a JSON object')
  return header as Record<string, unknown>
}

/** Checks every entry and that their byte ranges tile `[0, dataBytes)` exactly. */
function validateEntries(header: Record<string, unknown>, dataStart: number, dataBytes: number, fail: Fail) {
  const metadata = validateMetadata(header.__metadata__, fail)
  const tensors = new Map<string, SafetensorsEntry>()
  const ranges: [number, number, string][] = []
  for (const [name, value] of Object.entries(header)) {
    if (name === '__metadata__') continue
    const { dtype, shape, begin, end } = validateEntry(name, value, fail)
    if (end > dataBytes) fail(`tensor "${name}" ends at data byte ${end}, past the ${dataBytes} data bytes of the file`)
    tensors.set(name, { dtype, shape, fileOffset: dataStart + begin, byteLength: end - begin })
    ranges.push([begin, end, name])
  }
  ranges.sort(([beginA], [beginB]) => beginA - beginB)
  let covered = 0
  for (const [begin, end, name] of ranges) {
    if (begin !== covered)
      fail(`tensor "${name}" starts at data byte ${begin}, expected ${covered} (a gap or an overlap)`)
    covered = end
  }
  if (covered !== dataBytes) fail(`the tensors cover ${covered} data bytes but the file has ${dataBytes}`)
  return { tensors, metadata }
}

function validateEntry(name: string, value: unknown, fail: Fail) {
  const entry = (value ?? {}) as { dtype?: unknown; shape?: unknown; data_offsets?: unknown }
  const { dtype, shape, data_offsets: offsets } = entry
  if (typeof dtype !== 'string' || !(dtype in SAFETENSORS_DTYPE_BYTES)) {
    fail(`tensor "${name}" has unknown dtype ${JSON.stringify(dtype)}`)
  }
  if (!isIntegerArray(shape)) fail(`tensor "${name}" has shape ${JSON.stringify(shape)}, not a list of sizes`)
  if (!isIntegerArray(offsets) || offsets.length !== 2 || offsets[0] > offsets[1]) {
    fail(`tensor "${name}" has data_offsets ${JSON.stringify(offsets)}, not [begin, end] with begin <= end`)
  }
  const [begin, end] = offsets
  const elements = shape.reduce((product, size) => product * size, 1)
  const expectedBytes = elements * SAFETENSORS_DTYPE_BYTES[dtype as SafetensorsDtype]
  if (end - begin !== expectedBytes) {
    fail(
      `tensor "${name}" ${dtype} [${shape.join(', ')}] needs ${expectedBytes} bytes, ` +
        `its data_offsets span ${end - begin}`,
    )
  }
  return { dtype: dtype as SafetensorsDtype, shape, begin, end }
}

function validateMetadata(value: unknown, fail: Fail): Record<string, string> {
  if (value === undefined) return {}
  const isStringMap =
    typeof value === 'object' && value !== null && Object.values(value).every((item) => typeof item === 'string')
  if (!isStringMap) fail('"__metadata__" must map strings to strings')
  return value as Record<string, string>
}

function isIntegerArray(value: unknown): value is number[] {
  return Array.isArray(value) && value.every((item) => Number.isSafeInteger(item) && item >= 0)
}

/** Exactly `length` bytes at `position`, in a fresh (so aligned) buffer; a short read means the file is truncated. */
export async function readExactly(
  handle: FileHandle,
  file: string,
  length: number,
  position: number,
): Promise<Uint8Array> {
  const target = new Uint8Array(length)
  await readInto(handle, file, target, position)
  return target
}

/** Fills `target` from `position`, looping over short reads. */
export async function readInto(handle: FileHandle, file: string, target: Uint8Array, position: number): Promise<void> {
  let done = 0
  while (done < target.length) {
    const { bytesRead } = await handle
      .read(target, done, target.length - done, position + done)
      .catch((error: Error) => {
        throw new OdysseyError('ODYSSEY_IO', `${file}: cannot read: ${error.message}`, { cause: error })
      })
    if (bytesRead === 0) {
      throw new OdysseyFileError(file, `truncated: wanted ${target.length} bytes, the file ends after ${done}`, {
        byteOffset: position + done,
      })
    }
    done += bytesRead
  }
}

/** One tensor to write: `data` holds its elements little-endian, as the typed arrays of x86 and ARM do. */
export interface SafetensorsTensor {
  name: string
  dtype: SafetensorsDtype
  shape: readonly number[]
  data: ArrayBufferView
}

/**
 * Writes `tensors` as a safetensors file, atomically (the bytes of {@link encodeSafetensors}).
 */
export async function writeSafetensors(
  file: string,
  tensors: readonly SafetensorsTensor[],
  metadata: Record<string, string> = {},
): Promise<void> {
  await writeFileAtomic(file, [encodeSafetensors(tensors, metadata)])
}

/**
 * The bytes of a safetensors file holding `tensors`, in the given order; the header is padded
 * with spaces so the data starts on an 8-byte boundary, as the reference writer does. No
 * file system and no `Buffer`: a browser page builds its downloads with it.
 */
export function encodeSafetensors(
  tensors: readonly SafetensorsTensor[],
  metadata: Record<string, string> = {},
): Uint8Array {
  const header: Record<string, unknown> = Object.keys(metadata).length > 0 ? { __metadata__: metadata } : {}
  let offset = 0
  for (const { name, dtype, shape, data } of tensors) {
    const expected = shape.reduce((product, size) => product * size, 1) * SAFETENSORS_DTYPE_BYTES[dtype]
    if (data.byteLength !== expected) {
      throw new OdysseyRangeError(
        'ODYSSEY_SHAPE',
        `writeSafetensors: tensor "${name}" ${dtype} [${shape.join(', ')}] ` +
          `needs ${expected} bytes, got ${data.byteLength}`,
      )
    }
    header[name] = { dtype, shape, data_offsets: [offset, offset + data.byteLength] }
    offset += data.byteLength
  }
  const json = new TextEncoder().encode(JSON.stringify(header))
  const headerLength = json.length + ((8 - (json.length % 8)) % 8)
  const bytes = new Uint8Array(LENGTH_PREFIX_BYTES + headerLength + offset)
  new DataView(bytes.buffer).setBigUint64(0, BigInt(headerLength), true)
  bytes.set(json, LENGTH_PREFIX_BYTES)
  bytes.fill(0x20, LENGTH_PREFIX_BYTES + json.length, LENGTH_PREFIX_BYTES + headerLength)
  let position = LENGTH_PREFIX_BYTES + headerLength
  for (const { data } of tensors) {
    bytes.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), position)
    position += data.byteLength
  }
  return bytes
}
