/**
 * Reading PyTorch weight files without Python: the zip format of `torch.save` (PyTorch ≥ 1.6), the
 * older "legacy" format (`_use_new_zipfile_serialization=False`), and safetensors. The format is
 * told from the file's bytes, never from its name.
 *
 * Pickles are read by the data-only VM of `pickle.ts` with {@link TORCH_GLOBALS}: OrderedDict, the
 * tensor and parameter rebuild functions and the storage types. Anything else in a file (a pickled
 * `nn.Module`, a lambda, `os.system`) is refused with an error that names it; nothing runs.
 *
 * Split by concern: what a pickle may name (torch-globals.ts), the file's bytes and format
 * (source.ts), tensors from storages (materialize.ts: each storage read once, shared storages stay
 * shared), safetensors (safetensors.ts); here the zip and legacy pickle readers and the public
 * functions. Tensors saved on a GPU are loaded on the CPU.
 */
import { Tensor } from '../core/tensor';
import { CheckpointError, messageOf } from './errors';
import { OrderedDict, UnpicklingError, isPyTuple, typeName, unpickleAt, type Allowlist } from './pickle';
import { Scratch, ZipReader, checkCrc, recordDataStarts, LOCAL_HEADER_BYTES, type ZipEntry } from './zip';
import { StorageRef, StorageType, defaultMaxTensors, intArg, readGlobals } from './torch-globals';
import { detectFormat, openSource, type Source, type WeightFileFormat } from './source';
import { materialize, showKey, storagesFromBytes, rawDtype, HOST_LITTLE, type StorageTargets } from './materialize';
import { readFileBytes, readFileRanges } from './file-storages';
import type { FileHandle } from './atomic';
import type { DType } from '../core/binding';
import { readSafetensorsFormat } from './safetensors';

export { StorageType, StorageRef, TensorRef, TORCH_GLOBALS } from './torch-globals';
export { detectFormat } from './source';
export type { WeightFileFormat } from './source';
export { contiguousStrides } from './materialize';
export type { StorageTargets, TensorLayout } from './materialize';
export { SAFETENSORS_CODES } from './safetensors';

/** The largest pickle read (ReadOptions.maxPickleBytes). */
const MAX_PICKLE_BYTES = 1 << 30;
/** The most bytes of a zip's `byteorder` or `version` record ('little', '3\n'). */
const SMALL_RECORD_BYTES = 64;

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
  /** The largest pickle read from a zip file, or head of pickles of a legacy file (default 1 GiB). */
  maxPickleBytes?: number;
  /**
   * The most tensors the file may describe (default: 10,000 plus one per KiB of the file; see
   * defaultMaxTensors in torch-globals.ts). Each tensor costs memory whatever its size.
   */
  maxTensors?: number;
  /** Names the data in messages when a Buffer is read. */
  name?: string;
  /**
   * Tensors to read storages straight into, chosen once the file's layout is known (see
   * {@link StorageTargets}): what a loader passes for the module it has just built for the file.
   */
  into?: StorageTargets;
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

// ----- storages read natively from a file

/**
 * Stored zip records, read straight into tensors (`starts`: where each record's data starts), each
 * CRC-32 checked against the central directory.
 */
async function readStoredRecords(handle: FileHandle, entries: ZipEntry[], starts: ReadonlyMap<ZipEntry, number>, dtypes: DType[], into: (Tensor | undefined)[], file: string): Promise<Tensor[]> {
  const { tensors, crcs } = await readFileRanges(handle, entries.map((e, i) => ({ offset: starts.get(e)!, bytes: e.uncompressedSize, dtype: dtypes[i], into: into[i] })), file);
  try {
    entries.forEach((e, i) => checkCrc(e, crcs[i]));
  } catch (e) {
    for (const t of tensors) t.dispose();
    throw new CheckpointError(messageOf(e), { file, cause: e });
  }
  return tensors;
}

// ----- zip

async function readZipFormat(src: Source, opts: ReadOptions): Promise<TorchFileContents> {
  const file = src.name;
  let zip: ZipReader;
  try {
    zip = await ZipReader.open(src.buffer ? { buffer: src.buffer } : { handle: src.handle!, size: src.size });
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
  // Every record's local header, read at once (natively from a file): where its data starts, and
  // no two records sharing bytes, before any record is read.
  const records = [...zip.entries.values()];
  const offsets = records.map((e) => e.relativeOffsetOfLocalHeader);
  const outside = records.find((e) => e.relativeOffsetOfLocalHeader + LOCAL_HEADER_BYTES > zip.size);
  if (outside) throw new CheckpointError(`record '${outside.fileName}': its local header (byte ${outside.relativeOffsetOfLocalHeader}) lies past the archive's end (${zip.size})`, { file });
  const headers = src.handle
    ? await readFileBytes(src.handle, offsets, LOCAL_HEADER_BYTES, file)
    : offsets.map((o) => src.buffer!.subarray(o, o + LOCAL_HEADER_BYTES));
  let dataStarts: Map<ZipEntry, number>;
  try {
    dataStarts = recordDataStarts(records, headers, zip.size);
  } catch (e) {
    throw new CheckpointError(messageOf(e), { file, cause: e });
  }
  // byteorder and version hold a word or a number: a few bytes, never read whole when larger.
  const small = (e: ZipEntry): void => {
    if (e.uncompressedSize > SMALL_RECORD_BYTES) {
      throw new CheckpointError(`record '${e.fileName}' holds ${e.uncompressedSize} bytes, more than the ${SMALL_RECORD_BYTES} such a record may hold`, { file });
    }
  };
  let byteOrder: 'little' | 'big' = 'little';
  const bo = entry('byteorder');
  if (bo) {
    small(bo);
    const text = (await readRecord(bo)).toString('latin1').trim();
    if (text !== 'little' && text !== 'big') throw new CheckpointError(`record '${prefix}byteorder' says ${JSON.stringify(text.slice(0, 20))}, not 'little' or 'big'`, { file });
    byteOrder = text;
  }
  const ver = entry('version') ?? entry('.data/version');
  if (ver) {
    small(ver);
    const text = (await readRecord(ver)).toString('latin1').trim();
    if (!/^\d+$/.test(text)) throw new CheckpointError(`record '${ver.fileName}' holds ${JSON.stringify(text.slice(0, 20))}, not a version number`, { file });
  }
  const maxPickle = opts.maxPickleBytes ?? MAX_PICKLE_BYTES;
  if (pklEntry.uncompressedSize > maxPickle) throw new CheckpointError(`record '${pklEntry.fileName}' is ${pklEntry.uncompressedSize} bytes, more than the limit of ${maxPickle}`, { file });
  const pkl = await readRecord(pklEntry);
  const seen = new Map<string, StorageRef>();
  let value: unknown;
  try {
    value = unpickleAt(pkl, {
      allow: readGlobals(opts.allow, opts.maxTensors ?? defaultMaxTensors(src.size)),
      source: `${file} (record ${pklEntry.fileName})`,
      persistentLoad: (pid) => storageFromPid(pid, false, seen),
    }).value;
  } catch (e) {
    wrapPickleError(e, file);
  }
  const dataEntry = (st: StorageRef): ZipEntry => {
    const e = entry(`data/${st.key}`);
    if (!e) throw new CheckpointError(`storage '${st.key}' has no record '${prefix}data/${st.key}'`, { file });
    const want = st.numel * st.type.elementSize;
    if (e.uncompressedSize !== want) {
      throw new CheckpointError(`record '${e.fileName}' holds ${e.uncompressedSize} bytes but the pickle declares ${st.numel} ${st.type.torchDtype} elements (${want} bytes)`, { file });
    }
    return e;
  };
  const viaBytes = storagesFromBytes((st) => readRecord(dataEntry(st), true), file, byteOrder === 'little');
  value = await materialize(value, {
    file,
    targets: opts.into,
    // every record checked before any is read, and before a loader builds a module for them
    check: (storages) => {
      const entries = storages.map(dataEntry);
      try {
        zip.checkInflate(entries);
      } catch (e) {
        throw new CheckpointError(messageOf(e), { file, cause: e });
      }
    },
    read: async (storages, into) => {
      const entries = storages.map(dataEntry);
      if (!src.handle || (byteOrder === 'little') !== HOST_LITTLE || entries.some((e) => e.compressionMethod !== 0)) return viaBytes(storages, into);
      return readStoredRecords(src.handle, entries, dataStarts, storages.map(rawDtype), into, file);
    },
  });
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
  const allow = readGlobals(opts.allow, opts.maxTensors ?? defaultMaxTensors(src.size));
  const maxPickle = opts.maxPickleBytes ?? MAX_PICKLE_BYTES;
  // The pickles come first; read a head of the file and grow it until they all fit: never past
  // the file's end or the pickle limit, and not at all when a length the pickles declare reaches
  // past the file's end (that is the error).
  const limit = Math.min(src.size, maxPickle);
  let len = Math.min(limit, 1 << 20);
  let parsed: LegacyPickles;
  for (;;) {
    const head = await src.read(0, len);
    try {
      parsed = parseLegacyPickles(head, file, allow);
      break;
    } catch (e) {
      if (!(e instanceof UnpicklingError) || e.code !== 'TRUNCATED') throw e;
      if (e.needed !== undefined && e.needed > src.size) {
        if (len === src.size) throw e;
        throw new UnpicklingError(`pickle data truncated: what this opcode declares would end at byte ${e.needed}, past the file's end (${src.size} bytes)`, {
          offset: e.offset,
          source: e.source,
          code: 'TRUNCATED',
          needed: e.needed,
          cause: e,
        });
      }
      if (len < limit) {
        len = Math.min(limit, Math.max(len * 8, e.needed ?? 0));
        continue;
      }
      if (len < src.size) {
        throw new CheckpointError(`the pickles at the start of the file take more than ${maxPickle} bytes, the limit (ReadOptions.maxPickleBytes): ${e.detail}`, { file, cause: e });
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
  const range = (st: StorageRef): { pos: number; bytes: number } => {
    const w = where.get(st.key);
    if (!w) throw new CheckpointError(`storage '${st.key}' is used by the pickle but its data is missing`, { file });
    return w;
  };
  const viaBytes = storagesFromBytes((st) => {
    const w = range(st);
    return src.view(w.pos, w.bytes);
  }, file, parsed.littleEndian);
  const value = await materialize(parsed.value, {
    file,
    targets: opts.into,
    check: (storages) => storages.forEach(range),
    read: async (storages, into) => {
      const ranges = storages.map((st) => ({ ...range(st), dtype: rawDtype(st) }));
      if (!src.handle || parsed.littleEndian !== HOST_LITTLE) return viaBytes(storages, into);
      return (await readFileRanges(src.handle, ranges.map((r, i) => ({ offset: r.pos, bytes: r.bytes, dtype: r.dtype, into: into[i] })), file)).tensors;
    },
  });
  return { format: 'legacy', value, metadata: {}, byteOrder: parsed.littleEndian ? 'little' : 'big' };
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
      return await readSafetensorsFormat(src, opts.maxTensors ?? defaultMaxTensors(src.size));
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
      const shown = [...value.keys()].slice(0, 10).map((x) => showKey(x)).join(', ');
      throw new CheckpointError(`no entry '${k}'${at.length ? ` in ${at.join('/')}` : ''} (entries: ${shown})`, { file });
    }
    value = value.get(k);
    at.push(k);
  }
  const where = at.length ? ` at ${at.join('/')}` : '';
  if (!(value instanceof Map)) throw new CheckpointError(`holds ${typeName(value)}${where}, not a state dict (a dict of tensors)`, { file });
  for (const [k, v] of value) {
    if (typeof k !== 'string') throw new CheckpointError(`state dict${where} has a key of type ${typeName(k)} (${showKey(k)}); names must be strings`, { file });
    if (!(v instanceof Tensor)) throw new CheckpointError(`state dict${where} entry '${showKey(k)}' is ${typeName(v)}, not a tensor`, { file });
  }
  return value as Map<string, Tensor>;
}

/** Reads a safetensors file (or bytes): its tensors, in file order, and its `__metadata__`. */
export async function readSafetensors(input: string | Uint8Array, opts: { name?: string; maxTensors?: number } = {}): Promise<{ tensors: Map<string, Tensor>; metadata: Record<string, string> }> {
  const c = await readTorchFileContents(input, opts);
  if (c.format !== 'safetensors') throw new CheckpointError(`is a PyTorch ${c.format} file, not safetensors`, { file: opts.name ?? (typeof input === 'string' ? input : '<buffer>') });
  return { tensors: c.value as Map<string, Tensor>, metadata: c.metadata };
}

/** Element strides of a contiguous tensor of `shape`. */

