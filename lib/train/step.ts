/**
 * One optimisation step of the book's training loop: encoder (frozen ResNet, then the trainable
 * Linear + BatchNorm1d) -> decoder over the packed captions -> cross-entropy over the packed
 * targets -> zero grads -> backward -> Adam. Heavy work runs on native threads.
 *
 * With a process group the loss is distributed: each rank's summed loss is divided by the
 * all-reduced token count and the gradients are summed across ranks, which equals one process's
 * step on the union of the batches.
 */
import { Tensor } from '../core/tensor';
import { crossEntropyAsync, backwardAsync } from '../nn/functional';
import { packPaddedSequence } from '../nn/rnn';
import type { Adam } from '../nn/optim';
import type { CaptionEncoder, CaptionDecoder } from '../model';
import type { ProcessGroup } from '../distributed';

/** A batch of images (the loader's) or of cached backbone features, with its padded captions. */
export interface StepBatch {
  images?: Tensor;
  features?: Tensor;
  captions: Tensor;
  lengths: number[];
}

export interface StepModels {
  encoder: CaptionEncoder;
  decoder: CaptionDecoder;
  optimizer: Adam;
}

/** Runs one step; returns the loss (the mean over all ranks' target tokens). */
export async function trainStep(models: StepModels, batch: StepBatch, opts: { group?: ProcessGroup; syncBn?: boolean } = {}): Promise<number> {
  const { encoder, decoder, optimizer } = models;
  const mode = { train: true };
  const group = opts.group;
  const sync = group && opts.syncBn ? group : undefined;
  const features = batch.features ? await encoder.headAsync(batch.features, mode, sync) : await encoder.forwardAsync(batch.images!, mode, sync);
  const logits = await decoder.forwardAsync(features, batch.captions, batch.lengths, mode);
  const packedTargets = packPaddedSequence(batch.captions, batch.lengths, { batchFirst: true }).data;
  const targets = packedTargets.device === logits.device ? packedTargets : packedTargets.to(logits.device);
  optimizer.zeroGrad();
  if (!group) {
    const loss = await crossEntropyAsync(logits, targets);
    await backwardAsync(loss);
    await optimizer.stepAsync();
    return loss.item();
  }
  const lossSum = await crossEntropyAsync(logits, targets, { reduction: 'sum' });
  // NCCL reduces tensors on the GPU only; Gloo takes CPU ones.
  const totals = Tensor.from([targets.numel, lossSum.item()], { dtype: 'float64', device: group.backend === 'nccl' ? logits.device : 'cpu' });
  await group.allreduce([totals]);
  const [tokens, globalSum] = totals.toArray() as number[];
  await backwardAsync(lossSum.div(tokens));
  await group.allreduceGradients(optimizer.params.filter((p) => p.requiresGrad));
  await optimizer.stepAsync();
  return globalSum / tokens;
}
