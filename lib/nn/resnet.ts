/**
 * ResNet-18/34/50/101/152 with torchvision's architecture and names, built in C++.
 * `numClasses: 0` drops `fc`: forward then returns the pooled features.
 */
import { native } from '../binding';
import { checkInt, type Tensor } from '../tensor';
import { NativeLeaf, checkMode, type Mode } from './module';
import { dispatch } from '../executor';

export type ResNetDepth = 18 | 34 | 50 | 101 | 152;
export const RESNET_DEPTHS: readonly ResNetDepth[] = [18, 34, 50, 101, 152];

export interface ResNetForwardOptions extends Mode {
  /** Eval mode on the folded fast path (BatchNorm folded into the convolutions, channels-last). */
  fast?: boolean;
  /** On CUDA: mixed precision (bfloat16 or float16 matrix work); features stay float32. */
  autocast?: 'bf16' | 'fp16';
}

export class ResNet extends NativeLeaf {
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
    return this.run([x], { train: checkMode(opts).train, fast: opts.fast ?? false, autocast: opts.autocast })[0];
  }
  async forwardAsync(x: Tensor, opts: ResNetForwardOptions): Promise<Tensor> {
    return (await this.runAsync([x], { train: checkMode(opts).train, fast: opts.fast ?? false, autocast: opts.autocast }))[0];
  }

  /** Builds the fast path from the current weights; call again after they change. */
  prepareFast(): void {
    this.native.prepareFast();
  }
  prepareFastAsync(): Promise<void> {
    return dispatch(() => this.native.prepareFastAsync());
  }
  /** Whether the fast path is built (prepareFast builds it; to() drops it). */
  get fastReady(): boolean {
    return this.native.fastReady();
  }

  /** Multiply-adds of one image's forward at H×W (a FLOP count is twice this). */
  multiplyAdds(height = 224, width = 224): number {
    return this.native.multiplyAdds(height, width);
  }
}
