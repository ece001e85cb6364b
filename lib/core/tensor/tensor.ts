/**
 * Tensor: a typed TypeScript wrapper over one native libtorch tensor.
 *
 * Arguments are validated here (and in create.ts), with messages that name the argument and what
 * was received; libtorch's own errors (shape mismatches and the like) arrive as JS errors from
 * native code. Memory is freed by `dispose()` (or `using`), else by the GC finalizer.
 *
 * The element-wise operations (`neg`, `exp`, ... and `add`, `mul`, `eq`, ...) carry PyTorch's names
 * and are listed in UNARY_OPS and BINARY_OPS at the end of this file.
 */
import { getHeapStatistics } from 'v8';
import type { NativeTensor, DType, UnaryOp, BinaryOp, ReduceOp } from '../binding';
import { checkInt, expected } from '../../util/checks';
import { native } from '../native';
import * as create from './create';
import { DTYPES, checkDevice, checkDtype, checkShape, nestedArray, type Device, type NestedArray, type TensorOptions, type TypedArray } from './create';

export class Tensor {
  /** @internal */
  readonly handle: NativeTensor;

  /** @internal wraps a native handle; use the static constructors instead. */
  constructor(handle: NativeTensor) {
    this.handle = handle;
  }

  // ---------- creation (argument checks and native calls in create.ts) ----------

  /**
   * A tensor from a TypedArray (copied), a nested JS array, or a number.
   * `shape` is needed for typed arrays of more than one dimension.
   */
  static from(data: TypedArray | NestedArray | Buffer, opts: TensorOptions & { shape?: number[] } = {}): Tensor {
    return withGrad(create.fromValues(data, opts), opts);
  }

  /**
   * A tensor whose elements are the raw bytes of `bytes` (copied), read as `dtype` in the
   * machine's byte order. The byte length must equal the shape's element count × element size.
   */
  static fromBytes(bytes: Uint8Array, dtype: DType, shape: number[]): Tensor {
    return new Tensor(create.fromBytes(bytes, dtype, shape));
  }

  static zeros(shape: number[], opts: TensorOptions = {}): Tensor {
    return withGrad(create.full(shape, 0, opts, 'zeros'), opts);
  }

  static ones(shape: number[], opts: TensorOptions = {}): Tensor {
    return withGrad(create.full(shape, 1, opts, 'ones'), opts);
  }

  static full(shape: number[], value: number, opts: TensorOptions = {}): Tensor {
    return withGrad(create.full(shape, value, opts), opts);
  }

  /** Standard normal samples (seeded by manualSeed). */
  static randn(shape: number[], opts: TensorOptions = {}): Tensor {
    return withGrad(create.random('randn', shape, opts), opts);
  }

  /** Uniform samples in [0, 1). */
  static rand(shape: number[], opts: TensorOptions = {}): Tensor {
    return withGrad(create.random('rand', shape, opts), opts);
  }

  /** Integers uniform in [low, high), int64. */
  static randint(low: number, high: number, shape: number[], opts: { device?: Device } = {}): Tensor {
    return new Tensor(create.randint(low, high, shape, opts));
  }

  /**
   * A random permutation of 0..n-1, int64. With `seed`, drawn from a fresh generator seeded with
   * it (PyTorch's `torch.randperm(n, generator=torch.Generator().manual_seed(seed))`), leaving the
   * global generator untouched.
   */
  static randperm(n: number, seed?: number): Tensor {
    return new Tensor(create.randperm(n, seed));
  }

  /** arange(end) or arange(start, end, step?). Integral arguments give int64, like PyTorch. */
  static arange(startOrEnd: number, end?: number, step = 1, opts: TensorOptions = {}): Tensor {
    return withGrad(create.arange(startOrEnd, end, step, opts), opts);
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
    // About 45 bytes an array (measured: 8M empty arrays took 342 MB) and twice 8 a number (the flat
    // values, then the nested copy): refuse what does not fit in half of what the JS heap has left
    // (running out of it is fatal, not an exception), such as the 10⁹ empty arrays of a [1e9, 0] tensor.
    let arrays = 1;
    for (let d = 0, rows = 1; d < this.ndim - 1; d++) arrays += rows *= this.shape[d];
    const heap = getHeapStatistics();
    if (arrays * 48 + this.numel * 16 > (heap.heap_size_limit - heap.used_heap_size) / 2) {
      throw new RangeError(`toArray: a tensor of shape [${this.shape.join(', ')}] is too big for nested JS arrays; use toTypedArray()`);
    }
    return nestedArray(this.toTypedArray(), this.shape, this.dtype);
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

  // ---------- arithmetic (the element-wise operations are in UNARY_OPS and BINARY_OPS) ----------

  matmul(other: Tensor): Tensor {
    return new Tensor(this.handle.binary('matmul', h(other, 'other')));
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

  /** The maximum of all elements. */
  max(): Tensor;
  /** Maximum values and their indices along `dim`. */
  max(dim: number, keepdim?: boolean): { values: Tensor; indices: Tensor };
  max(dim?: number, keepdim = false): Tensor | { values: Tensor; indices: Tensor } {
    return this.extreme('max', dim, keepdim);
  }
  min(): Tensor;
  min(dim: number, keepdim?: boolean): { values: Tensor; indices: Tensor };
  min(dim?: number, keepdim = false): Tensor | { values: Tensor; indices: Tensor } {
    return this.extreme('min', dim, keepdim);
  }
  private extreme(op: 'max' | 'min', dim: number | undefined, keepdim: boolean): Tensor | { values: Tensor; indices: Tensor } {
    if (dim === undefined) return this.reduce(op, undefined, false);
    const [values, indices] = this.handle.reduceWithIndices(op, checkInt(dim, 'dim'), keepdim);
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

  /** @internal */
  unaryOp(op: UnaryOp): Tensor {
    return new Tensor(this.handle.unary(op));
  }
  /** @internal */
  binaryOp(op: BinaryOp, other: Tensor | number): Tensor {
    return new Tensor(this.handle.binary(op, operand(other)));
  }
  /** @internal */
  reduce(op: ReduceOp, dim: number | number[] | undefined, keepdim: boolean): Tensor {
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

/** Element-wise operations of one tensor, by PyTorch's names (`x.neg()`, `x.exp()`, `x.isnan()`). */
export const UNARY_OPS = [
  'neg', 'exp', 'log', 'log1p', 'sqrt', 'rsqrt', 'abs', 'sign', 'relu', 'sigmoid', 'tanh', 'sin', 'cos',
  'floor', 'ceil', 'round', 'reciprocal', 'square', 'logicalNot', 'isnan', 'isfinite',
] as const satisfies readonly UnaryOp[];

/** Element-wise operations of two tensors (or a tensor and a number), with PyTorch's type promotion and broadcasting. */
export const BINARY_OPS = [
  'add', 'sub', 'mul', 'div', 'pow', 'remainder', 'maximum', 'minimum',
  'eq', 'ne', 'lt', 'le', 'gt', 'ge', 'logicalAnd', 'logicalOr',
] as const satisfies readonly Exclude<BinaryOp, 'matmul'>[];

/** Reductions over all elements, or over `dim` (`x.sum()`, `x.mean([0, 1], true)`, `x.variance(0)`). */
export const REDUCTIONS = { sum: 'sum', mean: 'mean', variance: 'var', std: 'std', norm: 'norm', logsumexp: 'logsumexp' } as const satisfies Record<string, ReduceOp>;
/** Reductions over all elements or along one dimension (`x.argmax(1)`, `x.all()`). */
export const DIM_REDUCTIONS = { prod: 'prod', all: 'all', any: 'any', argmax: 'argmax', argmin: 'argmin' } as const satisfies Record<string, ReduceOp>;

// Every native operation has its method (a compile error here names one that has none).
const allUnary: Exclude<UnaryOp, (typeof UNARY_OPS)[number]> extends never ? true : never = true;
const allBinary: Exclude<BinaryOp, (typeof BINARY_OPS)[number] | 'matmul'> extends never ? true : never = true;
void allUnary;
void allBinary;

export interface Tensor
  extends Record<(typeof UNARY_OPS)[number], () => Tensor>,
    Record<(typeof BINARY_OPS)[number], (other: Tensor | number) => Tensor>,
    Record<keyof typeof REDUCTIONS, (dim?: number | number[], keepdim?: boolean) => Tensor>,
    Record<keyof typeof DIM_REDUCTIONS, (dim?: number, keepdim?: boolean) => Tensor> {}

function method(name: string, value: (this: Tensor, ...args: never[]) => Tensor): void {
  Object.defineProperty(Tensor.prototype, name, { value, writable: true, configurable: true });
}
for (const op of UNARY_OPS) method(op, function () {
  return this.unaryOp(op);
});
for (const op of BINARY_OPS) method(op, function (other: Tensor | number) {
  return this.binaryOp(op, other);
});
for (const [name, op] of Object.entries({ ...REDUCTIONS, ...DIM_REDUCTIONS })) method(name, function (dim?: number | number[], keepdim = false) {
  return this.reduce(op, dim, keepdim);
});
