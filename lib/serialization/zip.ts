/**
 * The zip container of PyTorch files: reading through `yauzl` (zip64 included; every record's
 * CRC-32 is checked, which yauzl leaves to its users), and a small writer of stored (uncompressed)
 * records whose data starts on 64-byte boundaries, padded the way PyTorch pads them (an extra field
 * with id "FB" filled with 'Z'), with zip64 records where sizes or offsets need them.
 */
import { constants as bufferConstants } from 'buffer';
import { promises as fsp } from 'fs';
import { Readable } from 'stream';
import * as zlib from 'zlib';
import * as yauzl from 'yauzl';
import { writeAll, type FileHandle } from './atomic';

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
  private constructor(
    private readonly zip: yauzl.ZipFile,
    /** Records by name, in central-directory order. */
    readonly entries: Map<string, ZipEntry>,
    private readonly source: { buffer: Buffer } | { handle: FileHandle; size: number },
  ) {}

  /** Opens an archive held in memory or an open file. Errors are plain Errors with yauzl's reason. */
  static async open(source: { buffer: Buffer } | { handle: FileHandle; size: number }, maxEntries = 1_000_000): Promise<ZipReader> {
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
    return new ZipReader(zip, entries, source);
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

/** The fixed part of a local file header, before the record's name and extra field. */
export const LOCAL_HEADER_BYTES = 30;

/**
 * Where a stored (uncompressed) record's data starts in an archive of `archiveSize` bytes, from the
 * fixed part of its local header (`LOCAL_HEADER_BYTES`), with the checks of yauzl's own reading of
 * it: the header's signature, and the data inside the archive.
 */
export function storedDataStart(entry: ZipEntry, header: Buffer, archiveSize: number): number {
  const name = entry.fileName;
  if (entry.compressionMethod !== 0) throw new Error(`record '${name}' is compressed (method ${entry.compressionMethod}), not stored`);
  if (header.length < LOCAL_HEADER_BYTES) throw new Error(`record '${name}': the local header is cut short`);
  const signature = header.readUInt32LE(0);
  if (signature !== 0x04034b50) throw new Error(`record '${name}': invalid local file header signature 0x${signature.toString(16)}`);
  const start = entry.relativeOffsetOfLocalHeader + LOCAL_HEADER_BYTES + header.readUInt16LE(26) + header.readUInt16LE(28);
  if (start + entry.compressedSize > archiveSize) throw new Error(`record '${name}': its data (${start} + ${entry.compressedSize} bytes) runs past the archive's end (${archiveSize})`);
  return start;
}

/** Throws naming the record when `crc`, computed over its data, is not the one its central-directory entry holds. */
export function checkCrc(entry: ZipEntry, crc: number): void {
  if (crc >>> 0 !== entry.crc32 >>> 0) {
    throw new Error(
      `record '${entry.fileName}' is corrupt: CRC-32 ${(crc >>> 0).toString(16).padStart(8, '0')} does not match ${(entry.crc32 >>> 0).toString(16).padStart(8, '0')} in the central directory`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Writing

const ALIGN = 64;
const U32_MAX = 0xffffffff;
/** DOS date of 1980-01-01, the earliest a zip can hold: output stays the same from run to run. */
const DOS_DATE = (0 << 9) | (1 << 5) | 1;

interface Written {
  name: Buffer;
  crc: number;
  size: number;
  offset: number;
  zip64: boolean;
}

export interface ZipWriterOptions {
  /** Write zip64 records for every entry and the end record, whatever the sizes (for tests). */
  forceZip64?: boolean;
}

/** Writes stored records, sequentially, to an open file. */
export class ZipWriter {
  private offset = 0;
  private readonly written: Written[] = [];

  constructor(
    private readonly fh: FileHandle,
    private readonly opts: ZipWriterOptions = {},
  ) {}

  private async emit(b: Uint8Array): Promise<void> {
    await writeAll(this.fh, b);
    this.offset += b.length;
  }

  /** Adds a record made of `parts` (concatenated), stored uncompressed and 64-byte aligned. */
  async add(name: string, parts: Uint8Array | Uint8Array[]): Promise<void> {
    const list = Array.isArray(parts) ? parts : [parts];
    let size = 0;
    let crc = 0;
    for (const p of list) {
      size += p.length;
      crc = crc32(p, crc);
    }
    const nameBuf = Buffer.from(name, 'utf8');
    if (nameBuf.length > 0xffff) throw new Error(`record name too long: ${name.slice(0, 40)}…`);
    // The local header holds sizes but not its own offset: it needs zip64 fields only for a size.
    const zip64 = !!this.opts.forceZip64 || size >= U32_MAX;
    const zip64Extra = zip64 ? 4 + 16 : 0;
    const start = this.offset + 30 + nameBuf.length + zip64Extra + 4;
    const pad = (ALIGN - (start % ALIGN)) % ALIGN;
    const header = Buffer.alloc(30 + nameBuf.length + zip64Extra + 4 + pad);
    header.writeUInt32LE(0x04034b50, 0);
    header.writeUInt16LE(zip64 ? 45 : 20, 4); // version needed
    header.writeUInt16LE(0, 6); // flags
    header.writeUInt16LE(0, 8); // stored
    header.writeUInt16LE(0, 10); // time
    header.writeUInt16LE(DOS_DATE, 12);
    header.writeUInt32LE(crc, 14);
    header.writeUInt32LE(zip64 ? U32_MAX : size, 18);
    header.writeUInt32LE(zip64 ? U32_MAX : size, 22);
    header.writeUInt16LE(nameBuf.length, 26);
    header.writeUInt16LE(zip64Extra + 4 + pad, 28);
    nameBuf.copy(header, 30);
    let p = 30 + nameBuf.length;
    if (zip64) {
      header.writeUInt16LE(0x0001, p);
      header.writeUInt16LE(16, p + 2);
      header.writeBigUInt64LE(BigInt(size), p + 4);
      header.writeBigUInt64LE(BigInt(size), p + 12);
      p += 20;
    }
    header.write('FB', p, 'latin1');
    header.writeUInt16LE(pad, p + 2);
    header.fill('Z', p + 4);
    const offset = this.offset;
    await this.emit(header);
    for (const part of list) await this.emit(part);
    this.written.push({ name: nameBuf, crc, size, offset, zip64 });
  }

  /** Writes the central directory and the end records. */
  async finish(): Promise<void> {
    const cdStart = this.offset;
    for (const w of this.written) {
      const needSize = w.zip64;
      const needOffset = !!this.opts.forceZip64 || w.offset >= U32_MAX;
      const extraLen = needSize || needOffset ? 4 + (needSize ? 16 : 0) + (needOffset ? 8 : 0) : 0;
      const h = Buffer.alloc(46 + w.name.length + extraLen);
      h.writeUInt32LE(0x02014b50, 0);
      h.writeUInt16LE((3 << 8) | (extraLen ? 45 : 20), 4); // made by: unix
      h.writeUInt16LE(extraLen ? 45 : 20, 6);
      h.writeUInt16LE(0, 8);
      h.writeUInt16LE(0, 10);
      h.writeUInt16LE(0, 12);
      h.writeUInt16LE(DOS_DATE, 14);
      h.writeUInt32LE(w.crc, 16);
      h.writeUInt32LE(needSize ? U32_MAX : w.size, 20);
      h.writeUInt32LE(needSize ? U32_MAX : w.size, 24);
      h.writeUInt16LE(w.name.length, 28);
      h.writeUInt16LE(extraLen, 30);
      h.writeUInt16LE(0, 32); // comment
      h.writeUInt16LE(0, 34); // disk
      h.writeUInt16LE(0, 36); // internal attributes
      h.writeUInt32LE((0o100644 << 16) >>> 0, 38); // a regular file, rw-r--r--
      h.writeUInt32LE(needOffset ? U32_MAX : w.offset, 42);
      w.name.copy(h, 46);
      if (extraLen) {
        let p = 46 + w.name.length;
        h.writeUInt16LE(0x0001, p);
        h.writeUInt16LE(extraLen - 4, p + 2);
        p += 4;
        if (needSize) {
          h.writeBigUInt64LE(BigInt(w.size), p);
          h.writeBigUInt64LE(BigInt(w.size), p + 8);
          p += 16;
        }
        if (needOffset) h.writeBigUInt64LE(BigInt(w.offset), p);
      }
      await this.emit(h);
    }
    const cdSize = this.offset - cdStart;
    const count = this.written.length;
    const zip64 =
      !!this.opts.forceZip64 || count >= 0xffff || cdStart >= U32_MAX || cdSize >= U32_MAX || this.written.some((w) => w.zip64 || w.offset >= U32_MAX);
    if (zip64) {
      const eocd64At = this.offset;
      const r = Buffer.alloc(56 + 20);
      r.writeUInt32LE(0x06064b50, 0);
      r.writeBigUInt64LE(44n, 4);
      r.writeUInt16LE((3 << 8) | 45, 12);
      r.writeUInt16LE(45, 14);
      r.writeUInt32LE(0, 16);
      r.writeUInt32LE(0, 20);
      r.writeBigUInt64LE(BigInt(count), 24);
      r.writeBigUInt64LE(BigInt(count), 32);
      r.writeBigUInt64LE(BigInt(cdSize), 40);
      r.writeBigUInt64LE(BigInt(cdStart), 48);
      r.writeUInt32LE(0x07064b50, 56);
      r.writeUInt32LE(0, 60);
      r.writeBigUInt64LE(BigInt(eocd64At), 64);
      r.writeUInt32LE(1, 72);
      await this.emit(r);
    }
    const e = Buffer.alloc(22);
    e.writeUInt32LE(0x06054b50, 0);
    e.writeUInt16LE(zip64 ? 0xffff : count, 8);
    e.writeUInt16LE(zip64 ? 0xffff : count, 10);
    e.writeUInt32LE(zip64 ? U32_MAX : cdSize, 12);
    e.writeUInt32LE(zip64 ? U32_MAX : cdStart, 16);
    await this.emit(e);
  }
}

/** Opens a file for reading; the caller closes it. */
export function openForReading(file: string): Promise<FileHandle> {
  return fsp.open(file, 'r');
}
