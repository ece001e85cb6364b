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
import { rejected } from './support/errors';

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
