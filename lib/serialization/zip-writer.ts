/**
 * A small writer of the zip container of PyTorch files: stored (uncompressed) records whose data
 * starts on 64-byte boundaries, padded the way PyTorch pads them (an extra field with id "FB"
 * filled with 'Z'), with zip64 records where sizes or offsets need them.
 */
import { writeAll, type FileHandle } from './atomic';
import { crc32 } from './zip';

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
