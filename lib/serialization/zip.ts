/**
 * The zip container of PyTorch files, read through `yauzl` (zip64 included; every record's
 * CRC-32 is checked, which yauzl leaves to its users). The writer is zip-writer.ts.
 */
import { constants as bufferConstants } from 'buffer';
import { promises as fsp } from 'fs';
import { Readable } from 'stream';
import * as zlib from 'zlib';
import * as yauzl from 'yauzl';
import type { FileHandle } from './atomic';

// ---------------------------------------------------------------------------------------------
// CRC-32

let table: Uint32Array | undefined;

function crc32Fallback(data: Uint8Array, prev: number): number {
  if (!table) {
    table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
  }
  let c = ~prev >>> 0;
  for (let i = 0; i < data.length; i++) c = table[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

const nativeCrc = (zlib as unknown as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;

/** CRC-32 (zip's) of `data`, continuing from `prev`. Uses zlib's native code where Node has it. */
export function crc32(data: Uint8Array, prev = 0): number {
  return nativeCrc ? nativeCrc(data, prev) >>> 0 : crc32Fallback(data, prev);
}

// ---------------------------------------------------------------------------------------------
// Reading

/**
 * One reusable read buffer. Reading each storage into fresh memory costs a page fault per 4 KiB;
 * reading into the same warm buffer, which libtorch then copies into the tensor, costs one copy.
 * What `get` returns is valid until its next call.
 */
export class Scratch {
  private buf: Buffer = Buffer.alloc(0);
  get(n: number): Buffer {
    if (this.buf.length < n) this.buf = Buffer.allocUnsafe(Math.max(n, Math.min(2 * this.buf.length, bufferConstants.MAX_LENGTH)));
    return this.buf.subarray(0, n);
  }
}

/** Reads into `into` from the file at `pos` until it is full or the file ends; the bytes read. */
async function readUpTo(handle: FileHandle, into: Buffer, pos: number): Promise<number> {
  let off = 0;
  while (off < into.length) {
    const { bytesRead } = await handle.read(into, off, into.length - off, pos + off);
    if (bytesRead === 0) break;
    off += bytesRead;
  }
  return off;
}

/** Fills `into` from the file at `pos`; throws `what` is truncated when the file ends first. */
export async function readFully(handle: FileHandle, into: Buffer, pos: number, what: string): Promise<void> {
  const got = await readUpTo(handle, into, pos);
  if (got < into.length) throw new Error(`${what} is truncated: ${got} of ${into.length} bytes present`);
}

export type ZipEntry = yauzl.Entry;

/**
 * yauzl's reader of an open file, through a read-ahead window. yauzl reads each central-directory
 * entry in two small reads: for the 939 records of a ResNet-152 checkpoint, nearly two thousand
 * round trips to libuv's thread pool (about 0.1 s here). Through the window the central directory
 * comes in a few reads. (The local headers of the stored records a weight file's storages are in
 * are read all at once, natively: readStoredRecords in torch-file.ts.) Reads are served one at a
 * time, in the order asked.
 */
class WindowedFileReader extends yauzl.RandomAccessReader {
  private window = { start: 0, data: Buffer.alloc(0) };
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly handle: FileHandle,
    private readonly size: number,
    private readonly windowBytes = 64 * 1024,
  ) {
    super();
  }

  override read(buffer: Buffer, offset: number, length: number, position: number, callback: (err: Error | null, bytesRead?: number) => void): void {
    const serve = async (): Promise<number> => {
      let w = this.window;
      if (position < w.start || position + length > w.start + w.data.length) {
        const want = Math.max(0, Math.min(Math.max(length, this.windowBytes), this.size - position));
        const data = Buffer.allocUnsafe(want);
        w = this.window = { start: position, data: data.subarray(0, await readUpTo(this.handle, data, position)) };
      }
      const from = position - w.start;
      return w.data.copy(buffer, offset, from, Math.min(from + length, w.data.length));
    };
    const run = this.queue.then(serve);
    this.queue = run.then(
      () => undefined,
      () => undefined,
    );
    run.then(
      (n) => callback(null, n),
      (e: Error) => callback(e),
    );
  }

  // A stream of the range that leaves the file open when yauzl destroys it (a FileHandle's own
  // read stream closes its handle then).
  override _readStreamForRange(start: number, end: number): Readable {
    const handle = this.handle;
    async function* chunks() {
      for (let pos = start; pos < end; ) {
        const chunk = Buffer.allocUnsafe(Math.min(end - pos, 1 << 20));
        const { bytesRead } = await handle.read(chunk, 0, chunk.length, pos);
        if (bytesRead === 0) return; // yauzl reports the missing bytes
        pos += bytesRead;
        yield chunk.subarray(0, bytesRead);
      }
    }
    return Readable.from(chunks(), { objectMode: false });
  }
}

/** An open zip archive: its records by name, and a reader of whole records. */
export class ZipReader {
  /** What the compressed records may still inflate to, in bytes (see {@link defaultMaxInflated}). */
  private inflateLeft: number;

  private constructor(
    private readonly zip: yauzl.ZipFile,
    /** Records by name, in central-directory order. */
    readonly entries: Map<string, ZipEntry>,
    private readonly source: { buffer: Buffer } | { handle: FileHandle; size: number },
    private readonly maxInflated: number,
  ) {
    this.inflateLeft = maxInflated;
  }

  /**
   * Opens an archive held in memory or an open file. Errors are plain Errors with yauzl's reason.
   * `maxInflatedBytes`: what all compressed (deflate) records read may inflate to together.
   */
  static async open(source: { buffer: Buffer } | { handle: FileHandle; size: number }, maxEntries = 1_000_000, maxInflatedBytes?: number): Promise<ZipReader> {
    const options: yauzl.Options = { lazyEntries: true, autoClose: false, decodeStrings: true, validateEntrySizes: true, strictFileNames: false };
    const zip = 'buffer' in source ? await yauzl.fromBufferPromise(source.buffer, options) : await yauzl.fromRandomAccessReaderPromise(new WindowedFileReader(source.handle, source.size), source.size, options);
    if (zip.entryCount > maxEntries) throw new Error(`the archive lists ${zip.entryCount} records, more than the limit of ${maxEntries}`);
    const entries = await new Promise<Map<string, ZipEntry>>((resolve, reject) => {
      const out = new Map<string, ZipEntry>();
      zip.on('entry', (e: ZipEntry) => {
        if (out.has(e.fileName)) {
          reject(new Error(`record '${e.fileName}' appears twice`));
          return;
        }
        out.set(e.fileName, e);
        zip.readEntry();
      });
      zip.on('end', () => resolve(out));
      zip.on('error', reject);
      zip.readEntry();
    });
    const size = 'buffer' in source ? source.buffer.length : source.size;
    return new ZipReader(zip, entries, source, maxInflatedBytes ?? defaultMaxInflated(size));
  }

  /**
   * Throws naming the first record that would take the compressed records read past the limit on
   * what they may inflate to ({@link defaultMaxInflated}); for checking a set before reading any.
   */
  checkInflate(entries: readonly ZipEntry[]): void {
    let left = this.inflateLeft;
    for (const e of entries) {
      if (e.compressionMethod === 0) continue;
      left -= e.uncompressedSize;
      if (left < 0) throw this.inflateError(e);
    }
  }

  private inflateError(e: ZipEntry): Error {
    return new Error(
      `record '${e.fileName}' would inflate to ${e.uncompressedSize} bytes (from ${e.compressedSize}), past the ${this.maxInflated} bytes that the compressed records ` +
        `of this archive of ${this.size} bytes may inflate to in all: a deflate bomb, not weights`,
    );
  }

  /**
   * The whole of one record, its size and CRC-32 checked. Stored records in memory are not copied;
   * with `scratch`, a stored record of a file is read into it (valid until its next use).
   */
  async read(entry: ZipEntry, scratch?: Scratch): Promise<Buffer> {
    const name = entry.fileName;
    const size = entry.uncompressedSize;
    if (size > bufferConstants.MAX_LENGTH) {
      throw new Error(`record '${name}' holds ${size} bytes, more than one Buffer can hold (${bufferConstants.MAX_LENGTH})`);
    }
    let data: Buffer;
    if (entry.compressionMethod === 0) {
      const { fileDataStart } = await this.zip.readLocalFileHeaderPromise(entry, { minimal: true });
      if ('buffer' in this.source) {
        data = this.source.buffer.subarray(fileDataStart, fileDataStart + size);
      } else {
        data = scratch ? scratch.get(size) : Buffer.allocUnsafe(size);
        await readFully(this.source.handle, data, fileDataStart, `record '${name}'`);
      }
    } else if (entry.compressionMethod === 8) {
      if (size > this.inflateLeft) throw this.inflateError(entry);
      this.inflateLeft -= size;
      const stream = await this.zip.openReadStreamPromise(entry);
      data = Buffer.allocUnsafe(size);
      let off = 0;
      await new Promise<void>((resolve, reject) => {
        stream.on('data', (chunk: Buffer) => {
          if (off + chunk.length > size) {
            stream.destroy(new Error(`record '${name}' inflates to more than its declared ${size} bytes`));
            return;
          }
          chunk.copy(data, off);
          off += chunk.length;
        });
        stream.on('error', reject);
        stream.on('end', resolve);
      });
      if (off !== size) throw new Error(`record '${name}' inflates to ${off} bytes, not its declared ${size}`);
    } else {
      throw new Error(`record '${name}' uses compression method ${entry.compressionMethod}; only stored (0) and deflate (8) are supported`);
    }
    checkCrc(entry, crc32(data));
    return data;
  }

  /** The archive's size in bytes. */
  get size(): number {
    return 'buffer' in this.source ? this.source.buffer.length : this.source.size;
  }
}

/**
 * What the compressed records of an archive of `size` bytes may inflate to, in all, by default:
 * 64 MiB plus 16 times the archive's size. torch.save writes every record stored (uncompressed);
 * an archive compressed afterwards holds weights, which deflate shrinks little (float data by
 * about a tenth), so only a deflate bomb (a thousand to one) comes near it.
 */
export function defaultMaxInflated(size: number): number {
  return 64 * 1024 * 1024 + 16 * size;
}

/** The fixed part of a local file header, before the record's name and extra field. */
export const LOCAL_HEADER_BYTES = 30;

/**
 * Where a record's (stored or compressed) data starts in an archive of `archiveSize` bytes, from
 * the fixed part of its local header (`LOCAL_HEADER_BYTES`), with the checks of yauzl's own reading
 * of it: the header's signature, and the data inside the archive.
 */
export function recordDataStart(entry: ZipEntry, header: Buffer, archiveSize: number): number {
  const name = entry.fileName;
  if (header.length < LOCAL_HEADER_BYTES) throw new Error(`record '${name}': the local header is cut short`);
  const signature = header.readUInt32LE(0);
  if (signature !== 0x04034b50) throw new Error(`record '${name}': invalid local file header signature 0x${signature.toString(16)}`);
  const start = entry.relativeOffsetOfLocalHeader + LOCAL_HEADER_BYTES + header.readUInt16LE(26) + header.readUInt16LE(28);
  if (start + entry.compressedSize > archiveSize) throw new Error(`record '${name}': its data (${start} + ${entry.compressedSize} bytes) runs past the archive's end (${archiveSize})`);
  return start;
}

/**
 * Where each record's data starts, from the fixed parts of the local headers (`headers[i]` of
 * `entries[i]`, LOCAL_HEADER_BYTES each), once every record is checked as {@link recordDataStart}
 * checks it and no two records share a byte: each record's [local header, end of data) must be its
 * own. (A central directory may name one record's bytes under many names, so that a small archive
 * reads as many large ones; zip writers never do that.) Throws naming the records.
 */
export function recordDataStarts(entries: readonly ZipEntry[], headers: readonly Buffer[], archiveSize: number): Map<ZipEntry, number> {
  const starts = new Map<ZipEntry, number>();
  const spans = entries.map((e, i) => {
    const data = recordDataStart(e, headers[i], archiveSize);
    starts.set(e, data);
    return { e, from: e.relativeOffsetOfLocalHeader, to: data + e.compressedSize };
  });
  spans.sort((a, b) => a.from - b.from);
  let last: (typeof spans)[number] | undefined;
  for (const s of spans) {
    if (last && s.from < last.to) {
      throw new Error(
        `records '${last.e.fileName}' (bytes ${last.from}..${last.to}) and '${s.e.fileName}' (bytes ${s.from}..${s.to}) overlap: every record of an archive must have bytes of its own`,
      );
    }
    if (!last || s.to > last.to) last = s;
  }
  return starts;
}

/** Throws naming the record when `crc`, computed over its data, is not the one its central-directory entry holds. */
export function checkCrc(entry: ZipEntry, crc: number): void {
  if (crc >>> 0 !== entry.crc32 >>> 0) {
    throw new Error(
      `record '${entry.fileName}' is corrupt: CRC-32 ${(crc >>> 0).toString(16).padStart(8, '0')} does not match ${(entry.crc32 >>> 0).toString(16).padStart(8, '0')} in the central directory`,
    );
  }
}

/** Opens a file for reading; the caller closes it. */
export function openForReading(file: string): Promise<FileHandle> {
  return fsp.open(file, 'r');
}
