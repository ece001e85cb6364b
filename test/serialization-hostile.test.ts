/**
 * Files made to cost far more than their size: pickles that copy one container again and again
 * (the work budget), thousands of tensor descriptions in a few bytes each (the tensor limit), zip
 * archives that name one record's bytes many times or inflate a thousandfold, keys and nesting that
 * would make huge names, a legacy file whose pickle claims a length past the file's end, a loader
 * asked to build a model before the file's records are checked. Each is refused quickly, naming
 * the file and what is wrong, and files as PyTorch writes them still read.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Tensor } from '../lib/core/tensor';
import { OrderedDict, PyGlobal, PyPersistent, PyReduce, pickle, pyTuple, readSafetensors, readStateDict, readTorchFile } from '../lib/serialization';
import { readBookVocabularyPickle } from '../lib/vocabulary';
import { rejected } from './support/errors';
import { RawZip, floatTensor, torchZip } from './serialization-helpers';

type Err = Error & { code?: string; file?: string };

let tmp = '';
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torchcap-hostile-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const bytes = (s: string): Buffer => Buffer.from(s, 'latin1');
const u16 = (n: number): string => String.fromCharCode(n & 0xff, n >> 8);

/** A pickled state dict {name: tensor} as torch.save writes it. */
function stateDictPickle(entries: Record<string, PyReduce>): Buffer {
  return pickle(new OrderedDict(Object.entries(entries)));
}

/** A data.pkl whose list holds `m` tensors, each `_rebuild_tensor_v2` of one memoized argument tuple: 5 bytes a tensor. */
function manyViews(m: number): Buffer {
  return Buffer.concat([
    bytes('\x80\x02ctorch._utils\n_rebuild_tensor_v2\nq\x00'),
    bytes('((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x01tQK\x00K\x01\x85K\x01\x85\x89ccollections\nOrderedDict\n)Rtq\x010'),
    bytes(`](${'h\x00h\x01R'.repeat(m)}e.`),
  ]);
}

const ONE_FLOAT = Buffer.from(new Float32Array([1]).buffer);

describe('the work budget: containers copied again and again', () => {
  test('OrderedDict(d) of one dict of 1,000 entries, 1,100 times (1.1 million entries from 12 KB), is refused naming the file, record and byte', async () => {
    const entries = Array.from({ length: 1000 }, (_, i) => `M${u16(i)}N`).join('');
    const pkl = bytes(`\x80\x02ccollections\nOrderedDict\nq\x00}(${entries}uq\x01(${'h\x00h\x01\x85R'.repeat(1100)}l.`);
    const e = (await rejected(readTorchFile(torchZip(pkl), { name: 'amplify.pt' }))) as Err;
    expect({ name: e.name, code: e.code }).toEqual({ name: 'UnpicklingError', code: 'LIMIT' });
    expect(e.message).toMatch(/^amplify\.pt \(record archive\/data\.pkl\), byte \d+: collections\.OrderedDict: the pickle \(\d+ bytes\) asks for more than its work limit of \d+ units/);
  });

  test("BUILD of one 2,000-entry state on the book's Vocab, 600 times, is refused by the budget, not run quadratically", async () => {
    const keys = Array.from({ length: 2000 }, (_, i) => `k${String(i).padStart(4, '0')}`);
    const dict = `}(${keys.map((k) => `\x8c${String.fromCharCode(k.length)}${k}N`).join('')}uq\x010`;
    const pkl = bytes(`\x80\x02c__main__\nVocab\n)\x81${dict}${'h\x01b'.repeat(600)}.`);
    const e = (await rejected(readBookVocabularyPickle(pkl, { name: 'vocab.pkl' }))) as Err;
    expect({ name: e.name, code: e.code }).toEqual({ name: 'UnpicklingError', code: 'LIMIT' });
    expect(e.message).toMatch(/^vocab\.pkl, byte \d+: BUILD on __main__\.Vocab: the pickle \(\d+ bytes\) asks for more than its work limit/);
  });
});

describe('the tensor limit', () => {
  test('10,200 tensors in 51 KB (5 bytes each) pass the default limit (10,000 + one per KiB) and are refused before any is made', async () => {
    const file = torchZip(manyViews(10_200), { 'data/0': ONE_FLOAT });
    const e = (await rejected(readTorchFile(file, { name: 'views.pt' }))) as Err;
    expect({ name: e.name, code: e.code }).toEqual({ name: 'UnpicklingError', code: 'LIMIT' });
    expect(e.message).toMatch(/^views\.pt \(record archive\/data\.pkl\), byte \d+: torch\._utils\._rebuild_tensor_v2: the file describes more than 100\d\d tensors, the limit \(ReadOptions\.maxTensors/);
  });

  test('maxTensors sets the limit: 200 views of one storage read, or are refused past 100', async () => {
    const file = torchZip(manyViews(200), { 'data/0': ONE_FLOAT });
    const list = (await readTorchFile(file)) as Tensor[];
    expect(list.length).toBe(200);
    expect(list[199].toArray()).toEqual([1]);
    const e = (await rejected(readTorchFile(file, { name: 'views.pt', maxTensors: 100 }))) as Err;
    expect(e.message).toMatch(/the file describes more than 100 tensors/);
  });

  test('a safetensors header of 12,000 empty tensors is refused before any is made; with a higher maxTensors a small one reads', async () => {
    const safetensors = (n: number): Buffer => {
      const header: Record<string, unknown> = {};
      for (let i = 0; i < n; i++) header[`t${i}`] = { dtype: 'F32', shape: [0], data_offsets: [0, 0] };
      const h = Buffer.from(JSON.stringify(header));
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(h.length));
      return Buffer.concat([len, h]);
    };
    const big = safetensors(12_000);
    const e = (await rejected(readSafetensors(big, { name: 'many.safetensors' }))) as Err;
    expect(e.name).toBe('CheckpointError');
    expect(e.message).toMatch(/^many\.safetensors: the safetensors header lists 12000 tensors, more than the limit of \d+ \(ReadOptions\.maxTensors/);
    const small = safetensors(5);
    expect((await rejected(readSafetensors(small, { name: 's.safetensors', maxTensors: 4 }))).message).toMatch(/lists 5 tensors, more than the limit of 4/);
    expect((await readSafetensors(small, { maxTensors: 5 })).tensors.size).toBe(5);
  });
});

describe('zip archives', () => {
  test('one stored record named twice by the central directory is refused naming both, from a file and from memory', async () => {
    const z = new RawZip();
    z.central(z.local('archive/data.pkl', stateDictPickle({ a: floatTensor('0', 16, [16]), b: floatTensor('1', 16, [16]) })), 'archive/data.pkl');
    const rec = z.local('archive/data/0', Buffer.alloc(64, 1));
    z.central(rec, 'archive/data/0');
    z.central(rec, 'archive/data/1');
    const buf = z.finish();
    const file = path.join(tmp, 'overlap.pt');
    fs.writeFileSync(file, buf);
    const want = /: records 'archive\/data\/0' \(bytes \d+\.\.\d+\) and 'archive\/data\/1' \(bytes \d+\.\.\d+\) overlap: every record of an archive must have bytes of its own$/;
    for (const [input, name] of [[file, file], [buf, 'overlap.pt']] as const) {
      const e = (await rejected(readStateDict(input, { name }))) as Err;
      expect(e.name).toBe('CheckpointError');
      expect(e.message.startsWith(`${name}: `)).toBe(true);
      expect(e.message).toMatch(want);
    }
  });

  test('a deflated record that claims 128 MiB is refused before it is inflated; a deflated record of zeros (200 to 1) still reads', async () => {
    const bomb = new RawZip();
    bomb.central(bomb.local('archive/data.pkl', stateDictPickle({ w: floatTensor('0', 1 << 25, [1 << 25]) })), 'archive/data.pkl');
    bomb.central(bomb.local('archive/data/0', Buffer.alloc(16), { deflate: true, uncompressedSize: 1 << 27 }), 'archive/data/0');
    const e = (await rejected(readStateDict(bomb.finish(), { name: 'bomb.pt' }))) as Err;
    expect(e.name).toBe('CheckpointError');
    expect(e.message).toMatch(/^bomb\.pt: record 'archive\/data\/0' would inflate to 134217728 bytes \(from \d+\), past the \d+ bytes that the compressed records of this archive of \d+ bytes may inflate to in all/);

    const zeros = new RawZip();
    zeros.central(zeros.local('archive/data.pkl', stateDictPickle({ w: floatTensor('0', 1024, [32, 32]) })), 'archive/data.pkl');
    const rec = zeros.local('archive/data/0', Buffer.alloc(4096), { deflate: true });
    expect(rec.compressedSize).toBeLessThan(40);
    zeros.central(rec, 'archive/data/0');
    const sd = await readStateDict(zeros.finish());
    expect(sd.get('w')!.shape).toEqual([32, 32]);
    expect(sd.get('w')!.abs().sum().item()).toBe(0);
  });

  test.each(['byteorder', 'version'])('a %s record of more than 64 bytes is refused, not read', async (record) => {
    const pkl = stateDictPickle({ w: floatTensor('0', 1, [1]) });
    const e = (await rejected(readStateDict(torchZip(pkl, { 'data/0': ONE_FLOAT, [record]: Buffer.from(`${record === 'version' ? '3' : 'little'}${' '.repeat(100)}`) }), { name: 'odd.pt' }))) as Err;
    expect(e.name).toBe('CheckpointError');
    expect(e.message).toMatch(new RegExp(`^odd\\.pt: record 'archive/${record}' holds 10\\d bytes, more than the 64 such a record may hold$`));
  });
});

describe("a loader's module is built only for a file whose records are all there", () => {
  test.each([
    ['no record', {}, /^short\.pt: storage '0' has no record 'archive\/data\/0'$/],
    ['a record of 8 bytes', { 'data/0': Buffer.alloc(8) }, /^short\.pt: record 'archive\/data\/0' holds 8 bytes but the pickle declares 1000000 float32 elements \(4000000 bytes\)$/],
  ])('%s: the error comes before the layout is handed out', async (_what, records, message) => {
    const file = torchZip(stateDictPickle({ 'embedding_layer.weight': floatTensor('0', 1_000_000, [1000, 1000]) }), records);
    let asked = 0;
    const e = await rejected(
      readStateDict(file, {
        name: 'short.pt',
        into: () => {
          asked++;
          return undefined;
        },
      }),
    );
    expect(e.name).toBe('CheckpointError');
    expect(e.message).toMatch(message);
    expect(asked).toBe(0);
  });
});

describe('names and nesting: messages stay short, deep keys are refused', () => {
  test('a tensor under a key of 100,000 characters is named by the key cut short', async () => {
    const key = 'k'.repeat(100_000);
    const int8 = new PyReduce(new PyGlobal('torch._utils', '_rebuild_tensor_v2'), [
      new PyPersistent(pyTuple('storage', new PyGlobal('torch', 'CharStorage'), '0', 'cpu', 1)),
      0,
      pyTuple(1),
      pyTuple(1),
      false,
      new PyReduce(new PyGlobal('collections', 'OrderedDict'), []),
    ]);
    const file = torchZip(pickle(new Map([[key, new Map([[key, int8]])]])), { 'data/0': Buffer.alloc(1) });
    const e = await rejected(readTorchFile(file, { name: 'long.pt' }));
    expect(e.name).toBe('CheckpointError');
    expect(e.message).toMatch(/^long\.pt: tensor 'k{60}… \(100000 characters\)\["k{60}… \(100000 characters\)"\]' has dtype int8/);
    expect(e.message.length).toBeLessThan(500);
  });

  test('dicts nested 2,100 deep are refused naming the first and last steps only', async () => {
    const pkl = bytes(`\x80\x02X\x01\x00\x00\x00kq\x000${'}h\x00'.repeat(2100)}N${'s'.repeat(2100)}.`);
    const e = await rejected(readTorchFile(torchZip(pkl), { name: 'deep.pt' }));
    expect(e.name).toBe('CheckpointError');
    expect(e.message).toMatch(/^deep\.pt: the data is nested deeper than 2000 levels at k(\["k"\]){3}\[… 1991 levels …\](\["k"\]){6}$/);
  });

  test('a dict key that is a tuple nested 10,000 deep is refused naming the file', async () => {
    const pkl = bytes(`\x80\x02}N${'\x85'.repeat(10_000)}Ns.`);
    const e = await rejected(readTorchFile(torchZip(pkl), { name: 'deepkey.pt' }));
    expect(e.name).toBe('CheckpointError');
    expect(e.message).toBe('deepkey.pt: a dict key at ((((…),),),) is nested deeper than 2000 levels');
  });
});

describe('legacy files: the head of pickles', () => {
  /** The magic number, protocol and system-info pickles of a legacy file. */
  const preamble = (): Buffer =>
    Buffer.concat([pickle(0x1950a86a20f9469cfc6cn), pickle(1001), pickle(new Map<string, unknown>([['protocol_version', 1001], ['little_endian', true]]))]);

  test('a length that reaches past the end of a 20 MB file is refused at once, not after reading the file', async () => {
    const file = path.join(tmp, 'claims.pt');
    // the main pickle: BINUNICODE8 of 2^40 bytes
    fs.writeFileSync(file, Buffer.concat([preamble(), bytes('\x80\x02\x8d'), Buffer.from([0, 0, 0, 0, 0, 1, 0, 0])]));
    fs.truncateSync(file, 20 << 20);
    const e = (await rejected(readStateDict(file))) as Err;
    expect({ name: e.name, code: e.code }).toEqual({ name: 'UnpicklingError', code: 'TRUNCATED' });
    expect(e.message).toMatch(new RegExp(`^${file}, byte \\d+: pickle data truncated: what this opcode declares would end at byte \\d+, past the file's end \\(20971520 bytes\\)$`));
  });

  test('maxPickleBytes bounds the head as it bounds a zip file’s data.pkl', async () => {
    const file = path.join(tmp, 'bighead.pt');
    fs.writeFileSync(file, Buffer.concat([preamble(), pickle(new Map([['pad', 'x'.repeat(300_000)]])), pickle([])]));
    expect(((await readTorchFile(file)) as Map<string, string>).get('pad')!.length).toBe(300_000);
    const e = await rejected(readTorchFile(file, { maxPickleBytes: 100_000 }));
    expect(e.name).toBe('CheckpointError');
    expect(e.message).toMatch(new RegExp(`^${file}: the pickles at the start of the file take more than 100000 bytes, the limit \\(ReadOptions\\.maxPickleBytes\\)`));
  });
});
