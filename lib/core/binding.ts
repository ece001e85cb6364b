/**
 * The one typed declaration of the native surface: every function and class the `.node` file
 * exports, with its arguments and results. Types only: importing this file loads nothing
 * (`native.ts` loads the addon on first use). Only core/, nn/, serialization/, distributed/ and the
 * image decoding in data/ may import it (test/layers.test.ts checks).
 *
 * Conventions of the native side (see native/common.h):
 *  - [sync] methods run on the calling thread; [async] ones return a Promise and run on a libuv
 *    worker thread, inheriting the caller's grad mode and thread count.
 *  - Native code checks argument types (TypeError naming the argument) but leaves readable
 *    validation to the TypeScript wrappers. libtorch errors arrive as Error / TypeError /
 *    RangeError with libtorch's message and no C++ backtrace.
 *  - Tensors cross as `NativeTensor` handles. Bytes cross as copies: no external ArrayBuffer
 *    ever points into tensor memory (Electron forbids them).
 */
export type DType = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'uint8' | 'bool';
export type UnaryOp =
  | 'neg' | 'exp' | 'log' | 'log1p' | 'sqrt' | 'rsqrt' | 'abs' | 'sign' | 'relu' | 'sigmoid' | 'tanh' | 'sin' | 'cos'
  | 'floor' | 'ceil' | 'round' | 'reciprocal' | 'square' | 'logicalNot' | 'isnan' | 'isfinite';
export type BinaryOp =
  | 'add' | 'sub' | 'mul' | 'div' | 'pow' | 'remainder' | 'maximum' | 'minimum' | 'matmul'
  | 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge' | 'logicalAnd' | 'logicalOr';
export type InPlaceOp = 'zero' | 'fill' | 'copy' | 'add' | 'sub' | 'mul' | 'div';
export type ReduceOp = 'sum' | 'mean' | 'prod' | 'max' | 'min' | 'argmax' | 'argmin' | 'all' | 'any' | 'var' | 'std' | 'logsumexp' | 'norm';

/** A native tensor handle. All methods [sync]. */
export interface NativeTensor {
  dispose(): void;
  isDisposed(): boolean;
  shape(): number[];
  dtype(): DType;
  device(): string;
  requiresGrad(): boolean;
  setRequiresGrad(on: boolean): void;
  /** A copy of the data, contiguous, on the CPU. int64 → BigInt64Array, bool → Uint8Array. */
  toTypedArray(): Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array | Uint16Array;
  item(): number | boolean;
  toString(): string;
  grad(): NativeTensor | null;
  zeroGrad(): void;
  backward(gradient?: NativeTensor | null, retainGraph?: boolean): void;
  isLeaf(): boolean;
  sameStorage(other: NativeTensor): boolean;

  unary(op: UnaryOp): NativeTensor;
  binary(op: BinaryOp, other: NativeTensor | number | boolean): NativeTensor;
  inPlace(op: InPlaceOp, other?: NativeTensor | number, alpha?: number): NativeTensor;
  reduce(op: ReduceOp, dims: number[] | null, keepdim: boolean): NativeTensor;
  reduceWithIndices(op: 'max' | 'min', dim: number, keepdim: boolean): [NativeTensor, NativeTensor];
  topk(k: number, dim: number, largest: boolean, sorted: boolean): [NativeTensor, NativeTensor];
  sort(dim: number, descending: boolean, stable: boolean): [NativeTensor, NativeTensor];
  softmax(dim: number, log: boolean): NativeTensor;
  reshape(shape: number[]): NativeTensor;
  view(shape: number[]): NativeTensor;
  permute(dims: number[]): NativeTensor;
  transpose(dim0: number, dim1: number): NativeTensor;
  squeeze(dim?: number | null): NativeTensor;
  unsqueeze(dim: number): NativeTensor;
  flatten(startDim?: number, endDim?: number): NativeTensor;
  expand(shape: number[]): NativeTensor;
  /** A view of this tensor's storage; the extent is checked against the storage size. */
  asStrided(shape: number[], strides: number[], storageOffset: number): NativeTensor;
  strides(): number[];
  slice(dim: number, start: number | null, end: number | null, step: number): NativeTensor;
  select(dim: number, index: number): NativeTensor;
  indexSelect(dim: number, index: NativeTensor): NativeTensor;
  gather(dim: number, index: NativeTensor): NativeTensor;
  maskedFill(mask: NativeTensor, value: number): NativeTensor;
  clamp(min: number | null, max: number | null): NativeTensor;
  to(dtype: DType | null, device: string | null): NativeTensor;
  clone(): NativeTensor;
  detach(): NativeTensor;
  contiguous(): NativeTensor;
  equal(other: NativeTensor): boolean;
  allclose(other: NativeTensor, rtol: number, atol: number): boolean;
}

export type ModuleKind = 'linear' | 'embedding' | 'batchnorm1d' | 'lstm' | 'resnet';

/** Options of every forward call: the mode is explicit, never left over from an earlier call. */
export interface ForwardOptions {
  train: boolean;
  /**
   * ResNet: the folded eval-mode fast path (train: false); folds first if the weights changed since
   * the last fold. Linear, and an LSTM's single step in eval mode: on the CPU without gradients,
   * row by row (matrix-vector products).
   */
  fast?: boolean;
  /**
   * ResNet: mixed precision, bfloat16 or float16 on CUDA, bfloat16 on a CPU with AVX-512 BF16
   * (refused elsewhere, see cpuBf16Support); features come back in float32.
   */
  autocast?: 'bf16' | 'fp16';
}

/** An LSTM's hidden and cell state, [layers, B, hidden] each. */
export interface NativeLSTMState {
  h: NativeTensor;
  c: NativeTensor;
}

/** PyTorch's PackedSequence: time-major data, batch sizes per step (CPU, int64), the sorting permutation. */
export interface NativePackedSequence {
  data: NativeTensor;
  batchSizes: NativeTensor;
  sortedIndices: NativeTensor | null;
  unsortedIndices: NativeTensor | null;
}

/** What forward takes and gives, per module kind (named records, never positional arrays). */
export interface ModuleForward {
  linear: { input: { input: NativeTensor }; output: { output: NativeTensor } };
  embedding: { input: { input: NativeTensor }; output: { output: NativeTensor } };
  batchnorm1d: { input: { input: NativeTensor }; output: { output: NativeTensor } };
  /** Over a padded batch; without h and c the state starts at zero. */
  lstm: { input: { input: NativeTensor; h?: NativeTensor | null; c?: NativeTensor | null }; output: { output: NativeTensor } & NativeLSTMState };
  /** images [N, 3, H, W] -> features [N, featureDim] (or [N, numClasses] with fc), float32. */
  resnet: { input: { images: NativeTensor }; output: { features: NativeTensor } };
}

/** The LSTM over a packed batch: the packed sequence (and optionally a state) in, the packed outputs and final state out. */
export type LSTMPackedInput = NativePackedSequence & { h?: NativeTensor | null; c?: NativeTensor | null };
export type LSTMPackedOutput = NativePackedSequence & NativeLSTMState;

/**
 * A native nn module of kind K. Calls on one module must not overlap (lib/ queues them).
 * forward [sync] / forwardAsync [async]: a named record of tensors in, one out.
 */
export interface NativeModule<K extends ModuleKind = ModuleKind> {
  forward(inputs: ModuleForward[K]['input'], options: ForwardOptions): ModuleForward[K]['output'];
  forwardAsync(inputs: ModuleForward[K]['input'], options: ForwardOptions): Promise<ModuleForward[K]['output']>;
  /** [sync] / [async] LSTM only. */
  forwardPacked(inputs: LSTMPackedInput, options: ForwardOptions): LSTMPackedOutput;
  forwardPackedAsync(inputs: LSTMPackedInput, options: ForwardOptions): Promise<LSTMPackedOutput>;
  /** [sync] / [async] ResNet only: builds the folded eval-mode copy used by forward({ fast: true, autocast }) now. */
  prepareFast(options?: { autocast?: 'bf16' | 'fp16' }): void;
  prepareFastAsync(options?: { autocast?: 'bf16' | 'fp16' }): Promise<void>;
  /** Whether the fast path is built for the current weights and that precision (any weight change makes it stale). */
  fastReady(options?: { autocast?: 'bf16' | 'fp16' }): boolean;
  /** ResNet only: true (the default) runs train-mode forwards of a frozen float32 CPU backbone in oneDNN's blocked layout where supported. */
  setBlockedTrain(on: boolean): void;
  /** Handles sharing storage with the module's own tensors, in registration order. */
  namedParameters(): [string, NativeTensor][];
  namedBuffers(): [string, NativeTensor][];
  /** Parameters and buffers in PyTorch's state_dict() order. */
  stateDict(): [string, NativeTensor][];
  /** Moves parameters and buffers in place; drops the fast-path fold. */
  to(device: string | null, dtype?: DType | null): void;
  kind(): K;
  /** Sets requires_grad on every parameter whose name starts with prefix; returns how many. */
  setRequiresGrad(on: boolean, prefix?: string): number;
  /** ResNet only. */
  multiplyAdds(height: number, width: number): number;
  featureDim(): number;
}

export interface AdamHyperparameters {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export interface NativeOptimizer {
  step(): void;
  stepAsync(): Promise<unknown>;
  /** Drops every parameter's gradient (sets it to None). */
  zeroGrad(): void;
  lr(): number;
  setLr(lr: number): void;
  /** Adam only: the hyperparameters of its parameter group. */
  adamOptions(): AdamHyperparameters;
  /** Adam only: sets those given (the others keep their value). */
  setAdamOptions(options: Partial<AdamHyperparameters>): void;
  params(): NativeTensor[];
  /** Adam: per parameter null or [step, expAvg, expAvgSq]. */
  state(): ([number, NativeTensor, NativeTensor] | null)[];
  loadState(state: ([number, NativeTensor, NativeTensor] | null)[]): void;
}

/** 8-bit RGB pixels, row-major, 3 bytes a pixel (sharp's raw output). */
export interface RawImage {
  data: Uint8Array;
  width: number;
  height: number;
}

export interface ImageBatchOptions {
  outH: number;
  outW: number;
  /** Top-left corner [x, y] of each image's crop window (default [0, 0]). */
  crops?: [number, number][];
  flips?: boolean[];
  mean: number[];
  std: number[];
}

/** A native thread with a queue that async calls run on. */
export interface NativeExecutor {
  close(): void;
  pending(): number;
  closed(): boolean;
}

/** Pillow's image modes that torchcap reads and writes (native/pillow). */
export type PillowMode = '1' | 'L' | 'LA' | 'P' | 'RGB' | 'RGBA' | 'CMYK' | 'I' | 'I;16';

/**
 * An image in one of Pillow's modes, packed: 1 and L one byte a pixel (1 holds 0 or 255), LA two,
 * RGB three, RGBA and CMYK four, I a native-endian int32, I;16 a little-endian uint16. P holds its
 * palette applied: RGB, or RGBA when the palette has transparency.
 */
export interface PillowImage {
  data: Uint8Array;
  width: number;
  height: number;
  mode: PillowMode;
}

/** Pillow's resampling filters (`lanczos` is the book's `ANTIALIAS`). */
export type ResampleFilter = 'nearest' | 'box' | 'bilinear' | 'hamming' | 'bicubic' | 'lanczos';

export interface PillowImageOptions {
  /** Image.convert('RGB') (before resizing, as the book does). */
  rgb?: boolean;
  /** Image.resize((width, height), filter); both or neither. */
  width?: number;
  height?: number;
  /** Default 'lanczos'. */
  filter?: ResampleFilter;
  /** An EXIF Orientation value to undo first (ImageOps.exif_transpose); default 1, none. */
  orientation?: number;
  /** A JPEG larger than this many pixels is refused before decoding. */
  maxPixels?: number;
}

/** A c10d process group and its TCPStore. Collectives are [async], in place. */
export interface NativeProcessGroup {
  allreduce(tensors: NativeTensor[], op?: 'sum' | 'max' | 'min'): Promise<unknown>;
  broadcast(tensors: NativeTensor[], root: number): Promise<unknown>;
  barrier(): Promise<unknown>;
  /** [sync] store access (small values: heartbeats, flags). */
  storeSet(key: string, value: string): void;
  /** [sync] the value, or null if the key does not appear within timeoutMs. */
  storeGet(key: string, timeoutMs?: number): string | null;
  rank(): number;
  size(): number;
  backend(): string;
}

export interface NativeVersions {
  libtorch: string;
  blas: string;
  /** The kernels OpenBLAS runs on this CPU (e.g. "SkylakeX", "Haswell"), or null where OpenBLAS is not in use. */
  blasKernels: string | null;
  threads: number;
  interopThreads: number;
  cuda: boolean;
  cudaDevices: number;
  cudaBuild: boolean;
  mkldnn: boolean;
  openmp: boolean;
  /** Whether glibc malloc keeps freed blocks in the process for reuse (TORCHCAP_MALLOC_TUNING=0: off). */
  mallocTuned: boolean;
  /** Whether CPU tensors come from torchcap's caching allocator (TORCHCAP_CPU_CACHE_MB=0: off). */
  cpuCache: boolean;
  build: { tool: string; compiler: string; cxx11Abi: number; napiVersion: number };
}

/** The CPU tensor cache's state (README, Performance notes); the rest only where it is installed. */
export interface CpuCacheStats {
  installed: boolean;
  cachedBytes?: number;
  liveBytes?: number;
  hits?: number;
  hugeChunks?: number;
  /** Whether its blocks use transparent huge pages. */
  hugePages?: boolean;
  /** Why: "the default", "TORCHCAP_HUGE_PAGES=0" or "=1", or the virtual machine's free page reporting. */
  hugePagesWhy?: string;
}

/**
 * The whole native module. Functions are [sync] unless marked. The classes (Tensor, Module,
 * Optimizer, Executor, ProcessGroup) are exported for their prototypes only: their objects come
 * from the create functions and results, and `new` from JS throws a TypeError (native/wrap.h).
 */
export interface Native {
  Tensor: abstract new () => NativeTensor;
  /** Copies `data` into a new tensor. */
  fromData(data: ArrayBufferView, dtype: DType, shape: number[], device?: string | null): NativeTensor;
  /** `name` ('zeros', 'ones', 'full' by default): the public function that asked, named when the size is refused. */
  full(shape: number[], value: number, dtype?: DType | null, device?: string | null, name?: 'zeros' | 'ones' | 'full'): NativeTensor;
  /**
   * [async] Reads each byte range of the open file `fd` straight into a new 1-D CPU tensor of its
   * dtype (default uint8), storages in parallel, no copy through JS; with each range's CRC-32
   * (zip's). The caller keeps `fd` open until the promise settles. A range with `into` (a
   * contiguous CPU tensor of its dtype and size) fills that tensor instead, and bumps its version.
   */
  readFileStorages(fd: number, ranges: { offset: number; bytes: number; dtype?: DType; into?: NativeTensor }[]): Promise<[NativeTensor[], number[]]>;
  /**
   * [async] Reads `length` bytes at each offset of the open file `fd`, on a worker thread, into one
   * Buffer (offsets.length * length bytes, in order); rejects naming the offset where the file ends
   * first. The caller keeps `fd` open until the promise settles.
   */
  readFileBytes(fd: number, offsets: number[], length: number): Promise<Buffer>;
  random(kind: 'randn' | 'rand', shape: number[], dtype?: DType | null, device?: string | null): NativeTensor;
  randint(low: number, high: number, shape: number[], device?: string | null): NativeTensor;
  /** With a seed: from a fresh generator, as torch.randperm(n, generator=Generator().manual_seed(seed)). */
  randperm(n: number, seed?: number | null): NativeTensor;
  arange(start: number, end: number, step: number, dtype?: DType | null, device?: string | null): NativeTensor;
  cat(tensors: NativeTensor[], dim: number): NativeTensor;
  stack(tensors: NativeTensor[], dim: number): NativeTensor;
  where(condition: NativeTensor, input: NativeTensor, other: NativeTensor): NativeTensor;
  manualSeed(seed: number): void;
  /** Sets grad mode on the calling thread; returns the previous mode. */
  setGradEnabled(enabled: boolean): boolean;
  isGradEnabled(): boolean;
  /** Live tensors and their bytes in this environment (thread). */
  memory(): { tensors: number; bytes: number };
  versions(): NativeVersions;
  setNumThreads(n: number): void;
  getNumThreads(): number;
  /** The caching CPU allocator: bytes kept for reuse, bytes handed out, reuses so far. */
  cpuCache(): CpuCacheStats;
  /** Frees every cached CPU block (unmapped from 2 MiB on, and the carved chunks; to malloc below). */
  emptyCpuCache(): void;

  Module: abstract new () => NativeModule;
  createModule<K extends ModuleKind>(kind: K, options: Record<string, number | boolean>): NativeModule<K>;
  /** Whether autocast 'bf16' runs on this CPU (AVX-512 BF16 and oneDNN), and if not, why. */
  cpuBf16Support(): { supported: boolean; reason: string };
  /** Whether book-mode forwards can keep activations in oneDNN's layout in this build, on this CPU; if not, why. */
  blockedTrainSupport(): { supported: boolean; reason: string };
  Optimizer: abstract new () => NativeOptimizer;
  createOptimizer(kind: 'adam' | 'sgd', params: NativeTensor[], options: Record<string, number>): NativeOptimizer;

  crossEntropy(logits: NativeTensor, targets: NativeTensor, options: { reduction?: string; ignoreIndex?: number }): [NativeTensor];
  crossEntropyAsync(logits: NativeTensor, targets: NativeTensor, options: { reduction?: string; ignoreIndex?: number }): Promise<[NativeTensor]>;
  packPaddedSequence(input: NativeTensor, lengths: NativeTensor, batchFirst: boolean, enforceSorted: boolean): NativePackedSequence;
  padPackedSequence(packed: NativePackedSequence, batchFirst: boolean, paddingValue: number, totalLength: number | null): { padded: NativeTensor; lengths: NativeTensor };
  /** [sync]/[async] RGB HWC uint8 images -> normalized float [N, 3, outH, outW] with crops and flips. */
  imagesToTensor(images: RawImage[], options: ImageBatchOptions): [NativeTensor];
  imagesToTensorAsync(images: RawImage[], options: ImageBatchOptions): Promise<[NativeTensor]>;
  Executor: abstract new () => NativeExecutor;
  createExecutor(): NativeExecutor;
  /** The executor that async calls post to until the next call (null: the environment's default). */
  setExecutor(executor: NativeExecutor | null): void;
  /**
   * Process exit: drops queued async work and waits (10 s at most) for what is running; with an
   * exit code, a call still running then ends the process at once with that code.
   */
  stopExecutors(exitCode?: number): boolean;
  /** [async] joins a process group; rank 0 hosts the TCPStore. */
  createProcessGroup(options: { host: string; port: number; rank: number; worldSize: number; timeoutMs: number; backend: 'gloo' | 'nccl' }): Promise<NativeProcessGroup>;
  destroyProcessGroup(group: NativeProcessGroup): void;
  /** [async] sum over ranks, recorded by autograd (the gradient is summed over ranks too). */
  allreduceSumDifferentiable(group: NativeProcessGroup, tensor: NativeTensor): Promise<[NativeTensor]>;
  /** Backends this build supports: 'gloo', and 'nccl' in CUDA builds that have it. */
  distributedBackends: string[];
  /** Whether this build decodes JPEGs natively with libjpeg-turbo. */
  hasTurboJpeg: boolean;
  /** [sync] a JPEG's size and component count from its header, or null when the bytes are not a readable JPEG. (turbojpeg builds) */
  jpegSize?(bytes: Uint8Array): { width: number; height: number; components: number } | null;
  /**
   * [async] decodes size×size JPEGs and crops, flips and normalizes them into one batch; the rows
   * are the files that decoded, in order, and `failed` names the others. (turbojpeg builds)
   */
  decodeJpegBatch?(files: Uint8Array[], options: ImageBatchOptions & { size: number }): Promise<{ tensor: NativeTensor | null; failed: [number, string][] }>;
  /**
   * [async] Pillow's pixels (native/pillow): `input` is a JPEG file, decoded as Pillow 9.4 decodes
   * it (JPEGs need a turbojpeg build), or an image as given; then EXIF orientation, convert('RGB')
   * and Image.resize as the options ask. Throws for what Pillow refuses (e.g. resizing I;16 with
   * a filter other than nearest).
   */
  pillowImage(input: Uint8Array | PillowImage, options: PillowImageOptions): Promise<PillowImage & { data: Buffer; channels: number }>;
  /** [async] a JPEG file as Pillow saves one (modes 1, L, RGB, CMYK). (turbojpeg builds) */
  pillowEncodeJpeg?(image: PillowImage, options: { quality: number; subsampling: '4:4:4' | '4:2:2' | '4:2:0' }): Promise<Buffer>;
  /** [async] back-propagation on a worker thread. */
  backwardAsync(tensor: NativeTensor, gradient: NativeTensor | null): Promise<unknown>;
}
