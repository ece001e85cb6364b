/**
 * The captioner for apps: load once, caption many, never block the event loop.
 *
 *   const captioner = await Captioner.load({ encoder, decoder, vocab });
 *   const text = await captioner.caption('photo.jpg', { beam: 3 });
 *
 * Decoding runs in sharp's threads, the encoder and every decoder step on the Captioner's own
 * executor thread (core/executor.ts); the JS thread only queues work and reads results. Calls on
 * one Captioner run one after another (a queue); different Captioners run at once, each on its own
 * thread. Weights load from torchcap checkpoints or the book's own `.ckpt` files, on the device
 * asked for, and the encoder's fast path is built once, off the JS thread; the vocabulary from
 * torchcap JSON, a JSON array of words, or the book's `vocabulary.pkl` (read with the safe unpickler).
 */
import type { CaptionEncoder, CaptionDecoder, Autocast } from './model';
import { loadEncoder, loadDecoder } from './model';
import type { ResNetDepth } from './nn/resnet';
import { Vocabulary, loadVocabulary } from './vocabulary';
import { ImageError, type ImageSource } from './data';
import { CAPTION_DEFAULTS, captionImages, evaluateModel, type CaptionOutcome, type EvaluateModelOptions, type ModelEvaluation, type SampleOptions } from './sample';
import type { EvaluationSet } from './evaluate';
import { Executor } from './core/executor';
import { resolveDevice } from './core/device';
import { positiveInt, optionalInt } from './util/checks';
import { allInOrder } from './util/promises';

export { loadVocabulary } from './vocabulary';
export type { CaptionOutcome } from './sample';
export { CAPTION_DEFAULTS } from './sample';

export interface CaptionerOptions {
  encoder: string | CaptionEncoder;
  decoder: string | CaptionDecoder;
  vocab: string | Vocabulary;
  /** Checked against the encoder checkpoint when given. */
  backbone?: ResNetDepth;
  /** Input size the images are resized to (224 in the book). */
  imageSize?: number;
  /** Images per forward pass. */
  batchSize?: number;
  maxLen?: number;
  /** Where models loaded from files compute: 'cpu' (default), 'cuda', 'cuda:N' or 'auto'. Models passed in compute where they are. */
  device?: string;
  /** For an encoder loaded from a file: the backbone in mixed precision (see backboneAutocast in model/encoder.ts). */
  autocast?: Autocast;
  /** Convert embedded ICC profiles to sRGB (default false: the book's pixels, profiles ignored as Pillow does). */
  colorManaged?: boolean;
}

export class Captioner {
  readonly imageSize: number;
  readonly batchSize: number;
  private queue: Promise<unknown> = Promise.resolve();
  private disposed = false;
  /** The thread this Captioner's native work runs on, so that two Captioners compute at once. */
  private readonly executor: Executor;
  private readonly colorManaged: boolean;

  private constructor(
    readonly encoder: CaptionEncoder,
    readonly decoder: CaptionDecoder,
    readonly vocab: Vocabulary,
    private readonly maxLen: number | undefined,
    opts: CaptionerOptions,
  ) {
    this.imageSize = positiveInt(opts.imageSize, 'imageSize', CAPTION_DEFAULTS.imageSize);
    this.batchSize = positiveInt(opts.batchSize, 'batchSize', CAPTION_DEFAULTS.batchSize);
    this.colorManaged = opts.colorManaged ?? false;
    if (decoder.vocabSize !== vocab.size) {
      throw new RangeError(`the decoder predicts ${decoder.vocabSize} words but the vocabulary has ${vocab.size}: they do not belong together`);
    }
    this.executor = new Executor();
  }

  static async load(opts: CaptionerOptions): Promise<Captioner> {
    positiveInt(opts.imageSize, 'imageSize', CAPTION_DEFAULTS.imageSize);
    positiveInt(opts.batchSize, 'batchSize', CAPTION_DEFAULTS.batchSize);
    const maxLen = optionalInt(opts.maxLen, 'maxLen', 1);
    const device = resolveDevice(opts.device ?? CAPTION_DEFAULTS.device);
    for (const [name, m] of [['encoder', opts.encoder], ['decoder', opts.decoder]] as const) {
      if (typeof m !== 'string' && opts.device !== undefined && m.device !== device) {
        throw new TypeError(`the ${name} passed in computes on ${m.device}, not ${device}: device applies to models loaded from files (build a model with { device } instead)`);
      }
    }
    if (typeof opts.encoder !== 'string' && opts.autocast !== undefined && opts.encoder.autocast !== opts.autocast) {
      throw new TypeError('autocast applies to an encoder loaded from a file (build a CaptionEncoder with { autocast } instead)');
    }
    // Loaded at once; when several fail, the error is the encoder's, then the decoder's, then the vocabulary's.
    const [encoder, decoder, vocab] = await allInOrder([
      typeof opts.encoder === 'string' ? loadEncoder(opts.encoder, { backbone: opts.backbone, backboneMode: 'fast', device, autocast: opts.autocast }) : opts.encoder,
      typeof opts.decoder === 'string' ? loadDecoder(opts.decoder, { maxSeqLen: maxLen, device }) : opts.decoder,
      typeof opts.vocab === 'string' ? loadVocabulary(opts.vocab) : opts.vocab,
    ] as const);
    // The first caption should not pay for the fold: build it now, off the JS thread (an encoder
    // loaded from a file has it already).
    if (!encoder.prepared) await encoder.prepareAsync();
    return new Captioner(encoder, decoder, vocab, maxLen, opts);
  }

  /** Where the models compute. */
  get device(): string {
    return this.encoder.device;
  }

  /** Runs `fn` after every call queued before it. */
  private enqueue<T>(fn: () => Promise<T>): Promise<T> {
    if (this.disposed) return Promise.reject(new Error('this Captioner has been disposed'));
    const go = () => this.executor.run(fn);
    const run = this.queue.then(go, go);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** The caption of one image (a path, encoded bytes, or raw RGB pixels); rejects for an unreadable image. */
  caption(input: ImageSource, opts?: SampleOptions): Promise<string>;
  /** Captions of several images, in order; rejects if any is unreadable (see captionEach). */
  caption(input: ImageSource[], opts?: SampleOptions): Promise<string[]>;
  async caption(input: ImageSource | ImageSource[], opts: SampleOptions = {}): Promise<string | string[]> {
    const many = Array.isArray(input);
    const outcomes = await this.captionEach(many ? input : [input], opts);
    const failed = outcomes.find((o): o is { error: string } => 'error' in o);
    if (failed) throw new ImageError(failed.error, many ? 'batch' : String(input));
    const captions = outcomes.map((o) => (o as { caption: string }).caption);
    return many ? captions : captions[0];
  }

  /** One outcome per image: its caption, or the reason it could not be read. */
  captionEach(inputs: ImageSource[], opts: SampleOptions = {}): Promise<CaptionOutcome[]> {
    return this.enqueue(() => captionImages(this, inputs, { imageSize: this.imageSize, batchSize: this.batchSize, maxLen: this.maxLen, colorManaged: this.colorManaged, ...opts }));
  }

  /**
   * The model's scores on an evaluation set (`readEvaluationSet`): every image captioned as
   * captionEach would, the captions scored against their references; images that cannot be read
   * are listed in `failed` and left out of the scores. `onProgress` follows the batches.
   */
  evaluate(set: EvaluationSet, opts: EvaluateModelOptions = {}): Promise<ModelEvaluation> {
    return this.enqueue(() => evaluateModel(this, set, { imageSize: this.imageSize, batchSize: this.batchSize, maxLen: this.maxLen, colorManaged: this.colorManaged, ...opts }));
  }

  /** Waits for queued calls, then refuses new ones and ends the executor thread. The model memory is freed by the GC. */
  async dispose(): Promise<void> {
    if (this.disposed) return this.queue.then(() => undefined);
    const pending = this.queue;
    this.disposed = true;
    await pending;
    this.executor.close();
  }
}
