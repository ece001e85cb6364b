/** The bytes of a weight file, read by ranges from a file or a buffer, and what format they are in. */
import { promises as fsp } from 'fs';
import { CheckpointError, messageOf } from './errors';
import { typeName } from './pickle';
import { Scratch, readFully } from './zip';
import type { FileHandle } from './atomic';

// ---------------------------------------------------------------------------------------------
// Sources

/** A file or a buffer, read by ranges. */
export interface Source {
  readonly name: string;
  readonly size: number;
  readonly buffer?: Buffer;
  readonly handle?: FileHandle;
  /** Bytes [pos, pos + len), in a new buffer; the file must hold them all. */
  read(pos: number, len: number): Promise<Buffer>;
  /** The same bytes, in a buffer that is valid only until the next call of `view`. */
  view(pos: number, len: number): Promise<Buffer>;
  close(): Promise<void>;
}

export async function openSource(input: string | Uint8Array, label?: string): Promise<Source> {
  if (input instanceof Uint8Array) {
    const buffer = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
    const read = async (pos: number, len: number): Promise<Buffer> => {
      if (pos + len > buffer.length) throw new CheckpointError(`truncated: ${len} bytes needed at offset ${pos} but the data ends at ${buffer.length}`, { file: label ?? '<buffer>' });
      return buffer.subarray(pos, pos + len);
    };
    return { name: label ?? '<buffer>', size: buffer.length, buffer, read, view: read, close: async () => undefined };
  }
  if (typeof input !== 'string') throw new TypeError(`Expected a file path or a Buffer but received ${typeName(input)}`);
  const name = label ?? input;
  let handle: FileHandle;
  let size: number;
  try {
    handle = await fsp.open(input, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : code === 'EACCES' ? 'permission denied' : messageOf(e);
    throw new CheckpointError(`cannot open: ${why}`, { file: name, cause: e });
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new CheckpointError('not a regular file', { file: name });
    size = st.size;
  } catch (e) {
    await handle.close();
    throw e instanceof CheckpointError ? e : new CheckpointError(`cannot open: ${messageOf(e)}`, { file: name, cause: e });
  }
  const scratch = new Scratch();
  const fill = async (buf: Buffer, pos: number): Promise<Buffer> => {
    try {
      await readFully(handle, buf, pos, `the ${buf.length} bytes at offset ${pos}`);
    } catch (e) {
      throw new CheckpointError(`truncated: ${messageOf(e)}`, { file: name, cause: e });
    }
    return buf;
  };
  return {
    name,
    size,
    handle,
    read: (pos, len) => fill(Buffer.allocUnsafe(len), pos),
    view: (pos, len) => fill(scratch.get(len), pos),
    close: () => handle.close(),
  };
}

// ---------------------------------------------------------------------------------------------
// Format detection

export type WeightFileFormat = 'zip' | 'legacy' | 'safetensors';

/** The longest safetensors header accepted (the reference implementation's limit). */
export const MAX_SAFETENSORS_HEADER = 100_000_000;

function hexHead(b: Uint8Array): string {
  return [...b.subarray(0, 8)].map((x) => x.toString(16).padStart(2, '0')).join(' ');
}

/** Tells the format from the first bytes of a file of `size` bytes; throws naming what it found instead. */
export function detectFormat(head: Uint8Array, size: number, file = '<buffer>'): WeightFileFormat {
  if (size === 0) throw new CheckpointError('the file is empty', { file });
  if (head[0] === 0x50 && head[1] === 0x4b && ((head[2] === 3 && head[3] === 4) || (head[2] === 5 && head[3] === 6))) return 'zip';
  // safetensors before legacy: a header of 640..1407 bytes whose length starts 0x80 0x02..0x05
  // looks like a pickle's PROTO opcode, while no legacy file has '{' at byte 8 (its magic number
  // is there) or a plausible header length in its first 8 bytes.
  if (size >= 10 && head.length >= 10 && head[8] === 0x7b) {
    const n = Buffer.from(head.buffer, head.byteOffset, 8).readBigUInt64LE(0);
    if (n >= 2n && n <= BigInt(MAX_SAFETENSORS_HEADER) && n + 8n <= BigInt(size)) return 'safetensors';
  }
  if (head[0] === 0x80 && head[1] >= 2 && head[1] <= 5) return 'legacy';
  if (head.length >= 262 && Buffer.from(head.buffer, head.byteOffset + 257, 5).toString('latin1') === 'ustar') {
    throw new CheckpointError('a tar archive: the tar-based format of PyTorch before 0.4 is not supported', { file });
  }
  if (head[0] === 0x80) throw new CheckpointError(`a pickle of protocol ${head[1]}, not a PyTorch file (torch.save writes protocol 2)`, { file });
  throw new CheckpointError(`not a PyTorch (zip or legacy) or safetensors file (it starts with ${hexHead(head)})`, { file });
}

