/**
 * Atomic file replacement: write a temporary file in the target's folder, fsync it, rename it over
 * the target, fsync the folder. Readers see the old file or the new one, never a part; on any error
 * the temporary file is removed and the old file is left as it was.
 */
import { randomBytes } from 'crypto';
import { promises as fsp } from 'fs';
import * as path from 'path';
import { CheckpointError, messageOf } from './errors';

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
 * Creates `target` atomically with what `write` writes to the handle. Errors become a
 * CheckpointError naming `target` (the original error is its `cause`).
 */
export async function writeFileAtomic(target: string, write: (fh: FileHandle) => Promise<void>): Promise<void> {
  const abs = path.resolve(target);
  const dir = path.dirname(abs);
  const tmp = path.join(dir, `.${path.basename(abs)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  let fh: FileHandle | undefined;
  try {
    fh = await fsp.open(tmp, 'wx');
  } catch (e) {
    throw new CheckpointError(`cannot create a file in ${dir}: ${messageOf(e)}`, { file: target, cause: e });
  }
  try {
    await write(fh);
    await fh.sync();
    await fh.close();
    fh = undefined;
    await fsp.rename(tmp, abs);
  } catch (e) {
    if (fh) await fh.close().catch(() => undefined);
    await fsp.unlink(tmp).catch(() => undefined);
    if (e instanceof CheckpointError) throw e;
    throw new CheckpointError(`not written (the previous file, if any, is unchanged): ${messageOf(e)}`, { file: target, cause: e });
  }
  // Make the rename itself durable. Some file systems cannot fsync a folder; the file is in place.
  try {
    const d = await fsp.open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  } catch {
    /* best effort */
  }
}
