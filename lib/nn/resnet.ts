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
import { checkInt, optionalBool } from '../util/checks';
import { NativeLeaf, checkMode, type Mode } from './module';
import { dispatch } from '../core/executor';

export type ResNetDepth = 18 | 34 | 50 | 101 | 152;
export const RESNET_DEPTHS: readonly ResNetDepth[] = [18, 34, 50, 101, 152];

export interface ResNetForwardOptions extends Mode {
  /** Eval mode on the folded fast path (BatchNorm folded into the convolutions, channels-last). */
  fast?: boolean;
  /**
   * Mixed precision; features stay float32. On CUDA bfloat16 or float16 matrix work; on a CPU with
   * AVX-512 BF16, bfloat16 on oneDNN (elsewhere refused: see cpuBf16Support()).
   */
  autocast?: 'bf16' | 'fp16';
}

export interface ResNetOptions {
  /** A classifier of this many classes after the pooling (0, the default: none). */
  numClasses?: number;
  /**
   * false: leave the convolution weights uninitialised, for a checkpoint about to overwrite them
   * (saves the random initialisation; the weights are garbage until loaded). Default true.
   */
  init?: boolean;
}

/** Whether autocast 'bf16' runs on this CPU (native bfloat16: AVX-512 BF16, with oneDNN); if not, why. */
export function cpuBf16Support(): { supported: boolean; reason: string } {
  return native.cpuBf16Support();
}

/**
 * Whether book-mode forwards of a frozen float32 CPU backbone keep their activations in oneDNN's
 * layout (ResNet.blockedTrain) in this build, on this CPU; if not, why. It needs the oneDNN wrapper
 * libtorch was built with (Debian: libideep-dev, installed by `npm install`) and a CPU with
 * AVX-512 and FMA; elsewhere book mode runs on PyTorch's kernels, with the same numbers.
 */
export function blockedTrainSupport(): { supported: boolean; reason: string } {
  return native.blockedTrainSupport();
}

export class ResNet extends NativeLeaf<'resnet'> {
  readonly depth: ResNetDepth;
  readonly featureDim: number;

  constructor(depth: ResNetDepth = 152, opts: ResNetOptions = {}) {
    if (!RESNET_DEPTHS.includes(depth)) throw new RangeError(`ResNet depth must be one of ${RESNET_DEPTHS.join(', ')} but received ${depth}`);
    super(native.createModule('resnet', { depth, numClasses: checkInt(opts.numClasses ?? 0, 'numClasses', 0), init: optionalBool(opts.init, 'init', true) }));
    this.depth = depth;
    this.featureDim = this.native.featureDim();
  }

  private blocked = true;
  /**
   * Default true: on the CPU, train-mode forwards of a frozen float32 backbone with no gradient
   * (the book's mode) keep activations in oneDNN's blocked layout from the first convolution to
   * the last block, where blockedTrainSupport() says so. Bit for bit PyTorch's numbers (the
   * features, and every running statistic after the batch-norm updates); a third less work than
   * PyTorch's kernels, which reorder the activations around every convolution. false runs
   * PyTorch's kernels.
   */
  get blockedTrain(): boolean {
    return this.blocked;
  }
  set blockedTrain(on: boolean) {
    if (typeof on !== 'boolean') throw new TypeError(`Expected a boolean for blockedTrain but received ${typeof on} ${String(on)}`);
    this.native.setBlockedTrain(on);
    this.blocked = on;
  }

  /** [N, 3, H, W] -> [N, featureDim] (or [N, numClasses] with fc). */
  forward(x: Tensor, opts: ResNetForwardOptions): Tensor {
    return this.run({ images: x }, forwardOptions(opts)).features;
  }
  async forwardAsync(x: Tensor, opts: ResNetForwardOptions): Promise<Tensor> {
    return (await this.runAsync({ images: x }, forwardOptions(opts))).features;
  }

  /**
   * Builds the fast path from the current weights, for forwards with this autocast (on the CPU
   * bfloat16 is built into the prepacked weights). A fast forward after a weight change rebuilds it, on the thread that runs it.
   */
  prepareFast(opts: Pick<ResNetForwardOptions, 'autocast'> = {}): void {
    this.native.prepareFast({ autocast: opts.autocast });
  }
  prepareFastAsync(opts: Pick<ResNetForwardOptions, 'autocast'> = {}): Promise<void> {
    return dispatch(() => this.native.prepareFastAsync({ autocast: opts.autocast }));
  }
  /** Whether the float32 fast path is built for the current weights (prepareFast builds it). */
  get fastReady(): boolean {
    return this.native.fastReady();
  }
  /** Whether the fast path is built for the current weights and this autocast. */
  fastReadyFor(opts: Pick<ResNetForwardOptions, 'autocast'> = {}): boolean {
    return this.native.fastReady({ autocast: opts.autocast });
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
