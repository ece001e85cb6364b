/**
 * The book's encoder (`CNNModel`), with the book's parameter names so its checkpoints load by name:
 *
 *   image [B, 3, 224, 224] -> ResNet (frozen, no fc) [B, 2048] -> Linear [B, 256] -> BatchNorm1d [B, 256]
 *
 * Where it computes (`device`) and in what precision (`autocast`) are chosen when it is built or
 * loaded, never changed afterwards. The backbone owns its fast path (see nn/resnet.ts): a weight
 * load, an optimizer step or a move makes the fold stale and the next fast forward rebuilds it, so
 * nothing here refolds by hand; `prepareAsync()` builds it ahead of time, off the JS thread.
 */
import { type Tensor, dispatchWithGrad } from '../core/tensor';
import { resolveDevice } from '../core/device';
import { checkChoice, checkInt, expected } from '../util/checks';
import { Module, checkMode, type Mode } from '../nn/module';
import { Linear, BatchNorm1d } from '../nn/layers';
import { ResNet, cpuBf16Support, type ResNetDepth } from '../nn/resnet';
import { syncBatchNorm1d } from '../nn/sync-batchnorm';
import type { ProcessGroup } from '../distributed';

/**
 * How the frozen backbone runs while training:
 *  - 'book': as the book's code does, in the encoder's mode (train mode uses batch statistics and
 *    updates the backbone's BatchNorm running averages even though its weights are frozen);
 *  - 'eval': always in eval mode (right for pretrained weights);
 *  - 'fast': eval mode on the folded fast path (BatchNorm folded into the convolutions).
 * At inference (train: false) 'book' and 'eval' are the same.
 */
export type BackboneMode = 'book' | 'eval' | 'fast';
export const BACKBONE_MODES: readonly BackboneMode[] = ['book', 'eval', 'fast'];

export type Autocast = 'bf16' | 'fp16';
export type BackboneStage = 'layer1' | 'layer2' | 'layer3' | 'layer4';
export const BACKBONE_STAGES: readonly BackboneStage[] = ['layer1', 'layer2', 'layer3', 'layer4'];

export interface EncoderOptions {
  backbone?: ResNetDepth;
  embedSize?: number;
  backboneMode?: BackboneMode;
  /** Backbone stages to train instead of freezing, e.g. ['layer4']. */
  fineTune?: BackboneStage[];
  /** Where the encoder computes: 'cpu' (default), 'cuda', 'cuda:N' or 'auto'. */
  device?: string;
  /** The frozen backbone in mixed precision (bfloat16 or float16); see `backboneAutocast`. */
  autocast?: Autocast;
  /**
   * false: leave the backbone's convolution weights and the linear layer's uninitialised, for a
   * checkpoint that is about to overwrite every one of them (the loaders do this); default true,
   * random initialisation.
   */
  init?: boolean;
}

/**
 * The precision the frozen backbone runs in: mixed precision only where it is meant for, a frozen
 * backbone (bf16 or fp16 on CUDA, bf16 on a CPU with AVX-512 BF16; the native side refuses, with
 * the reason, what the device cannot run); float32 for a fine-tuned one.
 */
export function backboneAutocast(autocast: Autocast | undefined, fineTuned: boolean): Autocast | undefined {
  return autocast && !fineTuned ? autocast : undefined;
}

// torchvision's ResNet children in order; the book wraps them in an nn.Sequential minus fc.
const BOOK_RESNET_INDEX: Record<string, string> = { conv1: '0', bn1: '1', layer1: '4', layer2: '5', layer3: '6', layer4: '7' };
const TORCHVISION_NAME = Object.fromEntries(Object.entries(BOOK_RESNET_INDEX).map(([k, v]) => [v, k]));

/** `conv1.weight` -> `0.weight`, `layer1.0.conv1.weight` -> `4.0.conv1.weight`. */
export function torchvisionToBookKey(key: string): string {
  const dot = key.indexOf('.');
  const head = key.slice(0, dot);
  const index = BOOK_RESNET_INDEX[head];
  if (index === undefined) throw new RangeError(`${key} has no place in the book's resnet_module`);
  return `${index}${key.slice(dot)}`;
}

export function bookToTorchvisionKey(key: string): string {
  const dot = key.indexOf('.');
  const name = TORCHVISION_NAME[key.slice(0, dot)];
  return name === undefined ? key : `${name}${key.slice(dot)}`;
}

/** The book's CNNModel. */
export class CaptionEncoder extends Module {
  readonly resnet: ResNet;
  readonly linear: Linear;
  readonly batchNorm: BatchNorm1d;
  readonly backboneMode: BackboneMode;
  readonly fineTune: readonly BackboneStage[];
  readonly embedSize: number;
  readonly autocast: Autocast | undefined;

  constructor(opts: EncoderOptions = {}) {
    super();
    this.embedSize = checkInt(opts.embedSize ?? 256, 'embedSize', 1);
    this.backboneMode = checkChoice(opts.backboneMode ?? 'book', 'backboneMode', BACKBONE_MODES);
    if (opts.fineTune !== undefined && !Array.isArray(opts.fineTune)) expected('an array of backbone stages', 'fineTune', opts.fineTune);
    this.fineTune = Object.freeze([...new Set((opts.fineTune ?? []).map((stage) => checkChoice(stage, 'fineTune', BACKBONE_STAGES)))]);
    this.autocast = opts.autocast === undefined ? undefined : checkChoice(opts.autocast, 'autocast', ['bf16', 'fp16'] as const);
    if (this.fineTune.length && this.backboneMode === 'fast') throw new TypeError("the fast path needs a frozen backbone: fineTune cannot be used with backboneMode 'fast'");
    const device = resolveDevice(opts.device ?? 'cpu');
    // Precision is settled here, as the device is: what the CPU cannot run is refused now, not at the first forward.
    // (The messages are the native layer's, which refuses the same at a forward.)
    if (device === 'cpu' && this.autocast === 'fp16') throw new TypeError("autocast 'fp16' runs on CUDA devices only; on the CPU use 'bf16'");
    if (device === 'cpu' && this.autocast === 'bf16') {
      const bf16 = cpuBf16Support();
      if (!bf16.supported) throw new TypeError(`autocast 'bf16' on the CPU needs native bfloat16 support: ${bf16.reason}. Run without autocast (float32)`);
    }
    this.resnet = this.register('resnet_module', new ResNet(opts.backbone ?? 152, { init: opts.init ?? true }));
    this.linear = this.register('linear_layer', new Linear(this.resnet.featureDim, this.embedSize, { init: opts.init }));
    this.batchNorm = this.register('batch_norm', new BatchNorm1d(this.embedSize, { momentum: 0.01 }));
    this.resnet.requiresGrad(false);
    for (const stage of this.fineTune) this.resnet.setRequiresGrad(true, `${stage}.`);
    if (device !== 'cpu') super.to(device);
    // Settled when built: read-only in JavaScript too, not only in TypeScript.
    for (const key of ['backboneMode', 'fineTune', 'embedSize', 'autocast'] as const) Object.defineProperty(this, key, { writable: false });
  }

  protected override childKey(child: string, key: string): string {
    return child === 'resnet_module' ? `${child}.${torchvisionToBookKey(key)}` : super.childKey(child, key);
  }

  private backboneOptions(mode: Mode): { train: boolean; fast: boolean; autocast?: Autocast } {
    const autocast = backboneAutocast(this.autocast, this.fineTune.length > 0);
    if (this.backboneMode === 'fast') return { train: false, fast: true, autocast };
    if (this.backboneMode === 'eval') return { train: false, fast: false, autocast };
    return { train: mode.train, fast: false, autocast };
  }

  /**
   * Builds the fast path for the current weights now, on a native thread (backboneMode 'fast'),
   * so that the first caption does not pay for it. Optional: a fast forward builds it when needed.
   */
  async prepareAsync(): Promise<void> {
    if (this.backboneMode === 'fast') await this.resnet.prepareFastAsync({ autocast: backboneAutocast(this.autocast, false) });
  }
  /** Whether a forward runs at once: the fast path is built for the current weights, or not needed. */
  get prepared(): boolean {
    return this.backboneMode !== 'fast' || this.resnet.fastReadyFor({ autocast: backboneAutocast(this.autocast, false) });
  }

  // The [sync] twins (features, head, forward) stay: noGrad() takes a synchronous function, and
  // scripts and tests compare them with PyTorch step by step.

  /** Backbone features [B, featureDim], without gradients unless stages are fine-tuned. */
  features(images: Tensor, mode: Mode): Tensor {
    return dispatchWithGrad(this.fineTune.length > 0, () => this.resnet.forward(images, this.backboneOptions(checkMode(mode))));
  }
  featuresAsync(images: Tensor, mode: Mode): Promise<Tensor> {
    return dispatchWithGrad(this.fineTune.length > 0, () => this.resnet.forwardAsync(images, this.backboneOptions(checkMode(mode))));
  }

  /** The trainable head on backbone features: [B, featureDim] -> [B, embedSize]. */
  head(features: Tensor, mode: Mode): Tensor {
    return this.batchNorm.forward(this.linear.forward(features), checkMode(mode));
  }
  /** With `syncGroup` in train mode, the batch norm takes its statistics over every rank's batch. */
  async headAsync(features: Tensor, mode: Mode, syncGroup?: ProcessGroup): Promise<Tensor> {
    const x = await this.linear.forwardAsync(features);
    if (syncGroup && checkMode(mode).train) return syncBatchNorm1d(this.batchNorm, x, syncGroup);
    return this.batchNorm.forwardAsync(x, checkMode(mode));
  }

  /** images [B, 3, H, W] -> [B, embedSize] */
  forward(images: Tensor, mode: Mode): Tensor {
    return this.head(this.features(images, mode), mode);
  }
  async forwardAsync(images: Tensor, mode: Mode, syncGroup?: ProcessGroup): Promise<Tensor> {
    return this.headAsync(await this.featuresAsync(images, mode), mode, syncGroup);
  }
}
