/**
 * Writing weight files that Python's `torch.load` opens: the zip format of `torch.save` (a folder
 * named after the file, `data.pkl` with a protocol-2 pickle, one record `data/<key>` of raw
 * little-endian bytes per tensor, `byteorder` and `version`), with every record stored and its data
 * aligned on 64 bytes as PyTorch does; and safetensors. Both are written atomically: into a
 * temporary file in the same folder, fsynced, then renamed over the target, so a failed save
 * leaves the old file untouched and no partial file behind.
 *
 * Each tensor is written as its own compact storage (views are saved as copies of what they
 * show); a Tensor object that appears twice is written once and referenced twice.
 */
import * as os from 'os';
import * as path from 'path';
import { Tensor } from '../core/tensor';
import type { DType } from '../core/binding';
import { writeAll, writeWeightFile } from './atomic';
import { CheckpointError, messageOf } from './errors';
import { OrderedDict, PyGlobal, PyPersistent, PyReduce, pickle, pyTuple } from './pickle';
import { SAFETENSORS_CODES, contiguousStrides } from './torch-file';
import { ZipWriter } from './zip-writer';

const STORAGE_NAMES: Readonly<Record<DType, string>> = {
  float32: 'FloatStorage',
  float64: 'DoubleStorage',
  float16: 'HalfStorage',
  bfloat16: 'BFloat16Storage',
  int64: 'LongStorage',
  int32: 'IntStorage',
  uint8: 'ByteStorage',
  bool: 'BoolStorage',
};

/** Bytes per element of each dtype. */
export const ELEMENT_SIZES: Readonly<Record<DType, number>> = {
  float32: 4,
  float64: 8,
  float16: 2,
  bfloat16: 2,
  int64: 8,
  int32: 4,
  uint8: 1,
  bool: 1,
};

/** Per-module metadata of a state dict (`state_dict._metadata` in Python), e.g. `{'': {version: 1}}`. */
export type StateDictMetadata = Map<string, Map<string, unknown>> | Record<string, Record<string, unknown>>;

/** A state dict with the metadata Python keeps beside it. */
export interface StateDictWithMetadata {
  tensors: Map<string, Tensor>;
  metadata?: StateDictMetadata;
}

export interface SaveOptions {
  /** The folder name inside the zip (default: the file name without its extension, as torch.save does). */
  archiveName?: string;
  /** Write each tensor's requires_grad flag (default false, as `state_dict()` detaches). */
  keepRequiresGrad?: boolean;
  /** Write zip64 records even for small files (tests of the zip64 path). */
  forceZip64?: boolean;
}

function isStateDictWithMetadata(v: unknown): v is StateDictWithMetadata {
  if (typeof v !== 'object' || v === null || Object.getPrototypeOf(v) !== Object.prototype) return false;
  const keys = Object.keys(v);
  return (v as { tensors?: unknown }).tensors instanceof Map && keys.every((k) => k === 'tensors' || k === 'metadata');
}

function isTensorMap(v: unknown): v is Map<unknown, Tensor> {
  if (!(v instanceof Map) || v.size === 0) return false;
  for (const x of v.values()) if (!(x instanceof Tensor)) return false;
  return true;
}

function metadataMap(m: StateDictMetadata): OrderedDict<string, Map<string, unknown>> {
  const out = new OrderedDict<string, Map<string, unknown>>();
  const entries = m instanceof Map ? [...m.entries()] : Object.entries(m);
  for (const [k, v] of entries) out.set(k, v instanceof Map ? new Map(v) : new Map(Object.entries(v)));
  return out;
}

/** The bytes of a tensor, contiguous, in the machine's byte order (a copy made by libtorch). */
function tensorBytes(t: Tensor): Buffer {
  const a = t.toTypedArray();
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

function archiveNameFor(file: string): string {
  const stem = path.basename(file, path.extname(file)).replace(/[^A-Za-z0-9_.-]/g, '_');
  return stem && stem !== '.' && stem !== '..' ? stem : 'archive';
}

/** The bytes a tensor needs, reading only its shape and dtype. */
function byteSize(t: Tensor, where: string): { shape: number[]; dtype: DType; bytes: number } {
  let shape: number[];
  let dtype: DType;
  try {
    shape = t.shape;
    dtype = t.dtype;
  } catch (e) {
    throw new CheckpointError(`cannot save ${where}: ${messageOf(e)}`, { cause: e });
  }
  return { shape, dtype, bytes: shape.reduce((a, b) => a * b, 1) * ELEMENT_SIZES[dtype] };
}

/**
 * Saves `data` in PyTorch's zip format, atomically. `data` is usually a state dict: a
 * `Map<string, Tensor>` (written as the `collections.OrderedDict` that `state_dict()` returns), or
 * `{ tensors, metadata }` to add the per-module `_metadata`. Any other object made of Maps, plain
 * objects, arrays, frozen arrays (tuples), numbers, strings, booleans, null and Tensors is written
 * too: a checkpoint `{ model, optimizer: { state, param_groups }, epoch }` opens in Python as the
 * same dict. Maps whose values are all tensors become OrderedDicts, as state dicts are in Python.
 */
export async function saveTorchFile(file: string, data: Map<string, Tensor> | StateDictWithMetadata | unknown, opts: SaveOptions = {}): Promise<void> {
  if (typeof file !== 'string' || file === '') throw new TypeError(`Expected a file path for file but received ${typeof file}`);
  let root: unknown = data;
  if (isStateDictWithMetadata(data)) {
    const od = new OrderedDict<string, Tensor>(data.tensors);
    if (data.metadata) od.attributes.set('_metadata', metadataMap(data.metadata));
    root = od;
  }

  // Give every distinct tensor a storage key; describe it as torch._utils._rebuild_tensor_v2(...).
  const storages: { key: string; tensor: Tensor; where: string; bytes: number }[] = [];
  const rebuild = new PyGlobal('torch._utils', '_rebuild_tensor_v2');
  const orderedDict = new PyGlobal('collections', 'OrderedDict');
  const transform = (v: unknown, where: string): unknown => {
    if (v instanceof Tensor) {
      const label = where ? `'${where}'` : 'the tensor';
      const { shape, dtype, bytes } = byteSize(v, label);
      const key = String(storages.length);
      const numel = shape.reduce((a, b) => a * b, 1);
      storages.push({ key, tensor: v, where: label, bytes });
      let requiresGrad = false;
      if (opts.keepRequiresGrad) requiresGrad = v.requiresGrad;
      const pid = pyTuple('storage', new PyGlobal('torch', STORAGE_NAMES[dtype]), key, 'cpu', numel);
      return new PyReduce(rebuild, [new PyPersistent(pid), 0, pyTuple(...shape), pyTuple(...contiguousStrides(shape)), requiresGrad, new PyReduce(orderedDict, [])]);
    }
    if (isTensorMap(v) && !(v instanceof OrderedDict)) return new OrderedDict(v);
    return undefined;
  };
  let pkl: Buffer;
  try {
    pkl = pickle(root, { transform });
  } catch (e) {
    if (e instanceof CheckpointError) throw new CheckpointError(e.message, { file, cause: e });
    throw new CheckpointError(`cannot be saved: ${messageOf(e)}`, { file, cause: e });
  }

  const archive = opts.archiveName ?? archiveNameFor(file);
  if (!/^[A-Za-z0-9_.-]+$/.test(archive) || archive === '.' || archive === '..') throw new TypeError(`archiveName must be a plain folder name, not ${JSON.stringify(archive)}`);
  const byteorder = os.endianness() === 'LE' ? 'little' : 'big';
  await writeWeightFile(file, async (fh) => {
    const zip = new ZipWriter(fh, { forceZip64: opts.forceZip64 });
    await zip.add(`${archive}/data.pkl`, pkl);
    await zip.add(`${archive}/byteorder`, Buffer.from(byteorder));
    // torch.save writes the records in the order of the keys sorted as strings.
    const sorted = [...storages].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    for (const s of sorted) {
      let bytes: Buffer;
      try {
        bytes = tensorBytes(s.tensor);
      } catch (e) {
        throw new CheckpointError(`cannot save ${s.where}: ${messageOf(e)}`, { file, cause: e });
      }
      if (bytes.length !== s.bytes) throw new CheckpointError(`cannot save ${s.where}: it gave ${bytes.length} bytes, expected ${s.bytes}`, { file });
      await zip.add(`${archive}/data/${s.key}`, bytes);
    }
    await zip.add(`${archive}/version`, Buffer.from('3\n'));
    await zip.finish();
  });
}

/**
 * Saves tensors as a safetensors file, atomically: an 8-byte little-endian header length, a JSON
 * header (`dtype`, `shape`, `data_offsets` of each tensor, in name order, and `__metadata__`),
 * padded with spaces to 8 bytes, then the tensors' bytes.
 */
export async function saveSafetensors(file: string, tensors: Map<string, Tensor> | Record<string, Tensor>, metadata?: Record<string, string>): Promise<void> {
  if (typeof file !== 'string' || file === '') throw new TypeError(`Expected a file path for file but received ${typeof file}`);
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  const header: Record<string, unknown> = {};
  if (metadata) {
    const meta: Record<string, string> = {};
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new TypeError(`safetensors metadata values must be strings; ${JSON.stringify(k)} is ${typeof v}`);
      Object.defineProperty(meta, k, { value: v, enumerable: true });
    }
    header.__metadata__ = meta;
  }
  const sorted = entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const items: { name: string; tensor: Tensor; bytes: number }[] = [];
  let at = 0;
  for (const [name, t] of sorted) {
    if (typeof name !== 'string') throw new TypeError('safetensors tensor names must be strings');
    if (name === '__metadata__') throw new TypeError("'__metadata__' is reserved in safetensors and cannot name a tensor");
    if (!(t instanceof Tensor)) throw new TypeError(`Expected a Tensor for ${JSON.stringify(name)} but received ${typeof t}`);
    const { shape, dtype, bytes } = byteSize(t, `'${name}'`);
    Object.defineProperty(header, name, { value: { dtype: SAFETENSORS_CODES[dtype], shape, data_offsets: [at, at + bytes] }, enumerable: true });
    items.push({ name, tensor: t, bytes });
    at += bytes;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) json = Buffer.concat([json, Buffer.alloc(padded - json.length, 0x20)]);
  const lengthBuf = Buffer.alloc(8);
  lengthBuf.writeBigUInt64LE(BigInt(json.length));
  if (os.endianness() !== 'LE') throw new CheckpointError('safetensors files are little-endian; writing them on a big-endian machine is not supported', { file });
  await writeWeightFile(file, async (fh) => {
    await writeAll(fh, lengthBuf);
    await writeAll(fh, json);
    for (const it of items) {
      let bytes: Buffer;
      try {
        bytes = tensorBytes(it.tensor);
      } catch (e) {
        throw new CheckpointError(`cannot save '${it.name}': ${messageOf(e)}`, { file, cause: e });
      }
      if (bytes.length !== it.bytes) throw new CheckpointError(`cannot save '${it.name}': it gave ${bytes.length} bytes, expected ${it.bytes}`, { file });
      await writeAll(fh, bytes);
    }
  });
}
