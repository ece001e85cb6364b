/**
 * Atomic file replacement for the demo's outputs: the data is written to a hidden temporary file in
 * the target's folder, flushed, then renamed over the target. A reader sees the old file or the new
 * one, never a part; on any error the temporary file is removed and the old file is left as it was.
 */
import { randomBytes } from 'crypto';
import { promises as fsp } from 'fs';
import * as path from 'path';

/** The temporary name used for `target` while it is written (hidden, in the same folder). */
export function temporaryName(target: string): string {
  const abs = path.resolve(target);
  return path.join(path.dirname(abs), `.${path.basename(abs)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

/** Writes `data` to `target` atomically; the folder must exist. */
export async function writeFileAtomic(target: string, data: string | Uint8Array, opts: { fsync?: boolean } = {}): Promise<void> {
  const abs = path.resolve(target);
  const tmp = temporaryName(abs);
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(tmp, 'wx');
    await fh.writeFile(data);
    if (opts.fsync !== false) await fh.sync();
    await fh.close();
    fh = undefined;
    await fsp.rename(tmp, abs);
  } catch (e) {
    if (fh) await fh.close().catch(() => undefined);
    await fsp.unlink(tmp).catch(() => undefined);
    throw e;
  }
}
