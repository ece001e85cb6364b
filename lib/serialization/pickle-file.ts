/**
 * Plain pickle files, read safely with a caller's allowlist (vocabulary/book-pickle.ts reads the
 * book's `vocabulary.pkl` with it). Nothing in the file runs.
 */
import { promises as fsp } from 'fs';
import { CheckpointError, messageOf } from './errors';
import { typeName, unpickle, type Allowlist } from './pickle';

export interface ReadPickleOptions {
  /** Allowed globals (default: none). */
  allow?: Allowlist;
  /** The largest file read (default 1 GiB). */
  maxBytes?: number;
  /** Names the data in messages when a Buffer is read. */
  name?: string;
}

async function readBytes(input: string | Uint8Array, maxBytes: number, name: string): Promise<Buffer> {
  if (input instanceof Uint8Array) return Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  if (typeof input !== 'string') throw new TypeError(`Expected a file path or a Buffer but received ${typeName(input)}`);
  try {
    const st = await fsp.stat(input);
    if (!st.isFile()) throw new CheckpointError('not a regular file', { file: name });
    if (st.size > maxBytes) throw new CheckpointError(`${st.size} bytes, more than the limit of ${maxBytes}`, { file: name });
    return await fsp.readFile(input);
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new CheckpointError(`cannot read: ${code === 'ENOENT' ? 'no such file' : messageOf(e)}`, { file: name, cause: e });
  }
}

/** Reads one pickle from a file (or bytes); the value as {@link unpickle} gives it. */
export async function readPickleFile(input: string | Uint8Array, opts: ReadPickleOptions = {}): Promise<unknown> {
  const name = opts.name ?? (typeof input === 'string' ? input : '<buffer>');
  const data = await readBytes(input, opts.maxBytes ?? 1 << 30, name);
  if (data.length === 0) throw new CheckpointError('the file is empty', { file: name });
  return unpickle(data, { allow: opts.allow, source: name });
}
