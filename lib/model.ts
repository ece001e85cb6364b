/**
 * The book's two models: the encoder (`CNNModel`) and the decoder (`LSTMModel`), with the book's
 * parameter names so its checkpoints load by name.
 *
 *   encoder: image [B, 3, 224, 224] -> ResNet (frozen, no fc) [B, 2048] -> Linear [B, 256] -> BatchNorm1d
 *   decoder: [feature, emb(<start>), emb(w1) ...] packed -> LSTM [*, 512] -> Linear [*, V]
 */
import { Tensor, checkInt, dispatchWithGrad } from './tensor';
import { Module, checkMode, type Mode } from './nn/module';
import { Linear, Embedding, BatchNorm1d } from './nn/layers';
import { LSTM, packPaddedSequence, type LSTMState } from './nn/rnn';
import { ResNet, type ResNetDepth } from './nn/resnet';
import { syncBatchNorm1d } from './nn/sync-batchnorm';
import type { ProcessGroup } from './distributed';

/**
 * How the frozen backbone runs while training:
 *  - 'book': as the book's code does, in the encoder's mode (train mode uses batch statistics and
 *    updates the backbone's BatchNorm running averages even though its weights are frozen);
 *  - 'eval': always in eval mode (right for pretrained weights);
 *  - 'fast': eval mode on the folded fast path (BatchNorm folded into the convolutions).
 * At inference (train: false) 'book' and 'eval' are the same.
 */
export type BackboneMode = 'book' | 'eval' | 'fast';

export interface EncoderOptions {
  backbone?: ResNetDepth;
  embedSize?: number;
  backboneMode?: BackboneMode;
  /** Backbone stages to train instead of freezing, e.g. ['layer4']. */
  fineTune?: ('layer1' | 'layer2' | 'layer3' | 'layer4')[];
  /** The frozen backbone in mixed precision: bf16 or fp16 on CUDA, bf16 on a CPU with AVX-512 BF16. */
  autocast?: 'bf16' | 'fp16';
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
  readonly fineTune: readonly string[];
  readonly embedSize: number;
  autocast: 'bf16' | 'fp16' | undefined;

  constructor(opts: EncoderOptions = {}) {
    super();
    this.embedSize = checkInt(opts.embedSize ?? 256, 'embedSize', 1);
    this.backboneMode = opts.backboneMode ?? 'book';
    if (!['book', 'eval', 'fast'].includes(this.backboneMode)) throw new TypeError(`backboneMode must be 'book', 'eval' or 'fast', not ${String(this.backboneMode)}`);
    this.fineTune = opts.fineTune ?? [];
    this.autocast = opts.autocast;
    if (this.fineTune.length && this.backboneMode === 'fast') throw new TypeError("the fast path needs a frozen backbone: fineTune cannot be used with backboneMode 'fast'");
    this.resnet = this.register('resnet_module', new ResNet(opts.backbone ?? 152));
    this.linear = this.register('linear_layer', new Linear(this.resnet.featureDim, this.embedSize));
    this.batchNorm = this.register('batch_norm', new BatchNorm1d(this.embedSize, { momentum: 0.01 }));
    this.resnet.requiresGrad(false);
    for (const stage of this.fineTune) this.resnet.native.setRequiresGrad(true, `${stage}.`);
  }

  protected override childKey(child: string, key: string): string {
    return child === 'resnet_module' ? `${child}.${torchvisionToBookKey(key)}` : super.childKey(child, key);
  }

  private backboneOptions(mode: Mode): { train: boolean; fast: boolean; autocast?: 'bf16' | 'fp16' } {
    // Mixed precision only where it is meant for: the frozen backbone (on the CPU the native side
    // refuses it, with the reason, where the CPU lacks bfloat16).
    const autocast = this.fineTune.length === 0 ? this.autocast : undefined;
    if (this.backboneMode === 'fast') return { train: false, fast: true, autocast };
    if (this.backboneMode === 'eval') return { train: false, fast: false, autocast };
    return { train: mode.train, fast: false, autocast };
  }

  /** Moves the encoder to `device` and rebuilds the fast path there. */
  override to(device: string): this {
    super.to(device);
    this.prepare();
    return this;
  }

  /** Builds the fast path from the current backbone weights (backboneMode 'fast'). */
  prepare(): void {
    if (this.backboneMode === 'fast') this.resnet.prepareFast({ autocast: this.autocast });
  }
  async prepareAsync(): Promise<void> {
    if (this.backboneMode === 'fast') await this.resnet.prepareFastAsync({ autocast: this.autocast });
  }
  /** Whether forward can run: the fast path is built (in the autocast precision), or not needed. */
  get prepared(): boolean {
    return this.backboneMode !== 'fast' || this.resnet.fastReadyFor({ autocast: this.autocast });
  }

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

export interface DecoderOptions {
  vocabSize: number;
  embedSize?: number;
  hiddenSize?: number;
  numLayers?: number;
  maxSeqLen?: number;
}

/** The book's LSTMModel. */
export class CaptionDecoder extends Module {
  readonly embedding: Embedding;
  readonly lstm: LSTM;
  readonly linear: Linear;
  readonly vocabSize: number;
  readonly embedSize: number;
  readonly hiddenSize: number;
  readonly maxSeqLen: number;

  constructor(opts: DecoderOptions) {
    super();
    this.vocabSize = checkInt(opts.vocabSize, 'vocabSize', 5);
    this.embedSize = checkInt(opts.embedSize ?? 256, 'embedSize', 1);
    this.hiddenSize = checkInt(opts.hiddenSize ?? 512, 'hiddenSize', 1);
    this.maxSeqLen = checkInt(opts.maxSeqLen ?? 20, 'maxSeqLen', 1);
    this.embedding = this.register('embedding_layer', new Embedding(this.vocabSize, this.embedSize));
    this.lstm = this.register('lstm_layer', new LSTM(this.embedSize, this.hiddenSize, { numLayers: opts.numLayers ?? 1, batchFirst: true }));
    this.linear = this.register('linear_layer', new Linear(this.hiddenSize, this.vocabSize));
  }

  /**
   * Teacher-forced logits for a batch sorted by length (longest first):
   * features [B, E], captions int64 [B, T] (padded), lengths (each <= T) -> [sum(lengths), V],
   * in the order of pack_padded_sequence(captions, lengths, batch_first=True).data.
   */
  forward(features: Tensor, captions: Tensor, lengths: number[], mode: Mode): Tensor {
    const packed = this.packInputs(features, this.embedding.forward(captions), lengths);
    const { output } = this.lstm.forwardPacked(packed, checkMode(mode));
    return this.linear.forward(output.data);
  }
  async forwardAsync(features: Tensor, captions: Tensor, lengths: number[], mode: Mode): Promise<Tensor> {
    const packed = this.packInputs(features, await this.embedding.forwardAsync(captions), lengths);
    const { output } = await this.lstm.forwardPackedAsync(packed, checkMode(mode));
    return this.linear.forwardAsync(output.data);
  }

  private packInputs(features: Tensor, embeddings: Tensor, lengths: number[]) {
    const inputs = Tensor.cat([features.unsqueeze(1), embeddings], 1); // [B, T + 1, E]
    return packPaddedSequence(inputs, lengths, { batchFirst: true });
  }

  /** One LSTM step: inputs [B, E] -> logits [B, V] and the new state. */
  step(inputs: Tensor, state?: LSTMState): { logits: Tensor; state: LSTMState } {
    const r = this.lstm.forward(inputs.unsqueeze(1), { train: false }, state);
    return { logits: this.linear.forward(r.output.squeeze(1)), state: r.state };
  }
  async stepAsync(inputs: Tensor, state?: LSTMState): Promise<{ logits: Tensor; state: LSTMState }> {
    const r = await this.lstm.forwardAsync(inputs.unsqueeze(1), { train: false }, state);
    return { logits: await this.linear.forwardAsync(r.output.squeeze(1)), state: r.state };
  }

  /** Word ids [B] -> embeddings [B, E]. */
  embed(ids: Tensor): Tensor {
    return this.embedding.forward(ids);
  }
  embedAsync(ids: Tensor): Promise<Tensor> {
    return this.embedding.forwardAsync(ids);
  }
}
