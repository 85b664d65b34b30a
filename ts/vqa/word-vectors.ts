/**
 * Pretrained word vectors (SPEC §4: "pretrained 300-d vectors such as GloVe")
 * from the plain-text format GloVe ships and word2vec writes with
 * `binary=False`: one word per line followed by its numbers, separated by
 * spaces; word2vec adds a first line `<count> <dim>`, which gives the
 * width (without it, the first vector line does, so its word must not
 * contain a space). The file is streamed
 * line by line and only the vectors of the words asked for are kept, so the
 * 5 GB Common Crawl file costs the memory of one vocabulary.
 */
import { createReadStream } from 'node:fs'
import { createInterface } from 'node:readline'

import { OdysseyError, isOdysseyError } from '../errors'
import { VqaFileError } from './errors'

/** The vectors of the asked-for words the file has. */
export interface WordVectors {
  /** Width of every vector. */
  dim: number
  /** Word → its vector `[dim]`. */
  vectors: ReadonlyMap<string, Float32Array>
  /** Lines read (header excluded), whether or not their word was wanted. */
  linesRead: number
}

export interface ReadWordVectorsOptions {
  /** Stop after this many vector lines (GloVe files are sorted by frequency). Default: the whole file. */
  maxLines?: number
}

/** A word2vec text header: two positive integers and nothing else. */
const WORD2VEC_HEADER = /^\s*\d+\s+\d+\s*$/

/**
 * Reads the vectors of `words` from a GloVe / word2vec text file. Lines are
 * split at single spaces (GloVe's Common Crawl files contain words with
 * other whitespace in them), so a word is everything before the last `dim`
 * fields. Words are matched exactly (GloVe's are lowercase, as the
 * tokenizer's). A word listed twice keeps its first vector.
 *
 * Throws `VqaFileError` naming the line for a line whose width differs from
 * the first one's or that holds a value that is not a finite number, and
 * when the file has no vector line; `OdysseyError` (`ODYSSEY_IO`) when the file cannot be read.
 */
export async function readWordVectors(
  file: string,
  words: Iterable<string>,
  options: ReadWordVectorsOptions = {},
): Promise<WordVectors> {
  const wanted = new Set(words)
  const reader = new VectorLineReader(file, wanted)
  const lines = createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity })
  try {
    for await (const line of lines) {
      reader.read(line)
      if (options.maxLines !== undefined && reader.linesRead >= options.maxLines) break
    }
  } catch (error) {
    if (isOdysseyError(error)) throw error
    throw new OdysseyError('ODYSSEY_IO', `${file}: cannot read: ${(error as Error).message}`, { cause: error })
  } finally {
    lines.close()
  }
  return reader.result()
}

/** Parses one line at a time, learning the width from the first vector line. */
class VectorLineReader {
  private lineNumber = 0
  private dim: number | undefined
  private readonly vectors = new Map<string, Float32Array>()
  linesRead = 0

  constructor(
    private readonly file: string,
    private readonly wanted: ReadonlySet<string>,
  ) {}

  read(line: string): void {
    this.lineNumber += 1
    if (line.trim() === '') return
    if (this.lineNumber === 1 && WORD2VEC_HEADER.test(line)) {
      this.dim = Number(line.trim().split(/\s+/)[1])
      return
    }
    const fields = line.trimEnd().split(' ')
    this.dim ??= this.firstLineWidth(fields)
    if (fields.length < this.dim + 1) this.fail(`has ${fields.length - 1} values, expected ${this.dim}`)
    this.linesRead += 1
    const word = fields.slice(0, fields.length - this.dim).join(' ')
    if (!this.wanted.has(word) || this.vectors.has(word)) return
    this.vectors.set(word, this.parseValues(fields.slice(fields.length - this.dim)))
  }

  result(): WordVectors {
    if (this.dim === undefined) throw new VqaFileError(this.file, 'no word vectors (expected lines "word v1 v2 ...")')
    return { dim: this.dim, vectors: this.vectors, linesRead: this.linesRead }
  }

  /** Without a word2vec header the first vector line decides the width: everything after its word. */
  private firstLineWidth(fields: string[]): number {
    if (fields.length < 2) this.fail('expected "word v1 v2 ...", got a single field')
    return fields.length - 1
  }

  private parseValues(fields: string[]): Float32Array {
    const values = new Float32Array(fields.length)
    fields.forEach((field, k) => {
      const value = Number(field)
      if (field === '' || !Number.isFinite(value))
        this.fail(`value ${k + 1} is ${JSON.stringify(field)}, not a finite number`)
      values[k] = value
    })
    return values
  }

  private fail(problem: string): never {
    throw new VqaFileError(this.file, `line ${this.lineNumber}: ${problem}`)
  }
}
