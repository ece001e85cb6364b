/**
 * Python pickles, read and written without Python and without ever running anything.
 *
 * Reading is a pickle virtual machine for protocols 0 to 5 that only builds data. A pickle names
 * "globals" (functions and classes) and asks for them to be called; here every GLOBAL is looked up
 * in an allowlist that the caller passes, and each allowed name maps to a *data constructor* written
 * in TypeScript (`collections.OrderedDict` → an ordered Map, `torch._utils._rebuild_tensor_v2` → a
 * tensor description, ...). A name that is not on the list stops the load at once with
 * `UnpicklingError: global 'os.system' is not allowed (allowed: ...)`, before any argument is even
 * read. Limits bound what hostile input can make the reader allocate: every length is checked
 * against the bytes that remain, the memo, the stack and the MARK depth have caps, integers have
 * a size cap, and a work budget proportional to the pickle's size bounds what allowed globals and
 * BUILD may build from containers the pickle refers to again and again (`OrderedDict(d)` copies
 * `d`; a memo reference to `d` costs two bytes). Errors give the byte offset of the opcode at fault.
 *
 * Python values arrive as: None → null, bool → boolean, int → number (bigint beyond 2^53),
 * float → number, str → string, bytes/bytearray → Buffer, list → array, tuple → frozen array,
 * dict → Map, set/frozenset → Set, collections.OrderedDict → {@link OrderedDict} (a Map),
 * instances of allowed classes → {@link PyObject}. Shared references stay shared, and a pickle may
 * hold cycles: code that walks the result must keep a visited set.
 *
 * Writing ({@link pickle}) emits protocol 2, the protocol of `torch.save`.
 */

// ---------------------------------------------------------------------------------------------
// Values

/** Called by BUILD on objects that accept a state (Python's `__setstate__` or `__dict__` update). */
export const SET_STATE: unique symbol = Symbol('torchcap.pickle.setState');

interface Buildable {
  [SET_STATE](state: unknown): void;
}

/** A BUILD state is either the state, or the pair (state, slot state) (Python's `load_build`). */
function splitState(state: unknown): [unknown, unknown] {
  if (Array.isArray(state) && Object.isFrozen(state) && state.length === 2) return [state[0], state[1]];
  return [state, null];
}

function isBuildable(v: unknown): v is Buildable {
  return typeof v === 'object' && v !== null && typeof (v as Partial<Buildable>)[SET_STATE] === 'function';
}

/** A Python `collections.OrderedDict`: a Map, plus the attributes BUILD gave it (`_metadata` of a state dict). */
export class OrderedDict<K = unknown, V = unknown> extends Map<K, V> {
  /** Instance attributes (`state_dict._metadata` lives here). */
  readonly attributes = new Map<string, unknown>();

  [SET_STATE](state: unknown): void {
    const [dict, slots] = splitState(state);
    for (const d of [dict, slots]) {
      if (d === null) continue;
      if (!(d instanceof Map)) throw new TypeError(`OrderedDict state must be a dict, not ${typeName(d)}`);
      for (const [k, v] of d) {
        if (typeof k !== 'string') throw new TypeError(`OrderedDict attribute names must be strings, not ${typeName(k)}`);
        this.attributes.set(k, v);
      }
    }
  }
}

/**
 * An instance of an allowed Python class, as plain data: its qualified class name, the arguments
 * it was created with, and its `__dict__` (filled by BUILD). Nothing of the class itself runs.
 */
export class PyObject {
  /** The instance's attributes, by name. */
  readonly __dict__ = new Map<string, unknown>();
  /** A BUILD state that is not a dict (a class with its own `__setstate__`), else undefined. */
  state: unknown = undefined;

  constructor(
    /** `module.name` of the class. */
    readonly className: string,
    /** Positional arguments of `cls.__new__` (usually none). */
    readonly args: readonly unknown[] = [],
  ) {}

  get(attribute: string): unknown {
    return this.__dict__.get(attribute);
  }

  [SET_STATE](state: unknown): void {
    const [dict, slots] = splitState(state);
    if (dict !== null && !(dict instanceof Map)) {
      this.state = dict;
    } else if (dict instanceof Map) {
      for (const [k, v] of dict) {
        if (typeof k !== 'string') throw new TypeError(`attribute names must be strings, not ${typeName(k)}`);
        this.__dict__.set(k, v);
      }
    }
    if (slots !== null) {
      if (!(slots instanceof Map)) throw new TypeError(`slot state must be a dict, not ${typeName(slots)}`);
      for (const [k, v] of slots) {
        if (typeof k !== 'string') throw new TypeError(`attribute names must be strings, not ${typeName(k)}`);
        this.__dict__.set(k, v);
      }
    }
  }
}

/** A Python global (`module.name`). The reader pushes these for allowed names; the writer emits GLOBAL. */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
    /** The allowlist entry that this name resolved to (reader only). */
    readonly def?: GlobalDef,
  ) {}
  get qualname(): string {
    return `${this.module}.${this.name}`;
  }
  toString(): string {
    return this.qualname;
  }
}

/** For the writer: `callable(*args)`, then `BUILD state` when state is given. */
export class PyReduce {
  constructor(
    readonly callable: PyGlobal,
    readonly args: readonly unknown[],
    readonly state?: unknown,
  ) {}
}

/** For the writer: a persistent id (BINPERSID), as torch.save uses for storages. */
export class PyPersistent {
  constructor(readonly id: unknown) {}
}

/** For the writer: a number written as a Python float even when it is integral (`1.0`). */
export class PyFloat {
  constructor(readonly value: number) {}
}

/** A Python tuple: a frozen array. */
export function pyTuple<T extends unknown[]>(...items: T): Readonly<T> {
  return Object.freeze(items);
}

/** Whether a value read from a pickle is a tuple (a frozen array) rather than a list. */
export function isPyTuple(v: unknown): v is readonly unknown[] {
  return Array.isArray(v) && Object.isFrozen(v);
}

// ---------------------------------------------------------------------------------------------
// The allowlist

/** What an allowed global may do. Each function builds data from data; none may have side effects. */
export interface GlobalDef {
  /** What GLOBAL pushes, when the global is used as a value (a storage type, a marker class). */
  value?: unknown;
  /** REDUCE: the result of calling the global with these positional arguments. */
  call?: (args: readonly unknown[]) => unknown;
  /** NEWOBJ / NEWOBJ_EX / INST / OBJ: a new instance of the class (`cls.__new__(cls, *args, **kwargs)`). */
  construct?: (args: readonly unknown[], kwargs: ReadonlyMap<string, unknown>) => unknown;
}

/** Allowed globals by `module.name`. */
export type Allowlist = Readonly<Record<string, GlobalDef>> | ReadonlyMap<string, GlobalDef>;

/** Module names that Python 3 maps for pickles written by Python 2 (`fix_imports`). */
const PY2_MODULES: Readonly<Record<string, string>> = { __builtin__: 'builtins', copy_reg: 'copyreg' };

/** Allowlist entry for a plain class whose instances are data: NEWOBJ and BUILD give a {@link PyObject}. */
export function pyClass(qualname: string): GlobalDef {
  return { construct: (args) => new PyObject(qualname, args) };
}

function iterableItems(v: unknown, what: string): unknown[] {
  if (Array.isArray(v)) return [...v];
  if (v instanceof Set) return [...v];
  if (v instanceof Map) return [...v.keys()];
  throw new TypeError(`${what} needs a list, tuple or set, not ${typeName(v)}`);
}

const frozenSets = new WeakSet<Set<unknown>>();

function encodeText(args: readonly unknown[], what: string): Buffer {
  const [text, encoding = 'utf-8'] = args;
  if (typeof text !== 'string' || typeof encoding !== 'string') throw new TypeError(`${what} needs (str, encoding)`);
  const enc = encoding.toLowerCase().replace(/_/g, '-');
  if (enc === 'latin1' || enc === 'latin-1' || enc === 'iso-8859-1') {
    for (let i = 0; i < text.length; i++) {
      if (text.charCodeAt(i) > 0xff) throw new RangeError(`${what}: character U+${text.charCodeAt(i).toString(16)} is not latin-1`);
    }
    return Buffer.from(text, 'latin1');
  }
  if (enc === 'utf-8' || enc === 'utf8') return Buffer.from(text, 'utf8');
  throw new RangeError(`${what}: encoding ${JSON.stringify(encoding)} is not supported (latin-1 or utf-8)`);
}

function bytesFrom(args: readonly unknown[], what: string): Buffer {
  if (args.length === 0) return Buffer.alloc(0);
  if (typeof args[0] === 'string') return encodeText(args, what);
  if (args[0] instanceof Uint8Array) return Buffer.from(args[0]);
  const items = iterableItems(args[0], what);
  for (const b of items) {
    if (typeof b !== 'number' || !Number.isInteger(b) || b < 0 || b > 255) throw new RangeError(`${what}: ${String(b)} is not a byte`);
  }
  return Buffer.from(items as number[]);
}

/**
 * Python's own data types, as they appear in pickles of protocol 0–2 (`builtins.set`, `bytes` via
 * `_codecs.encode`, objects via `copyreg._reconstructor`). None of them runs anything. Not part of
 * the torch allowlist: add them where a file needs them.
 */
export const BUILTIN_DATA_GLOBALS: Readonly<Record<string, GlobalDef>> = Object.freeze({
  'builtins.set': { call: (args) => new Set(args.length ? iterableItems(args[0], 'set()') : []) },
  'builtins.frozenset': {
    call: (args) => {
      const s = new Set(args.length ? iterableItems(args[0], 'frozenset()') : []);
      frozenSets.add(s);
      return s;
    },
  },
  'builtins.bytes': { call: (args) => bytesFrom(args, 'bytes()') },
  'builtins.bytearray': { call: (args) => bytesFrom(args, 'bytearray()') },
  '_codecs.encode': { call: (args) => encodeText(args, '_codecs.encode()') },
  'builtins.object': {},
  'copyreg._reconstructor': {
    // copyreg._reconstructor(cls, object, None) is how protocols 0 and 1 create a plain instance.
    call: (args) => {
      const [cls, base, state] = args;
      if (!(cls instanceof PyGlobal) || !cls.def?.construct) throw new TypeError('_reconstructor needs an allowed class');
      if (!(base instanceof PyGlobal) || base.qualname !== 'builtins.object' || state !== null) {
        throw new TypeError(`_reconstructor supports only plain objects (base ${String(base)})`);
      }
      return cls.def.construct([], new Map());
    },
  },
});

// ---------------------------------------------------------------------------------------------
// Errors

/** A pickle that cannot be read: malformed, truncated, too large, or naming a global that is not allowed. */
export class UnpicklingError extends Error {
  /** Byte offset of the opcode at fault, when known. */
  readonly offset: number | undefined;
  /** The file (or record) being read, when known. */
  readonly source: string | undefined;
  /** 'TRUNCATED' when the data ended early, 'GLOBAL' for a refused global, else 'INVALID'. */
  readonly code: 'TRUNCATED' | 'GLOBAL' | 'LIMIT' | 'INVALID';
  /** The message without the file and offset. */
  readonly detail: string;
  /**
   * For 'TRUNCATED' where a length said so: the size the data would need (the offset just past the
   * bytes declared), so a reader of a head of a file knows whether the whole file could hold them.
   */
  readonly needed: number | undefined;

  constructor(detail: string, opts: { offset?: number; source?: string; code?: UnpicklingError['code']; cause?: unknown; needed?: number } = {}) {
    const where = [opts.source, opts.offset !== undefined ? `byte ${opts.offset}` : undefined].filter(Boolean).join(', ');
    super(where ? `${where}: ${detail}` : detail, opts.cause !== undefined ? { cause: opts.cause } : undefined);
    this.name = 'UnpicklingError';
    this.offset = opts.offset;
    this.source = opts.source;
    this.code = opts.code ?? 'INVALID';
    this.detail = detail;
    this.needed = opts.needed;
  }
}

// ---------------------------------------------------------------------------------------------
// Reading

export interface UnpickleOptions {
  /** Globals that may appear, by `module.name`. Default: none. */
  allow?: Allowlist;
  /** Resolves persistent ids (PERSID/BINPERSID). Without it, a persistent id is an error. */
  persistentLoad?: (pid: unknown) => unknown;
  /** Named in error messages (a file name). */
  source?: string;
  /** Where in `data` the pickle starts (default 0). */
  start?: number;
  /** Most memo entries (default 10,000,000). */
  maxMemo?: number;
  /** Most values on the stack (default 10,000,000). */
  maxStack?: number;
  /** Most open MARKs (default 10,000). */
  maxDepth?: number;
  /** Most bytes in one integer (LONG1/LONG4/INT/LONG; default 65,536). */
  maxIntBytes?: number;
  /**
   * Most units of work for allowed globals and BUILD (default {@link defaultMaxWork} of the
   * pickle's size). Each call of a global and each BUILD costs 1 plus the sizes of its arguments
   * (entries of a dict, set, list or tuple; characters of a str; bytes of a bytes object): what a
   * data constructor may copy. Past it: an UnpicklingError with code 'LIMIT'.
   */
  maxWork?: number;
}

/**
 * The default work budget of a pickle of `bytes` bytes: 1,000,000 units plus 2 per byte. A pickle
 * that builds each value from its own bytes (what pickle.dump and torch.save write) costs less
 * than one unit per byte: a tensor description of d dimensions costs 2d + 2 units and takes 30 or
 * more bytes. Only a pickle that hands the same containers to constructors again and again
 * (a two-byte memo reference to a dict of a million entries, copied by each `OrderedDict(d)`)
 * reaches it.
 */
export function defaultMaxWork(bytes: number): number {
  return 1_000_000 + 2 * bytes;
}

/**
 * Thrown by a data constructor when the file asks for more than a limit allows (too many tensors):
 * the unpickler reports it with code 'LIMIT'.
 */
export class PickleLimitError extends RangeError {
  constructor(message: string) {
    super(message);
    this.name = 'PickleLimitError';
  }
}

/** What a data constructor may copy of a value: its entries, characters or bytes (0 for scalars). */
function copySize(v: unknown): number {
  if (typeof v === 'string') return v.length;
  if (v instanceof Uint8Array) return v.length;
  if (Array.isArray(v)) return v.length;
  if (v instanceof Map || v instanceof Set) return v.size;
  return 0;
}

const OP = {
  MARK: 0x28, STOP: 0x2e, POP: 0x30, POP_MARK: 0x31, DUP: 0x32, FLOAT: 0x46, INT: 0x49, BININT: 0x4a,
  BININT1: 0x4b, LONG: 0x4c, BININT2: 0x4d, NONE: 0x4e, PERSID: 0x50, BINPERSID: 0x51, REDUCE: 0x52,
  STRING: 0x53, BINSTRING: 0x54, SHORT_BINSTRING: 0x55, UNICODE: 0x56, BINUNICODE: 0x58, APPEND: 0x61,
  BUILD: 0x62, GLOBAL: 0x63, DICT: 0x64, EMPTY_DICT: 0x7d, APPENDS: 0x65, GET: 0x67, BINGET: 0x68,
  INST: 0x69, LONG_BINGET: 0x6a, LIST: 0x6c, EMPTY_LIST: 0x5d, OBJ: 0x6f, PUT: 0x70, BINPUT: 0x71,
  LONG_BINPUT: 0x72, SETITEM: 0x73, TUPLE: 0x74, EMPTY_TUPLE: 0x29, SETITEMS: 0x75, BINFLOAT: 0x47,
  PROTO: 0x80, NEWOBJ: 0x81, EXT1: 0x82, EXT2: 0x83, EXT4: 0x84, TUPLE1: 0x85, TUPLE2: 0x86, TUPLE3: 0x87,
  NEWTRUE: 0x88, NEWFALSE: 0x89, LONG1: 0x8a, LONG4: 0x8b, BINBYTES: 0x42, SHORT_BINBYTES: 0x43,
  SHORT_BINUNICODE: 0x8c, BINUNICODE8: 0x8d, BINBYTES8: 0x8e, EMPTY_SET: 0x8f, ADDITEMS: 0x90,
  FROZENSET: 0x91, NEWOBJ_EX: 0x92, STACK_GLOBAL: 0x93, MEMOIZE: 0x94, FRAME: 0x95, BYTEARRAY8: 0x96,
  NEXT_BUFFER: 0x97, READONLY_BUFFER: 0x98,
} as const;

const OP_NAMES = new Map<number, string>(Object.entries(OP).map(([k, v]) => [v, k]));

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Python's type name for a value read from a pickle, for messages. */
export function typeName(v: unknown): string {
  if (v === null) return 'None';
  if (v === undefined) return 'nothing';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float';
  if (typeof v === 'bigint') return 'int';
  if (typeof v === 'string') return 'str';
  if (v instanceof Uint8Array) return 'bytes';
  if (Array.isArray(v)) return Object.isFrozen(v) ? 'tuple' : 'list';
  if (v instanceof OrderedDict) return 'OrderedDict';
  if (v instanceof Map) return 'dict';
  if (v instanceof Set) return 'set';
  if (v instanceof PyGlobal) return `global ${v.qualname}`;
  if (v instanceof PyObject) return v.className;
  const ctor = (v as object).constructor;
  return ctor?.name ?? 'object';
}

function isHashable(k: unknown): boolean {
  if (k instanceof Map || k instanceof Set) return frozenSets.has(k as Set<unknown>);
  if (Array.isArray(k)) return Object.isFrozen(k);
  return true;
}

function toIntValue(b: bigint): number | bigint {
  return b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b;
}

/** Little-endian two's complement bytes → int. */
function decodeLong(bytes: Uint8Array): number | bigint {
  const n = bytes.length;
  if (n === 0) return 0;
  if (n <= 6) return Buffer.from(bytes.buffer, bytes.byteOffset, n).readIntLE(0, n);
  let hex = '';
  for (let i = n - 1; i >= 0; i--) hex += bytes[i].toString(16).padStart(2, '0');
  let v = BigInt(`0x${hex}`);
  if (bytes[n - 1] & 0x80) v -= 1n << BigInt(8 * n);
  return toIntValue(v);
}

/** Python's `codecs.escape_decode`: the body of a protocol-0 STRING literal → bytes. */
function escapeDecode(s: Buffer): Buffer {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c !== 0x5c || i + 1 >= s.length) {
      out.push(c);
      continue;
    }
    const e = s[++i];
    const simple: Record<number, number> = { 0x5c: 0x5c, 0x27: 0x27, 0x22: 0x22, 0x61: 7, 0x62: 8, 0x66: 12, 0x6e: 10, 0x72: 13, 0x74: 9, 0x76: 11 };
    if (e in simple) out.push(simple[e]);
    else if (e === 0x0a) continue;
    else if (e === 0x78) {
      const hex = s.subarray(i + 1, i + 3).toString('latin1');
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) throw new Error('invalid \\x escape in STRING');
      out.push(parseInt(hex, 16));
      i += 2;
    } else if (e >= 0x30 && e <= 0x37) {
      let j = i;
      let v = 0;
      while (j < s.length && j < i + 3 && s[j] >= 0x30 && s[j] <= 0x37) v = v * 8 + (s[j++] - 0x30);
      out.push(v & 0xff);
      i = j - 1;
    } else {
      out.push(0x5c, e);
    }
  }
  return Buffer.from(out);
}

/** Python's `raw-unicode-escape` decoding (protocol-0 UNICODE). */
function rawUnicodeEscapeDecode(s: Buffer): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === 0x5c && i + 1 < s.length && (s[i + 1] === 0x75 || s[i + 1] === 0x55)) {
      const len = s[i + 1] === 0x75 ? 4 : 8;
      const hex = s.subarray(i + 2, i + 2 + len).toString('latin1');
      if (hex.length !== len || !/^[0-9a-fA-F]+$/.test(hex)) throw new Error('truncated \\uXXXX escape in UNICODE');
      const cp = parseInt(hex, 16);
      if (cp > 0x10ffff) throw new Error('\\U escape out of range in UNICODE');
      out += String.fromCodePoint(cp);
      i += 1 + len;
    } else {
      out += String.fromCharCode(c);
    }
  }
  return out;
}

function parseDecimalInt(text: string): number | bigint | undefined {
  if (!/^[-+]?[0-9]+$/.test(text)) return undefined;
  return toIntValue(BigInt(text));
}

function parsePyFloat(text: string): number | undefined {
  const t = text.trim().toLowerCase();
  const m = /^([-+]?)(inf|infinity|nan)$/.exec(t);
  if (m) return m[2] === 'nan' ? NaN : m[1] === '-' ? -Infinity : Infinity;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/.test(t)) return undefined;
  return Number(t);
}

class Unpickler {
  private pos: number;
  private stack: unknown[] = [];
  private readonly metastack: unknown[][] = [];
  private readonly memo = new Map<number, unknown>();
  private readonly allow: ReadonlyMap<string, GlobalDef>;
  private readonly maxMemo: number;
  private readonly maxStack: number;
  private readonly maxDepth: number;
  private readonly maxIntBytes: number;
  private readonly maxWork: number;
  private work = 0;
  private opPos = 0;
  private op = 0;

  constructor(
    private readonly data: Buffer,
    private readonly opts: UnpickleOptions,
  ) {
    this.pos = opts.start ?? 0;
    const allow = opts.allow ?? {};
    this.allow = allow instanceof Map ? allow : new Map(Object.entries(allow as Record<string, GlobalDef>));
    this.maxMemo = opts.maxMemo ?? 10_000_000;
    this.maxStack = opts.maxStack ?? 10_000_000;
    this.maxDepth = opts.maxDepth ?? 10_000;
    this.maxIntBytes = opts.maxIntBytes ?? 65_536;
    this.maxWork = opts.maxWork ?? defaultMaxWork(data.length - this.pos);
  }

  /** Counts `units` of work for `what` against the budget (see UnpickleOptions.maxWork). */
  private charge(units: number, what: string): void {
    this.work += units;
    if (this.work > this.maxWork) {
      const bytes = this.data.length - (this.opts.start ?? 0);
      this.fail(
        `${what}: the pickle (${bytes} bytes) asks for more than its work limit of ${this.maxWork} units (entries copied by constructors and BUILD); ` +
          'it hands the same containers to constructors again and again, which no file written by pickle.dump or torch.save does',
        'LIMIT',
      );
    }
  }

  private fail(detail: string, code: UnpicklingError['code'] = 'INVALID', cause?: unknown, needed?: number): never {
    throw new UnpicklingError(detail, { offset: this.opPos, source: this.opts.source, code, cause, needed });
  }

  private opName(): string {
    return OP_NAMES.get(this.op) ?? `0x${this.op.toString(16)}`;
  }

  private need(n: number, what = 'its argument'): void {
    const left = this.data.length - this.pos;
    if (n > left) this.fail(`pickle data truncated: ${this.opName()} needs ${n} bytes for ${what} but only ${left} remain`, 'TRUNCATED', undefined, this.pos + n);
  }

  private u8(): number {
    this.need(1);
    return this.data[this.pos++];
  }
  private u16(): number {
    this.need(2);
    const v = this.data.readUInt16LE(this.pos);
    this.pos += 2;
    return v;
  }
  private u32(): number {
    this.need(4);
    const v = this.data.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }
  private i32(): number {
    this.need(4);
    const v = this.data.readInt32LE(this.pos);
    this.pos += 4;
    return v;
  }
  /** A u64 length, checked against the bytes that remain after it. */
  private len64(): number {
    this.need(8);
    const v = this.data.readBigUInt64LE(this.pos);
    this.pos += 8;
    const left = this.data.length - this.pos;
    if (v > BigInt(left)) this.fail(`pickle data truncated: ${this.opName()} declares ${v} bytes but only ${left} remain`, 'TRUNCATED', undefined, this.pos + Number(v));
    return Number(v);
  }
  private bytes(n: number): Buffer {
    this.need(n, `${n} bytes of data`);
    const b = this.data.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  private line(): Buffer {
    const end = this.data.indexOf(0x0a, this.pos);
    if (end < 0) this.fail(`pickle data truncated: ${this.opName()} needs a line ending in \\n`, 'TRUNCATED');
    const b = this.data.subarray(this.pos, end);
    this.pos = end + 1;
    return b;
  }
  private text(b: Buffer, what: string): string {
    try {
      return utf8.decode(b);
    } catch {
      return this.fail(`${what} is not valid UTF-8`);
    }
  }
  /** Python 2 `str` (STRING/BINSTRING): decoded as UTF-8 when it is, else kept as bytes. */
  private py2str(b: Buffer): string | Buffer {
    try {
      return utf8.decode(b);
    } catch {
      return Buffer.from(b);
    }
  }

  private push(v: unknown): void {
    if (this.stack.length >= this.maxStack) this.fail(`stack limit of ${this.maxStack} values exceeded`, 'LIMIT');
    this.stack.push(v);
  }
  private pop(): unknown {
    if (this.stack.length === 0) this.fail(`${this.opName()} on an empty stack${this.metastack.length ? ' (after MARK)' : ''}`);
    return this.stack.pop();
  }
  private top(): unknown {
    if (this.stack.length === 0) this.fail(`${this.opName()} on an empty stack`);
    return this.stack[this.stack.length - 1];
  }
  private popMark(): unknown[] {
    const items = this.stack;
    const prev = this.metastack.pop();
    if (prev === undefined) this.fail(`${this.opName()} without a MARK`);
    this.stack = prev;
    return items;
  }
  private put(idx: number): void {
    if (!this.memo.has(idx) && this.memo.size >= this.maxMemo) this.fail(`memo limit of ${this.maxMemo} entries exceeded`, 'LIMIT');
    this.memo.set(idx, this.top());
  }
  private get(idx: number): void {
    if (!this.memo.has(idx)) this.fail(`memo entry ${idx} is missing`);
    this.push(this.memo.get(idx));
  }
  private int(v: number | bigint | undefined, text: Buffer): number | bigint {
    if (v === undefined) this.fail(`${this.opName()} argument ${JSON.stringify(text.toString('latin1').slice(0, 40))} is not an integer`);
    return v;
  }
  private checkIntSize(n: number): void {
    if (n > this.maxIntBytes) this.fail(`integer of ${n} bytes exceeds the limit of ${this.maxIntBytes}`, 'LIMIT');
  }

  private resolveGlobal(module: string, name: string): unknown {
    const mod = PY2_MODULES[module] ?? module;
    const qualname = `${mod}.${name}`;
    const def = this.allow.get(qualname);
    if (!def) {
      const shown = qualname.length > 200 ? `${qualname.slice(0, 200)}…` : qualname;
      const allowed = [...this.allow.keys()].sort();
      this.fail(`global '${shown}' is not allowed (allowed: ${allowed.length ? allowed.join(', ') : 'none'})`, 'GLOBAL');
    }
    return 'value' in def ? def.value : new PyGlobal(mod, name, def);
  }

  private callGlobal(fn: unknown, args: unknown): unknown {
    if (!(fn instanceof PyGlobal) || !fn.def?.call) {
      this.fail(`${typeName(fn)} cannot be called here (REDUCE)`);
    }
    if (!Array.isArray(args)) this.fail(`REDUCE arguments must be a tuple, not ${typeName(args)}`);
    let units = 1;
    for (const a of args) units += copySize(a);
    this.charge(units, fn.qualname);
    return this.guard(fn.qualname, () => fn.def!.call!(args));
  }

  private construct(cls: unknown, args: unknown, kwargs: unknown): unknown {
    if (!(cls instanceof PyGlobal) || !cls.def?.construct) this.fail(`${typeName(cls)} cannot be instantiated here (${this.opName()})`);
    if (!Array.isArray(args)) this.fail(`${this.opName()} arguments must be a tuple, not ${typeName(args)}`);
    if (!(kwargs instanceof Map)) this.fail(`${this.opName()} keyword arguments must be a dict, not ${typeName(kwargs)}`);
    let units = 1 + kwargs.size;
    for (const a of args) units += copySize(a);
    this.charge(units, cls.qualname);
    return this.guard(cls.qualname, () => cls.def!.construct!(args, kwargs as Map<string, unknown>));
  }

  private guard<T>(what: string, fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      if (e instanceof UnpicklingError) throw e;
      const msg = e instanceof Error ? e.message : String(e);
      return this.fail(`${what}: ${msg}`, e instanceof PickleLimitError ? 'LIMIT' : 'INVALID', e);
    }
  }

  load(): { value: unknown; end: number } {
    const data = this.data;
    if (this.pos >= data.length) {
      this.opPos = this.pos;
      this.fail('pickle data is empty', 'TRUNCATED');
    }
    for (;;) {
      this.opPos = this.pos;
      if (this.pos >= data.length) {
        this.op = 0;
        this.fail('pickle data truncated: no STOP opcode', 'TRUNCATED');
      }
      const op = (this.op = data[this.pos++]);
      switch (op) {
        case OP.PROTO: {
          const v = this.u8();
          if (v > 5) this.fail(`unsupported pickle protocol ${v}`);
          break;
        }
        case OP.FRAME:
          this.len64();
          break;
        case OP.STOP: {
          const value = this.pop();
          return { value, end: this.pos };
        }
        // ----- numbers
        case OP.NONE:
          this.push(null);
          break;
        case OP.NEWTRUE:
          this.push(true);
          break;
        case OP.NEWFALSE:
          this.push(false);
          break;
        case OP.BININT1:
          this.push(this.u8());
          break;
        case OP.BININT2:
          this.push(this.u16());
          break;
        case OP.BININT:
          this.push(this.i32());
          break;
        case OP.LONG1: {
          const n = this.u8();
          this.push(decodeLong(this.bytes(n)));
          break;
        }
        case OP.LONG4: {
          const n = this.i32();
          if (n < 0) this.fail('LONG4 with a negative length');
          this.checkIntSize(n);
          this.push(decodeLong(this.bytes(n)));
          break;
        }
        case OP.INT: {
          const t = this.line();
          this.checkIntSize(t.length);
          const s = t.toString('latin1');
          if (s === '00' || s === '01') this.push(s === '01');
          else this.push(this.int(parseDecimalInt(s), t));
          break;
        }
        case OP.LONG: {
          const t = this.line();
          this.checkIntSize(t.length);
          this.push(this.int(parseDecimalInt(t.toString('latin1').replace(/L$/, '')), t));
          break;
        }
        case OP.BINFLOAT:
          this.need(8);
          this.push(data.readDoubleBE(this.pos));
          this.pos += 8;
          break;
        case OP.FLOAT: {
          const t = this.line();
          const v = parsePyFloat(t.toString('latin1'));
          if (v === undefined) this.fail(`FLOAT argument ${JSON.stringify(t.toString('latin1').slice(0, 40))} is not a number`);
          this.push(v);
          break;
        }
        // ----- strings and bytes
        case OP.SHORT_BINUNICODE:
          this.push(this.text(this.bytes(this.u8()), 'SHORT_BINUNICODE string'));
          break;
        case OP.BINUNICODE:
          this.push(this.text(this.bytes(this.u32()), 'BINUNICODE string'));
          break;
        case OP.BINUNICODE8:
          this.push(this.text(this.bytes(this.len64()), 'BINUNICODE8 string'));
          break;
        case OP.UNICODE:
          this.push(this.guard('UNICODE', () => rawUnicodeEscapeDecode(this.line())));
          break;
        case OP.SHORT_BINSTRING:
          this.push(this.py2str(this.bytes(this.u8())));
          break;
        case OP.BINSTRING: {
          const n = this.i32();
          if (n < 0) this.fail('BINSTRING with a negative length');
          this.push(this.py2str(this.bytes(n)));
          break;
        }
        case OP.STRING: {
          const t = this.line();
          const q = t[0];
          if (t.length < 2 || (q !== 0x22 && q !== 0x27) || t[t.length - 1] !== q) this.fail('the STRING opcode argument must be quoted');
          this.push(this.py2str(this.guard('STRING', () => escapeDecode(t.subarray(1, t.length - 1)))));
          break;
        }
        case OP.SHORT_BINBYTES:
          this.push(Buffer.from(this.bytes(this.u8())));
          break;
        case OP.BINBYTES:
          this.push(Buffer.from(this.bytes(this.u32())));
          break;
        case OP.BINBYTES8:
        case OP.BYTEARRAY8:
          this.push(Buffer.from(this.bytes(this.len64())));
          break;
        // ----- containers
        case OP.EMPTY_LIST:
          this.push([]);
          break;
        case OP.LIST:
          this.push(this.popMark());
          break;
        case OP.APPEND: {
          const v = this.pop();
          this.listTarget().push(v);
          break;
        }
        case OP.APPENDS: {
          const items = this.popMark();
          const list = this.listTarget();
          for (const v of items) list.push(v);
          break;
        }
        case OP.EMPTY_TUPLE:
          this.push(Object.freeze([]));
          break;
        case OP.TUPLE:
          this.push(Object.freeze(this.popMark()));
          break;
        case OP.TUPLE1:
        case OP.TUPLE2:
        case OP.TUPLE3: {
          const n = op - OP.TUPLE1 + 1;
          const items: unknown[] = [];
          for (let i = 0; i < n; i++) items.unshift(this.pop());
          this.push(Object.freeze(items));
          break;
        }
        case OP.EMPTY_DICT:
          this.push(new Map());
          break;
        case OP.DICT: {
          const items = this.popMark();
          const d = new Map();
          this.setItems(d, items);
          this.push(d);
          break;
        }
        case OP.SETITEM: {
          const v = this.pop();
          const k = this.pop();
          this.setItems(this.dictTarget(), [k, v]);
          break;
        }
        case OP.SETITEMS: {
          const items = this.popMark();
          this.setItems(this.dictTarget(), items);
          break;
        }
        case OP.EMPTY_SET:
          this.push(new Set());
          break;
        case OP.ADDITEMS: {
          const items = this.popMark();
          const s = this.top();
          if (!(s instanceof Set) || frozenSets.has(s)) this.fail(`ADDITEMS needs a set, not ${typeName(s)}`);
          for (const v of items) {
            if (!isHashable(v)) this.fail(`unhashable ${typeName(v)} in a set`);
            s.add(v);
          }
          break;
        }
        case OP.FROZENSET: {
          const items = this.popMark();
          for (const v of items) if (!isHashable(v)) this.fail(`unhashable ${typeName(v)} in a frozenset`);
          const s = new Set(items);
          frozenSets.add(s);
          this.push(s);
          break;
        }
        // ----- stack
        case OP.MARK:
          if (this.metastack.length >= this.maxDepth) this.fail(`MARK depth limit of ${this.maxDepth} exceeded`, 'LIMIT');
          this.metastack.push(this.stack);
          this.stack = [];
          break;
        case OP.POP:
          if (this.stack.length) this.stack.pop();
          else this.popMark();
          break;
        case OP.POP_MARK:
          this.popMark();
          break;
        case OP.DUP:
          this.push(this.top());
          break;
        // ----- memo
        case OP.PUT: {
          const t = this.line();
          const idx = parseDecimalInt(t.toString('latin1'));
          if (typeof idx !== 'number' || idx < 0) this.fail('PUT index is not a non-negative integer');
          this.put(idx);
          break;
        }
        case OP.BINPUT:
          this.put(this.u8());
          break;
        case OP.LONG_BINPUT:
          this.put(this.u32());
          break;
        case OP.MEMOIZE:
          this.put(this.memo.size);
          break;
        case OP.GET: {
          const t = this.line();
          const idx = parseDecimalInt(t.toString('latin1'));
          if (typeof idx !== 'number') this.fail('GET index is not an integer');
          this.get(idx);
          break;
        }
        case OP.BINGET:
          this.get(this.u8());
          break;
        case OP.LONG_BINGET:
          this.get(this.u32());
          break;
        // ----- globals and objects
        case OP.GLOBAL: {
          const module = this.text(this.line(), 'GLOBAL module name');
          const name = this.text(this.line(), 'GLOBAL name');
          this.push(this.resolveGlobal(module, name));
          break;
        }
        case OP.STACK_GLOBAL: {
          const name = this.pop();
          const module = this.pop();
          if (typeof module !== 'string' || typeof name !== 'string') this.fail('STACK_GLOBAL needs two strings');
          this.push(this.resolveGlobal(module, name));
          break;
        }
        case OP.REDUCE: {
          const args = this.pop();
          const fn = this.pop();
          this.push(this.callGlobal(fn, args));
          break;
        }
        case OP.NEWOBJ: {
          const args = this.pop();
          const cls = this.pop();
          this.push(this.construct(cls, args, new Map()));
          break;
        }
        case OP.NEWOBJ_EX: {
          const kwargs = this.pop();
          const args = this.pop();
          const cls = this.pop();
          this.push(this.construct(cls, args, kwargs));
          break;
        }
        case OP.INST: {
          const module = this.text(this.line(), 'INST module name');
          const name = this.text(this.line(), 'INST name');
          const cls = this.resolveGlobal(module, name);
          const args = Object.freeze(this.popMark());
          this.push(this.construct(cls, args, new Map()));
          break;
        }
        case OP.OBJ: {
          const items = this.popMark();
          if (items.length === 0) this.fail('OBJ without a class');
          this.push(this.construct(items[0], Object.freeze(items.slice(1)), new Map()));
          break;
        }
        case OP.BUILD: {
          const state = this.pop();
          const inst = this.top();
          if (!isBuildable(inst)) this.fail(`BUILD on ${typeName(inst)}, which takes no state`);
          const [dict, slots] = splitState(state);
          this.charge(1 + copySize(dict) + copySize(slots), `BUILD on ${typeName(inst)}`);
          this.guard(`BUILD on ${typeName(inst)}`, () => inst[SET_STATE](state));
          break;
        }
        case OP.PERSID: {
          const id = this.text(this.line(), 'PERSID id');
          this.push(this.persistent(id));
          break;
        }
        case OP.BINPERSID:
          this.push(this.persistent(this.pop()));
          break;
        case OP.EXT1:
        case OP.EXT2:
        case OP.EXT4:
          this.fail(`${this.opName()}: extension registry codes are not supported`);
          break;
        case OP.NEXT_BUFFER:
          this.fail('NEXT_BUFFER: out-of-band buffers are not supported');
          break;
        case OP.READONLY_BUFFER:
          this.top();
          break;
        default:
          this.fail(`unknown opcode 0x${op.toString(16).padStart(2, '0')}${op >= 0x20 && op < 0x7f ? ` ('${String.fromCharCode(op)}')` : ''}`);
      }
    }
  }

  private persistent(pid: unknown): unknown {
    const load = this.opts.persistentLoad;
    if (!load) this.fail('persistent id found, but this file type has no persistent objects');
    return this.guard('persistent id', () => load(pid));
  }

  private listTarget(): unknown[] {
    const list = this.top();
    if (!Array.isArray(list) || Object.isFrozen(list)) this.fail(`${this.opName()} needs a list, not ${typeName(list)}`);
    return list;
  }

  private dictTarget(): Map<unknown, unknown> {
    const d = this.top();
    if (!(d instanceof Map)) this.fail(`${this.opName()} needs a dict, not ${typeName(d)}`);
    return d;
  }

  private setItems(d: Map<unknown, unknown>, items: unknown[]): void {
    if (items.length % 2) this.fail(`${this.opName()} needs key/value pairs but got an odd number of items`);
    for (let i = 0; i < items.length; i += 2) {
      if (!isHashable(items[i])) this.fail(`unhashable ${typeName(items[i])} as a dict key`);
      d.set(items[i], items[i + 1]);
    }
  }
}

/** Reads one pickle from `data` (at `opts.start`); returns the value and the offset just past STOP. */
export function unpickleAt(data: Uint8Array, opts: UnpickleOptions = {}): { value: unknown; end: number } {
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return new Unpickler(buf, opts).load();
}

/** Reads one pickle; see {@link UnpickleOptions}. Throws {@link UnpicklingError}. */
export function unpickle(data: Uint8Array, opts: UnpickleOptions = {}): unknown {
  return unpickleAt(data, opts).value;
}

// ---------------------------------------------------------------------------------------------
// Writing

export interface PickleOptions {
  /**
   * Replaces values before they are written (return undefined to keep the value). Used to turn
   * tensors into `_rebuild_tensor_v2` calls. The same input object is written once and referenced
   * from then on.
   */
  transform?: (value: unknown, path: string) => unknown;
  /** Most nesting depth (default 1,000). */
  maxDepth?: number;
}

class ByteWriter {
  private buf = Buffer.allocUnsafe(1 << 12);
  length = 0;
  private ensure(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }
  byte(b: number): void {
    this.ensure(1);
    this.buf[this.length++] = b;
  }
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  u16(v: number): void {
    this.ensure(2);
    this.buf.writeUInt16LE(v, this.length);
    this.length += 2;
  }
  u32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32LE(v, this.length);
    this.length += 4;
  }
  i32(v: number): void {
    this.ensure(4);
    this.buf.writeInt32LE(v, this.length);
    this.length += 4;
  }
  f64be(v: number): void {
    this.ensure(8);
    this.buf.writeDoubleBE(v, this.length);
    this.length += 8;
  }
  result(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.length));
  }
}

/** Minimal little-endian two's complement bytes of an integer (Python's `encode_long`). */
function encodeLong(v: bigint): Buffer {
  if (v === 0n) return Buffer.alloc(0);
  const bytes: number[] = [];
  let x = v;
  for (;;) {
    bytes.push(Number(x & 0xffn));
    x >>= 8n;
    const signBit = (bytes[bytes.length - 1] & 0x80) !== 0;
    if ((x === 0n && !signBit) || (x === -1n && signBit)) break;
  }
  return Buffer.from(bytes);
}

const BATCH = 1000;

class Pickler {
  private readonly out = new ByteWriter();
  private readonly memo = new Map<unknown, number>();
  private readonly globals = new Map<string, number>();
  private readonly inProgress = new Map<unknown, number>();
  private readonly maxDepth: number;

  constructor(private readonly opts: PickleOptions) {
    this.maxDepth = opts.maxDepth ?? 1000;
  }

  run(value: unknown): Buffer {
    this.out.byte(OP.PROTO);
    this.out.byte(2);
    this.save(value, '', 0);
    this.out.byte(OP.STOP);
    return this.out.result();
  }

  private memoize(key: unknown): void {
    const idx = this.memo.size + this.globals.size;
    this.putIdx(idx);
    this.memo.set(key, idx);
  }
  private putIdx(idx: number): void {
    if (idx < 256) {
      this.out.byte(OP.BINPUT);
      this.out.byte(idx);
    } else {
      this.out.byte(OP.LONG_BINPUT);
      this.out.u32(idx);
    }
  }
  private getIdx(idx: number): void {
    if (idx < 256) {
      this.out.byte(OP.BINGET);
      this.out.byte(idx);
    } else {
      this.out.byte(OP.LONG_BINGET);
      this.out.u32(idx);
    }
  }

  private saveGlobal(g: PyGlobal): void {
    const key = g.qualname;
    const idx = this.globals.get(key);
    if (idx !== undefined) return this.getIdx(idx);
    // Python 3 writes protocol-2 globals under their Python 2 module names.
    const module = g.module === 'builtins' ? '__builtin__' : g.module === 'copyreg' ? 'copy_reg' : g.module;
    if (/\n/.test(module) || /\n/.test(g.name)) throw new TypeError(`global name ${JSON.stringify(key)} contains a newline`);
    this.out.byte(OP.GLOBAL);
    this.out.bytes(Buffer.from(`${module}\n${g.name}\n`, 'utf8'));
    const i = this.memo.size + this.globals.size;
    this.putIdx(i);
    this.globals.set(key, i);
  }

  private saveInt(v: bigint): void {
    if (v >= 0n && v < 256n) {
      this.out.byte(OP.BININT1);
      this.out.byte(Number(v));
    } else if (v >= 0n && v < 65536n) {
      this.out.byte(OP.BININT2);
      this.out.u16(Number(v));
    } else if (v >= -(2n ** 31n) && v < 2n ** 31n) {
      this.out.byte(OP.BININT);
      this.out.i32(Number(v));
    } else {
      const b = encodeLong(v);
      if (b.length < 256) {
        this.out.byte(OP.LONG1);
        this.out.byte(b.length);
      } else {
        this.out.byte(OP.LONG4);
        this.out.i32(b.length);
      }
      this.out.bytes(b);
    }
  }

  private saveStr(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.out.byte(OP.BINUNICODE);
    this.out.u32(b.length);
    this.out.bytes(b);
  }

  /** List items in batches of 1000 (APPENDS), a lone item with APPEND, as Python batches them. */
  private saveListItems(items: readonly unknown[], path: string, depth: number): void {
    for (let i = 0; i < items.length; i += BATCH) {
      const chunk = items.slice(i, i + BATCH);
      if (chunk.length === 1) {
        this.save(chunk[0], `${path}[${i}]`, depth + 1);
        this.out.byte(OP.APPEND);
      } else {
        this.out.byte(OP.MARK);
        chunk.forEach((v, j) => this.save(v, `${path}[${i + j}]`, depth + 1));
        this.out.byte(OP.APPENDS);
      }
    }
  }

  private saveDictItems(entries: [unknown, unknown][], path: string, depth: number): void {
    const flat: unknown[] = [];
    for (const [k, v] of entries) flat.push(k, v);
    for (let i = 0; i < flat.length; i += 2 * BATCH) {
      const chunk = flat.slice(i, i + 2 * BATCH);
      const label = (k: unknown): string => {
        const ks = typeof k === 'string' ? k : String(k);
        return path ? `${path}[${JSON.stringify(ks)}]` : ks;
      };
      if (chunk.length === 2) {
        this.save(chunk[0], `${path} key`, depth + 1);
        this.save(chunk[1], label(chunk[0]), depth + 1);
        this.out.byte(OP.SETITEM);
      } else {
        this.out.byte(OP.MARK);
        for (let j = 0; j < chunk.length; j += 2) {
          this.save(chunk[j], `${path} key`, depth + 1);
          this.save(chunk[j + 1], label(chunk[j]), depth + 1);
        }
        this.out.byte(OP.SETITEMS);
      }
    }
  }

  private save(v0: unknown, path: string, depth: number): void {
    if (depth > this.maxDepth) throw new RangeError(`cannot pickle ${path || 'the value'}: nested deeper than ${this.maxDepth}`);
    const isObj = typeof v0 === 'object' && v0 !== null;
    if (isObj) {
      const idx = this.memo.get(v0);
      if (idx !== undefined) return this.getIdx(idx);
    }
    const t = this.opts.transform?.(v0, path);
    const v = t === undefined ? v0 : t;

    if (v === null) return this.out.byte(OP.NONE);
    switch (typeof v) {
      case 'boolean':
        return this.out.byte(v ? OP.NEWTRUE : OP.NEWFALSE);
      case 'number':
        if (Number.isSafeInteger(v) && !Object.is(v, -0)) return this.saveInt(BigInt(v));
        this.out.byte(OP.BINFLOAT);
        return this.out.f64be(v);
      case 'bigint':
        return this.saveInt(v);
      case 'string':
        return this.saveStr(v);
      case 'undefined':
        throw new TypeError(`cannot pickle undefined at ${path || 'the top level'} (use null for None)`);
      case 'object':
        break;
      default:
        throw new TypeError(`cannot pickle a ${typeof v} at ${path || 'the top level'}`);
    }
    const key = v0;

    if (v instanceof PyFloat) {
      this.out.byte(OP.BINFLOAT);
      return this.out.f64be(v.value);
    }
    if (v instanceof PyGlobal) return this.saveGlobal(v);
    if (v instanceof PyPersistent) {
      this.save(v.id, `${path} persistent id`, depth + 1);
      return this.out.byte(OP.BINPERSID);
    }
    if (v instanceof PyReduce) {
      this.saveGlobal(v.callable);
      this.save(Object.isFrozen(v.args) ? v.args : Object.freeze([...v.args]), `${path} arguments`, depth + 1);
      this.out.byte(OP.REDUCE);
      if (isObj) this.memoize(key);
      if (v.state !== undefined) {
        this.save(v.state, `${path} state`, depth + 1);
        this.out.byte(OP.BUILD);
      }
      return;
    }
    if (v instanceof Uint8Array) {
      // Protocol 2 has no bytes opcode: Python 3 writes _codecs.encode(latin1 text, 'latin1').
      if (v.length === 0) {
        this.saveGlobal(new PyGlobal('builtins', 'bytes'));
        this.out.byte(OP.EMPTY_TUPLE);
      } else {
        this.saveGlobal(new PyGlobal('_codecs', 'encode'));
        this.saveStr(Buffer.from(v).toString('latin1'));
        this.saveStr('latin1');
        this.out.byte(OP.TUPLE2);
      }
      this.out.byte(OP.REDUCE);
      return this.memoize(key);
    }
    if (Array.isArray(v)) {
      if (Object.isFrozen(v)) {
        // As Python does: a tuple reached again through a list inside it is written in full the
        // second time; the outer copy is then discarded (POP) in favour of a memo reference.
        const entered = this.inProgress.get(v) ?? 0;
        if (entered >= 2) throw new TypeError(`cannot pickle a tuple that contains itself at ${path || 'the top level'}`);
        if (v.length === 0) {
          this.out.byte(OP.EMPTY_TUPLE);
          return this.memoize(key);
        }
        this.inProgress.set(v, entered + 1);
        const mark = v.length > 3;
        if (mark) this.out.byte(OP.MARK);
        v.forEach((x, i) => this.save(x, `${path}[${i}]`, depth + 1));
        if (entered === 0) this.inProgress.delete(v);
        else this.inProgress.set(v, entered);
        const again = this.memo.get(key);
        if (again !== undefined) {
          if (mark) this.out.byte(OP.POP_MARK);
          else for (let i = 0; i < v.length; i++) this.out.byte(OP.POP);
          return this.getIdx(again);
        }
        this.out.byte(mark ? OP.TUPLE : [OP.TUPLE1, OP.TUPLE2, OP.TUPLE3][v.length - 1]);
        return this.memoize(key);
      }
      this.out.byte(OP.EMPTY_LIST);
      this.memoize(key);
      return this.saveListItems(v, path, depth);
    }
    if (v instanceof OrderedDict) {
      this.saveGlobal(new PyGlobal('collections', 'OrderedDict'));
      this.out.byte(OP.EMPTY_TUPLE);
      this.out.byte(OP.REDUCE);
      this.memoize(key);
      this.saveDictItems([...v.entries()], path, depth);
      if (v.attributes.size) {
        this.save(new Map(v.attributes), `${path} attributes`, depth + 1);
        this.out.byte(OP.BUILD);
      }
      return;
    }
    if (v instanceof Map) {
      this.out.byte(OP.EMPTY_DICT);
      this.memoize(key);
      return this.saveDictItems([...v.entries()], path, depth);
    }
    if (v instanceof Set) {
      this.saveGlobal(new PyGlobal('builtins', frozenSets.has(v) ? 'frozenset' : 'set'));
      this.save([...v], `${path} items`, depth + 1);
      this.out.byte(OP.TUPLE1);
      this.out.byte(OP.REDUCE);
      return this.memoize(key);
    }
    if (v instanceof PyObject) {
      const dot = v.className.lastIndexOf('.');
      this.saveGlobal(new PyGlobal(v.className.slice(0, dot), v.className.slice(dot + 1)));
      this.save(Object.freeze([...v.args]), `${path} arguments`, depth + 1);
      this.out.byte(OP.NEWOBJ);
      this.memoize(key);
      const state = v.state !== undefined ? v.state : v.__dict__.size ? new Map(v.__dict__) : undefined;
      if (state !== undefined) {
        this.save(state, `${path} state`, depth + 1);
        this.out.byte(OP.BUILD);
      }
      return;
    }
    const proto = Object.getPrototypeOf(v);
    if (proto === Object.prototype || proto === null) {
      this.out.byte(OP.EMPTY_DICT);
      this.memoize(key);
      return this.saveDictItems(Object.entries(v as Record<string, unknown>), path, depth);
    }
    throw new TypeError(`cannot pickle ${typeName(v)} at ${path || 'the top level'}`);
  }
}

/**
 * Writes a value as a protocol-2 pickle. JS → Python: null → None, boolean → bool, safe integers and
 * bigint → int, other numbers and {@link PyFloat} → float, string → str, Uint8Array → bytes,
 * frozen array → tuple, array → list, {@link OrderedDict} → collections.OrderedDict, Map and plain
 * objects → dict, Set → set, {@link PyObject} → an instance, {@link PyGlobal}, {@link PyReduce} and
 * {@link PyPersistent} as such. Anything else is a TypeError naming where it is.
 */
export function pickle(value: unknown, opts: PickleOptions = {}): Buffer {
  return new Pickler(opts).run(value);
}
