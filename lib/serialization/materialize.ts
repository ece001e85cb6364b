/**
 * Turning the tensor descriptions of a read pickle into tensors. Every storage is read once. A
 * tensor that covers the whole of its storage contiguously (the usual case for state dicts) is a
 * view of it, so entries that share a whole storage share memory as they do in Python (tied weights
 * stay tied). A tensor that is a part of a storage, or a strided view of one, gets its own compact,
 * contiguous copy, so a small slice never keeps a large storage alive.
 */
import * as os from 'os';
import { Tensor } from '../core/tensor';
import type { DType } from '../core/binding';
import { CheckpointError, messageOf } from './errors';
import { OrderedDict, PyObject, typeName } from './pickle';
import { StorageRef, TensorRef } from './torch-globals';

// ---------------------------------------------------------------------------------------------
// Turning tensor descriptions into tensors

export const HOST_LITTLE = os.endianness() === 'LE';
const MAX_WALK_DEPTH = 2000;
/** The longest tensor name offered to a loader's targets: a longer one is read all the same, into a tensor of its own. */
const MAX_NAME = 4096;
/** How much of a key a message shows. */
const SHOWN_KEY = 60;

/**
 * Where a value sits in the saved object: the steps from the top (undefined), each a dict key, a
 * list index or an attribute. Text is made from it only when a name or a message needs it, so a
 * walk costs nothing per step whatever the keys hold.
 */
class Place {
  constructor(
    readonly parent: Where,
    readonly key: unknown,
    readonly kind: 'entry' | 'index' | 'attribute',
  ) {}
}
type Where = Place | undefined;

function steps(where: Where): Place[] {
  const out: Place[] = [];
  for (let p = where; p; p = p.parent) out.push(p);
  return out.reverse();
}

/** A dict key for a message: bounded in length and in nesting, whatever the key holds. */
export function showKey(k: unknown, depth = 0): string {
  if (typeof k === 'string') return k.length > SHOWN_KEY ? `${k.slice(0, SHOWN_KEY)}… (${k.length} characters)` : k;
  if (k === null || typeof k === 'number' || typeof k === 'bigint' || typeof k === 'boolean') return String(k);
  if (Array.isArray(k)) {
    if (depth >= 3) return k.length ? '(…)' : '()';
    const shown = k.slice(0, 4).map((x) => showKey(x, depth + 1));
    if (k.length > 4) shown.push(`… ${k.length - 4} more`);
    return `(${shown.join(', ')}${k.length === 1 ? ',' : ''})`;
  }
  return typeName(k);
}

function stepText(text: string, p: Place, key: string): string {
  if (p.kind === 'index') return `${text}[${key}]`;
  if (p.kind === 'attribute') return `${text}.${key}`;
  return text ? `${text}[${JSON.stringify(key)}]` : key;
}

/**
 * The name of a place, as the keys of a state dict at the top name its tensors (`layer.weight`;
 * deeper, `model["layer.weight"]`); undefined when it is longer than MAX_NAME or has a key that is
 * no str or number.
 */
function exactName(where: Where): string | undefined {
  let text = '';
  for (const p of steps(where)) {
    const k = p.key;
    if (typeof k !== 'string' && typeof k !== 'number' && typeof k !== 'bigint' && typeof k !== 'boolean' && k !== null) return undefined;
    const key = String(k);
    if (text.length + key.length > MAX_NAME) return undefined;
    text = stepText(text, p, key);
  }
  return text.length > MAX_NAME ? undefined : text;
}

/** A place for a message: long keys cut short, a deep place shown by its first and last steps. */
function showWhere(where: Where): string {
  const all = steps(where);
  const shown = all.length > 12 ? [...all.slice(0, 4), undefined, ...all.slice(-6)] : all;
  let text = '';
  for (const p of shown) text = p ? stepText(text, p, showKey(p.key)) : `${text}[… ${all.length - 10} levels …]`;
  return text;
}

/** What a key holds, for measuring how deeply it nests. */
function keyParts(v: object): unknown[] {
  if (Array.isArray(v)) return v;
  if (v instanceof Set) return [...v];
  if (v instanceof Map) return [...v.keys(), ...v.values()];
  if (v instanceof PyObject) return [...v.args, ...v.__dict__.values(), v.state];
  return [];
}

/**
 * Whether a dict key (a tuple of tuples ...) nests deeper than `limit` levels, measured without
 * recursion, each part once (`heights` keeps the height of every part measured).
 */
function keyTooDeep(key: object, heights: Map<object, number>, limit: number): boolean {
  if (heights.has(key)) return heights.get(key)! > limit;
  const stack: { v: object; parts: unknown[]; i: number; h: number }[] = [{ v: key, parts: keyParts(key), i: 0, h: 1 }];
  const open = new Set<object>([key]);
  while (stack.length) {
    const top = stack[stack.length - 1];
    if (top.i < top.parts.length) {
      const x = top.parts[top.i++];
      if (typeof x !== 'object' || x === null || open.has(x)) continue;
      const known = heights.get(x);
      if (known !== undefined) {
        top.h = Math.max(top.h, known + 1);
        if (stack.length + known > limit) return true;
        continue;
      }
      if (stack.length >= limit) return true;
      open.add(x);
      stack.push({ v: x, parts: keyParts(x), i: 0, h: 1 });
      continue;
    }
    stack.pop();
    open.delete(top.v);
    heights.set(top.v, top.h);
    if (stack.length) stack[stack.length - 1].h = Math.max(stack[stack.length - 1].h, top.h + 1);
  }
  return heights.get(key)! > limit;
}

/**
 * Walks a value read from a pickle; `onRef` may replace each TensorRef. Mutable containers are
 * changed in place, tuples (frozen) are rebuilt. Shared and cyclic references are visited once.
 * Data nested deeper than MAX_WALK_DEPTH levels, values or dict keys, is refused naming `file`.
 */
function walk(root: unknown, file: string, onRef: (ref: TensorRef, where: Where) => unknown): unknown {
  const done = new Map<object, unknown>();
  const keyHeights = new Map<object, number>();
  const visit = (v: unknown, where: Where, depth: number): unknown => {
    if (v instanceof TensorRef) return onRef(v, where);
    if (typeof v !== 'object' || v === null) return v;
    if (done.has(v)) return done.get(v);
    if (depth > MAX_WALK_DEPTH) throw new CheckpointError(`the data is nested deeper than ${MAX_WALK_DEPTH} levels at ${showWhere(where)}`, { file });
    if (Array.isArray(v)) {
      if (Object.isFrozen(v)) {
        done.set(v, v);
        const items = v.map((x, i) => visit(x, new Place(where, i, 'index'), depth + 1));
        const out = items.every((x, i) => x === v[i]) ? v : Object.freeze(items);
        done.set(v, out);
        return out;
      }
      done.set(v, v);
      for (let i = 0; i < v.length; i++) v[i] = visit(v[i], new Place(where, i, 'index'), depth + 1);
      return v;
    }
    done.set(v, v);
    if (v instanceof Map) {
      for (const [k, x] of v) {
        const at = new Place(where, k, 'entry');
        if (typeof k === 'object' && k !== null && keyTooDeep(k, keyHeights, MAX_WALK_DEPTH)) {
          throw new CheckpointError(`a dict key at ${showWhere(at)} is nested deeper than ${MAX_WALK_DEPTH} levels`, { file });
        }
        v.set(k, visit(x, at, depth + 1));
      }
      if (v instanceof OrderedDict) for (const [k, x] of v.attributes) v.attributes.set(k, visit(x, new Place(where, k, 'attribute'), depth + 1));
    } else if (v instanceof PyObject) {
      for (const [k, x] of v.__dict__) v.__dict__.set(k, visit(x, new Place(where, k, 'attribute'), depth + 1));
      if (v.state !== undefined) v.state = visit(v.state, new Place(where, 'state', 'attribute'), depth + 1);
    }
    return v;
  };
  return visit(root, undefined, 0);
}

const FLOAT_DTYPES = new Set<DType>(['float32', 'float64', 'float16', 'bfloat16']);

export function contiguousStrides(shape: readonly number[]): number[] {
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

/**
 * Reads root storages, each as a 1-D tensor of its dtype and element count, in the order given
 * (a bool storage as its raw uint8 bytes). A file's stored records are read natively, straight
 * into tensor memory (file-storages.ts); bytes in memory through {@link storagesFromBytes}.
 */
export type ReadStorages = (storages: StorageRef[], into: (Tensor | undefined)[]) => Promise<Tensor[]>;

/** A tensor's place in a file: its name (its path in the saved object), shape and dtype. */
export interface TensorLayout {
  shape: readonly number[];
  dtype: DType;
}

/**
 * Given the layout of a file's tensors, before any storage is read: tensors (by name) to read the
 * storages straight into, where a storage is exactly one of them (same shape and dtype, contiguous,
 * on the CPU); the tensors read come back as views of them. For a loader that has just built the
 * module that the file fills whole: if reading fails, some of them hold part of the file.
 */
export type StorageTargets = (layout: ReadonlyMap<string, TensorLayout>) => ReadonlyMap<string, Tensor> | undefined;

/** The element type a storage's raw bytes are read as: bool as uint8, checked later. */
export function rawDtype(st: StorageRef): DType {
  return st.type.dtype === 'bool' ? 'uint8' : st.type.dtype!;
}

/**
 * A {@link ReadStorages} over a reader of each storage's bytes (which need only stay valid until
 * its next call), swapping the byte order when the file's is not the machine's.
 */
export function storagesFromBytes(read: (st: StorageRef) => Promise<Buffer>, file: string, littleEndian: boolean): ReadStorages {
  return async (storages) => {
    // (targets are a shortcut of the native reader; these storages are copied by the loader instead)
    const out: Tensor[] = [];
    try {
      for (const st of storages) {
        let bytes = await read(st);
        const want = st.numel * st.type.elementSize;
        if (bytes.length !== want) throw new CheckpointError(`storage '${st.key}' holds ${bytes.length} bytes but ${st.numel} ${st.type.torchDtype} elements need ${want}`, { file });
        if (littleEndian !== HOST_LITTLE && st.type.elementSize > 1) {
          bytes = Buffer.from(bytes); // never swap the caller's buffer in place
          if (st.type.elementSize === 2) bytes.swap16();
          else if (st.type.elementSize === 4) bytes.swap32();
          else bytes.swap64();
        }
        try {
          out.push(Tensor.fromBytes(bytes, rawDtype(st), [st.numel]));
        } catch (e) {
          throw new CheckpointError(`storage '${st.key}' cannot be loaded: ${messageOf(e)}`, { file, cause: e });
        }
      }
      return out;
    } catch (e) {
      for (const t of out) t.dispose();
      throw e;
    }
  };
}

function showPath(where: Where): string {
  return where ? `tensor '${showWhere(where)}'` : 'the tensor';
}

export interface MaterializeOptions {
  /** Named in errors. */
  file: string;
  /** Reads the root storages (all of them, in one call). */
  read: ReadStorages;
  /**
   * Throws when a storage cannot be read (its record is missing or of another size), for all of
   * them before `targets` is asked (a loader builds a module there) and before any is read.
   */
  check?: (storages: StorageRef[]) => void;
  /** Tensors to read storages straight into (see {@link StorageTargets}). */
  targets?: StorageTargets;
}

/**
 * Replaces every TensorRef in `root` with a Tensor. All checks (dtype, extent, each storage's
 * record) run before any storage is read; each storage is read once, all of them by one call of
 * `read`.
 */
export async function materialize(root: unknown, opts: MaterializeOptions): Promise<unknown> {
  const { file, read, targets } = opts;
  // 1. Collect and check.
  const refs = new Map<TensorRef, Where>();
  const roots = new Map<string, StorageRef>();
  walk(root, file, (ref, where) => {
    if (!refs.has(ref)) refs.set(ref, where);
    return ref;
  });
  for (const [ref, where] of refs) {
    const st = ref.storage;
    if (!st.type.dtype) {
      throw new CheckpointError(
        `${showPath(where)} has dtype ${st.type.torchDtype} (torch.${st.type.name}), which torchcap's tensors do not support (supported: float32, float64, float16, bfloat16, int64, int32, uint8, bool)`,
        { file },
      );
    }
    let numel = 1;
    let last = ref.offset;
    for (let i = 0; i < ref.shape.length; i++) {
      numel *= ref.shape[i];
      if (ref.shape[i] > 0) last += (ref.shape[i] - 1) * ref.strides[i];
    }
    if (!Number.isSafeInteger(numel) || !Number.isSafeInteger(last)) throw new CheckpointError(`${showPath(where)} has an impossible size [${ref.shape.join(', ')}]`, { file });
    const capacity = st.view ? st.view.numel : st.numel;
    if (numel > 0 && last >= capacity) {
      throw new CheckpointError(
        `${showPath(where)} (size [${ref.shape.join(', ')}], stride [${ref.strides.join(', ')}], offset ${ref.offset}) reaches element ${last} of a storage of ${capacity}`,
        { file },
      );
    }
    const rootKey = st.view ? st.view.key : st.key;
    if (!roots.has(rootKey)) roots.set(rootKey, st.view ? new StorageRef(rootKey, st.type, st.numel, st.location) : st);
  }

  const list = [...roots];
  opts.check?.(list.map(([, st]) => st));

  // 2. Read each storage once, into the tensors `targets` names where one is exactly a storage.
  const bases = new Map<string, Tensor>();
  try {
    const into = new Map<string, Tensor>();
    if (targets) {
      const names = new Map<TensorRef, string>();
      const layout = new Map<string, TensorLayout>();
      for (const [ref, where] of refs) {
        const name = exactName(where);
        if (name === undefined || !ref.storage.type.dtype) continue;
        names.set(ref, name);
        layout.set(name, { shape: ref.shape, dtype: ref.storage.type.dtype });
      }
      const given = targets(layout);
      for (const [ref, name] of names) {
        const st = ref.storage;
        const t = given?.get(name);
        const whole = !st.view && ref.offset === 0 && ref.shape.reduce((a, b) => a * b, 1) === st.numel && isContiguous(ref.shape, ref.strides);
        if (!t || !whole || into.has(st.key) || st.type.dtype === 'bool' || t.dtype !== st.type.dtype || t.device !== 'cpu' || !isContiguous(t.shape, t.strides)) continue;
        if (t.shape.length !== ref.shape.length || t.shape.some((d, i) => d !== ref.shape[i])) continue;
        into.set(st.key, t);
      }
    }
    const raw = await read(
      list.map(([, st]) => st),
      list.map(([key]) => into.get(key)),
    );
    list.forEach(([key], i) => bases.set(key, raw[i]));
    for (const [key, st] of list) {
      let base = bases.get(key)!;
      if (into.has(key) && base.dtype === rawDtype(st) && base.numel === st.numel) {
        // a target, filled in place: its storage, flat, outside any autograd graph
        const detached = base.detach();
        bases.set(key, detached.view([st.numel]));
        detached.dispose();
        base.dispose();
        base = bases.get(key)!;
      }
      if (base.dtype !== rawDtype(st) || base.shape.length !== 1 || base.shape[0] !== st.numel) {
        throw new CheckpointError(`storage '${key}' was read as ${base.dtype} [${base.shape.join(', ')}], not ${st.numel} ${st.type.torchDtype} elements`, { file });
      }
      if (st.type.dtype === 'bool') {
        // Any non-zero byte is true: a hostile file cannot make a bool that is neither.
        bases.set(key, base.ne(0));
        base.dispose();
      }
    }

    // 3. Build the tensors.
    const made = new Map<TensorRef, Tensor>();
    for (const [ref, where] of refs) {
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
        for (const m of made.values()) m.dispose();
        throw new CheckpointError(`${showPath(where)} cannot be built: ${messageOf(e)}`, { file, cause: e });
      }
      made.set(ref, t);
    }
    return walk(root, file, (ref) => made.get(ref)!);
  } finally {
    for (const b of bases.values()) b.dispose();
  }
}

