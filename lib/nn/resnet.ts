/**
 * ResNet-18/34/50/101/152 with torchvision's architecture and names, built in C++.
 * `numClasses: 0` drops `fc`: forward then returns the pooled features.
 *
 * The module owns its fast path (BatchNorm folded into the convolutions): any change of the
 * weights (a load, an optimizer step, `to()`, a train-mode forward) makes the fold stale, and the
 * next fast forward rebuilds it first, on the thread that runs it (a native thread for
 * forwardAsync). `prepareFastAsync()` builds it ahead of time, off the JS thread.
 */
import { native } from '../core/native';
import type { Tensor } from '../core/tensor';
import { checkInt } from '../util/checks';
import { NativeLeaf, checkMode, type Mode } from './module';
import { dispatch } from '../core/executor';

export type ResNetDepth = 18 | 34 | 50 | 101 | 152;
export const RESNET_DEPTHS: readonly ResNetDepth[] = [18, 34, 50, 101, 152];

export interface ResNetForwardOptions extends Mode {
  /** Eval mode on the folded fast path (BatchNorm folded into the convolutions, channels-last). */
  fast?: boolean;
  /** On CUDA: mixed precision (bfloat16 or float16 matrix work); features stay float32. */
  autocast?: 'bf16' | 'fp16';
}

export class ResNet extends NativeLeaf<'resnet'> {
  readonly depth: ResNetDepth;
  readonly featureDim: number;

  constructor(depth: ResNetDepth = 152, opts: { numClasses?: number } = {}) {
    if (!RESNET_DEPTHS.includes(depth)) throw new RangeError(`ResNet depth must be one of ${RESNET_DEPTHS.join(', ')} but received ${depth}`);
    super(native.createModule('resnet', { depth, numClasses: checkInt(opts.numClasses ?? 0, 'numClasses', 0) }));
    this.depth = depth;
    this.featureDim = this.native.featureDim();
  }

  /** [N, 3, H, W] -> [N, featureDim] (or [N, numClasses] with fc). */
  forward(x: Tensor, opts: ResNetForwardOptions): Tensor {
    return this.run({ images: x }, forwardOptions(opts)).features;
  }
  async forwardAsync(x: Tensor, opts: ResNetForwardOptions): Promise<Tensor> {
    return (await this.runAsync({ images: x }, forwardOptions(opts))).features;
  }

  /** Builds the fast path from the current weights now, on this thread (a fast forward does it when needed). */
  prepareFast(): void {
    this.native.prepareFast();
  }
  /** Builds the fast path from the current weights now, on a native thread. */
  prepareFastAsync(): Promise<void> {
    return dispatch(() => this.native.prepareFastAsync());
  }
  /** Whether the fast path is built for the current weights. */
  get fastReady(): boolean {
    return this.native.fastReady();
  }

  /** Sets requires_grad on the parameters whose names start with `prefix` (`layer4.`); returns how many. */
  setRequiresGrad(on: boolean, prefix = ''): number {
    return this.native.setRequiresGrad(on, prefix);
  }

  /** Multiply-adds of one image's forward at H×W (a FLOP count is twice this). */
  multiplyAdds(height = 224, width = 224): number {
    return this.native.multiplyAdds(height, width);
  }
}

function forwardOptions(opts: ResNetForwardOptions) {
  return { train: checkMode(opts).train, fast: opts.fast ?? false, autocast: opts.autocast };
}
