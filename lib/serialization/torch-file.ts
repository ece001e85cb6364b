/**
 * Reading PyTorch weight files without Python: the zip format of `torch.save` (PyTorch ≥ 1.6), the
 * older "legacy" format (`_use_new_zipfile_serialization=False`), and safetensors. The format is
 * told from the file's bytes, never from its name.
 *
 * Pickles are read by the data-only VM of `pickle.ts` with {@link TORCH_GLOBALS}: OrderedDict, the
 * tensor and parameter rebuild functions and the storage types. Anything else in a file (a pickled
 * `nn.Module`, a lambda, `os.system`) is refused with an error that names it; nothing runs.
 *
 * Storage sharing: every storage is read once. A tensor that covers the whole of its storage
 * contiguously (the usual case for state dicts) is a view of it, so entries that share a whole
 * storage share memory as they do in Python (tied weights stay tied). A tensor that is a part of a
 * storage, or a strided view of one, gets its own compact, contiguous copy, so a small slice never
 * keeps a large storage alive. Tensors saved on a GPU are loaded on the CPU.
 */
import { promises as fsp } from 'fs';
import * as os from 'os';
import { Tensor } from '../tensor';
import type { DType } from '../binding';
import { CheckpointError, messageOf } from './errors';
import { OrderedDict, PyObject, UnpicklingError, isPyTuple, typeName, unpickleAt, type Allowlist, type GlobalDef } from './pickle';
import { Scratch, ZipReader, readFully, type ZipEntry } from './zip';
import type { FileHandle } from './atomic';

// ---------------------------------------------------------------------------------------------
// Storage types and tensor descriptions

/** A torch storage class (`torch.FloatStorage`, ...), as the pickle names it. */
export class StorageType {
  constructor(
    /** The class name, e.g. `FloatStorage`. */
    readonly name: string,
    /** PyTorch's dtype name, e.g. `float32`, `int8`. */
    readonly torchDtype: string,
    readonly elementSize: number,
    /** The torchcap dtype, when torchcap's tensors support it. */
    readonly dtype: DType | undefined,
  ) {}
}

const STORAGE_TYPES: readonly StorageType[] = [
  new StorageType('DoubleStorage', 'float64', 8, 'float64'),
  new StorageType('FloatStorage', 'float32', 4, 'float32'),
  new StorageType('HalfStorage', 'float16', 2, 'float16'),
  new StorageType('BFloat16Storage', 'bfloat16', 2, 'bfloat16'),
  new StorageType('LongStorage', 'int64', 8, 'int64'),
  new StorageType('IntStorage', 'int32', 4, 'int32'),
  new StorageType('ShortStorage', 'int16', 2, undefined),
  new StorageType('CharStorage', 'int8', 1, undefined),
  new StorageType('ByteStorage', 'uint8', 1, 'uint8'),
  new StorageType('BoolStorage', 'bool', 1, 'bool'),
  new StorageType('ComplexFloatStorage', 'complex64', 8, undefined),
  new StorageType('ComplexDoubleStorage', 'complex128', 16, undefined),
  new StorageType('QInt8Storage', 'qint8', 1, undefined),
  new StorageType('QUInt8Storage', 'quint8', 1, undefined),
  new StorageType('QInt32Storage', 'qint32', 4, undefined),
  new StorageType('UntypedStorage', 'uint8', 1, 'uint8'),
];

/** One storage that a pickle refers to by persistent id. */
export class StorageRef {
  constructor(
    /** The storage's key (record `data/<key>` in a zip file). */
    readonly key: string,
    readonly type: StorageType,
    /** Elements in the whole storage. */
    readonly numel: number,
    /** Where it was saved from ('cpu', 'cuda:0'); torchcap loads every storage on the CPU. */
    readonly location: string,
    /** A legacy storage view: elements [offset, offset + numel) of the root storage. */
    readonly view?: { key: string; offset: number; numel: number },
  ) {}
}

/** A tensor as the pickle describes it: a strided view of a storage. Turned into a Tensor after reading. */
export class TensorRef {
  constructor(
    readonly storage: StorageRef,
    /** In elements, from the start of `storage` (of the view, for legacy views). */
    readonly offset: number,
    readonly shape: readonly number[],
    readonly strides: readonly number[],
    readonly requiresGrad: boolean,
    /** Whether it was an `nn.Parameter`. */
    readonly parameter: boolean,
  ) {}
}

function intArg(v: unknown, what: string, min = 0): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw new TypeError(`${what} must be an integer >= ${min}, not ${typeName(v)} ${String(v)}`);
  return v;
}

function intTuple(v: unknown, what: string): number[] {
  if (!Array.isArray(v)) throw new TypeError(`${what} must be a tuple of integers, not ${typeName(v)}`);
  return v.map((x, i) => intArg(x, `${what}[${i}]`));
}

function rebuildTensor(args: readonly unknown[], name: string, min: number, max: number): TensorRef {
  if (args.length < min || args.length > max) throw new TypeError(`${name} takes ${min === max ? min : `${min} to ${max}`} arguments, got ${args.length}`);
  const [storage, offset, size, stride, requiresGrad = false] = args;
  if (!(storage instanceof StorageRef)) throw new TypeError(`${name}: the first argument must be a storage, not ${typeName(storage)}`);
  const shape = intTuple(size, 'size');
  const strides = intTuple(stride, 'stride');
  if (shape.length !== strides.length) throw new TypeError(`${name}: size has ${shape.length} dimensions but stride has ${strides.length}`);
  if (typeof requiresGrad !== 'boolean') throw new TypeError(`${name}: requires_grad must be a bool, not ${typeName(requiresGrad)}`);
  return new TensorRef(storage, intArg(offset, 'storage_offset'), shape, strides, requiresGrad, false);
}

function rebuildParameter(args: readonly unknown[], name: string, min: number, max: number): TensorRef {
  if (args.length < min || args.length > max) throw new TypeError(`${name} takes ${min === max ? min : `${min} to ${max}`} arguments, got ${args.length}`);
  const [data, requiresGrad] = args;
  if (!(data instanceof TensorRef)) throw new TypeError(`${name}: data must be a tensor, not ${typeName(data)}`);
  if (typeof requiresGrad !== 'boolean') throw new TypeError(`${name}: requires_grad must be a bool, not ${typeName(requiresGrad)}`);
  return new TensorRef(data.storage, data.offset, data.shape, data.strides, requiresGrad, true);
}

function newOrderedDict(args: readonly unknown[]): OrderedDict {
  const d = new OrderedDict();
  if (args.length > 1) throw new TypeError(`OrderedDict takes at most 1 argument, got ${args.length}`);
  if (args.length === 1 && args[0] !== null) {
    const src = args[0];
    if (src instanceof Map) for (const [k, v] of src) d.set(k, v);
    else if (Array.isArray(src)) {
      for (const pair of src) {
        if (!Array.isArray(pair) || pair.length !== 2) throw new TypeError('OrderedDict items must be (key, value) pairs');
        d.set(pair[0], pair[1]);
      }
    } else throw new TypeError(`OrderedDict cannot be built from ${typeName(src)}`);
  }
  return d;
}

function buildTorchGlobals(): Record<string, GlobalDef> {
  const g: Record<string, GlobalDef> = {
    'collections.OrderedDict': { call: newOrderedDict, construct: () => new OrderedDict() },
    'torch._utils._rebuild_tensor': { call: (a) => rebuildTensor(a, '_rebuild_tensor', 4, 4) },
    'torch._utils._rebuild_tensor_v2': { call: (a) => rebuildTensor(a, '_rebuild_tensor_v2', 6, 7) },
    'torch._utils._rebuild_parameter': { call: (a) => rebuildParameter(a, '_rebuild_parameter', 3, 3) },
    'torch._utils._rebuild_parameter_with_state': { call: (a) => rebuildParameter(a, '_rebuild_parameter_with_state', 4, 4) },
  };
  for (const t of STORAGE_TYPES) {
    g[`torch.${t.name}`] = { value: t };
    if (t.name !== 'UntypedStorage') g[`torch.cuda.${t.name}`] = { value: t };
  }
  g['torch.storage.UntypedStorage'] = { value: STORAGE_TYPES[STORAGE_TYPES.length - 1] };
  return g;
}

/**
 * The globals a PyTorch state dict needs, and nothing more: `collections.OrderedDict`, the tensor
 * and parameter rebuild functions of `torch._utils`, and the storage types (`torch.FloatStorage`,
 * ..., and their `torch.cuda` twins of old GPU files).
 */
export const TORCH_GLOBALS: Readonly<Record<string, GlobalDef>> = Object.freeze(buildTorchGlobals());

function mergeAllow(extra: Allowlist | undefined): Allowlist {
  if (!extra) return TORCH_GLOBALS;
  const out = new Map<string, GlobalDef>(Object.entries(TORCH_GLOBALS));
  for (const [k, v] of extra instanceof Map ? extra : Object.entries(extra as Record<string, GlobalDef>)) out.set(k, v);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Sources

/** A file or a buffer, read by ranges. */
interface Source {
  readonly name: string;
  readonly size: number;
  readonly buffer?: Buffer;
  readonly handle?: FileHandle;
  /** Bytes [pos, pos + len), in a new buffer; the file must hold them all. */
  read(pos: number, len: number): Promise<Buffer>;
  /** The same bytes, in a buffer that is valid only until the next call of `view`. */
  view(pos: number, len: number): Promise<Buffer>;
  close(): Promise<void>;
}

async function openSource(input: string | Uint8Array, label?: string): Promise<Source> {
  if (input instanceof Uint8Array) {
    const buffer = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
    const read = async (pos: number, len: number): Promise<Buffer> => {
      if (pos + len > buffer.length) throw new CheckpointError(`truncated: ${len} bytes needed at offset ${pos} but the data ends at ${buffer.length}`, { file: label ?? '<buffer>' });
      return buffer.subarray(pos, pos + len);
    };
    return { name: label ?? '<buffer>', size: buffer.length, buffer, read, view: read, close: async () => undefined };
  }
  if (typeof input !== 'string') throw new TypeError(`Expected a file path or a Buffer but received ${typeName(input)}`);
  const name = label ?? input;
  let handle: FileHandle;
  let size: number;
  try {
    handle = await fsp.open(input, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : code === 'EACCES' ? 'permission denied' : messageOf(e);
    throw new CheckpointError(`cannot open: ${why}`, { file: name, cause: e });
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new CheckpointError('not a regular file', { file: name });
    size = st.size;
  } catch (e) {
    await handle.close();
    throw e instanceof CheckpointError ? e : new CheckpointError(`cannot open: ${messageOf(e)}`, { file: name, cause: e });
  }
  const scratch = new Scratch();
  const fill = async (buf: Buffer, pos: number): Promise<Buffer> => {
    try {
      await readFully(handle, buf, pos, `the ${buf.length} bytes at offset ${pos}`);
    } catch (e) {
      throw new CheckpointError(`truncated: ${messageOf(e)}`, { file: name, cause: e });
    }
    return buf;
  };
  return {
    name,
    size,
    handle,
    read: (pos, len) => fill(Buffer.allocUnsafe(len), pos),
    view: (pos, len) => fill(scratch.get(len), pos),
    close: () => handle.close(),
  };
}

// ---------------------------------------------------------------------------------------------
// Format detection

export type WeightFileFormat = 'zip' | 'legacy' | 'safetensors';

/** The longest safetensors header accepted (the reference implementation's limit). */
const MAX_SAFETENSORS_HEADER = 100_000_000;

function hexHead(b: Uint8Array): string {
  return [...b.subarray(0, 8)].map((x) => x.toString(16).padStart(2, '0')).join(' ');
}

/** Tells the format from the first bytes of a file of `size` bytes; throws naming what it found instead. */
export function detectFormat(head: Uint8Array, size: number, file = '<buffer>'): WeightFileFormat {
  if (size === 0) throw new CheckpointError('the file is empty', { file });
  if (head[0] === 0x50 && head[1] === 0x4b && ((head[2] === 3 && head[3] === 4) || (head[2] === 5 && head[3] === 6))) return 'zip';
  if (head[0] === 0x80 && head[1] >= 2 && head[1] <= 5) return 'legacy';
  if (size >= 10 && head.length >= 10 && head[8] === 0x7b) {
    const n = Buffer.from(head.buffer, head.byteOffset, 8).readBigUInt64LE(0);
    if (n >= 2n && n <= BigInt(MAX_SAFETENSORS_HEADER) && n + 8n <= BigInt(size)) return 'safetensors';
  }
  if (head.length >= 262 && Buffer.from(head.buffer, head.byteOffset + 257, 5).toString('latin1') === 'ustar') {
    throw new CheckpointError('a tar archive: the tar-based format of PyTorch before 0.4 is not supported', { file });
  }
  if (head[0] === 0x80) throw new CheckpointError(`a pickle of protocol ${head[1]}, not a PyTorch file (torch.save writes protocol 2)`, { file });
  throw new CheckpointError(`not a PyTorch (zip or legacy) or safetensors file (it starts with ${hexHead(head)})`, { file });
}

// ---------------------------------------------------------------------------------------------
// Turning tensor descriptions into tensors

const HOST_LITTLE = os.endianness() === 'LE';
const MAX_WALK_DEPTH = 2000;

/**
 * Walks a value read from a pickle; `onRef` may replace each TensorRef. Mutable containers are
 * changed in place, tuples (frozen) are rebuilt. Shared and cyclic references are visited once.
 */
function walk(root: unknown, onRef: (ref: TensorRef, path: string) => unknown): unknown {
  const done = new Map<object, unknown>();
  const visit = (v: unknown, path: string, depth: number): unknown => {
    if (v instanceof TensorRef) return onRef(v, path);
    if (typeof v !== 'object' || v === null) return v;
    if (done.has(v)) return done.get(v);
    if (depth > MAX_WALK_DEPTH) throw new CheckpointError(`the data is nested deeper than ${MAX_WALK_DEPTH} levels at ${path}`);
    const child = (key: unknown): string => {
      const k = typeof key === 'string' ? key : String(key);
      return path ? `${path}[${JSON.stringify(k)}]` : k;
    };
    if (Array.isArray(v)) {
      if (Object.isFrozen(v)) {
        done.set(v, v);
        const items = v.map((x, i) => visit(x, `${path}[${i}]`, depth + 1));
        const out = items.every((x, i) => x === v[i]) ? v : Object.freeze(items);
        done.set(v, out);
        return out;
      }
      done.set(v, v);
      for (let i = 0; i < v.length; i++) v[i] = visit(v[i], `${path}[${i}]`, depth + 1);
      return v;
    }
    done.set(v, v);
    if (v instanceof Map) {
      for (const [k, x] of v) v.set(k, visit(x, child(k), depth + 1));
      if (v instanceof OrderedDict) for (const [k, x] of v.attributes) v.attributes.set(k, visit(x, `${path}.${k}`, depth + 1));
    } else if (v instanceof PyObject) {
      for (const [k, x] of v.__dict__) v.__dict__.set(k, visit(x, `${path}.${k}`, depth + 1));
      if (v.state !== undefined) v.state = visit(v.state, `${path}.state`, depth + 1);
    }
    return v;
  };
  return visit(root, '', 0);
}

const FLOAT_DTYPES = new Set<DType>(['float32', 'float64', 'float16', 'bfloat16']);

function contiguousStrides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

function isContiguous(shape: readonly number[], strides: readonly number[]): boolean {
  let expect = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== 1 && strides[i] !== expect) return false;
    expect *= shape[i];
  }
  return true;
}

/** Reads a root storage's bytes; the buffer need only stay valid until the next call. */
type ReadStorage = (ref: StorageRef) => Promise<Buffer>;

function showPath(path: string): string {
  return path ? `tensor '${path}'` : 'the tensor';
}

/**
 * Replaces every TensorRef in `root` with a Tensor. All checks (dtype, extent) run before any
 * storage is read; each storage is read once.
 */
async function materialize(root: unknown, read: ReadStorage, file: string, littleEndian: boolean): Promise<unknown> {
  // 1. Collect and check.
  const refs = new Map<TensorRef, string>();
  const roots = new Map<string, StorageRef>();
  walk(root, (ref, path) => {
    if (!refs.has(ref)) refs.set(ref, path);
    return ref;
  });
  for (const [ref, path] of refs) {
    const st = ref.storage;
    if (!st.type.dtype) {
      throw new CheckpointError(
        `${showPath(path)} has dtype ${st.type.torchDtype} (torch.${st.type.name}), which torchcap's tensors do not support (supported: float32, float64, float16, bfloat16, int64, int32, uint8, bool)`,
        { file },
      );
    }
    let numel = 1;
    let last = ref.offset;
    for (let i = 0; i < ref.shape.length; i++) {
      numel *= ref.shape[i];
      if (ref.shape[i] > 0) last += (ref.shape[i] - 1) * ref.strides[i];
    }
    if (!Number.isSafeInteger(numel) || !Number.isSafeInteger(last)) throw new CheckpointError(`${showPath(path)} has an impossible size [${ref.shape.join(', ')}]`, { file });
    const capacity = st.view ? st.view.numel : st.numel;
    if (numel > 0 && last >= capacity) {
      throw new CheckpointError(
        `${showPath(path)} (size [${ref.shape.join(', ')}], stride [${ref.strides.join(', ')}], offset ${ref.offset}) reaches element ${last} of a storage of ${capacity}`,
        { file },
      );
    }
    const rootKey = st.view ? st.view.key : st.key;
    if (!roots.has(rootKey)) roots.set(rootKey, st.view ? new StorageRef(rootKey, st.type, st.numel, st.location) : st);
  }

  // 2. Read each storage once.
  const bases = new Map<string, Tensor>();
  try {
    for (const [key, st] of roots) {
      const dtype = st.type.dtype!;
      let bytes = await read(st);
      const want = st.numel * st.type.elementSize;
      if (bytes.length !== want) throw new CheckpointError(`storage '${key}' holds ${bytes.length} bytes but ${st.numel} ${st.type.torchDtype} elements need ${want}`, { file });
      if (littleEndian !== HOST_LITTLE && st.type.elementSize > 1) {
        bytes = Buffer.from(bytes); // never swap the caller's buffer in place
        if (st.type.elementSize === 2) bytes.swap16();
        else if (st.type.elementSize === 4) bytes.swap32();
        else bytes.swap64();
      }
      let base: Tensor;
      try {
        if (dtype === 'bool') {
          // Any non-zero byte is true: a hostile file cannot make a bool that is neither.
          const raw = Tensor.fromBytes(bytes, 'uint8', [st.numel]);
          base = raw.ne(0);
          raw.dispose();
        } else base = Tensor.fromBytes(bytes, dtype, [st.numel]);
      } catch (e) {
        throw new CheckpointError(`storage '${key}' cannot be loaded: ${messageOf(e)}`, { file, cause: e });
      }
      bases.set(key, base);
    }

    // 3. Build the tensors.
    const made = new Map<TensorRef, Tensor>();
    for (const [ref, path] of refs) {
      const st = ref.storage;
      const base = bases.get(st.view ? st.view.key : st.key)!;
      const offset = ref.offset + (st.view ? st.view.offset : 0);
      const numel = ref.shape.reduce((a, b) => a * b, 1);
      let t: Tensor;
      try {
        if (offset === 0 && numel === st.numel && isContiguous(ref.shape, ref.strides) && !st.view) {
          t = base.view([...ref.shape]);
        } else {
          const v = base.asStrided([...ref.shape], [...ref.strides], offset);
          t = isContiguous(ref.shape, ref.strides) ? v.clone() : v.contiguous();
          v.dispose();
        }
        if (ref.requiresGrad && FLOAT_DTYPES.has(t.dtype)) t.requiresGrad = true;
      } catch (e) {
        throw new CheckpointError(`${showPath(path)} cannot be built: ${messageOf(e)}`, { file, cause: e });
      }
      made.set(ref, t);
    }
    return walk(root, (ref) => made.get(ref)!);
  } finally {
    for (const b of bases.values()) b.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// Pickle-level readers

function storageFromPid(pid: unknown, legacy: boolean, seen: Map<string, StorageRef>): StorageRef {
  if (!isPyTuple(pid) || pid.length === 0) throw new TypeError(`a persistent id must be a tuple, not ${typeName(pid)}`);
  const kind = pid[0] instanceof Uint8Array ? Buffer.from(pid[0]).toString('latin1') : pid[0];
  if (kind === 'module') throw new TypeError('the file holds a pickled nn.Module; save its state_dict() instead');
  if (kind !== 'storage') throw new TypeError(`unknown persistent id type ${JSON.stringify(String(kind))}`);
  const want = legacy ? 6 : 5;
  if (pid.length !== want) throw new TypeError(`a storage persistent id has ${want} fields, this one ${pid.length}`);
  const [, type, rawKey, rawLocation, rawNumel] = pid;
  if (!(type instanceof StorageType)) throw new TypeError(`storage type must be a torch storage class, not ${typeName(type)}`);
  const key = typeof rawKey === 'string' ? rawKey : rawKey instanceof Uint8Array ? Buffer.from(rawKey).toString('latin1') : undefined;
  if (key === undefined) throw new TypeError(`storage key must be a string, not ${typeName(rawKey)}`);
  const location = typeof rawLocation === 'string' ? rawLocation : rawLocation instanceof Uint8Array ? Buffer.from(rawLocation).toString('latin1') : 'cpu';
  const numel = intArg(rawNumel, 'storage size');
  if (!Number.isSafeInteger(numel * type.elementSize)) throw new TypeError(`storage '${key}' is impossibly large (${numel} elements)`);
  let root = seen.get(key);
  if (root) {
    if (root.type !== type) throw new TypeError(`storage '${key}' is used as both ${root.type.name} and ${type.name}`);
    if (root.numel !== numel) throw new TypeError(`storage '${key}' is declared with ${root.numel} and ${numel} elements`);
  } else {
    root = new StorageRef(key, type, numel, location);
    seen.set(key, root);
  }
  if (!legacy || pid[5] === null) return root;
  const view = pid[5];
  if (!Array.isArray(view) || view.length !== 3) throw new TypeError(`storage view metadata must be a 3-tuple, not ${typeName(view)}`);
  const viewKey = typeof view[0] === 'string' ? view[0] : String(view[0]);
  const offset = intArg(view[1], 'storage view offset');
  const viewNumel = intArg(view[2], 'storage view size');
  if (offset + viewNumel > numel) throw new TypeError(`storage view '${viewKey}' [${offset}, ${offset + viewNumel}) lies outside storage '${key}' of ${numel} elements`);
  return new StorageRef(viewKey, type, numel, location, { key, offset, numel: viewNumel });
}

const GLOBAL_HINT =
  ' — torchcap reads tensors, state dicts and plain containers; a file made by torch.save(model) holds Python classes: save model.state_dict() instead';

function wrapPickleError(e: unknown, file: string): never {
  if (e instanceof UnpicklingError) {
    if (e.code === 'GLOBAL' && !/save model\.state_dict/.test(e.message)) {
      throw new UnpicklingError(e.detail + GLOBAL_HINT, { offset: e.offset, source: e.source ?? file, code: e.code });
    }
    throw e;
  }
  throw e;
}

export interface ReadOptions {
  /** More allowed globals, for files that hold other data types (e.g. {@link BUILTIN_DATA_GLOBALS}). */
  allow?: Allowlist;
  /** The largest pickle read from a zip file (default 1 GiB). */
  maxPickleBytes?: number;
  /** Names the data in messages when a Buffer is read. */
  name?: string;
}

export interface TorchFileContents {
  format: WeightFileFormat;
  /** The object that was saved, with Tensors in place (a state dict is an {@link OrderedDict}). */
  value: unknown;
  /** safetensors `__metadata__` (empty for the other formats). */
  metadata: Record<string, string>;
  /** The byte order the file's data was written in. */
  byteOrder: 'little' | 'big';
}

// ----- zip

async function readZipFormat(src: Source, opts: ReadOptions): Promise<TorchFileContents> {
  const file = src.name;
  let zip: ZipReader;
  try {
    zip = await ZipReader.open(src.buffer ? { buffer: src.buffer } : { handle: src.handle! });
  } catch (e) {
    throw new CheckpointError(`not a readable zip archive: ${messageOf(e)}`, { file, cause: e });
  }
  const names = [...zip.entries.keys()];
  if (names.length === 0) throw new CheckpointError('an empty zip archive, not a PyTorch file', { file });
  const slash = names[0].indexOf('/');
  if (slash <= 0) throw new CheckpointError(`not a PyTorch archive: record '${names[0]}' is not inside a folder`, { file });
  const prefix = names[0].slice(0, slash + 1);
  const entry = (n: string): ZipEntry | undefined => zip.entries.get(prefix + n);
  const scratch = new Scratch();
  const readRecord = async (e: ZipEntry, reuse = false): Promise<Buffer> => {
    try {
      return await zip.read(e, reuse ? scratch : undefined);
    } catch (err) {
      throw new CheckpointError(messageOf(err), { file, cause: err });
    }
  };
  if (entry('constants.pkl')) {
    throw new CheckpointError('a TorchScript archive (torch.jit.save); torchcap reads torch.save files: save the state_dict() with torch.save', { file });
  }
  const pklEntry = entry('data.pkl');
  if (!pklEntry) {
    const shown = names.slice(0, 5).join(', ') + (names.length > 5 ? ', …' : '');
    throw new CheckpointError(`not a PyTorch archive: no record '${prefix}data.pkl' (records: ${shown})`, { file });
  }
  let byteOrder: 'little' | 'big' = 'little';
  const bo = entry('byteorder');
  if (bo) {
    const text = (await readRecord(bo)).toString('latin1').trim();
    if (text !== 'little' && text !== 'big') throw new CheckpointError(`record '${prefix}byteorder' says ${JSON.stringify(text.slice(0, 20))}, not 'little' or 'big'`, { file });
    byteOrder = text;
  }
  const ver = entry('version') ?? entry('.data/version');
  if (ver) {
    const text = (await readRecord(ver)).toString('latin1').trim();
    if (!/^\d+$/.test(text)) throw new CheckpointError(`record '${ver.fileName}' holds ${JSON.stringify(text.slice(0, 20))}, not a version number`, { file });
  }
  const maxPickle = opts.maxPickleBytes ?? 1 << 30;
  if (pklEntry.uncompressedSize > maxPickle) throw new CheckpointError(`record '${pklEntry.fileName}' is ${pklEntry.uncompressedSize} bytes, more than the limit of ${maxPickle}`, { file });
  const pkl = await readRecord(pklEntry);
  const seen = new Map<string, StorageRef>();
  let value: unknown;
  try {
    value = unpickleAt(pkl, {
      allow: mergeAllow(opts.allow),
      source: `${file} (record ${pklEntry.fileName})`,
      persistentLoad: (pid) => storageFromPid(pid, false, seen),
    }).value;
  } catch (e) {
    wrapPickleError(e, file);
  }
  value = await materialize(
    value,
    async (st) => {
      const e = entry(`data/${st.key}`);
      if (!e) throw new CheckpointError(`storage '${st.key}' has no record '${prefix}data/${st.key}'`, { file });
      const want = st.numel * st.type.elementSize;
      if (e.uncompressedSize !== want) {
        throw new CheckpointError(`record '${e.fileName}' holds ${e.uncompressedSize} bytes but the pickle declares ${st.numel} ${st.type.torchDtype} elements (${want} bytes)`, { file });
      }
      return readRecord(e, true);
    },
    file,
    byteOrder === 'little',
  );
  return { format: 'zip', value, metadata: {}, byteOrder };
}

// ----- legacy

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;

interface LegacyPickles {
  value: unknown;
  keys: string[];
  storages: Map<string, StorageRef>;
  littleEndian: boolean;
  end: number;
}

function parseLegacyPickles(head: Buffer, file: string, allow: Allowlist): LegacyPickles {
  const source = file;
  let magic: { value: unknown; end: number };
  try {
    magic = unpickleAt(head, { source });
  } catch (e) {
    if (e instanceof UnpicklingError && e.code === 'TRUNCATED') throw e;
    throw new CheckpointError(`not a PyTorch file: a pickle that does not start with torch's magic number (${e instanceof UnpicklingError ? e.detail : messageOf(e)})`, { file, cause: e });
  }
  if (magic.value !== LEGACY_MAGIC) {
    throw new CheckpointError(
      `invalid magic number ${typeof magic.value === 'bigint' || typeof magic.value === 'number' ? `0x${magic.value.toString(16)}` : typeName(magic.value)}: not a PyTorch file (or a corrupt one)`,
      { file },
    );
  }
  const proto = unpickleAt(head, { source, start: magic.end });
  if (proto.value !== LEGACY_PROTOCOL) throw new CheckpointError(`unsupported legacy protocol version ${String(proto.value)} (expected ${LEGACY_PROTOCOL})`, { file });
  const sys = unpickleAt(head, { source, start: proto.end });
  if (!(sys.value instanceof Map)) throw new CheckpointError(`the system-info record is ${typeName(sys.value)}, not a dict`, { file });
  const le = sys.value.get('little_endian');
  const littleEndian = le === undefined ? true : le === true;
  const storages = new Map<string, StorageRef>();
  let main: { value: unknown; end: number };
  try {
    main = unpickleAt(head, { source, start: sys.end, allow, persistentLoad: (pid) => storageFromPid(pid, true, storages) });
  } catch (e) {
    wrapPickleError(e, file);
  }
  const keys = unpickleAt(head, { source, start: main.end });
  if (!Array.isArray(keys.value) || !keys.value.every((k) => typeof k === 'string')) {
    throw new CheckpointError(`the storage-key record is ${typeName(keys.value)}, not a list of strings`, { file });
  }
  return { value: main.value, keys: keys.value as string[], storages, littleEndian, end: keys.end };
}

async function readLegacyFormat(src: Source, opts: ReadOptions): Promise<TorchFileContents> {
  const file = src.name;
  const allow = mergeAllow(opts.allow);
  // The pickles come first; read a head of the file and grow it until they all fit.
  let len = Math.min(src.size, 1 << 20);
  let parsed: LegacyPickles;
  for (;;) {
    const head = await src.read(0, len);
    try {
      parsed = parseLegacyPickles(head, file, allow);
      break;
    } catch (e) {
      if (e instanceof UnpicklingError && e.code === 'TRUNCATED' && len < src.size) {
        len = Math.min(src.size, len * 8);
        continue;
      }
      throw e;
    }
  }
  // Then each storage: an 8-byte element count and the raw elements, in key order.
  const where = new Map<string, { pos: number; bytes: number }>();
  let pos = parsed.end;
  for (const key of parsed.keys) {
    const st = parsed.storages.get(key);
    if (!st) throw new CheckpointError(`storage '${key}' has data but the pickle never uses it`, { file });
    if (pos + 8 > src.size) throw new CheckpointError(`truncated: storage '${key}' should start at byte ${pos} but the file ends at ${src.size}`, { file });
    const countBuf = await src.read(pos, 8);
    const count = parsed.littleEndian ? countBuf.readBigInt64LE(0) : countBuf.readBigInt64BE(0);
    if (count !== BigInt(st.numel)) throw new CheckpointError(`storage '${key}' holds ${count} elements but the pickle declares ${st.numel}`, { file });
    const bytes = st.numel * st.type.elementSize;
    pos += 8;
    if (pos + bytes > src.size) throw new CheckpointError(`truncated: storage '${key}' needs ${bytes} bytes at byte ${pos} but the file ends at ${src.size}`, { file });
    where.set(key, { pos, bytes });
    pos += bytes;
  }
  const value = await materialize(
    parsed.value,
    async (st) => {
      const w = where.get(st.key);
      if (!w) throw new CheckpointError(`storage '${st.key}' is used by the pickle but its data is missing`, { file });
      return src.view(w.pos, w.bytes);
    },
    file,
    parsed.littleEndian,
  );
  return { format: 'legacy', value, metadata: {}, byteOrder: parsed.littleEndian ? 'little' : 'big' };
}

// ----- safetensors

const SAFETENSORS_DTYPES: Readonly<Record<string, { size: number; dtype?: DType }>> = {
  F64: { size: 8, dtype: 'float64' },
  F32: { size: 4, dtype: 'float32' },
  F16: { size: 2, dtype: 'float16' },
  BF16: { size: 2, dtype: 'bfloat16' },
  I64: { size: 8, dtype: 'int64' },
  I32: { size: 4, dtype: 'int32' },
  U8: { size: 1, dtype: 'uint8' },
  BOOL: { size: 1, dtype: 'bool' },
  I16: { size: 2 },
  I8: { size: 1 },
  U16: { size: 2 },
  U32: { size: 4 },
  U64: { size: 8 },
  F8_E4M3: { size: 1 },
  F8_E5M2: { size: 1 },
  C64: { size: 8 },
};

/** The safetensors dtype code of each torchcap dtype. */
export const SAFETENSORS_CODES: Readonly<Record<DType, string>> = {
  float64: 'F64',
  float32: 'F32',
  float16: 'F16',
  bfloat16: 'BF16',
  int64: 'I64',
  int32: 'I32',
  uint8: 'U8',
  bool: 'BOOL',
};

interface SafetensorsEntry {
  name: string;
  dtype: DType;
  code: string;
  shape: number[];
  begin: number;
  end: number;
}

function parseSafetensorsHeader(text: string, dataLen: number, file: string): { entries: SafetensorsEntry[]; metadata: Record<string, string> } {
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    throw new CheckpointError(`safetensors header is not valid JSON: ${messageOf(e)}`, { file });
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new CheckpointError('safetensors header is not a JSON object', { file });
  const metadata: Record<string, string> = {};
  const entries: SafetensorsEntry[] = [];
  for (const [name, info] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof info !== 'object' || info === null || Array.isArray(info)) throw new CheckpointError('safetensors __metadata__ is not an object of strings', { file });
      for (const [k, v] of Object.entries(info as Record<string, unknown>)) {
        if (typeof v !== 'string') throw new CheckpointError(`safetensors __metadata__ value for ${JSON.stringify(k)} is not a string`, { file });
        Object.defineProperty(metadata, k, { value: v, enumerable: true, writable: true, configurable: true });
      }
      continue;
    }
    const bad = (why: string): never => {
      throw new CheckpointError(`safetensors tensor ${JSON.stringify(name)}: ${why}`, { file });
    };
    if (typeof info !== 'object' || info === null) bad('its entry is not an object');
    const { dtype, shape, data_offsets: offsets } = info as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof dtype !== 'string' || !(dtype in SAFETENSORS_DTYPES)) bad(`unknown dtype ${JSON.stringify(dtype)}`);
    const spec = SAFETENSORS_DTYPES[dtype as string];
    if (!spec.dtype) bad(`dtype ${dtype as string} is not supported by torchcap's tensors (supported: ${Object.values(SAFETENSORS_CODES).join(', ')})`);
    if (!Array.isArray(shape) || !shape.every((s) => Number.isSafeInteger(s) && s >= 0)) bad('shape is not a list of non-negative integers');
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((s) => Number.isSafeInteger(s) && s >= 0)) bad('data_offsets is not [begin, end]');
    const [begin, end] = offsets as number[];
    const numel = (shape as number[]).reduce((a, b) => a * b, 1);
    if (!Number.isSafeInteger(numel * spec.size)) bad('its size is impossibly large');
    if (end < begin || end - begin !== numel * spec.size) bad(`data_offsets [${begin}, ${end}] do not hold ${numel} ${dtype as string} elements (${numel * spec.size} bytes)`);
    if (end > dataLen) bad(`data_offsets end at ${end} but the data holds ${dataLen} bytes`);
    entries.push({ name, dtype: spec.dtype!, code: dtype as string, shape: shape as number[], begin, end });
  }
  // The format requires the tensors to tile the data exactly: no overlaps, no holes.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  for (const e of sorted) {
    if (e.begin !== at) {
      throw new CheckpointError(
        e.begin < at ? `safetensors tensor ${JSON.stringify(e.name)} overlaps the previous tensor` : `safetensors data has a hole before tensor ${JSON.stringify(e.name)} (bytes ${at}..${e.begin})`,
        { file },
      );
    }
    at = e.end;
  }
  if (at !== dataLen) throw new CheckpointError(`safetensors data holds ${dataLen} bytes but the tensors cover ${at}`, { file });
  return { entries: sorted, metadata };
}

async function readSafetensorsFormat(src: Source): Promise<TorchFileContents> {
  const file = src.name;
  if (src.size < 8) throw new CheckpointError('truncated: a safetensors file needs at least 8 bytes', { file });
  const n = (await src.read(0, 8)).readBigUInt64LE(0);
  if (n > BigInt(MAX_SAFETENSORS_HEADER)) throw new CheckpointError(`safetensors header of ${n} bytes exceeds the limit of ${MAX_SAFETENSORS_HEADER}`, { file });
  if (8n + n > BigInt(src.size)) throw new CheckpointError(`truncated: the safetensors header needs ${n} bytes but the file holds ${src.size - 8} after the length`, { file });
  const headerBytes = await src.read(8, Number(n));
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch {
    throw new CheckpointError('safetensors header is not valid UTF-8', { file });
  }
  const dataStart = 8 + Number(n);
  const { entries, metadata } = parseSafetensorsHeader(text, src.size - dataStart, file);
  const value = new OrderedDict<string, Tensor>();
  for (const e of entries) {
    const bytes = await src.view(dataStart + e.begin, e.end - e.begin);
    const numel = e.shape.reduce((a, b) => a * b, 1);
    try {
      let t: Tensor;
      if (e.dtype === 'bool') {
        const raw = Tensor.fromBytes(bytes, 'uint8', [numel]);
        t = raw.ne(0).reshape(e.shape);
        raw.dispose();
      } else t = Tensor.fromBytes(bytes, e.dtype, e.shape);
      value.set(e.name, t);
    } catch (err) {
      throw new CheckpointError(`safetensors tensor ${JSON.stringify(e.name)} cannot be loaded: ${messageOf(err)}`, { file, cause: err });
    }
  }
  return { format: 'safetensors', value, metadata, byteOrder: 'little' };
}

// ---------------------------------------------------------------------------------------------
// Public API

/**
 * Reads a PyTorch (zip or legacy) or safetensors file, or such bytes in memory, with everything it
 * holds: the saved object with Tensors in place, the format, and safetensors metadata.
 */
export async function readTorchFileContents(input: string | Uint8Array, opts: ReadOptions = {}): Promise<TorchFileContents> {
  const src = await openSource(input, opts.name);
  try {
    const head = await src.read(0, Math.min(src.size, 512));
    const format = detectFormat(head, src.size, src.name);
    try {
      if (format === 'zip') return await readZipFormat(src, opts);
      if (format === 'legacy') return await readLegacyFormat(src, opts);
      return await readSafetensorsFormat(src);
    } catch (e) {
      if (e instanceof UnpicklingError || e instanceof CheckpointError) throw e;
      throw new CheckpointError(`cannot be read: ${messageOf(e)}`, { file: src.name, cause: e });
    }
  } finally {
    await src.close();
  }
}

/**
 * Reads the object saved in a PyTorch or safetensors file: a state dict comes back as an
 * {@link OrderedDict} (a Map) of name → Tensor, other containers as Maps, arrays and so on.
 */
export async function readTorchFile(input: string | Uint8Array, opts: ReadOptions = {}): Promise<unknown> {
  return (await readTorchFileContents(input, opts)).value;
}

export interface ReadStateDictOptions extends ReadOptions {
  /** Where the state dict sits inside the saved object, e.g. 'model' or ['checkpoint', 'encoder']. */
  key?: string | string[];
}

/**
 * Reads a state dict: a dict of name → tensor, at the top of the file or under `opts.key`. Anything
 * else (a non-string key, a value that is not a tensor) is a CheckpointError naming it.
 */
export async function readStateDict(input: string | Uint8Array, opts: ReadStateDictOptions = {}): Promise<Map<string, Tensor>> {
  const file = opts.name ?? (typeof input === 'string' ? input : '<buffer>');
  let value = await readTorchFile(input, opts);
  const keys = opts.key === undefined ? [] : Array.isArray(opts.key) ? opts.key : [opts.key];
  const at: string[] = [];
  for (const k of keys) {
    if (!(value instanceof Map)) throw new CheckpointError(`cannot look up '${k}' in ${typeName(value)}${at.length ? ` at ${at.join('/')}` : ''}`, { file });
    if (!value.has(k)) {
      const shown = [...value.keys()].slice(0, 10).map(String).join(', ');
      throw new CheckpointError(`no entry '${k}'${at.length ? ` in ${at.join('/')}` : ''} (entries: ${shown})`, { file });
    }
    value = value.get(k);
    at.push(k);
  }
  const where = at.length ? ` at ${at.join('/')}` : '';
  if (!(value instanceof Map)) throw new CheckpointError(`holds ${typeName(value)}${where}, not a state dict (a dict of tensors)`, { file });
  for (const [k, v] of value) {
    if (typeof k !== 'string') throw new CheckpointError(`state dict${where} has a key of type ${typeName(k)} (${String(k)}); names must be strings`, { file });
    if (!(v instanceof Tensor)) throw new CheckpointError(`state dict${where} entry '${k}' is ${typeName(v)}, not a tensor`, { file });
  }
  return value as Map<string, Tensor>;
}

/** Reads a safetensors file (or bytes): its tensors, in file order, and its `__metadata__`. */
export async function readSafetensors(input: string | Uint8Array, opts: { name?: string } = {}): Promise<{ tensors: Map<string, Tensor>; metadata: Record<string, string> }> {
  const c = await readTorchFileContents(input, opts);
  if (c.format !== 'safetensors') throw new CheckpointError(`is a PyTorch ${c.format} file, not safetensors`, { file: opts.name ?? (typeof input === 'string' ? input : '<buffer>') });
  return { tensors: c.value as Map<string, Tensor>, metadata: c.metadata };
}

/** Element strides of a contiguous tensor of `shape`. */
export { contiguousStrides };
