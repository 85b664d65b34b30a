/**
 * Streams the records of one top-level array of a JSON file (`$.questions.*`,
 * `$.annotations.*`) without holding the whole document: each record is
 * handed over as soon as it is parsed and then dropped by the parser, so a
 * 300 MB annotations file costs what the caller keeps of it, not 3× its size.
 */
import { createReadStream } from 'node:fs'

import { Tokenizer, TokenParser } from '@streamparser/json'

import { OdysseyError, isOdysseyError } from '../errors'
import { VqaFileError } from './errors'

/** Read size; large enough that the parser, not the syscalls, sets the pace. */
const CHUNK_BYTES = 1 << 20

/**
 * Calls `onRecord(value, index)` for every element of the array under the
 * top-level key `field` of `file`, in order; resolves to the number of
 * records. Throws `VqaFileError` for malformed JSON (with the byte offset),
 * for `field` missing, not an array or empty, and rethrows what `onRecord` throws.
 */
export async function streamJsonArray(
  file: string,
  field: string,
  onRecord: (value: unknown, index: number) => void,
): Promise<number> {
  const parser = new ArrayRecordParser(file, field, onRecord)
  try {
    for await (const chunk of createReadStream(file, { highWaterMark: CHUNK_BYTES })) parser.write(chunk as Buffer)
  } catch (error) {
    if (isOdysseyError(error)) throw error
    throw new OdysseyError('ODYSSEY_IO', `${file}: cannot read: ${(error as Error).message}`, { cause: error })
  }
  return parser.end()
}

/** A tokenizer and token parser wired by hand, so every error can carry the byte offset of the last token. */
class ArrayRecordParser {
  private readonly tokenizer = new Tokenizer()
  private readonly tokenParser: TokenParser
  private lastTokenOffset = 0
  private bytesRead = 0
  private records = 0

  constructor(
    private readonly file: string,
    private readonly field: string,
    onRecord: (value: unknown, index: number) => void,
  ) {
    this.tokenParser = new TokenParser({ paths: [`$.${field}.*`], keepStack: false })
    this.tokenizer.onToken = (token) => {
      this.lastTokenOffset = token.offset
      this.tokenParser.write(token)
    }
    this.tokenizer.onEnd = () => {
      if (!this.tokenParser.isEnded) this.tokenParser.end()
    }
    this.tokenParser.onEnd = () => {
      if (!this.tokenizer.isEnded) this.tokenizer.end()
    }
    this.tokenParser.onValue = ({ value, key, parent }) => {
      if (!Array.isArray(parent))
        this.fail(`"${field}" must be an array, found an object with key ${JSON.stringify(key)}`)
      onRecord(value, this.records)
      this.records += 1
    }
  }

  write(chunk: Buffer) {
    this.bytesRead += chunk.length
    this.rethrowAsFileError(() => this.tokenizer.write(chunk))
  }

  /** Ends the document; the record count, or an error if the document is incomplete or has no records. */
  end(): number {
    if (!this.tokenizer.isEnded) this.rethrowAsFileError(() => this.tokenizer.end())
    if (this.records === 0) {
      this.fail(`no records: the top level must be an object whose "${this.field}" is a non-empty array`)
    }
    return this.records
  }

  private fail(problem: string): never {
    throw new VqaFileError(this.file, problem)
  }

  /** Runs a parser step: its errors become `VqaFileError`s at a byte offset; those of `onRecord` pass through. */
  private rethrowAsFileError(step: () => void) {
    try {
      step()
    } catch (error) {
      throw isOdysseyError(error) ? error : this.asFileError(error as Error)
    }
  }

  private asFileError(error: Error): VqaFileError {
    const atEnd = /ended/i.test(error.message) && !/Unexpected/.test(error.message)
    const reported = /absolute position "(\d+)"/.exec(error.message)
    const byteOffset = atEnd ? this.bytesRead : reported ? Number(reported[1]) : this.lastTokenOffset
    const problem = atEnd
      ? 'malformed JSON: the file ends in the middle of the document'
      : `malformed JSON: ${error.message}`
    return new VqaFileError(this.file, problem, { byteOffset }, { cause: error })
  }
}
