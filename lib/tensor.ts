/**
 * Tensor: a typed TypeScript wrapper over one native libtorch tensor.
 *
 * Arguments are validated here, with messages that name the argument and what was received;
 * libtorch's own errors (shape mismatches and the like) arrive as JS errors from native code.
 * Memory is freed by `dispose()` (or `using`), else by the GC finalizer.
 */
import { getHeapStatistics } from 'v8';
import { native, type NativeTensor, type DType, type UnaryOp, type BinaryOp, type ReduceOp } from './binding';

export type { DType } from './binding';
export type Device = 'cpu' | 'cuda' | `cuda:${number}` | string;
export type TypedArray = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array | Uint16Array;
export type NestedArray = number | boolean | NestedArray[];

export interface TensorOptions {
  dtype?: DType;
  device?: Device;
  requiresGrad?: boolean;
}

const DTYPES: readonly DType[] = ['float32', 'float64', 'float16', 'bfloat16', 'int64', 'int32', 'uint8', 'bool'];

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return `an array of length ${v.length}`;
  if (ArrayBuffer.isView(v)) return `a ${v.constructor.name}`;
  if (typeof v === 'object') return `an object (${(v as object).constructor?.name ?? 'Object'})`;
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)}`;
  return `${typeof v} ${String(v)}`;
}

/** Throws TypeError `Expected <what> for <name> but received <value>`. */
export function expected(what: string, name: string, value: unknown): never {
  throw new TypeError(`Expected ${what} for ${name} but received ${describe(value)}`);
}

export function checkInt(v: unknown, name: string, min = -Infinity): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) expected('an integer', name, v);
  if (v < min) throw new RangeError(`Expected an integer >= ${min} for ${name} but received ${v}`);
  return v;
}

function checkShape(shape: unknown, name = 'shape'): number[] {
  if (!Array.isArray(shape)) expected('an array of non-negative integers', name, shape);
  for (const s of shape) {
    if (typeof s !== 'number' || !Number.isInteger(s)) expected('an array of integers', name, shape);
    if (s < -1) throw new RangeError(`Expected sizes >= -1 in ${name} but received ${JSON.stringify(shape)}`);
  }
  return shape as number[];
}

function checkDtype(d: unknown): DType | undefined {
  if (d === undefined) return undefined;
  if (!DTYPES.includes(d as DType)) expected(`one of ${DTYPES.join(', ')}`, 'dtype', d);
  return d as DType;
}

function checkDevice(d: unknown): string | undefined {
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

export class Tensor {
  /** @internal */
  readonly handle: NativeTensor;

  /** @internal wraps a native handle; use the static constructors instead. */
  constructor(handle: NativeTensor) {
    this.handle = handle;
  }

  // ---------- creation ----------

  /**
   * A tensor from a TypedArray (copied), a nested JS array, or a number.
   * `shape` is needed for typed arrays of more than one dimension.
   */
  static from(data: TypedArray | NestedArray | Buffer, opts: TensorOptions & { shape?: number[] } = {}): Tensor {
    let dtype = checkDtype(opts.dtype);
    const device = checkDevice(opts.device);
    let t: NativeTensor;
    if (ArrayBuffer.isView(data)) {
      const own = dtypeOfArray(data);
      const shape = opts.shape !== undefined ? checkShape(opts.shape) : [(data as TypedArray).length];
      t = native.fromData(data, own === 'uint8' && dtype === 'bool' ? 'bool' : own, shape);
      if (dtype && dtype !== own) t = t.to(dtype, null);
    } else if (typeof data === 'number' || typeof data === 'boolean' || Array.isArray(data)) {
      const { shape, values, allBool } = flattenNested(data);
      if (opts.shape !== undefined) throw new TypeError('shape is taken from the nested array; do not pass it too');
      dtype = dtype ?? (allBool ? 'bool' : 'float32');
      const bytes = arrayForDtype(dtype === 'float16' || dtype === 'bfloat16' ? 'float32' : dtype, values);
      t = native.fromData(bytes, dtype === 'float16' || dtype === 'bfloat16' ? 'float32' : dtype, shape);
      if (dtype === 'float16' || dtype === 'bfloat16') t = t.to(dtype, null);
    } else {
      expected('a TypedArray, a nested array of numbers or a number', 'data', data);
    }
    if (device && device !== 'cpu') t = t.to(null, device);
    const out = new Tensor(t);
    if (opts.requiresGrad) out.requiresGrad = true;
    return out;
  }

  /**
   * A tensor whose elements are the raw bytes of `bytes` (copied), read as `dtype` in the
   * machine's byte order. The byte length must equal the shape's element count × element size.
   */
  static fromBytes(bytes: Uint8Array, dtype: DType, shape: number[]): Tensor {
    if (!(bytes instanceof Uint8Array)) expected('a Uint8Array or Buffer', 'bytes', bytes);
    return new Tensor(native.fromData(bytes, checkDtype(dtype) ?? expected('a dtype', 'dtype', dtype), checkShape(shape)));
  }

  static zeros(shape: number[], opts: TensorOptions = {}): Tensor {
    return Tensor.full(shape, 0, opts);
  }

  static ones(shape: number[], opts: TensorOptions = {}): Tensor {
    return Tensor.full(shape, 1, opts);
  }

  static full(shape: number[], value: number, opts: TensorOptions = {}): Tensor {
    checkShape(shape);
    if (typeof value !== 'number') expected('a number', 'value', value);
    return withGrad(native.full(shape, value, checkDtype(opts.dtype) ?? 'float32', checkDevice(opts.device)), opts);
  }

  /** Standard normal samples (seeded by manualSeed). */
  static randn(shape: number[], opts: TensorOptions = {}): Tensor {
    return withGrad(native.random('randn', checkShape(shape), checkDtype(opts.dtype) ?? 'float32', checkDevice(opts.device)), opts);
  }

  /** Uniform samples in [0, 1). */
  static rand(shape: number[], opts: TensorOptions = {}): Tensor {
    return withGrad(native.random('rand', checkShape(shape), checkDtype(opts.dtype) ?? 'float32', checkDevice(opts.device)), opts);
  }

  /** Integers uniform in [low, high), int64. */
  static randint(low: number, high: number, shape: number[], opts: { device?: Device } = {}): Tensor {
    checkInt(low, 'low');
    checkInt(high, 'high');
    if (high <= low) throw new RangeError(`randint needs low < high but received low=${low}, high=${high}`);
    return new Tensor(native.randint(low, high, checkShape(shape), checkDevice(opts.device)));
  }

  /**
   * A random permutation of 0..n-1, int64. With `seed`, drawn from a fresh generator seeded with
   * it (PyTorch's `torch.randperm(n, generator=torch.Generator().manual_seed(seed))`), leaving the
   * global generator untouched.
   */
  static randperm(n: number, seed?: number): Tensor {
    return new Tensor(native.randperm(checkInt(n, 'n', 0), seed === undefined ? null : checkInt(seed, 'seed', 0)));
  }

  /** arange(end) or arange(start, end, step?). Integral arguments give int64, like PyTorch. */
  static arange(startOrEnd: number, end?: number, step = 1, opts: TensorOptions = {}): Tensor {
    const [s, e] = end === undefined ? [0, startOrEnd] : [startOrEnd, end];
    for (const [v, n] of [[s, 'start'], [e, 'end'], [step, 'step']] as const) {
      if (typeof v !== 'number' || !Number.isFinite(v)) expected('a finite number', n, v);
    }
    if (step === 0) throw new RangeError('arange step must not be zero');
    const integral = [s, e, step].every(Number.isInteger);
    const dtype = checkDtype(opts.dtype) ?? (integral ? 'int64' : 'float32');
    return withGrad(native.arange(s, e, step, dtype, checkDevice(opts.device)), opts);
  }

  static cat(tensors: Tensor[], dim = 0): Tensor {
    return new Tensor(native.cat(handles(tensors, 'tensors'), checkInt(dim, 'dim')));
  }

  static stack(tensors: Tensor[], dim = 0): Tensor {
    return new Tensor(native.stack(handles(tensors, 'tensors'), checkInt(dim, 'dim')));
  }

  static where(condition: Tensor, input: Tensor, other: Tensor): Tensor {
    return new Tensor(native.where(h(condition, 'condition'), h(input, 'input'), h(other, 'other')));
  }

  // ---------- metadata ----------

  get shape(): number[] {
    return this.handle.shape();
  }
  get ndim(): number {
    return this.shape.length;
  }
  get numel(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }
  get dtype(): DType {
    return this.handle.dtype();
  }
  get device(): string {
    return this.handle.device();
  }
  get requiresGrad(): boolean {
    return this.handle.requiresGrad();
  }
  set requiresGrad(on: boolean) {
    if (typeof on !== 'boolean') expected('a boolean', 'requiresGrad', on);
    this.handle.setRequiresGrad(on);
  }
  get isDisposed(): boolean {
    return this.handle.isDisposed();
  }
  get isLeaf(): boolean {
    return this.handle.isLeaf();
  }
  /** The accumulated gradient, or null. */
  get grad(): Tensor | null {
    const g = this.handle.grad();
    return g ? new Tensor(g) : null;
  }

  // ---------- conversion ----------

  /** A copy of the data (contiguous, on the CPU). */
  toTypedArray(): TypedArray {
    return this.handle.toTypedArray();
  }

  /** The data as a nested JS array of numbers (int64 as numbers, bool as booleans). */
  toArray(): NestedArray {
    // About 32 bytes an array and 8 a number: refuse what the JS heap cannot hold (running out of
    // it is fatal, not an exception), such as the 10⁹ empty arrays of a [1e9, 0] tensor.
    let arrays = 1;
    for (let d = 0, rows = 1; d < this.ndim - 1; d++) arrays += rows *= this.shape[d];
    if (arrays * 32 + this.numel * 8 > getHeapStatistics().heap_size_limit / 2) {
      throw new RangeError(`toArray: a tensor of shape [${this.shape.join(', ')}] is too big for nested JS arrays; use toTypedArray()`);
    }
    const flat = this.toTypedArray();
    const isBool = this.dtype === 'bool';
    const values: (number | boolean)[] = Array.from(flat as ArrayLike<number | bigint>, (v) =>
      isBool ? v !== 0 : Number(v),
    );
    const shape = this.shape;
    if (shape.length === 0) return values[0];
    let pos = 0;
    const build = (d: number): NestedArray => {
      const out: NestedArray[] = [];
      for (let i = 0; i < shape[d]; i++) out.push(d === shape.length - 1 ? values[pos++] : build(d + 1));
      return out;
    };
    return build(0);
  }

  /** The single value of a one-element tensor. */
  item(): number {
    return Number(this.handle.item());
  }

  to(target: DType | Device | { dtype?: DType; device?: Device }): Tensor {
    let dtype: DType | undefined;
    let device: string | undefined;
    if (typeof target === 'string') {
      if (DTYPES.includes(target as DType)) dtype = target as DType;
      else device = checkDevice(target);
    } else if (target && typeof target === 'object') {
      dtype = checkDtype(target.dtype);
      device = checkDevice(target.device);
    } else expected('a dtype, a device or { dtype, device }', 'target', target);
    return new Tensor(this.handle.to(dtype ?? null, device ?? null));
  }

  clone(): Tensor {
    return new Tensor(this.handle.clone());
  }
  detach(): Tensor {
    return new Tensor(this.handle.detach());
  }
  contiguous(): Tensor {
    return new Tensor(this.handle.contiguous());
  }

  toString(): string {
    return this.handle.toString();
  }

  // ---------- shape ----------

  reshape(...shape: number[] | [number[]]): Tensor {
    return new Tensor(this.handle.reshape(checkShape(flatArgs(shape))));
  }
  view(...shape: number[] | [number[]]): Tensor {
    return new Tensor(this.handle.view(checkShape(flatArgs(shape))));
  }
  permute(...dims: number[] | [number[]]): Tensor {
    return new Tensor(this.handle.permute(checkShape(flatArgs(dims), 'dims')));
  }
  transpose(dim0: number, dim1: number): Tensor {
    return new Tensor(this.handle.transpose(checkInt(dim0, 'dim0'), checkInt(dim1, 'dim1')));
  }
  squeeze(dim?: number): Tensor {
    return new Tensor(this.handle.squeeze(dim === undefined ? null : checkInt(dim, 'dim')));
  }
  unsqueeze(dim: number): Tensor {
    return new Tensor(this.handle.unsqueeze(checkInt(dim, 'dim')));
  }
  flatten(startDim = 0, endDim = -1): Tensor {
    return new Tensor(this.handle.flatten(checkInt(startDim, 'startDim'), checkInt(endDim, 'endDim')));
  }
  expand(...shape: number[] | [number[]]): Tensor {
    return new Tensor(this.handle.expand(checkShape(flatArgs(shape))));
  }

  /** Element strides of each dimension. */
  get strides(): number[] {
    return this.handle.strides();
  }
  /** A view of this tensor's storage with the given sizes, element strides and offset. */
  asStrided(shape: number[], strides: number[], storageOffset = 0): Tensor {
    checkShape(shape);
    checkShape(strides, 'strides');
    checkInt(storageOffset, 'storageOffset', 0);
    return new Tensor(this.handle.asStrided(shape, strides, storageOffset));
  }

  // ---------- indexing ----------

  /** Elements start..end (exclusive) with `step` along `dim`; negative indices count from the end. */
  slice(dim: number, start?: number | null, end?: number | null, step = 1): Tensor {
    checkInt(dim, 'dim');
    if (start != null) checkInt(start, 'start');
    if (end != null) checkInt(end, 'end');
    checkInt(step, 'step', 1);
    return new Tensor(this.handle.slice(dim, start ?? null, end ?? null, step));
  }
  /** The slice at `index` along `dim`, with that dimension removed. */
  select(dim: number, index: number): Tensor {
    return new Tensor(this.handle.select(checkInt(dim, 'dim'), checkInt(index, 'index')));
  }
  narrow(dim: number, start: number, length: number): Tensor {
    checkInt(length, 'length', 0);
    return this.slice(dim, start, start + length);
  }
  indexSelect(dim: number, index: Tensor | number[]): Tensor {
    const idx = Array.isArray(index) ? Tensor.from(index, { dtype: 'int64' }) : index;
    return new Tensor(this.handle.indexSelect(checkInt(dim, 'dim'), h(idx, 'index')));
  }
  gather(dim: number, index: Tensor): Tensor {
    return new Tensor(this.handle.gather(checkInt(dim, 'dim'), h(index, 'index')));
  }
  maskedFill(mask: Tensor, value: number): Tensor {
    if (typeof value !== 'number') expected('a number', 'value', value);
    return new Tensor(this.handle.maskedFill(h(mask, 'mask'), value));
  }

  // ---------- arithmetic ----------

  add(other: Tensor | number): Tensor {
    return this.binary('add', other);
  }
  sub(other: Tensor | number): Tensor {
    return this.binary('sub', other);
  }
  mul(other: Tensor | number): Tensor {
    return this.binary('mul', other);
  }
  div(other: Tensor | number): Tensor {
    return this.binary('div', other);
  }
  pow(other: Tensor | number): Tensor {
    return this.binary('pow', other);
  }
  remainder(other: Tensor | number): Tensor {
    return this.binary('remainder', other);
  }
  maximum(other: Tensor | number): Tensor {
    return this.binary('maximum', other);
  }
  minimum(other: Tensor | number): Tensor {
    return this.binary('minimum', other);
  }
  matmul(other: Tensor): Tensor {
    return new Tensor(this.handle.binary('matmul', h(other, 'other')));
  }
  eq(other: Tensor | number): Tensor {
    return this.binary('eq', other);
  }
  ne(other: Tensor | number): Tensor {
    return this.binary('ne', other);
  }
  lt(other: Tensor | number): Tensor {
    return this.binary('lt', other);
  }
  le(other: Tensor | number): Tensor {
    return this.binary('le', other);
  }
  gt(other: Tensor | number): Tensor {
    return this.binary('gt', other);
  }
  ge(other: Tensor | number): Tensor {
    return this.binary('ge', other);
  }
  logicalAnd(other: Tensor): Tensor {
    return this.binary('logicalAnd', other);
  }
  logicalOr(other: Tensor): Tensor {
    return this.binary('logicalOr', other);
  }

  neg(): Tensor {
    return this.unary('neg');
  }
  exp(): Tensor {
    return this.unary('exp');
  }
  log(): Tensor {
    return this.unary('log');
  }
  log1p(): Tensor {
    return this.unary('log1p');
  }
  sqrt(): Tensor {
    return this.unary('sqrt');
  }
  rsqrt(): Tensor {
    return this.unary('rsqrt');
  }
  abs(): Tensor {
    return this.unary('abs');
  }
  sign(): Tensor {
    return this.unary('sign');
  }
  relu(): Tensor {
    return this.unary('relu');
  }
  sigmoid(): Tensor {
    return this.unary('sigmoid');
  }
  tanh(): Tensor {
    return this.unary('tanh');
  }
  sin(): Tensor {
    return this.unary('sin');
  }
  cos(): Tensor {
    return this.unary('cos');
  }
  floor(): Tensor {
    return this.unary('floor');
  }
  ceil(): Tensor {
    return this.unary('ceil');
  }
  round(): Tensor {
    return this.unary('round');
  }
  reciprocal(): Tensor {
    return this.unary('reciprocal');
  }
  square(): Tensor {
    return this.unary('square');
  }
  logicalNot(): Tensor {
    return this.unary('logicalNot');
  }
  isnan(): Tensor {
    return this.unary('isnan');
  }
  isfinite(): Tensor {
    return this.unary('isfinite');
  }
  clamp(min?: number | null, max?: number | null): Tensor {
    if (min != null && typeof min !== 'number') expected('a number', 'min', min);
    if (max != null && typeof max !== 'number') expected('a number', 'max', max);
    return new Tensor(this.handle.clamp(min ?? null, max ?? null));
  }

  // ---------- in place (return this) ----------

  addInPlace(other: Tensor | number, alpha = 1): this {
    this.handle.inPlace('add', operand(other), alpha);
    return this;
  }
  subInPlace(other: Tensor | number, alpha = 1): this {
    this.handle.inPlace('sub', operand(other), alpha);
    return this;
  }
  mulInPlace(other: Tensor | number): this {
    this.handle.inPlace('mul', operand(other));
    return this;
  }
  divInPlace(other: Tensor | number): this {
    this.handle.inPlace('div', operand(other));
    return this;
  }
  copyFrom(source: Tensor): this {
    this.handle.inPlace('copy', h(source, 'source'));
    return this;
  }
  zero(): this {
    this.handle.inPlace('zero');
    return this;
  }
  fill(value: number): this {
    if (typeof value !== 'number') expected('a number', 'value', value);
    this.handle.inPlace('fill', value);
    return this;
  }

  // ---------- reductions ----------

  sum(dim?: number | number[], keepdim = false): Tensor {
    return this.reduce('sum', dim, keepdim);
  }
  mean(dim?: number | number[], keepdim = false): Tensor {
    return this.reduce('mean', dim, keepdim);
  }
  prod(dim?: number, keepdim = false): Tensor {
    return this.reduce('prod', dim, keepdim);
  }
  variance(dim?: number | number[], keepdim = false): Tensor {
    return this.reduce('var', dim, keepdim);
  }
  std(dim?: number | number[], keepdim = false): Tensor {
    return this.reduce('std', dim, keepdim);
  }
  norm(dim?: number | number[], keepdim = false): Tensor {
    return this.reduce('norm', dim, keepdim);
  }
  logsumexp(dim: number | number[], keepdim = false): Tensor {
    return this.reduce('logsumexp', dim, keepdim);
  }
  all(dim?: number, keepdim = false): Tensor {
    return this.reduce('all', dim, keepdim);
  }
  any(dim?: number, keepdim = false): Tensor {
    return this.reduce('any', dim, keepdim);
  }
  argmax(dim?: number, keepdim = false): Tensor {
    return this.reduce('argmax', dim, keepdim);
  }
  argmin(dim?: number, keepdim = false): Tensor {
    return this.reduce('argmin', dim, keepdim);
  }
  /** The maximum of all elements. */
  max(): Tensor;
  /** Maximum values and their indices along `dim`. */
  max(dim: number, keepdim?: boolean): { values: Tensor; indices: Tensor };
  max(dim?: number, keepdim = false): Tensor | { values: Tensor; indices: Tensor } {
    if (dim === undefined) return this.reduce('max', undefined, false);
    const [values, indices] = this.handle.reduceWithIndices('max', checkInt(dim, 'dim'), keepdim);
    return { values: new Tensor(values), indices: new Tensor(indices) };
  }
  min(): Tensor;
  min(dim: number, keepdim?: boolean): { values: Tensor; indices: Tensor };
  min(dim?: number, keepdim = false): Tensor | { values: Tensor; indices: Tensor } {
    if (dim === undefined) return this.reduce('min', undefined, false);
    const [values, indices] = this.handle.reduceWithIndices('min', checkInt(dim, 'dim'), keepdim);
    return { values: new Tensor(values), indices: new Tensor(indices) };
  }
  topk(k: number, dim = -1, largest = true, sorted = true): { values: Tensor; indices: Tensor } {
    const [values, indices] = this.handle.topk(checkInt(k, 'k', 0), checkInt(dim, 'dim'), largest, sorted);
    return { values: new Tensor(values), indices: new Tensor(indices) };
  }
  sort(dim = -1, descending = false, stable = false): { values: Tensor; indices: Tensor } {
    const [values, indices] = this.handle.sort(checkInt(dim, 'dim'), descending, stable);
    return { values: new Tensor(values), indices: new Tensor(indices) };
  }
  softmax(dim: number): Tensor {
    return new Tensor(this.handle.softmax(checkInt(dim, 'dim'), false));
  }
  logSoftmax(dim: number): Tensor {
    return new Tensor(this.handle.softmax(checkInt(dim, 'dim'), true));
  }

  // ---------- comparison ----------

  /** Same shape and exactly equal elements. */
  equal(other: Tensor): boolean {
    return this.handle.equal(h(other, 'other'));
  }
  allclose(other: Tensor, rtol = 1e-5, atol = 1e-8): boolean {
    return this.handle.allclose(h(other, 'other'), rtol, atol);
  }

  // ---------- autograd ----------

  /** Back-propagates from this tensor (a scalar, or pass `gradient`). */
  backward(gradient?: Tensor, opts: { retainGraph?: boolean } = {}): void {
    this.handle.backward(gradient ? h(gradient, 'gradient') : null, opts.retainGraph ?? false);
  }
  /** Drops the accumulated gradient. */
  zeroGrad(): void {
    this.handle.zeroGrad();
  }

  // ---------- memory ----------

  /** Frees the native tensor now. Further use throws; disposing twice is harmless. */
  dispose(): void {
    this.handle.dispose();
  }
  [Symbol.dispose](): void {
    this.dispose();
  }

  // ---------- private helpers ----------

  private unary(op: UnaryOp): Tensor {
    return new Tensor(this.handle.unary(op));
  }
  private binary(op: BinaryOp, other: Tensor | number): Tensor {
    return new Tensor(this.handle.binary(op, operand(other)));
  }
  private reduce(op: ReduceOp, dim: number | number[] | undefined, keepdim: boolean): Tensor {
    const dims = dim === undefined ? null : Array.isArray(dim) ? dim.map((d) => checkInt(d, 'dim')) : [checkInt(dim, 'dim')];
    return new Tensor(this.handle.reduce(op, dims, keepdim));
  }
}

function withGrad(t: NativeTensor, opts: TensorOptions): Tensor {
  const out = new Tensor(t);
  if (opts.requiresGrad) out.requiresGrad = true;
  return out;
}

function flatArgs(args: number[] | [number[]]): number[] {
  return args.length === 1 && Array.isArray(args[0]) ? (args[0] as number[]) : (args as number[]);
}

/** The native handle of a Tensor argument, or a TypeError naming the argument. */
export function h(t: unknown, name: string): NativeTensor {
  if (!(t instanceof Tensor)) expected('a Tensor', name, t);
  return t.handle;
}

function handles(ts: unknown, name: string): NativeTensor[] {
  if (!Array.isArray(ts)) expected('an array of Tensors', name, ts);
  return ts.map((t, i) => h(t, `${name}[${i}]`));
}

function operand(other: unknown): NativeTensor | number {
  if (typeof other === 'number') return other;
  return h(other, 'other');
}

/** Sets the random seed of libtorch's generators (and so of randn, dropout, shuffles). */
export function manualSeed(seed: number): void {
  checkInt(seed, 'seed', 0);
  native.manualSeed(seed);
}

/** Runs `fn` with gradient tracking off on this thread (async work started inside inherits it). */
export function noGrad<T>(fn: () => T): T {
  const prev = native.setGradEnabled(false);
  try {
    const r = fn();
    if (r instanceof Promise) {
      r.catch(() => undefined); // refused below: its rejection must not become an unhandled one
      throw new TypeError('noGrad() takes a synchronous function; grad mode is per thread, so pass { grad: false } to async calls instead');
    }
    return r;
  } finally {
    native.setGradEnabled(prev);
  }
}

/**
 * Calls `fn` with grad mode set to `enabled` and restores it before returning. Native async work
 * captures the grad mode when it is dispatched, so `fn` may return a promise of work it started;
 * only what `fn` dispatches synchronously is affected.
 * @internal
 */
export function dispatchWithGrad<T>(enabled: boolean, fn: () => T): T {
  const prev = native.setGradEnabled(enabled);
  try {
    return fn();
  } finally {
    native.setGradEnabled(prev);
  }
}

export function isGradEnabled(): boolean {
  return native.isGradEnabled();
}
