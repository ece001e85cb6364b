/** Stateless functions: losses and asynchronous back-propagation. */
import { Tensor, h } from '../core/tensor';
import { dispatch } from '../core/executor';
import { native } from '../core/native';

export interface CrossEntropyOptions {
  reduction?: 'mean' | 'sum' | 'none';
  ignoreIndex?: number;
}

/** torch.nn.functional.cross_entropy: logits [N, C], int64 targets [N]. */
export function crossEntropy(logits: Tensor, targets: Tensor, opts: CrossEntropyOptions = {}): Tensor {
  return new Tensor(native.crossEntropy(h(logits, 'logits'), h(targets, 'targets'), opts)[0]);
}

export async function crossEntropyAsync(logits: Tensor, targets: Tensor, opts: CrossEntropyOptions = {}): Promise<Tensor> {
  return new Tensor((await dispatch(() => native.crossEntropyAsync(h(logits, 'logits'), h(targets, 'targets'), opts)))[0]);
}

/** Back-propagates from `t` on a worker thread. */
export async function backwardAsync(t: Tensor, gradient?: Tensor): Promise<void> {
  await dispatch(() => native.backwardAsync(h(t, 't'), gradient ? h(gradient, 'gradient') : null));
}
