/**
 * Precomputed image features (SPEC §4: "a fixed feature vector per image")
 * in a safetensors file with two tensors:
 * - `features`  F32 `[N, D]`, row i the features of image `image_ids[i]`;
 * - `image_ids` I64 `[N]`, distinct, non-negative.
 * Small files are read whole; large ones (VGG-16's 4096 floats × 123k COCO
 * images is 2 GB) stay on disk and rows are read by random access.
 */
import { open, type FileHandle } from 'node:fs/promises'

import { OdysseyError, OdysseyRangeError } from '../errors'
import { asVqaFileError, VqaFileError, VqaLookupError, VqaShapeError } from './errors'
import {
  readExactly,
  readInto,
  readSafetensorsHeader,
  writeSafetensors,
  type SafetensorsDtype,
  type SafetensorsEntry,
  type SafetensorsHeader,
} from '../util/safetensors'

const FLOAT_BYTES = 4

export interface OpenImageFeaturesOptions {
  /** The D the caller's model needs; a file with another D throws `VqaShapeError`. */
  expectedDim?: number
  /**
   * Read the whole feature matrix into memory when it is at most this many
   * bytes (default 512 MiB); larger files are read row by row on demand.
   * 0 forces random access, `Infinity` forces loading.
   */
  inMemoryLimitBytes?: number
}

/** Something that needs an image: a question, or an example joined from the files. */
export interface ImageReference {
  imageId: number
  questionId?: number
}

/**
 * Image id → feature row. Call `close()` when done (a no-op if the file was
 * read whole).
 */
export class ImageFeatures {
  /** Row of each image id. */
  private readonly rows: ReadonlyMap<number, number>

  private constructor(
    readonly file: string,
    /** Number of images N. */
    readonly count: number,
    /** Feature dimension D. */
    readonly dim: number,
    /** `[N]`: the id of each row, in file order. */
    readonly imageIds: readonly number[],
    private readonly source: RowSource,
  ) {
    this.rows = new Map(imageIds.map((imageId, row) => [imageId, row]))
  }

  /**
   * Opens a features file. Throws `VqaFileError` for a corrupt file, missing
   * tensors, a wrong dtype or shape, duplicate or negative ids, and
   * `VqaShapeError` when `expectedDim` differs from the file's D.
   */
  static async open(file: string, options: OpenImageFeaturesOptions = {}): Promise<ImageFeatures> {
    const handle = await openForReading(file)
    try {
      const { size } = await handle.stat()
      const header = await readSafetensorsHeader(handle, file, size)
      const { features, ids } = featureEntries(file, header)
      const [count, dim] = features.shape as [number, number]
      if (options.expectedDim !== undefined && options.expectedDim !== dim) {
        throw new VqaShapeError(
          file,
          [count, options.expectedDim],
          [count, dim],
          `features are [${count}, ${dim}], but D = ${options.expectedDim} is expected`,
        )
      }
      const imageIds = await readImageIds(handle, file, ids)
      const loadWhole = features.byteLength <= (options.inMemoryLimitBytes ?? 512 * 2 ** 20)
      const source = loadWhole ? await InMemoryRows.load(handle, file, features) : new FileRows(handle, file, features)
      if (loadWhole) await handle.close()
      return new ImageFeatures(file, count, dim, imageIds, source)
    } catch (error) {
      await handle.close().catch(() => undefined)
      throw asVqaFileError(error)
    }
  }

  has(imageId: number): boolean {
    return this.rows.has(imageId)
  }

  /**
   * Features of `imageIds`: `[batch, D]`. Throws `VqaLookupError` for an id
   * the file does not have, `VqaFileError` for a row holding NaN or ±Infinity.
   */
  async gather(imageIds: ArrayLike<number>): Promise<Float32Array> {
    const out = new Float32Array(imageIds.length * this.dim)
    const rows = Array.from(imageIds, (imageId) => this.rowOf(imageId))
    await this.source.read(rows, out)
    rows.forEach((row, position) => {
      this.rejectNonFinite(out.subarray(position * this.dim, (position + 1) * this.dim), row)
    })
    return out
  }

  /**
   * Checks that every image referenced by `items` (questions or examples) has
   * features; throws `VqaLookupError` for the first that does not, naming its
   * index in `items`, its question_id and, if given, the questions file.
   */
  requireImages(items: readonly ImageReference[], questionsFile?: string): void {
    items.forEach(({ imageId, questionId }, index) => {
      if (this.rows.has(imageId)) return
      const source = questionsFile === undefined ? '' : ` of ${questionsFile}`
      const id = questionId === undefined ? '' : ` (question_id ${questionId})`
      throw new VqaLookupError(
        imageId,
        `record ${index}${id}${source} needs image_id ${imageId}, which has no features in ${this.file}`,
      )
    })
  }

  async close(): Promise<void> {
    await this.source.close()
  }

  private rowOf(imageId: number): number {
    const row = this.rows.get(imageId)
    if (row === undefined) throw new VqaLookupError(imageId, `${this.file}: no features for image_id ${imageId}`)
    return row
  }

  private rejectNonFinite(values: Float32Array, row: number) {
    const column = values.findIndex((value) => !Number.isFinite(value))
    if (column >= 0) {
      const problem = `row ${row} (image_id ${this.imageIds[row]}) has ${values[column]} at column ${column}`
      throw new VqaFileError(this.file, problem)
    }
  }
}

async function openForReading(file: string): Promise<FileHandle> {
  try {
    return await open(file, 'r')
  } catch (error) {
    throw new OdysseyError('ODYSSEY_IO', `${file}: cannot open: ${(error as Error).message}`, { cause: error })
  }
}

/** The two tensors, with the dtypes and shapes this format requires. */
function featureEntries(file: string, header: SafetensorsHeader) {
  const features = requireEntry(file, header, 'features', 'F32', 2)
  const ids = requireEntry(file, header, 'image_ids', 'I64', 1)
  const [count, dim] = features.shape as [number, number]
  if (count === 0 || dim === 0)
    throw new VqaFileError(file, `"features" is [${count}, ${dim}]: no images or no dimensions`)
  if (ids.shape[0] !== count) {
    throw new VqaFileError(file, `"image_ids" has ${ids.shape[0]} entries for ${count} feature rows`)
  }
  return { features, ids }
}

function requireEntry(file: string, header: SafetensorsHeader, name: string, dtype: SafetensorsDtype, rank: number) {
  const entry = header.tensors.get(name)
  if (entry === undefined) {
    throw new VqaFileError(file, `no tensor "${name}" (found: ${[...header.tensors.keys()].join(', ') || 'none'})`)
  }
  if (entry.dtype !== dtype) throw new VqaFileError(file, `"${name}" is ${entry.dtype}, expected ${dtype}`)
  if (entry.shape.length !== rank) {
    throw new VqaFileError(file, `"${name}" has shape [${entry.shape.join(', ')}], expected ${rank} dimension(s)`)
  }
  return entry
}

/** `[N]` ids as numbers; each must be a distinct non-negative safe integer. */
async function readImageIds(handle: FileHandle, file: string, entry: SafetensorsEntry): Promise<number[]> {
  const bytes = await readExactly(handle, file, entry.byteLength, entry.fileOffset)
  const raw = new BigInt64Array(bytes.buffer, bytes.byteOffset, entry.byteLength / 8)
  const seen = new Map<number, number>()
  return Array.from(raw, (value, row) => {
    const imageId = Number(value)
    if (value < 0n || !Number.isSafeInteger(imageId))
      throw new VqaFileError(file, `image_ids[${row}] = ${value} is not a valid id`)
    const first = seen.get(imageId)
    if (first !== undefined) throw new VqaFileError(file, `image_ids[${row}] = ${imageId} repeats image_ids[${first}]`)
    seen.set(imageId, row)
    return imageId
  })
}

/** Copies rows of the feature matrix into a `[rows.length, D]` output. */
interface RowSource {
  read(rows: readonly number[], out: Float32Array): Promise<void>
  close(): Promise<void>
}

class InMemoryRows implements RowSource {
  private constructor(
    private readonly matrix: Float32Array,
    private readonly dim: number,
  ) {}

  static async load(handle: FileHandle, file: string, entry: SafetensorsEntry): Promise<InMemoryRows> {
    const bytes = await readExactly(handle, file, entry.byteLength, entry.fileOffset)
    return new InMemoryRows(
      new Float32Array(bytes.buffer, bytes.byteOffset, entry.byteLength / FLOAT_BYTES),
      entry.shape[1] as number,
    )
  }

  async read(rows: readonly number[], out: Float32Array): Promise<void> {
    rows.forEach((row, position) => {
      out.set(this.matrix.subarray(row * this.dim, (row + 1) * this.dim), position * this.dim)
    })
  }

  async close(): Promise<void> {}
}

class FileRows implements RowSource {
  private readonly rowBytes: number

  constructor(
    private readonly handle: FileHandle,
    private readonly file: string,
    private readonly entry: SafetensorsEntry,
  ) {
    this.rowBytes = (entry.shape[1] as number) * FLOAT_BYTES
  }

  /** One positioned read per row straight into `out`, all in flight at once. */
  async read(rows: readonly number[], out: Float32Array): Promise<void> {
    await Promise.all(
      rows.map((row, position) => {
        const target = new Uint8Array(out.buffer, out.byteOffset + position * this.rowBytes, this.rowBytes)
        return readInto(this.handle, this.file, target, this.entry.fileOffset + row * this.rowBytes)
      }),
    )
  }

  async close(): Promise<void> {
    await this.handle.close()
  }
}

/** What `writeImageFeatures` writes. */
export interface ImageFeaturesData {
  /** `[N]` distinct non-negative integer ids. */
  imageIds: ArrayLike<number>
  /** `[N, D]` row-major. */
  features: Float32Array
  dim: number
}

/** Writes a features file (safetensors, `image_ids` I64 then `features` F32), atomically. */
export async function writeImageFeatures(file: string, data: ImageFeaturesData): Promise<void> {
  const { imageIds, features, dim } = data
  if (!Number.isInteger(dim) || dim < 1 || features.length !== imageIds.length * dim) {
    throw new OdysseyRangeError(
      'ODYSSEY_SHAPE',
      `writeImageFeatures: features has ${features.length} values, expected [${imageIds.length}, ${dim}]`,
    )
  }
  const distinct = new Set<number>()
  const ids = BigInt64Array.from(Array.from(imageIds), (imageId, row) => {
    if (!Number.isSafeInteger(imageId) || imageId < 0 || distinct.has(imageId)) {
      throw new OdysseyRangeError(
        'ODYSSEY_INVALID',
        `writeImageFeatures: imageIds[${row}] = ${imageId} is not a new non-negative integer id`,
      )
    }
    distinct.add(imageId)
    return BigInt(imageId)
  })
  await writeSafetensors(file, [
    { name: 'image_ids', dtype: 'I64', shape: [imageIds.length], data: ids },
    { name: 'features', dtype: 'F32', shape: [imageIds.length, dim], data: features },
  ])
}
