/**
 * Atomic file replacement: readers see the old file or the whole new one,
 * never a half-written file, even if the process dies mid-write.
 */
import { randomBytes } from 'node:crypto'
import { open, rename, unlink } from 'node:fs/promises'
import { dirname } from 'node:path'

import { OdysseyError } from '../errors'

/**
 * Writes `chunks` in order to a temporary file beside `file`, fsyncs it,
 * renames it over `file` and fsyncs the directory (POSIX), so the rename
 * itself survives a crash. Throws `OdysseyError` (`ODYSSEY_IO`) naming `file`.
 */
export async function writeFileAtomic(file: string, chunks: readonly (string | Uint8Array)[]): Promise<void> {
  const temporary = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`
  try {
    await writeAndSync(temporary, chunks)
    await rename(temporary, file)
    await syncDirectory(dirname(file))
  } catch (error) {
    await unlink(temporary).catch(() => undefined)
    throw new OdysseyError('ODYSSEY_IO', `${file}: cannot write: ${(error as Error).message}`, { cause: error })
  }
}

async function writeAndSync(file: string, chunks: readonly (string | Uint8Array)[]) {
  const handle = await open(file, 'wx')
  try {
    // writeFile, unlike write, loops until the whole chunk is written, continuing at the current position.
    for (const chunk of chunks) await handle.writeFile(chunk)
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/** Windows cannot open a directory for fsync; there the rename is as durable as the OS makes it. */
async function syncDirectory(directory: string) {
  if (process.platform === 'win32') return
  const handle = await open(directory, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}
