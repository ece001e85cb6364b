/**
 * Atomic writes of checkpoint files (util/files.ts does the work): errors become CheckpointErrors
 * naming the file.
 */
import { promises as fsp } from 'fs';
import * as path from 'path';
import { CheckpointError, messageOf } from './errors';
import { writeFileAtomic } from '../util/files';

export type FileHandle = fsp.FileHandle;

/** Writes all of `data` at the handle's current position. */
export async function writeAll(fh: FileHandle, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) {
    const { bytesWritten } = await fh.write(data, off, data.length - off);
    if (bytesWritten <= 0) throw new Error('write made no progress');
    off += bytesWritten;
  }
}

/**
 * Creates a weight file atomically (util/files.ts writeFileAtomic) with what `write` writes to the
 * handle. Errors become a CheckpointError naming `target` (the original error is its `cause`).
 */
export async function writeWeightFile(target: string, write: (fh: FileHandle) => Promise<void>): Promise<void> {
  try {
    await writeFileAtomic(target, write);
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EACCES' || code === 'EROFS' || code === 'ENOTDIR') {
      throw new CheckpointError(`cannot create a file in ${path.dirname(path.resolve(target))}: ${messageOf(e)}`, { file: target, cause: e });
    }
    throw new CheckpointError(`not written (the previous file, if any, is unchanged): ${messageOf(e)}`, { file: target, cause: e });
  }
}
