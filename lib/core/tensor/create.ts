/**
 * Native tensors from JavaScript values: typed arrays, nested arrays, numbers, fills and random
 * draws, with every argument checked (messages from util/checks.ts). The Tensor class's static
 * constructors call these; the reverse (tensor data back to nested arrays) is here too.
 */
import { native } from '../native';
import type { NativeTensor, DType } from '../binding';
import { checkInt, describe, expected } from '../../util/checks';

export type Device = 'cpu' | 'cuda' | `cuda:${number}` | string;
export type TypedArray = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array | Uint16Array;
export type NestedArray = number | boolean | NestedArray[];

export interface TensorOptions {
  dtype?: DType;
  device?: Device;
  requiresGrad?: boolean;
}

export const DTYPES: readonly DType[] = ['float32', 'float64', 'float16', 'bfloat16', 'int64', 'int32', 'uint8', 'bool'];

export function checkShape(shape: unknown, name = 'shape'): number[] {
  if (!Array.isArray(shape)) expected('an array of non-negative integers', name, shape);
  for (const s of shape) {
    if (typeof s !== 'number' || !Number.isInteger(s)) expected('an array of integers', name, shape);
    if (s < -1) throw new RangeError(`Expected sizes >= -1 in ${name} but received ${JSON.stringify(shape)}`);
  }
  return shape as number[];
}

export function checkDtype(d: unknown): DType | undefined {
  if (d === undefined) return undefined;
  if (!DTYPES.includes(d as DType)) expected(`one of ${DTYPES.join(', ')}`, 'dtype', d);
  return d as DType;
}

export function checkDevice(d: unknown): string | undefined {
  if (d === undefined) return undefined;
  if (typeof d !== 'string' || !/^(cpu|cuda(:\d+)?)$/.test(d)) expected("'cpu', 'cuda' or 'cuda:N'", 'device', d);
  return d;
}

function dtypeOfArray(a: ArrayBufferView): DType {
  if (a instanceof Float32Array) return 'float32';
  if (a instanceof Float64Array) return 'float64';
  if (a instanceof BigInt64Array) return 'int64';
  if (a instanceof Int32Array) return 'int32';
  if (a instanceof Uint8Array) return 'uint8';
  expected('a Float32Array, Float64Array, BigInt64Array, Int32Array or Uint8Array', 'data', a);
}

function arrayForDtype(dtype: DType, values: (number | boolean)[]): ArrayBufferView {
  switch (dtype) {
    case 'float32':
      return Float32Array.from(values as number[], Number);
    case 'float64':
      return Float64Array.from(values as number[], Number);
    case 'int64':
      return BigInt64Array.from(values as number[], (v) => BigInt(Math.trunc(Number(v))));
    case 'int32':
      return Int32Array.from(values as number[], Number);
    case 'uint8':
    case 'bool':
      return Uint8Array.from(values as number[], Number);
    default:
      throw new TypeError(`Cannot build a ${dtype} tensor from a JS array; build float32 and convert with .to('${dtype}')`);
  }
}

/** Shape and flat values of a (rectangular) nested array; throws naming the first ragged spot. */
function flattenNested(data: NestedArray): { shape: number[]; values: (number | boolean)[]; allBool: boolean } {
  const shape: number[] = [];
  let probe: NestedArray = data;
  while (Array.isArray(probe)) {
    shape.push(probe.length);
    if (probe.length === 0) break;
    probe = probe[0];
  }
  const values: (number | boolean)[] = [];
  let allBool = true;
  const walk = (node: NestedArray, depth: number, where: string): void => {
    if (depth === shape.length) {
      if (typeof node === 'boolean') values.push(node);
      else if (typeof node === 'number') {
        allBool = false;
        values.push(node);
      } else expected('a number or boolean', `data${where}`, node);
      return;
    }
    if (!Array.isArray(node) || node.length !== shape[depth]) {
      throw new RangeError(`Ragged nested array: data${where} should be an array of length ${shape[depth]} but is ${describe(node)}`);
    }
    node.forEach((child, i) => walk(child, depth + 1, `${where}[${i}]`));
  };
  walk(data, 0, '');
  if (values.length === 0) allBool = false;
  return { shape, values, allBool };
}

/** A tensor from a TypedArray (copied), a nested JS array, or a number (see Tensor.from). */
export function fromValues(data: unknown, opts: TensorOptions & { shape?: number[] }): NativeTensor {
  let dtype = checkDtype(opts.dtype);
  const device = checkDevice(opts.device);
  let t: NativeTensor;
  if (ArrayBuffer.isView(data)) {
    const own = dtypeOfArray(data);
    const shape = opts.shape !== undefined ? checkShape(opts.shape) : [(data as TypedArray).length];
    t = native.fromData(data, own === 'uint8' && dtype === 'bool' ? 'bool' : own, shape);
    if (dtype && dtype !== own) t = t.to(dtype, null);
  } else if (typeof data === 'number' || typeof data === 'boolean' || Array.isArray(data)) {
    const { shape, values, allBool } = flattenNested(data as NestedArray);
    if (opts.shape !== undefined) throw new TypeError('shape is taken from the nested array; do not pass it too');
    dtype = dtype ?? (allBool ? 'bool' : 'float32');
    const half = dtype === 'float16' || dtype === 'bfloat16';
    t = native.fromData(arrayForDtype(half ? 'float32' : dtype, values), half ? 'float32' : dtype, shape);
    if (half) t = t.to(dtype, null);
  } else {
    expected('a TypedArray, a nested array of numbers or a number', 'data', data);
  }
  return device && device !== 'cpu' ? t.to(null, device) : t;
}

/** The raw bytes of `bytes` (copied) read as `dtype` in the machine's byte order. */
export function fromBytes(bytes: unknown, dtype: DType, shape: number[]): NativeTensor {
  if (!(bytes instanceof Uint8Array)) expected('a Uint8Array or Buffer', 'bytes', bytes);
  return native.fromData(bytes, checkDtype(dtype) ?? expected('a dtype', 'dtype', dtype), checkShape(shape));
}

/** `name`: the public function that asked, which a refused size names. */
export function full(shape: number[], value: number, opts: TensorOptions, name: 'zeros' | 'ones' | 'full' = 'full'): NativeTensor {
  checkShape(shape);
  if (typeof value !== 'number') expected('a number', 'value', value);
  return native.full(shape, value, checkDtype(opts.dtype) ?? 'float32', checkDevice(opts.device), name);
}

export function random(kind: 'randn' | 'rand', shape: number[], opts: TensorOptions): NativeTensor {
  return native.random(kind, checkShape(shape), checkDtype(opts.dtype) ?? 'float32', checkDevice(opts.device));
}

export function randint(low: number, high: number, shape: number[], opts: { device?: Device }): NativeTensor {
  checkInt(low, 'low');
  checkInt(high, 'high');
  if (high <= low) throw new RangeError(`randint needs low < high but received low=${low}, high=${high}`);
  return native.randint(low, high, checkShape(shape), checkDevice(opts.device));
}

export function randperm(n: number, seed?: number): NativeTensor {
  return native.randperm(checkInt(n, 'n', 0), seed === undefined ? null : checkInt(seed, 'seed', 0));
}

export function arange(startOrEnd: number, end: number | undefined, step: number, opts: TensorOptions): NativeTensor {
  const [s, e] = end === undefined ? [0, startOrEnd] : [startOrEnd, end];
  for (const [v, n] of [[s, 'start'], [e, 'end'], [step, 'step']] as const) {
    if (typeof v !== 'number' || !Number.isFinite(v)) expected('a finite number', n, v);
  }
  if (step === 0) throw new RangeError('arange step must not be zero');
  const integral = [s, e, step].every(Number.isInteger);
  return native.arange(s, e, step, checkDtype(opts.dtype) ?? (integral ? 'int64' : 'float32'), checkDevice(opts.device));
}

/** Flat data of `shape` as a nested JS array (int64 as numbers, bool as booleans). */
export function nestedArray(flat: TypedArray, shape: readonly number[], dtype: DType): NestedArray {
  const isBool = dtype === 'bool';
  const values: (number | boolean)[] = Array.from(flat as ArrayLike<number | bigint>, (v) => (isBool ? v !== 0 : Number(v)));
  if (shape.length === 0) return values[0];
  let pos = 0;
  const build = (d: number): NestedArray => {
    const out: NestedArray[] = [];
    for (let i = 0; i < shape[d]; i++) out.push(d === shape.length - 1 ? values[pos++] : build(d + 1));
    return out;
  };
  return build(0);
}
