/** Leaf layers over native libtorch modules: Linear, Embedding, BatchNorm1d. */
import { type Tensor } from '../core/tensor';
import { NativeLeaf, checkMode, type Mode } from './module';
import { checkInt, optionalBool } from '../util/checks';
import { native } from '../core/native';

export interface LinearOptions {
  /** Row by row, as matrix-vector products (CPU, no gradients); see Linear.forward. */
  rows?: boolean;
}

/** y = x Wᵀ + b (torch.nn.Linear; parameters `weight` [out, in], `bias` [out]). */
export class Linear extends NativeLeaf<'linear'> {
  /** `init: false` leaves the weights uninitialised, for a checkpoint about to overwrite them (the loaders do this). */
  constructor(readonly inFeatures: number, readonly outFeatures: number, opts: { bias?: boolean; init?: boolean } = {}) {
    super(native.createModule('linear', { inFeatures: checkInt(inFeatures, 'inFeatures', 1), outFeatures: checkInt(outFeatures, 'outFeatures', 1), bias: opts.bias ?? true, init: optionalBool(opts.init, 'init', true) }));
  }
  /**
   * [*, in] -> [*, out]. `rows: true` (used by sampling): on the CPU without gradients, a [B, in]
   * input is multiplied row by row (matrix-vector products), so each row's result is independent
   * of the batch and a few rows run several times faster than as a matrix product; the same
   * result to float rounding, not bit for bit.
   */
  forward(x: Tensor, opts: LinearOptions = {}): Tensor {
    return this.run({ input: x }, { train: false, fast: opts.rows === true }).output;
  }
  async forwardAsync(x: Tensor, opts: LinearOptions = {}): Promise<Tensor> {
    return (await this.runAsync({ input: x }, { train: false, fast: opts.rows === true })).output;
  }
}

/** Lookup table (torch.nn.Embedding; parameter `weight` [num, dim]). */
export class Embedding extends NativeLeaf<'embedding'> {
  /** `init: false` as Linear's. */
  constructor(readonly numEmbeddings: number, readonly embeddingDim: number, opts: { init?: boolean } = {}) {
    super(native.createModule('embedding', { numEmbeddings: checkInt(numEmbeddings, 'numEmbeddings', 1), embeddingDim: checkInt(embeddingDim, 'embeddingDim', 1), init: optionalBool(opts.init, 'init', true) }));
  }
  /** int64 ids [*] -> [*, dim] */
  forward(ids: Tensor): Tensor {
    return this.run({ input: ids }, { train: false }).output;
  }
  async forwardAsync(ids: Tensor): Promise<Tensor> {
    return (await this.runAsync({ input: ids }, { train: false })).output;
  }
}

/** torch.nn.BatchNorm1d: batch statistics (and running-average updates) in train mode. */
export class BatchNorm1d extends NativeLeaf<'batchnorm1d'> {
  readonly momentum: number;
  readonly eps: number;

  constructor(readonly numFeatures: number, opts: { momentum?: number; eps?: number } = {}) {
    const momentum = opts.momentum ?? 0.1;
    const eps = opts.eps ?? 1e-5;
    super(native.createModule('batchnorm1d', { numFeatures: checkInt(numFeatures, 'numFeatures', 1), momentum, eps }));
    this.momentum = momentum;
    this.eps = eps;
  }
  /** [N, C] -> [N, C] */
  forward(x: Tensor, mode: Mode): Tensor {
    return this.run({ input: x }, { train: checkMode(mode).train }).output;
  }
  async forwardAsync(x: Tensor, mode: Mode): Promise<Tensor> {
    return (await this.runAsync({ input: x }, { train: checkMode(mode).train })).output;
  }
}
