/**
 * Weight files: every format PyTorch writes read back to the values Python saw
 * (scripts/fixtures/make-serialization-fixtures.py wrote the files and their values), broken and
 * hostile files refused with errors that name the file and the problem, torchcap's own files read
 * back, atomic saves, and strict state-dict loading.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as yauzl from 'yauzl';
import { Tensor, noGrad } from '../lib/core/tensor';
import {
  OrderedDict,
  detectFormat,
  isPyTuple,
  loadStateDict,
  pyTuple,
  readSafetensors,
  readStateDict,
  readTorchFile,
  readTorchFileContents,
  renameKeys,
  renamePrefixes,
  saveSafetensors,
  saveTorchFile,
  stripPrefix,
} from '../lib/serialization';
import { writeFileAtomicSync } from '../lib/util/files';
import { rejected, thrown } from './support/errors';
import { handMadeLegacy } from './serialization-helpers';

const FIXTURES = path.join(__dirname, 'fixtures', 'serialization');
const fixture = (name: string): string => path.join(FIXTURES, name);

interface Entry {
  dtype: string;
  shape: number[];
  requiresGrad: boolean;
  values: (number | string | boolean)[];
}
interface FileExpectation {
  format: string;
  type: string;
  entries: Record<string, Entry>;
  metadata?: Record<string, string>;
  metadataKeys?: string[];
  scalars?: Record<string, unknown>;
  paramGroup?: Record<string, unknown>;
}
const expected = JSON.parse(fs.readFileSync(fixture('expected.json'), 'utf8')) as { marker: string; files: Record<string, FileExpectation> };
const MARKER = path.join(process.cwd(), expected.marker);

type Err = Error & { code?: string; file?: string };

/** Flat values of a tensor as the fixture JSON holds them (int64 as strings, bool as booleans). */
function valuesOf(t: Tensor): (number | string | boolean)[] {
  switch (t.dtype) {
    case 'int64':
      return Array.from(t.toTypedArray() as BigInt64Array, (v) => String(v));
    case 'bool':
      return Array.from(t.toTypedArray() as Uint8Array, (v) => v !== 0);
    case 'float16':
    case 'bfloat16':
      return Array.from(t.to('float32').toTypedArray() as Float32Array);
    default:
      return Array.from(t.toTypedArray() as Float32Array);
  }
}

function expectEntry(t: unknown, e: Entry, name: string): void {
  expect(t).toBeInstanceOf(Tensor);
  const tensor = t as Tensor;
  expect({ name, dtype: tensor.dtype, shape: tensor.shape }).toEqual({ name, dtype: e.dtype, shape: e.shape });
  expect(valuesOf(tensor)).toEqual(e.values);
}

function contiguousStrides(shape: number[]): number[] {
  const s: number[] = [];
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s.unshift(acc);
    acc *= shape[i];
  }
  return s;
}

let tmp = '';
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torchcap-serialization-'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------

describe('files PyTorch wrote read back to the values Python saw', () => {
  const files = Object.entries(expected.files).filter(([n]) => n !== 'checkpoint.pt' && n !== 'parameter_top.pt');
  test.each(files)('%s', async (name, exp) => {
    const c = await readTorchFileContents(fixture(name));
    expect(c.format).toBe(exp.format);
    const value = c.value as Map<string, Tensor>;
    expect(value).toBeInstanceOf(Map);
    if (exp.type === 'OrderedDict') expect(value).toBeInstanceOf(OrderedDict);
    else expect(value).not.toBeInstanceOf(OrderedDict);
    expect([...value.keys()]).toEqual(Object.keys(exp.entries));
    for (const [k, e] of Object.entries(exp.entries)) {
      expectEntry(value.get(k), e, k);
      const t = value.get(k)!;
      expect(t.requiresGrad).toBe(e.requiresGrad);
      expect(t.strides).toEqual(contiguousStrides(t.shape));
    }
  });

  test('a state dict keeps its _metadata', async () => {
    const sd = (await readTorchFile(fixture('state_dict.pt'))) as OrderedDict<string, Tensor>;
    const meta = sd.attributes.get('_metadata') as Map<string, Map<string, unknown>>;
    expect([...meta.keys()].sort()).toEqual(expected.files['state_dict.pt'].metadataKeys);
    expect(meta.get('encoder.batch_norm')!.get('version')).toBe(2);
  });

  test('safetensors metadata', async () => {
    const { tensors, metadata } = await readSafetensors(fixture('state_dict.safetensors'));
    expect(metadata).toEqual(expected.files['state_dict.safetensors'].metadata);
    expect(tensors.size).toBe(Object.keys(expected.files['state_dict.safetensors'].entries).length);
  });

  test('a Parameter saved on its own is a tensor that requires grad', async () => {
    const t = (await readTorchFile(fixture('parameter_top.pt'))) as Tensor;
    expectEntry(t, expected.files['parameter_top.pt'].entries[''], 'parameter');
    expect(t.requiresGrad).toBe(true);
    expect(t.isLeaf).toBe(true);
  });

  test('a checkpoint with an optimizer state: nested dicts, ints, floats, tuples, None', async () => {
    const exp = expected.files['checkpoint.pt'];
    const ck = (await readTorchFile(fixture('checkpoint.pt'))) as Map<string, unknown>;
    expect(ck).toBeInstanceOf(Map);
    for (const [k, v] of Object.entries(exp.scalars!)) expect([k, ck.get(k)]).toEqual([k, k === 'big' ? BigInt(v as string) : v]);
    const dec = ck.get('decoder') as Map<string, Tensor>;
    const opt = ck.get('optimizer') as Map<string, unknown>;
    for (const [k, e] of Object.entries(exp.entries)) {
      const parts = k.split('/');
      if (parts[0] === 'decoder') expectEntry(dec.get(parts[1]), e, k);
      else {
        const st = (opt.get('state') as Map<number, Map<string, Tensor>>).get(Number(parts[2]))!;
        expectEntry(st.get(parts[3]), e, k);
      }
    }
    const group = (opt.get('param_groups') as Map<string, unknown>[])[0];
    const pg = exp.paramGroup!;
    expect(group.get('lr')).toBe(pg.lr);
    expect(isPyTuple(group.get('betas'))).toBe(true);
    expect(group.get('betas')).toEqual(pg.betas);
    expect(group.get('params')).toEqual(pg.params);
    expect(group.get('amsgrad')).toBe(false);
    expect([...(await readStateDict(fixture('checkpoint.pt'), { key: 'decoder' })).keys()]).toEqual([...dec.keys()]);
  });

  test('views: whole storages stay shared, parts become compact copies', async () => {
    for (const name of ['views.pt', 'views_legacy.pt']) {
      const v = (await readTorchFile(fixture(name))) as Map<string, Tensor>;
      const same = (a: string, b: string): boolean => v.get(a)!.handle.sameStorage(v.get(b)!.handle);
      expect(same('shared_a', 'shared_b')).toBe(true);
      expect(same('shared_a', 'shared_view')).toBe(true);
      expect(v.get('shared_a')).toBe(v.get('shared_b')); // the same Python object is the same Tensor
      expect(same('base', 'slice')).toBe(false);
      expect(same('base', 'matrix_t')).toBe(false);
      expect(v.get('expanded')!.toArray()).toEqual([3, 3, 3, 3, 3]);
      expect(v.get('scalar')!.shape).toEqual([]);
    }
  });

  test('the format comes from the bytes, not the name', async () => {
    const a = path.join(tmp, 'really-safetensors.pt');
    const b = path.join(tmp, 'really-legacy.safetensors');
    fs.copyFileSync(fixture('state_dict.safetensors'), a);
    fs.copyFileSync(fixture('state_dict_legacy.pt'), b);
    expect((await readTorchFileContents(a)).format).toBe('safetensors');
    expect((await readTorchFileContents(b)).format).toBe('legacy');
    expect(detectFormat(fs.readFileSync(fixture('state_dict.pt')), 10)).toBe('zip');
  });

  test('bytes in memory read as files do', async () => {
    for (const name of ['state_dict.pt', 'state_dict_legacy.pt', 'state_dict.safetensors']) {
      const sd = await readStateDict(fs.readFileSync(fixture(name)), { name });
      expectEntry(sd.get('decoder.linear_layer.weight'), expected.files['state_dict.pt'].entries['decoder.linear_layer.weight'], name);
    }
  });

  test('readStateDict refuses what is not a dict of tensors, naming the entry', async () => {
    const e = await rejected(readStateDict(fixture('checkpoint.pt')));
    expect(e.name).toBe('CheckpointError');
    expect(e.message).toBe(`${fixture('checkpoint.pt')}: state dict entry 'epoch' is int, not a tensor`);
    const m = await rejected(readStateDict(fixture('checkpoint.pt'), { key: 'model' }));
    expect(m.message).toContain("no entry 'model' (entries: epoch, step, loss, note, done, nothing, big, decoder, optimizer)");
    const p = await rejected(readStateDict(fixture('parameter_top.pt')));
    expect(p.message).toContain('holds Tensor, not a state dict');
  });
});

// ---------------------------------------------------------------------------------------------

describe('broken and hostile files: clear errors, nothing runs', () => {
  beforeEach(() => fs.rmSync(MARKER, { force: true }));
  afterEach(() => expect(fs.existsSync(MARKER)).toBe(false));

  test.each([
    ['evil_state_dict.pt', 'UnpicklingError', /\(record archive\/data\.pkl\), byte 48: global 'os\.system' is not allowed \(allowed: collections\.OrderedDict, .*save model\.state_dict\(\) instead$/],
    ['evil_legacy.pt', 'UnpicklingError', /, byte \d+: global 'os\.system' is not allowed/],
    ['module_pickle.pt', 'UnpicklingError', /global 'torch\.nn\.modules\.linear\.Linear' is not allowed .* save model\.state_dict\(\) instead$/],
    ['torchscript.pt', 'CheckpointError', /: a TorchScript archive \(torch\.jit\.save\)/],
    ['truncated_zip.pt', 'CheckpointError', /: not a readable zip archive: End of central directory record signature not found\. Either not a zip file, or file is truncated\.$/],
    ['truncated_legacy.pt', 'CheckpointError', /: truncated: storage '\d+' needs \d+ bytes at byte \d+ but the file ends at \d+$/],
    ['truncated_legacy_pickle.pt', 'UnpicklingError', /, byte \d+: pickle data truncated/],
    ['bad_crc.pt', 'CheckpointError', /: record 'state_dict\/data\/0' is corrupt: CRC-32 [0-9a-f]{8} does not match [0-9a-f]{8} in the central directory$/],
    ['bad_central_directory.pt', 'CheckpointError', /: not a readable zip archive: invalid central directory file header signature: 0x58585858$/],
    ['wrong_magic.pt', 'CheckpointError', /: invalid magic number 0x1950a86a20f9469cfc6d: not a PyTorch file \(or a corrupt one\)$/],
    ['not_torch.bin', 'CheckpointError', /: not a PyTorch \(zip or legacy\) or safetensors file \(it starts with 47 49 46 38 39 61 20 74\)$/],
    ['empty.pt', 'CheckpointError', /: the file is empty$/],
    ['vocabulary.pkl', 'CheckpointError', /: not a PyTorch file: a pickle that does not start with torch's magic number \(global '__main__\.Vocab' is not allowed \(allowed: none\)\)$/],
    ['short_record.pt', 'CheckpointError', /: record 'archive\/data\/0' holds \d+ bytes but the pickle declares \d+ float32 elements \(\d+ bytes\)$/],
    ['out_of_bounds_view.pt', 'CheckpointError', /: tensor 'w' \(size \[100\], stride \[1\], offset 0\) reaches element 99 of a storage of 4$/],
    ['unsupported_int8.pt', 'CheckpointError', /: tensor 'small' has dtype int8 \(torch\.CharStorage\), which torchcap's tensors do not support/],
    ['hole.safetensors', 'CheckpointError', /: safetensors data has a hole before tensor "a" \(bytes 0\.\.4\)$/],
    ['overlap.safetensors', 'CheckpointError', /: safetensors tensor "b" overlaps the previous tensor$/],
    ['bad_dtype.safetensors', 'CheckpointError', /: safetensors tensor "a": dtype I8 is not supported by torchcap's tensors/],
    ['bad_json.safetensors', 'CheckpointError', /: safetensors header is not valid JSON: /],
    ['truncated.safetensors', 'CheckpointError', /: safetensors tensor "[a-z_.]+": data_offsets end at \d+ but the data holds \d+ bytes$/],
  ])('%s → %s', async (name, errName, message) => {
    const e = (await rejected(readTorchFile(fixture(name)))) as Err;
    expect({ name: e.name, message: e.message }).toEqual({ name: errName, message: expect.stringMatching(message) });
    expect(e.message).toContain(fixture(name));
  });

  test('a missing file and a folder', async () => {
    const missing = path.join(tmp, 'nope.pt');
    expect((await rejected(readTorchFile(missing))).message).toBe(`${missing}: cannot open: no such file`);
    expect((await rejected(readTorchFile(tmp))).message).toMatch(new RegExp(`^${tmp}: (cannot open: is a directory|not a regular file)$`));
  });

  test('big-endian data is byte-swapped', async () => {
    const c = await readTorchFileContents(fixture('big_endian.pt'));
    expect(c.byteOrder).toBe('big');
    const v = c.value as Map<string, Tensor>;
    for (const [k, e] of Object.entries(expected.files['big_endian.pt'].entries)) expectEntry(v.get(k), e, k);
  });

  test('the reader never changes the caller’s buffer', async () => {
    const buf = fs.readFileSync(fixture('big_endian.pt'));
    const copy = Buffer.from(buf);
    await readTorchFile(buf);
    expect(buf.equals(copy)).toBe(true);
  });
});

describe('legacy files made by hand', () => {
  test.each([true, false])('storage views, little-endian %s', async (le) => {
    const c = await readTorchFileContents(handMadeLegacy(le), { name: 'old.pt' });
    expect(c.format).toBe('legacy');
    expect(c.byteOrder).toBe(le ? 'little' : 'big');
    const v = c.value as Map<string, Tensor>;
    expect(v.get('whole')!.toArray()).toEqual([[0.5, 1.5, 2.5], [3.5, 4.5, 5.5]]);
    expect(v.get('view')!.toArray()).toEqual([3.5, 4.5]);
  });

  test('a view outside its storage is refused', async () => {
    const bad = handMadeLegacy(true);
    // The view's offset (2) becomes 5: [5, 8) lies outside the 6 elements.
    const at = bad.indexOf(Buffer.from('view1', 'latin1')) + 5;
    expect(bad[at]).toBe(0x4b); // BININT1
    bad[at + 1] = 5;
    const e = await rejected(readTorchFile(bad, { name: 'old.pt' }));
    expect(e.name).toBe('UnpicklingError');
    expect(e.message).toMatch(/^old\.pt, byte \d+: persistent id: storage view 'view1' \[5, 8\) lies outside storage 'root' of 6 elements/);
  });
});

// ---------------------------------------------------------------------------------------------

function sample(): Map<string, Tensor> {
  return new Map<string, Tensor>([
    ['f32', Tensor.from([[1.5, -2], [0.25, 1e-30]])],
    ['f64', Tensor.from([Math.PI, -1e300], { dtype: 'float64' })],
    ['f16', Tensor.from([0.5, -65504], { dtype: 'float16' })],
    ['bf16', Tensor.from([1, -3e38], { dtype: 'bfloat16' })],
    ['i64', Tensor.from(BigInt64Array.from([0n, -5n, 2n ** 62n]))],
    ['i32', Tensor.from(Int32Array.from([2 ** 31 - 1, -(2 ** 31)]))],
    ['u8', Tensor.from(Uint8Array.from([0, 255]))],
    ['bool', Tensor.from([true, false, true])],
    ['scalar', Tensor.from(2.5)],
    ['empty', Tensor.zeros([0, 3])],
  ]);
}

function expectSame(a: Map<string, Tensor>, b: Map<string, Tensor>): void {
  expect([...b.keys()]).toEqual([...a.keys()]);
  for (const [k, t] of a) {
    const u = b.get(k)!;
    expect({ k, dtype: u.dtype, shape: u.shape }).toEqual({ k, dtype: t.dtype, shape: t.shape });
    expect(valuesOf(u)).toEqual(valuesOf(t));
  }
}

function zipLayout(file: string): Promise<{ name: string; start: number; method: number }[]> {
  return new Promise((resolve, reject) => {
    yauzl.open(file, { lazyEntries: true }, (err, zip) => {
      if (err) return reject(err);
      const out: { name: string; start: number; method: number }[] = [];
      zip.on('entry', (e: yauzl.Entry) => {
        zip.readLocalFileHeader(e, { minimal: true }, (err2, h) => {
          if (err2) return reject(err2);
          out.push({ name: e.fileName, start: h.fileDataStart, method: e.compressionMethod });
          zip.readEntry();
        });
      });
      zip.on('end', () => {
        zip.close();
        resolve(out);
      });
      zip.readEntry();
    });
  });
}

describe('saving', () => {
  test('torchcap save → torchcap load: every dtype, in order, as an OrderedDict', async () => {
    const file = path.join(tmp, 'all.pt');
    const sd = sample();
    await saveTorchFile(file, sd);
    const back = await readStateDict(file);
    expect(back).toBeInstanceOf(OrderedDict);
    expectSame(sd, back);
  });

  test('the zip is laid out as torch.save lays it out: stored records, data on 64-byte boundaries', async () => {
    const file = path.join(tmp, 'encoder-1-1000.ckpt');
    await saveTorchFile(file, sample());
    const layout = await zipLayout(file);
    const names = layout.map((l) => l.name);
    expect(names[0]).toBe('encoder-1-1000/data.pkl');
    expect(names).toContain('encoder-1-1000/byteorder');
    expect(names).toContain('encoder-1-1000/version');
    expect(names.filter((n) => n.includes('/data/')).sort()).toEqual(
      Array.from({ length: 10 }, (_, i) => `encoder-1-1000/data/${i}`).sort(),
    );
    for (const l of layout) {
      expect(l.method).toBe(0);
      expect(l.start % 64).toBe(0);
    }
  });

  test('zip64 records read back', async () => {
    const file = path.join(tmp, 'zip64.pt');
    await saveTorchFile(file, sample(), { forceZip64: true });
    expectSame(sample(), await readStateDict(file));
  });

  test('one Tensor in two places is one storage; views are saved as what they show', async () => {
    const file = path.join(tmp, 'shared.pt');
    const w = Tensor.randn([3, 4]);
    const base = Tensor.arange(0, 12, 1, { dtype: 'float32' });
    await saveTorchFile(file, new Map([
      ['a', w],
      ['b', w],
      ['t', base.view([3, 4]).transpose(0, 1)],
      ['s', base.slice(0, 2, 9, 3)],
    ]));
    expect((await zipLayout(file)).filter((l) => l.name.includes('/data/')).length).toBe(3);
    const back = await readStateDict(file);
    expect(back.get('a')).toBe(back.get('b'));
    expect(back.get('t')!.toArray()).toEqual(base.view([3, 4]).transpose(0, 1).toArray());
    expect(back.get('s')!.toArray()).toEqual([2, 5, 8]);
  });

  test('{ tensors, metadata } writes the state dict with its _metadata', async () => {
    const file = path.join(tmp, 'meta.pt');
    await saveTorchFile(file, { tensors: new Map([['w', Tensor.ones([2])]]), metadata: { '': { version: 1 }, bn: { version: 2 } } });
    const back = (await readTorchFile(file)) as OrderedDict;
    const meta = back.attributes.get('_metadata') as Map<string, Map<string, unknown>>;
    expect(meta.get('bn')!.get('version')).toBe(2);
  });

  test('a checkpoint: nested state dicts, optimizer state, numbers, tuples', async () => {
    const file = path.join(tmp, 'checkpoint.ckpt');
    const step = Tensor.from(3);
    const ck = {
      epoch: 2,
      loss: 2.5,
      decoder: sample(),
      optimizer: {
        state: new Map([[0, { step, exp_avg: Tensor.zeros([2, 2]) }]]),
        param_groups: [{ lr: 0.001, betas: pyTuple(0.9, 0.999), eps: 1e-8, amsgrad: false, params: [0] }],
      },
      nothing: null,
    };
    await saveTorchFile(file, ck);
    const back = (await readTorchFile(file)) as Map<string, unknown>;
    expect(back.get('epoch')).toBe(2);
    expect(back.get('loss')).toBe(2.5);
    expect(back.get('nothing')).toBeNull();
    expect(back.get('decoder')).toBeInstanceOf(OrderedDict);
    expectSame(sample(), back.get('decoder') as Map<string, Tensor>);
    const opt = back.get('optimizer') as Map<string, unknown>;
    const st = (opt.get('state') as Map<number, Map<string, Tensor>>).get(0)!;
    expect(st.get('step')!.item()).toBe(3);
    const g = (opt.get('param_groups') as Map<string, unknown>[])[0];
    expect(isPyTuple(g.get('betas'))).toBe(true);
    expect(g.get('betas')).toEqual([0.9, 0.999]);
    expect(g.get('params')).toEqual([0]);
  });

  test('safetensors round trip, with metadata, header padded to 8 bytes', async () => {
    const file = path.join(tmp, 'w.safetensors');
    const sd = sample();
    await saveSafetensors(file, sd, { format: 'pt' });
    const raw = fs.readFileSync(file);
    const n = Number(raw.readBigUInt64LE(0));
    expect(n % 8).toBe(0);
    const header = JSON.parse(raw.subarray(8, 8 + n).toString('utf8')) as Record<string, unknown>;
    expect(header.__metadata__).toEqual({ format: 'pt' });
    expect(header.f16).toEqual({ dtype: 'F16', shape: [2], data_offsets: expect.any(Array) });
    const { tensors, metadata } = await readSafetensors(file);
    expect(metadata).toEqual({ format: 'pt' });
    const sorted = new Map([...sd.entries()].sort(([a], [b]) => (a < b ? -1 : 1)));
    expectSame(sorted, tensors);
  });

  test('safetensors whose header length starts with the bytes of a pickle PROTO opcode read as safetensors', async () => {
    // 640 = 0x0280: the file starts 0x80 0x02, the first bytes of a legacy torch.save file.
    for (const want of [0x280, 0x380, 0x480, 0x580]) {
      const file = path.join(tmp, `h${want}.safetensors`);
      const sd = new Map([['w', Tensor.from([1, 2, 3])]]);
      let pad = 0;
      let n = 0;
      for (let tries = 0; tries < 20 && n !== want; tries++) {
        await saveSafetensors(file, sd, { note: 'x'.repeat(pad) });
        n = Number(fs.readFileSync(file).readBigUInt64LE(0));
        if (n !== want) pad += want - n > 8 ? want - n - 7 : 1; // the header is padded to 8 bytes
      }
      expect(n).toBe(want);
      expect([...fs.readFileSync(file).subarray(0, 2)]).toEqual([0x80, want >> 8]);
      const { tensors, metadata } = await readSafetensors(file);
      expect(metadata.note.length).toBe(pad);
      expect(tensors.get('w')!.toArray()).toEqual([1, 2, 3]);
    }
  });

  describe('a failed save leaves the old file and no partial file', () => {
    class Exploding extends Tensor {
      override toTypedArray(): never {
        throw new Error('the device went away');
      }
    }

    const listTmp = (dir: string): string[] => fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'));

    test.each([
      ['torch', (f: string, m: Map<string, Tensor>) => saveTorchFile(f, m)],
      ['safetensors', (f: string, m: Map<string, Tensor>) => saveSafetensors(f, m)],
    ])('%s: a tensor that fails when read midway', async (_kind, save) => {
      const dir = fs.mkdtempSync(path.join(tmp, 'atomic-'));
      const file = path.join(dir, 'model.pt');
      fs.writeFileSync(file, 'the previous checkpoint');
      const bad = new Exploding(Tensor.zeros([1000]).handle);
      const m = new Map<string, Tensor>([['a', Tensor.ones([1000])], ['b', Tensor.ones([1000])], ['z_bad', bad]]);
      const e = (await rejected(save(file, m))) as Err;
      expect(e.name).toBe('CheckpointError');
      expect(e.message).toBe(`${file}: cannot save 'z_bad': the device went away`);
      expect(fs.readFileSync(file, 'utf8')).toBe('the previous checkpoint');
      expect(listTmp(dir)).toEqual([]);
    });

    test('a folder that does not exist', async () => {
      const file = path.join(tmp, 'no', 'such', 'dir', 'model.pt');
      const e = await rejected(saveTorchFile(file, sample()));
      expect(e.name).toBe('CheckpointError');
      expect(e.message).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: cannot create a file in ${path.dirname(file)}: ENOENT`));
    });

    test('a disposed tensor is named before anything is written', async () => {
      const file = path.join(tmp, 'disposed.pt');
      const t = Tensor.ones([2]);
      t.dispose();
      const e = await rejected(saveTorchFile(file, new Map([['layer.weight', t]])));
      expect(e.name).toBe('CheckpointError');
      expect(e.message).toMatch(/: cannot save 'layer\.weight': .*dispos/i);
      expect(fs.existsSync(file)).toBe(false);
    });
  });
});

describe('an atomic save replaces what the target names, as it is', () => {
  const writers: [string, (f: string) => Promise<void>][] = [
    ['saveTorchFile', (f) => saveTorchFile(f, new Map([['w', Tensor.ones([2])]]))],
    ['writeFileAtomicSync', async (f) => writeFileAtomicSync(f, 'new content')],
  ];
  const noTemporaries = (dir: string): void => expect(fs.readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);

  test.each(writers)('%s: a symbolic link stays a link, to the new file', async (_fn, write) => {
    const dir = fs.mkdtempSync(path.join(tmp, 'link-'));
    fs.writeFileSync(path.join(dir, 'real.pt'), 'previous');
    const link = path.join(dir, 'link.pt');
    fs.symlinkSync('real.pt', link);
    await write(link);
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
    expect(fs.readFileSync(path.join(dir, 'real.pt'), 'latin1')).not.toBe('previous');
    noTemporaries(dir);
  });

  test.each(writers)('%s: an existing file keeps its mode (600)', async (_fn, write) => {
    const dir = fs.mkdtempSync(path.join(tmp, 'mode-'));
    const secret = path.join(dir, 'secret.pt');
    fs.writeFileSync(secret, 'x');
    fs.chmodSync(secret, 0o600);
    await write(secret);
    expect(fs.statSync(secret).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(secret, 'latin1')).not.toBe('x');
  });

  test.each(writers)('%s: a name of 240 bytes (the limit is 255) is written', async (_fn, write) => {
    const dir = fs.mkdtempSync(path.join(tmp, 'long-'));
    const long = path.join(dir, `${'n'.repeat(237)}.pt`);
    await write(long);
    expect(fs.existsSync(long)).toBe(true);
    noTemporaries(dir);
  });
});

// ---------------------------------------------------------------------------------------------

describe('loadStateDict', () => {
  const target = (): Map<string, Tensor> =>
    new Map([
      ['conv.weight', Tensor.zeros([4, 2, 3, 3])],
      ['bn.weight', Tensor.zeros([4])],
      ['bn.num_batches_tracked', Tensor.zeros([], { dtype: 'int64' })],
    ]);

  test('copies every value in place, converting float16 to float32', () => {
    const t = target();
    const w = t.get('conv.weight')!;
    const src = new Map([
      ['conv.weight', Tensor.randn([4, 2, 3, 3])],
      ['bn.weight', Tensor.from([1, 2, 3, 4], { dtype: 'float16' })],
      ['bn.num_batches_tracked', Tensor.from(7, { dtype: 'int64' })],
    ]);
    const r = loadStateDict(t, src);
    expect(r.loaded).toEqual(['conv.weight', 'bn.weight', 'bn.num_batches_tracked']);
    expect(t.get('conv.weight')).toBe(w);
    expect(w.equal(src.get('conv.weight')!)).toBe(true);
    expect(t.get('bn.weight')!.dtype).toBe('float32');
    expect(t.get('bn.weight')!.toArray()).toEqual([1, 2, 3, 4]);
    expect(t.get('bn.num_batches_tracked')!.item()).toBe(7);
  });

  test('parameters that require grad are filled without recording a graph', () => {
    const p = Tensor.zeros([3], { requiresGrad: true });
    loadStateDict(new Map([['p', p]]), new Map([['p', Tensor.ones([3])]]));
    expect(p.isLeaf).toBe(true);
    expect(p.requiresGrad).toBe(true);
    expect(p.toArray()).toEqual([1, 1, 1]);
  });

  test('strict: one error lists missing, unexpected and mismatched names; nothing is copied', () => {
    const t = new Map([...target(), ['layer1.0.conv1.weight', Tensor.zeros([64, 64, 3, 3])]]);
    const src = new Map([
      ['conv.weight', Tensor.ones([4, 2, 3, 3])],
      ['layer1.0.conv1.weight', Tensor.ones([64, 64, 1, 1])],
      ['bn.num_batches_tracked', Tensor.ones([])],
      ['fc.weight', Tensor.ones([2])],
      ['fc.bias', Tensor.ones([2])],
    ]);
    const e = thrown(() => loadStateDict(t, src, { source: 'encoder.ckpt' })) as Err & { missing: string[]; unexpected: string[]; mismatched: string[] };
    expect(e.name).toBe('CheckpointError');
    expect(e.message).toBe(
      [
        'encoder.ckpt: Error(s) loading state dict:',
        '  missing keys (1): bn.weight',
        '  unexpected keys (2): fc.weight, fc.bias',
        '  mismatched (2):',
        '    bn.num_batches_tracked: expected int64, file has float32',
        '    layer1.0.conv1.weight: expected [64, 64, 3, 3], file has [64, 64, 1, 1]',
      ].join('\n'),
    );
    expect(e.missing).toEqual(['bn.weight']);
    expect(e.unexpected).toEqual(['fc.weight', 'fc.bias']);
    expect(t.get('conv.weight')!.sum().item()).toBe(0);
  });

  test('non-strict: missing and unexpected are reported; a wrong shape still throws', () => {
    const t = target();
    const r = loadStateDict(t, new Map([['bn.weight', Tensor.ones([4])], ['extra', Tensor.ones([1])]]), { strict: false });
    expect(r).toEqual({ loaded: ['bn.weight'], missing: ['conv.weight', 'bn.num_batches_tracked'], unexpected: ['extra'], ignored: [] });
    expect(() => loadStateDict(t, new Map([['bn.weight', Tensor.ones([5])]]), { strict: false })).toThrow(/bn\.weight: expected \[4\], file has \[5\]/);
  });

  test('ignore leaves names alone on both sides', () => {
    const t = target();
    const r = loadStateDict(t, new Map([['conv.weight', Tensor.ones([4, 2, 3, 3])], ['bn.weight', Tensor.ones([4])], ['fc.weight', Tensor.ones([1])]]), {
      ignore: (n) => n.endsWith('num_batches_tracked') || n.startsWith('fc.'),
    });
    expect(r.ignored.sort()).toEqual(['bn.num_batches_tracked', 'fc.weight']);
  });

  test("torchvision names onto the book's encoder, by prefix", async () => {
    const tv = await readStateDict(fixture('resnet_tiny.pt'));
    const book = await readStateDict(fixture('book_encoder_tiny.pt'));
    const mapping = {
      conv1: 'resnet_module.0',
      bn1: 'resnet_module.1',
      layer1: 'resnet_module.4',
      layer2: 'resnet_module.5',
      layer3: 'resnet_module.6',
      layer4: 'resnet_module.7',
      fc: null,
    };
    const renamed = renameKeys(tv, mapping);
    expect(renamed.has('resnet_module.5.0.downsample.0.weight')).toBe(true);
    const target = new Map([...book].map(([k, v]) => [k, Tensor.zeros(v.shape, { dtype: v.dtype })]));
    const r = loadStateDict(target, tv, { rename: mapping, ignore: (n) => !n.startsWith('resnet_module.') });
    expect(r.loaded.length).toBe(renamed.size);
    expect(r.ignored.sort()).toEqual(['fc.bias', 'fc.weight', ...[...book.keys()].filter((k) => !k.startsWith('resnet_module.'))].sort());
    for (const k of r.loaded) expect([k, target.get(k)!.equal(book.get(k)!)]).toEqual([k, true]);
  });

  test('renamePrefixes: dotted boundaries, longest match, adding and stripping', () => {
    const r = renamePrefixes({ layer1: 'a', 'layer1.0': 'b', '': 'x', fc: null });
    expect(r('layer1.0.conv.weight')).toBe('b.conv.weight');
    expect(r('layer1.1.conv.weight')).toBe('a.1.conv.weight');
    expect(r('layer10.weight')).toBe('x.layer10.weight');
    expect(r('fc.weight')).toBeNull();
    expect(renamePrefixes({ module: '' })('module.conv.weight')).toBe('conv.weight');
    expect(renamePrefixes([['conv1', 'resnet_module.0']], { dropUnmatched: true })('bn1.weight')).toBeNull();
    expect(stripPrefix('module.')('module.fc.bias')).toBe('fc.bias');
    const e = thrown(() => renameKeys(new Map([['a.w', 1], ['b.w', 2]]), { a: 'c', b: 'c' }));
    expect(e.message).toBe("renaming maps both 'a.w' and 'b.w' to 'c.w'");
  });

  test('noGrad is restored after loading', () => {
    loadStateDict(new Map([['w', Tensor.zeros([1])]]), new Map([['w', Tensor.ones([1])]]));
    expect(noGrad(() => 1)).toBe(1);
  });
});
