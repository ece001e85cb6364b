/**
 * Storages read straight from a file into tensor memory (native pread, CRC-32 computed natively)
 * give the same tensors as the same bytes read from memory, in every format, sharing and views
 * included; and a damaged file is refused as before, naming the file and the record.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Tensor } from '../lib/core/tensor';
import { readTorchFileContents, saveTorchFile, OrderedDict } from '../lib/serialization';
import { native } from '../lib/core/native';
import { rejected, thrown } from './support/errors';

const FIXTURES = path.join(__dirname, 'fixtures', 'serialization');
const fixture = (name: string): string => path.join(FIXTURES, name);

/** Every tensor of a read value, by its path, with its dtype, shape and bytes. */
function tensorsOf(v: unknown, at = '', out = new Map<string, { dtype: string; shape: number[]; bytes: string }>()) {
  if (v instanceof Tensor) {
    const a = v.toTypedArray();
    out.set(at, { dtype: v.dtype, shape: v.shape, bytes: Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64') });
  } else if (v instanceof Map) for (const [k, x] of v) tensorsOf(x, `${at}/${String(k)}`, out);
  else if (Array.isArray(v)) v.forEach((x, i) => tensorsOf(x, `${at}[${i}]`, out));
  return out;
}

let tmp = '';
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torchcap-file-storages-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

test.each(['dtypes.pt', 'dtypes_legacy.pt', 'views.pt', 'views_legacy.pt', 'state_dict.pt', 'state_dict_legacy.pt', 'state_dict_zip64.pt', 'state_dict.safetensors', 'checkpoint.pt', 'book_encoder_tiny.pt'])(
  '%s: from the file as from its bytes in memory',
  async (name) => {
    const fromFile = await readTorchFileContents(fixture(name));
    const fromBytes = await readTorchFileContents(fs.readFileSync(fixture(name)), { name });
    const a = tensorsOf(fromFile.value);
    expect(a.size).toBeGreaterThan(0);
    expect(a).toEqual(tensorsOf(fromBytes.value));
  },
);

test('tensors that share a storage in the file share memory when read from a file', async () => {
  const w = Tensor.from(new Float32Array([1, 2, 3, 4, 5, 6]), { shape: [2, 3] });
  const file = path.join(tmp, 'tied.pt');
  await saveTorchFile(file, new OrderedDict<string, Tensor>([['a.weight', w], ['b.weight', w]]));
  const sd = (await readTorchFileContents(file)).value as Map<string, Tensor>;
  expect(sd.get('a.weight')!.handle.sameStorage(sd.get('b.weight')!.handle)).toBe(true);
  expect(Array.from(sd.get('b.weight')!.toTypedArray() as Float32Array)).toEqual([1, 2, 3, 4, 5, 6]);
});

test('a changed byte inside a stored record read from a file is refused by its CRC-32, naming the record', async () => {
  const w = Tensor.from(Float32Array.from({ length: 4096 }, (_, i) => i));
  const file = path.join(tmp, 'flipped.pt');
  await saveTorchFile(file, new OrderedDict<string, Tensor>([['w', w]]));
  const bytes = fs.readFileSync(file);
  // the float 1000.0 (0x447a0000) of element 1000 sits inside the stored record: change it
  const at = bytes.indexOf(Buffer.from([0x00, 0x00, 0x7a, 0x44]));
  expect(at).toBeGreaterThan(0);
  bytes[at + 1] ^= 0x01;
  fs.writeFileSync(file, bytes);
  const e = await rejected(readTorchFileContents(file));
  expect(e.name).toBe('CheckpointError');
  expect(e.message).toMatch(/flipped\.pt: record '[^']+\/data\/0' is corrupt: CRC-32 [0-9a-f]{8} does not match [0-9a-f]{8} in the central directory$/);
});

test('storages of several megabytes, read in pieces on every thread, come back whole and each CRC-32 joined from its pieces', async () => {
  // 2 MiB pieces: a 5 MiB storage is three pieces, next to storages of a few bytes and of exactly one piece
  const sizes = [5 * 262144 + 3, 7, 524288, 262144 * 3 - 1, 1];
  const saved = new OrderedDict<string, Tensor>(sizes.map((n, k) => [`t${k}`, Tensor.from(Float32Array.from({ length: n }, (_, i) => Math.fround(Math.sin(i + k * 1e6))))]));
  const file = path.join(tmp, 'pieces.pt');
  await saveTorchFile(file, saved);
  const read = (await readTorchFileContents(file)).value as Map<string, Tensor>;
  for (const [name, t] of saved) expect(Buffer.from((read.get(name)!.toTypedArray() as Float32Array).buffer).equals(Buffer.from((t.toTypedArray() as Float32Array).buffer))).toBe(true);

  // one changed byte in the third piece of the first storage is still refused by that record's CRC-32
  const bytes = fs.readFileSync(file);
  const element = 4 * 262144 + 5; // in the third 2 MiB piece
  const value = Buffer.alloc(4);
  value.writeFloatLE(Math.fround(Math.sin(element)));
  const at = bytes.indexOf(value);
  expect(at).toBeGreaterThan(4 * 1048576);
  bytes[at] ^= 0x01;
  fs.writeFileSync(file, bytes);
  const e = await rejected(readTorchFileContents(file));
  expect(e.message).toMatch(/pieces\.pt: record '[^']+\/data\/0' is corrupt: CRC-32 [0-9a-f]{8} does not match/);
});

test('a legacy file cut inside its last storage is refused naming the file, not read past its end', async () => {
  const whole = fs.readFileSync(fixture('state_dict_legacy.pt'));
  const file = path.join(tmp, 'cut_legacy.pt');
  fs.writeFileSync(file, whole.subarray(0, whole.length - 3));
  const e = await rejected(readTorchFileContents(file));
  expect(e.name).toBe('CheckpointError');
  expect(e.message).toMatch(/cut_legacy\.pt: truncated: /);
});

test('storages go straight into the tensors a loader names, where the shape and dtype match; the others are read apart', async () => {
  const file = path.join(tmp, 'targets.pt');
  const a = Tensor.from(new Float32Array([1, 2, 3, 4, 5, 6]), { shape: [2, 3] });
  const b = Tensor.from(new Float32Array([7, 8, 9]));
  await saveTorchFile(file, new OrderedDict<string, Tensor>([['a', a], ['b', b]]));
  const intoA = Tensor.zeros([2, 3]);
  const intoB = Tensor.zeros([3, 1]); // another shape: not filled
  const seen: string[] = [];
  const sd = (await readTorchFileContents(file, {
    into: (layout) => {
      for (const [k, l] of layout) seen.push(`${k} [${l.shape.join(', ')}] ${l.dtype}`);
      return new Map([['a', intoA], ['b', intoB]]);
    },
  })).value as Map<string, Tensor>;
  expect(seen).toEqual(['a [2, 3] float32', 'b [3] float32']);
  expect(Array.from(intoA.toTypedArray() as Float32Array)).toEqual([1, 2, 3, 4, 5, 6]);
  expect(sd.get('a')!.handle.sameStorage(intoA.handle)).toBe(true);
  expect(Array.from(intoB.toTypedArray() as Float32Array)).toEqual([0, 0, 0]);
  expect(Array.from(sd.get('b')!.toTypedArray() as Float32Array)).toEqual([7, 8, 9]);
});

test('an archive of 2,000 records, its central directory read through the read-ahead window and its local headers in one native call, reads as from memory', async () => {
  // about twice a ResNet-152's records, of a few bytes to 96 KiB each, so that some local headers share a window and others do not
  const saved = new OrderedDict<string, Tensor>(Array.from({ length: 2000 }, (_, k) => [`layer.${k}.weight`, Tensor.from(Float32Array.from({ length: k % 7 === 0 ? 24576 : (k % 13) + 1 }, (_, i) => k + i / 8))]));
  const file = path.join(tmp, 'many.pt');
  await saveTorchFile(file, saved);
  const fromFile = (await readTorchFileContents(file)).value as Map<string, Tensor>;
  const fromBytes = (await readTorchFileContents(fs.readFileSync(file), { name: 'many.pt' })).value as Map<string, Tensor>;
  expect([...fromFile.keys()]).toEqual([...saved.keys()]);
  expect(tensorsOf(fromFile)).toEqual(tensorsOf(fromBytes));
  expect(Array.from((fromFile.get('layer.1999.weight')!.toTypedArray() as Float32Array).subarray(0, 3))).toEqual([1999, 1999.125, 1999.25]);
});

/** A saved two-record state dict, and where record data/1's local header starts. */
async function twoRecords(name: string): Promise<{ file: string; bytes: Buffer; header: number }> {
  const file = path.join(tmp, name);
  await saveTorchFile(file, new OrderedDict<string, Tensor>([['a', Tensor.from(new Float32Array([1, 2, 3]))], ['b', Tensor.from(new Float32Array([4, 5]))]]));
  const bytes = fs.readFileSync(file);
  const nameAt = bytes.indexOf(Buffer.from('/data/1'));
  const header = bytes.lastIndexOf(Buffer.from([0x50, 0x4b, 0x03, 0x04]), nameAt); // its local header's signature
  expect(header).toBeGreaterThan(0);
  return { file, bytes, header };
}

test("a record whose local header is damaged is refused naming the file and the record, from a file as from memory", async () => {
  const { file, bytes, header } = await twoRecords('bad_local_header.pt');
  bytes[header] = 0x58;
  fs.writeFileSync(file, bytes);
  const e = await rejected(readTorchFileContents(file));
  expect(e.name).toBe('CheckpointError');
  expect(e.message).toMatch(/bad_local_header\.pt: record '[^']+\/data\/1': invalid local file header signature 0x4034b58$/);
  const m = await rejected(readTorchFileContents(bytes, { name: 'bad_local_header.pt' }));
  expect(m.name).toBe('CheckpointError');
  expect(m.message).toMatch(/^bad_local_header\.pt: record '[^']+\/data\/1': invalid local file header signature 0x4034b58$/);
});

test("a local header whose extra field runs the record's data past the archive's end is refused, not read", async () => {
  const { file, bytes, header } = await twoRecords('overflowing_header.pt');
  bytes.writeUInt16LE(0xffff, header + 28); // the extra field's length
  fs.writeFileSync(file, bytes);
  const e = await rejected(readTorchFileContents(file));
  expect(e.name).toBe('CheckpointError');
  expect(e.message).toMatch(/overflowing_header\.pt: record '[^']+\/data\/1': its data \(\d+ \+ 8 bytes\) runs past the archive's end \(\d+\)$/);
});

describe('native readFileBytes', () => {
  test('reads the bytes at each offset into one buffer, in order, and names the offset where the file ends first', async () => {
    const file = path.join(tmp, 'bytes.bin');
    fs.writeFileSync(file, Buffer.from(Array.from({ length: 300 }, (_, i) => i & 0xff)));
    const fh = await fs.promises.open(file, 'r');
    try {
      const got = await native.readFileBytes(fh.fd, [0, 250, 7], 4);
      expect(Array.from(got)).toEqual([0, 1, 2, 3, 250, 251, 252, 253, 7, 8, 9, 10]);
      expect((await native.readFileBytes(fh.fd, [], 30)).length).toBe(0);
      const e = await rejected(native.readFileBytes(fh.fd, [0, 290], 30));
      expect(e.message).toBe('truncated: 30 bytes needed at offset 290 but the file ends after 10');
      expect(thrown(() => native.readFileBytes(fh.fd, [-1], 4)).name).toBe('RangeError');
      expect(thrown(() => native.readFileBytes(fh.fd, [0], 2 << 20)).name).toBe('RangeError');
      expect(thrown(() => native.readFileBytes(fh.fd, 'x' as unknown as number[], 4)).name).toBe('TypeError');
      expect(thrown(() => native.readFileBytes(fh.fd, [0.5], 4)).name).toMatch(/TypeError|RangeError/);
    } finally {
      await fh.close();
    }
    const bad = await rejected(native.readFileBytes(1 << 30, [0], 4));
    expect(bad.message).toMatch(/^cannot read the file: Bad file descriptor$/);
  });
});
