/**
 * Helpers of the serialization tests (not a test file).
 */
import * as zlib from 'zlib';
import { OrderedDict, PyGlobal, PyPersistent, PyReduce, pickle, pyTuple } from '../lib/serialization';
import { crc32 } from '../lib/serialization/zip';

/**
 * A legacy file made by hand: storage views (view_metadata, written by PyTorch before 1.0) and a
 * big-endian machine's data, which current PyTorch never writes.
 */
export function handMadeLegacy(littleEndian: boolean): Buffer {
  const rebuild = new PyGlobal('torch._utils', '_rebuild_tensor_v2');
  const hooks = new PyReduce(new PyGlobal('collections', 'OrderedDict'), []);
  const storage = (view: unknown): PyPersistent => new PyPersistent(pyTuple('storage', new PyGlobal('torch', 'FloatStorage'), 'root', 'cpu', 6, view));
  const main = new OrderedDict<string, unknown>([
    ['whole', new PyReduce(rebuild, [storage(null), 0, pyTuple(2, 3), pyTuple(3, 1), false, hooks])],
    // elements [2, 5) of the root storage, and of those, elements 1 and 2
    ['view', new PyReduce(rebuild, [storage(pyTuple('view1', 2, 3)), 1, pyTuple(2), pyTuple(1), false, hooks])],
  ]);
  const count = Buffer.alloc(8);
  const data = Buffer.alloc(24);
  for (let i = 0; i < 6; i++) {
    if (littleEndian) data.writeFloatLE(i + 0.5, i * 4);
    else data.writeFloatBE(i + 0.5, i * 4);
  }
  if (littleEndian) count.writeBigInt64LE(6n);
  else count.writeBigInt64BE(6n);
  const sysInfo = new Map<string, unknown>([['protocol_version', 1001], ['little_endian', littleEndian], ['type_sizes', new Map([['short', 2], ['int', 4], ['long', 4]])]]);
  return Buffer.concat([pickle(0x1950a86a20f9469cfc6cn), pickle(1001), pickle(sysInfo), pickle(main), pickle(['root']), count, data]);
}

// ---------------------------------------------------------------------------------------------
// Hostile archives made by hand: a zip whose central directory may point anywhere

/** A record's local header and data as written, for the central directory to name (once or more). */
export interface RawLocal {
  offset: number;
  crc: number;
  compressedSize: number;
  uncompressedSize: number;
  method: number;
}

/** A zip header of `size` bytes: its signature, then little-endian fields [offset, bytes (2 or 4), value]. */
function zipHeader(size: number, signature: number, fields: [number, 2 | 4, number][]): Buffer {
  const h = Buffer.alloc(size);
  h.writeUInt32LE(signature, 0);
  for (const [at, bytes, v] of fields) {
    if (bytes === 2) h.writeUInt16LE(v, at);
    else h.writeUInt32LE(v, at);
  }
  return h;
}

/**
 * A zip written byte by byte: local records first (`local`), then central-directory entries that
 * may name one local record many times or claim other sizes (`central`), then `finish`.
 */
export class RawZip {
  private readonly parts: Buffer[] = [];
  private size = 0;
  private readonly cd: Buffer[] = [];

  /** A local header and data. `deflate`: the data compressed; `uncompressedSize`/`crc` replace the true ones. */
  local(name: string, data: Buffer, opts: { deflate?: boolean; uncompressedSize?: number; crc?: number } = {}): RawLocal {
    const payload = opts.deflate ? zlib.deflateRawSync(data) : data;
    const entry: RawLocal = {
      offset: this.size,
      crc: opts.crc ?? crc32(data),
      compressedSize: payload.length,
      uncompressedSize: opts.uncompressedSize ?? data.length,
      method: opts.deflate ? 8 : 0,
    };
    const n = Buffer.from(name, 'utf8');
    // version, method, date, CRC, sizes, name length
    const h = zipHeader(30, 0x04034b50, [[4, 2, 20], [8, 2, entry.method], [12, 2, 0x21], [14, 4, entry.crc], [18, 4, entry.compressedSize], [22, 4, entry.uncompressedSize], [26, 2, n.length]]);
    for (const b of [h, n, payload]) {
      this.parts.push(b);
      this.size += b.length;
    }
    return entry;
  }

  /** A central-directory entry naming the local record `e` as `name`. */
  central(e: RawLocal, name: string): void {
    const n = Buffer.from(name, 'utf8');
    // versions, method, date, CRC, sizes, name length, the local header's offset
    const h = zipHeader(46, 0x02014b50, [[4, 2, 20], [6, 2, 20], [10, 2, e.method], [14, 2, 0x21], [16, 4, e.crc], [20, 4, e.compressedSize], [24, 4, e.uncompressedSize], [28, 2, n.length], [42, 4, e.offset]]);
    this.cd.push(h, n);
  }

  finish(): Buffer {
    const cd = Buffer.concat(this.cd);
    const end = Buffer.alloc(22);
    end.writeUInt32LE(0x06054b50, 0);
    end.writeUInt16LE(this.cd.length / 2, 8);
    end.writeUInt16LE(this.cd.length / 2, 10);
    end.writeUInt32LE(cd.length, 12);
    end.writeUInt32LE(this.size, 16);
    return Buffer.concat([...this.parts, cd, end]);
  }
}

/** A torch zip of `data.pkl` and `records` (`data/0`, `byteorder`, ...), each stored once and named once. */
export function torchZip(pkl: Buffer, records: Record<string, Buffer> = {}): Buffer {
  const z = new RawZip();
  for (const [name, data] of Object.entries({ 'data.pkl': pkl, byteorder: Buffer.from('little'), ...records })) z.central(z.local(`archive/${name}`, data), `archive/${name}`);
  return z.finish();
}

/** A `_rebuild_tensor_v2` call as torch.save pickles it: a float32 tensor of `shape` over storage `key` of `numel` elements. */
export function floatTensor(key: string, numel: number, shape: number[]): PyReduce {
  const strides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  const storage = new PyPersistent(pyTuple('storage', new PyGlobal('torch', 'FloatStorage'), key, 'cpu', numel));
  return new PyReduce(new PyGlobal('torch._utils', '_rebuild_tensor_v2'), [storage, 0, pyTuple(...shape), pyTuple(...strides), false, new PyReduce(new PyGlobal('collections', 'OrderedDict'), [])]);
}
