/**
 * BatchNorm1d with statistics over every rank's batch, as PyTorch's SyncBatchNorm: the per-feature
 * sums, sums of squares and counts are all-reduced (differentiably, so each rank's gradient also
 * sees the other ranks' samples), normalisation uses the global mean and biased variance, and the
 * running averages take the global mean and unbiased variance.
 */
import { Tensor, noGrad } from '../core/tensor';
import type { ProcessGroup } from '../distributed/process-group';
import type { BatchNorm1d } from './layers';

export async function syncBatchNorm1d(bn: BatchNorm1d, x: Tensor, group: ProcessGroup): Promise<Tensor> {
  const state = bn.stateDict();
  const weight = state.get('weight')!;
  const bias = state.get('bias')!;
  const C = bn.numFeatures;
  // [sum x, sum x², n] over this rank's batch -> over all ranks
  const local = Tensor.cat([x.sum(0), x.square().sum(0), Tensor.full([1], x.shape[0], { dtype: x.dtype })], 0);
  const total = await group.allreduceSum(local);
  const count = total.slice(0, 2 * C, 2 * C + 1);
  const mean = total.slice(0, 0, C).div(count);
  const variance = total.slice(0, C, 2 * C).div(count).sub(mean.square());
  const y = x.sub(mean).mul(variance.add(bn.eps).rsqrt()).mul(weight).add(bias);
  noGrad(() => {
    const n = count.item();
    const m = bn.momentum;
    state.get('running_mean')!.mulInPlace(1 - m).addInPlace(mean.detach(), m);
    state.get('running_var')!.mulInPlace(1 - m).addInPlace(variance.detach().mul(n / (n - 1)), m);
    state.get('num_batches_tracked')!.addInPlace(1);
  });
  return y;
}
