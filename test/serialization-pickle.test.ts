/**
 * The pickle VM: Python-made pickles (the book's vocabulary in protocols 0, 2 and 4), hostile
 * pickles whose payload Python would run (refused, and nothing ran), malformed and oversized input
 * (precise errors with byte offsets), and the writer (round trips).
 */
import * as fs from 'fs';
import * as path from 'path';
import {
  BUILTIN_DATA_GLOBALS,
  OrderedDict,
  PyFloat,
  PyGlobal,
  PyObject,
  PyReduce,
  isPyTuple,
  pickle,
  pyClass,
  pyTuple,
  unpickle,
  unpickleAt,
} from '../lib/serialization/pickle';
import { readPickleFile } from '../lib/serialization/pickle-file';
import { readBookVocabularyPickle } from '../lib/vocabulary';
import { TORCH_GLOBALS } from '../lib/serialization/torch-file';
import { rejected, thrown } from './support/errors';

const FIXTURES = path.join(__dirname, 'fixtures', 'serialization');
const fixture = (name: string): string => path.join(FIXTURES, name);
const expected = JSON.parse(fs.readFileSync(fixture('expected.json'), 'utf8')) as { marker: string; vocabulary: string[] };
const MARKER = path.join(process.cwd(), expected.marker);

type Err = Error & { code?: string; offset?: number; detail?: string };

describe("the book's vocabulary.pkl", () => {
  test.each(['vocabulary.pkl', 'vocabulary_p2.pkl', 'vocabulary_p0.pkl'])('%s (protocols 4, 2, 0) gives the words by id', async (name) => {
    const v = await readBookVocabularyPickle(fixture(name));
    expect(v.words).toEqual(expected.vocabulary);
    expect(v.index).toBe(expected.vocabulary.length);
    expect(v.w2i.get('dog')).toBe(expected.vocabulary.indexOf('dog'));
    expect(v.i2w.get(0)).toBe('<pad>');
    expect(v.words).toContain('café');
    expect(v.words).toContain('line\nbreak');
    expect(v.words).toContain('back\\slash');
  });

  test('the object is plain data: class name and __dict__ from BUILD', async () => {
    const v = await readPickleFile(fixture('vocabulary.pkl'), { allow: { '__main__.Vocab': pyClass('__main__.Vocab') } });
    expect(v).toBeInstanceOf(PyObject);
    const o = v as PyObject;
    expect(o.className).toBe('__main__.Vocab');
    expect([...o.__dict__.keys()]).toEqual(['w2i', 'i2w', 'index']);
  });

  test('without the class on the allowlist, the global is refused', async () => {
    const e = (await rejected(readPickleFile(fixture('vocabulary.pkl')))) as Err;
    expect(e.name).toBe('UnpicklingError');
    expect(e.message).toContain("global '__main__.Vocab' is not allowed (allowed: none)");
    expect(e.message).toContain('vocabulary.pkl');
  });

  test('attribute names cannot reach Object.prototype', async () => {
    const v = (await readPickleFile(fixture('vocabulary_proto.pkl'), { allow: { '__main__.Vocab': pyClass('__main__.Vocab') } })) as PyObject;
    expect(v.__dict__.get('__proto__')).toBeInstanceOf(Map);
    expect(v.__dict__.get('constructor')).toBe('x');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(v)).toBe(PyObject.prototype);
  });

  test('a vocabulary whose maps disagree is refused, naming the problem', async () => {
    // Hand-made protocol 2: Vocab with w2i {'a': 1}, i2w {0: 'a'}, index 1.
    const p = Buffer.concat([
      Buffer.from('\x80\x02c__main__\nVocab\n)\x81}(X\x03\x00\x00\x00w2i}X\x01\x00\x00\x00aK\x01sX\x03\x00\x00\x00i2w}K\x00X\x01\x00\x00\x00asX\x05\x00\x00\x00indexK\x01ub.', 'latin1'),
    ]);
    const e = await rejected(readBookVocabularyPickle(p, { name: 'vocab.pkl' }));
    expect(e.name).toBe('CheckpointError');
    expect(e.message).toBe(`vocab.pkl: not the book's vocabulary pickle: w2i["a"] = 1 but i2w[1] = undefined`);
  });
});

describe('hostile pickles are refused and nothing runs', () => {
  beforeEach(() => fs.rmSync(MARKER, { force: true }));
  afterEach(() => expect(fs.existsSync(MARKER)).toBe(false));

  test.each([
    ['evil_os_system.pkl', 'os.system', 0],
    ['evil_os_system_p4.pkl', 'os.system', 25],
    ['evil_eval.pkl', 'builtins.eval', 0],
    ['evil_popen.pkl', 'subprocess.Popen', 0],
    ['evil_newobj.pkl', 'subprocess.Popen', 2],
  ])('%s: global %s is refused at byte %i', async (name, global, offset) => {
    for (const allow of [undefined, TORCH_GLOBALS, BUILTIN_DATA_GLOBALS]) {
      const e = (await rejected(readPickleFile(fixture(name), { allow }))) as Err;
      expect(e.name).toBe('UnpicklingError');
      expect(e.code).toBe('GLOBAL');
      expect(e.offset).toBe(offset);
      expect(e.message).toContain(`global '${global}' is not allowed (allowed: `);
      expect(e.message.startsWith(`${fixture(name)}, byte ${offset}: `)).toBe(true);
    }
    await new Promise((r) => setTimeout(r, 200)); // a spawned process would have had time to run
  });

  test('the allowed list in the message names what is allowed', () => {
    const e = thrown(() => unpickle(fs.readFileSync(fixture('evil_os_system.pkl')), { allow: TORCH_GLOBALS })) as Err;
    expect(e.message).toContain('collections.OrderedDict');
    expect(e.message).toContain('torch._utils._rebuild_tensor_v2');
    expect(e.message).toContain('torch.FloatStorage');
  });

  test('an allowed global that is not callable cannot be called', () => {
    // builtins.object is allowed as a marker for copyreg, never as a callable.
    const e = thrown(() => unpickle(Buffer.from('cbuiltins\nobject\n)R.', 'latin1'), { allow: BUILTIN_DATA_GLOBALS })) as Err;
    expect(e.name).toBe('UnpicklingError');
    expect(e.message).toBe('byte 18: global builtins.object cannot be called here (REDUCE)');
  });

  test('a storage type cannot be called or instantiated', () => {
    const e = thrown(() => unpickle(Buffer.from('\x80\x02ctorch\nFloatStorage\n)R.', 'latin1'), { allow: TORCH_GLOBALS })) as Err;
    expect(e.message).toBe('byte 23: StorageType cannot be called here (REDUCE)');
  });
});

describe('malformed and oversized pickles: precise errors', () => {
  const err = (bytes: string | Buffer, opts = {}): Err => thrown(() => unpickle(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes, opts)) as Err;

  test('a BINUNICODE8 length far beyond the data', () => {
    const e = (thrown(() => unpickle(fs.readFileSync(fixture('huge_binunicode8.pkl')), { source: 'huge.pkl' })) as Err);
    expect(e.name).toBe('UnpicklingError');
    expect(e.code).toBe('TRUNCATED');
    expect(e.message).toBe('huge.pkl, byte 2: pickle data truncated: BINUNICODE8 declares 18446744073709551600 bytes but only 4 remain');
  });

  test('a BINUNICODE length of 4 GiB', () => {
    const e = thrown(() => unpickle(fs.readFileSync(fixture('huge_binunicode.pkl')))) as Err;
    expect(e.message).toBe('byte 2: pickle data truncated: BINUNICODE needs 4294967295 bytes for 4294967295 bytes of data but only 4 remain');
  });

  test('MARK nesting beyond the limit', () => {
    const e = thrown(() => unpickle(fs.readFileSync(fixture('deep_marks.pkl')))) as Err;
    expect(e.code).toBe('LIMIT');
    expect(e.message).toBe('byte 10002: MARK depth limit of 10000 exceeded');
  });

  test('an unknown opcode', () => {
    expect(thrown(() => unpickle(fs.readFileSync(fixture('unknown_opcode.pkl')))).message).toBe('byte 4: unknown opcode 0xff');
  });

  test('a truncated pickle', async () => {
    const e = (await rejected(readBookVocabularyPickle(fixture('truncated.pkl')))) as Err;
    expect(e.name).toBe('UnpicklingError');
    expect(e.code).toBe('TRUNCATED');
    expect(e.message).toContain('truncated.pkl, byte ');
  });

  test.each([
    ['', 'byte 0: pickle data is empty'],
    ['\x80\x02', 'byte 2: pickle data truncated: no STOP opcode'],
    ['\x80\x09N.', 'byte 0: unsupported pickle protocol 9'],
    ['\x80\x02q\x00.', 'byte 2: BINPUT on an empty stack'],
    ['\x80\x02h\x05.', 'byte 2: memo entry 5 is missing'],
    ['\x80\x02K', 'byte 2: pickle data truncated: BININT1 needs 1 bytes for its argument but only 0 remain'],
    ['\x80\x02J\x01\x02', 'byte 2: pickle data truncated: BININT needs 4 bytes for its argument but only 2 remain'],
    ['\x80\x02Na.', 'byte 3: APPEND on an empty stack'],
    ['\x80\x02]K\x01K\x02s.', 'byte 7: SETITEM needs a dict, not list'],
    ['\x80\x02}]K\x01s.', 'byte 6: unhashable list as a dict key'],
    ['\x80\x02(K\x01K\x02K\x03d.', 'byte 9: DICT needs key/value pairs but got an odd number of items'],
    ['\x80\x02t.', 'byte 2: TUPLE without a MARK'],
    ['\x80\x02N\x8b\xff\xff\xff\xff.', 'byte 3: LONG4 with a negative length'],
    ['\x80\x02X\x02\x00\x00\x00\xc3(.', 'byte 2: BINUNICODE string is not valid UTF-8'],
    ['\x80\x02Q.', 'byte 2: BINPERSID on an empty stack'],
    ['\x80\x02X\x01\x00\x00\x000Q.', 'byte 8: persistent id found, but this file type has no persistent objects'],
    ['\x80\x02\x82\x01.', 'byte 2: EXT1: extension registry codes are not supported'],
    ['\x80\x02K\x01K\x02b.', 'byte 6: BUILD on int, which takes no state'],
    ['I12x\n.', 'byte 0: INT argument "12x" is not an integer'],
    ["S'abc\n.", 'byte 0: the STRING opcode argument must be quoted'],
  ])('%j → %s', (bytes, message) => {
    const e = err(bytes);
    expect(e.name).toBe('UnpicklingError');
    expect(e.message).toBe(message);
  });

  test('memo and stack limits', () => {
    const many = Buffer.concat([Buffer.from('\x80\x02N', 'latin1'), Buffer.alloc(200, 0x94), Buffer.from('.')]);
    expect(err(many, { maxMemo: 100 }).message).toBe('byte 103: memo limit of 100 entries exceeded');
    const deep = Buffer.concat([Buffer.from('\x80\x02', 'latin1'), Buffer.alloc(50, 0x4e), Buffer.from('.')]);
    expect(err(deep, { maxStack: 10 }).message).toBe('byte 12: stack limit of 10 values exceeded');
    const big = Buffer.concat([Buffer.from('\x80\x02\x8b', 'latin1'), Buffer.from([0x00, 0x00, 0x02, 0x00]), Buffer.alloc(0x20000), Buffer.from('.')]);
    expect(err(big).message).toBe('byte 2: integer of 131072 bytes exceeds the limit of 65536');
  });
});

describe('values of every kind', () => {
  test('protocol-0 text opcodes', () => {
    const v = unpickle(Buffer.from("(lp0\nI01\naI00\naI-7\naL123456789012345678901234567890L\naF1.5\naF-inf\naS'a\\'b\\x41'\naVcaf\\u00e9\\u005c\na.", 'latin1'));
    expect(v).toEqual([true, false, -7, 123456789012345678901234567890n, 1.5, -Infinity, "a'bA", 'café\\']);
  });

  test('integers: small, negative, beyond 2^53', () => {
    const v = unpickle(pickle([0, 255, 256, 65535, 65536, -1, -(2 ** 31), 2 ** 31, 2 ** 53 - 1, 2n ** 53n + 1n, -(2n ** 70n), 2n ** 64n - 1n])) as unknown[];
    expect(v).toEqual([0, 255, 256, 65535, 65536, -1, -(2 ** 31), 2 ** 31, 2 ** 53 - 1, 2n ** 53n + 1n, -(2n ** 70n), 2n ** 64n - 1n]);
  });

  test('round trip of containers, shared references and a cycle', () => {
    const shared = [1, 2];
    const od = new OrderedDict<string, unknown>([['b', 1], ['a', pyTuple(1, 'x')]]);
    od.attributes.set('_metadata', new Map([['', new Map([['version', 1]])]]));
    const cyc: unknown[] = [];
    cyc.push(cyc);
    const value = new Map<unknown, unknown>([
      ['none', null],
      ['bools', [true, false]],
      ['float', 0.1],
      ['one', new PyFloat(1)],
      ['nan', NaN],
      ['text', 'naïve — 🙂'],
      ['bytes', Buffer.from([0, 1, 255])],
      ['empty bytes', Buffer.alloc(0)],
      ['tuple', pyTuple(1, pyTuple(), pyTuple(2, 3, 4, 5))],
      ['od', od],
      ['set', new Set([1, 'a'])],
      ['a', shared],
      ['b', shared],
      ['cycle', cyc],
      [7, 'int key'],
      [pyTuple(1, 2), 'tuple key'],
      ['plain object', { x: 1 }],
    ]);
    const back = unpickle(pickle(value), { allow: { ...BUILTIN_DATA_GLOBALS, 'collections.OrderedDict': TORCH_GLOBALS['collections.OrderedDict'] } }) as Map<unknown, unknown>;
    expect(back.get('none')).toBeNull();
    expect(back.get('bools')).toEqual([true, false]);
    expect(back.get('float')).toBe(0.1);
    expect(back.get('one')).toBe(1);
    expect(back.get('nan')).toBeNaN();
    expect(back.get('text')).toBe('naïve — 🙂');
    expect(back.get('bytes')).toEqual(Buffer.from([0, 1, 255]));
    expect(back.get('empty bytes')).toEqual(Buffer.alloc(0));
    const t = back.get('tuple') as unknown[];
    expect(isPyTuple(t)).toBe(true);
    expect(t).toEqual([1, [], [2, 3, 4, 5]]);
    const od2 = back.get('od') as OrderedDict;
    expect(od2).toBeInstanceOf(OrderedDict);
    expect([...od2.keys()]).toEqual(['b', 'a']);
    expect(((od2.attributes.get('_metadata') as Map<string, Map<string, number>>).get('') as Map<string, number>).get('version')).toBe(1);
    expect(back.get('set')).toEqual(new Set([1, 'a']));
    expect(back.get('a')).toBe(back.get('b'));
    const c = back.get('cycle') as unknown[];
    expect(c[0]).toBe(c);
    expect(back.get(7)).toBe('int key');
    expect([...back.keys()].some((k) => isPyTuple(k) && k[0] === 1 && k[1] === 2)).toBe(true);
    expect(back.get('plain object')).toEqual(new Map([['x', 1]]));
    expect(isPyTuple(back.get('bools'))).toBe(false);
  });

  test('the writer refuses what Python cannot hold, naming where', () => {
    expect(thrown(() => pickle({ a: [1, undefined] })).message).toBe('cannot pickle undefined at a[1] (use null for None)');
    expect(thrown(() => pickle({ a: { b: () => 1 } })).message).toBe('cannot pickle a function at a["b"]');
    expect(thrown(() => pickle(new Date(0))).message).toBe('cannot pickle Date at the top level');
    const self: unknown[] = [];
    self.push(self);
    Object.freeze(self);
    expect(thrown(() => pickle(self)).message).toBe('cannot pickle a tuple that contains itself at [0][0]');
  });

  test('a tuple reached again through a list inside it, as Python writes it', () => {
    const list: unknown[] = [];
    const tuple = Object.freeze([list, 'x']);
    list.push(tuple);
    const back = unpickle(pickle(tuple)) as unknown[];
    expect(isPyTuple(back)).toBe(true);
    expect((back[0] as unknown[])[0]).toBe(back);
    expect(back[1]).toBe('x');
  });

  test('PyObject and PyReduce are written as Python writes them', () => {
    const o = new PyObject('__main__.Vocab');
    o.__dict__.set('index', 3);
    const bytes = pickle(o);
    expect(bytes.toString('latin1')).toContain('c__main__\nVocab\n');
    const back = unpickle(bytes, { allow: { '__main__.Vocab': pyClass('__main__.Vocab') } }) as PyObject;
    expect(back.get('index')).toBe(3);
    const r = pickle(new PyReduce(new PyGlobal('collections', 'OrderedDict'), []));
    expect(unpickle(r, { allow: TORCH_GLOBALS })).toBeInstanceOf(OrderedDict);
  });

  test('long lists and dicts are written in batches of 1000', () => {
    const list = Array.from({ length: 2501 }, (_, i) => i);
    const dict = new Map(list.map((i) => [`k${i}`, i]));
    const back = unpickle(pickle(pyTuple(list, dict, [7], new Map([['one', 1]])))) as [number[], Map<string, number>, number[], Map<string, number>];
    expect(back[0]).toEqual(list);
    expect([...back[1]]).toEqual([...dict]);
    expect(back[2]).toEqual([7]);
    expect(back[3].get('one')).toBe(1);
    const ops = pickle(list);
    expect(ops.filter((b) => b === 0x65).length).toBeGreaterThanOrEqual(3); // APPENDS
  });

  test('unpickleAt reads pickles one after another', () => {
    const data = Buffer.concat([pickle(1), pickle('two'), pickle([3])]);
    const a = unpickleAt(data);
    const b = unpickleAt(data, { start: a.end });
    const c = unpickleAt(data, { start: b.end });
    expect([a.value, b.value, c.value]).toEqual([1, 'two', [3]]);
    expect(c.end).toBe(data.length);
  });
});
