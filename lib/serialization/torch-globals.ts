/**
 * What a `torch.save` pickle may name, and what it becomes: the storage types, the tensor and
 * parameter rebuild functions and OrderedDict ({@link TORCH_GLOBALS}). Anything else in a file is
 * refused by the unpickler, naming it; nothing runs. Tensors come out as {@link TensorRef}s
 * (strided views of storages), turned into Tensors by materialize.ts.
 */
import type { DType } from '../core/binding';
import { OrderedDict, PickleLimitError, typeName, type Allowlist, type GlobalDef } from './pickle';

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

export const STORAGE_TYPES: readonly StorageType[] = [
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

export function intArg(v: unknown, what: string, min = 0): number {
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

export function mergeAllow(extra: Allowlist | undefined): Allowlist {
  if (!extra) return TORCH_GLOBALS;
  const out = new Map<string, GlobalDef>(Object.entries(TORCH_GLOBALS));
  for (const [k, v] of extra instanceof Map ? extra : Object.entries(extra as Record<string, GlobalDef>)) out.set(k, v);
  return out;
}

/**
 * The most tensor descriptions a file of `bytes` bytes may hold unless the caller says otherwise:
 * 10,000, plus one per KiB of the file. Each becomes a Tensor (a few KiB of native and JS memory,
 * whatever its size), while a description can take as little as 5 bytes of pickle (a memo
 * reference to one argument tuple, called again and again). Real files hold far fewer: a
 * ResNet-152 checkpoint (230 MB) holds 939 tensors, where this allows 240,000.
 */
export function defaultMaxTensors(bytes: number): number {
  return 10_000 + Math.floor(bytes / 1024);
}

const TENSOR_BUILDERS = ['torch._utils._rebuild_tensor', 'torch._utils._rebuild_tensor_v2'];

/**
 * The allowlist of one read: {@link TORCH_GLOBALS} and `extra`, with the tensor rebuild
 * functions counting the tensors they describe: past `maxTensors`, a {@link PickleLimitError}.
 */
export function readGlobals(extra: Allowlist | undefined, maxTensors: number): Map<string, GlobalDef> {
  const merged = mergeAllow(extra);
  const out = new Map<string, GlobalDef>(merged instanceof Map ? merged : Object.entries(merged as Record<string, GlobalDef>));
  let count = 0;
  for (const name of TENSOR_BUILDERS) {
    const def = out.get(name);
    const call = def?.call;
    if (!call) continue;
    out.set(name, {
      ...def,
      call: (args) => {
        if (++count > maxTensors) {
          throw new PickleLimitError(`the file describes more than ${maxTensors} tensors, the limit (ReadOptions.maxTensors; by default 10,000 + one per KiB of the file)`);
        }
        return call(args);
      },
    });
  }
  return out;
}

