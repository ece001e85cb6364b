/** Optimizers: libtorch's Adam and SGD over the parameters handed in. */
import type { AdamHyperparameters, NativeOptimizer } from '../core/binding';
import { Tensor, h } from '../core/tensor';
import { dispatch } from '../core/executor';
import { native } from '../core/native';

export type AdamOptions = Partial<AdamHyperparameters>;
export type { AdamHyperparameters };

export interface AdamParamState {
  step: number;
  expAvg: Tensor;
  expAvgSq: Tensor;
}

/**
 * While a `stepAsync()` runs, its native thread reads and writes the optimizer's state and reads the
 * parameters' gradients: `step`, `stepAsync`, `zeroGrad`, `state`, `loadState` and setting `lr` or
 * `hyperparameters` then throw an Error (await the step first). Reading `lr`, `hyperparameters`
 * and `params` is fine at any time.
 */
export class Optimizer {
  /** @internal */
  readonly native: NativeOptimizer;
  readonly params: Tensor[];

  protected constructor(kind: 'adam' | 'sgd', params: Tensor[], options: Record<string, number>) {
    if (!Array.isArray(params) || params.length === 0) throw new RangeError('an optimizer needs a non-empty array of parameters');
    this.params = params;
    this.native = native.createOptimizer(kind, params.map((p, i) => h(p, `params[${i}]`)), options);
  }

  step(): void {
    this.native.step();
  }
  /** The step on a native thread; until it settles, the methods that touch state or gradients throw. */
  async stepAsync(): Promise<void> {
    await dispatch(() => this.native.stepAsync());
  }
  /** Drops every parameter's gradient (an Error while a stepAsync() runs). */
  zeroGrad(): void {
    this.native.zeroGrad();
  }
  get lr(): number {
    return this.native.lr();
  }
  set lr(v: number) {
    this.native.setLr(v);
  }
}

/** Adam as torch.optim.Adam (lr 0.001, betas 0.9/0.999, eps 1e-8 by default). */
export class Adam extends Optimizer {
  constructor(params: Tensor[], opts: AdamOptions = {}) {
    super('adam', params, { lr: 1e-3, ...opts });
  }

  /** Per parameter (in the order given), its moments and step count, or null before the first step. */
  state(): (AdamParamState | null)[] {
    return this.native.state().map((e) => (e ? { step: e[0], expAvg: new Tensor(e[1]), expAvgSq: new Tensor(e[2]) } : null));
  }

  /** lr, betas (beta1, beta2), eps and weight decay, as the optimizer uses them now. */
  get hyperparameters(): AdamHyperparameters {
    return this.native.adamOptions();
  }
  set hyperparameters(h: Partial<AdamHyperparameters>) {
    this.native.setAdamOptions(h);
  }

  loadState(state: (AdamParamState | null)[]): void {
    this.native.loadState(state.map((e) => (e ? [e.step, h(e.expAvg, 'expAvg'), h(e.expAvgSq, 'expAvgSq')] : null)));
  }
}

export class SGD extends Optimizer {
  constructor(params: Tensor[], opts: { lr: number; momentum?: number; weightDecay?: number }) {
    super('sgd', params, opts);
  }
}
