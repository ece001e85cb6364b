/**
 * The captioner for apps: load once, caption many, never block the event loop.
 *
 *   const captioner = await Captioner.load({ encoder, decoder, vocab });
 *   const text = await captioner.caption('photo.jpg', { beam: 3 });
 *
 * Decoding runs in sharp's threads, the encoder and every decoder step on the Captioner's own
 * executor thread (lib/executor.ts); the JS thread only queues work and reads results. Calls on one
 * Captioner run one after another (a queue); different Captioners run at once, each on its own
 * thread. Weights load from torchcap checkpoints or the book's own `.ckpt` files; the vocabulary
 * from torchcap JSON, a JSON array of words, or the book's `vocabulary.pkl` (read with the safe
 * unpickler).
 */
import { CaptionEncoder, CaptionDecoder } from './model';
import type { ResNetDepth } from './nn/resnet';
import { Vocabulary } from './vocabulary';
import { loadEncoder, loadDecoder } from './checkpoint';
import { readBookVocabularyPickle } from './serialization';
import { decodeImage, toBatchAsync, ImageError, type ImageSource } from './data/images';
import { captionBatch } from './caption';
import { Executor } from './executor';
import { resolveDevice } from './device';
import type { SampleOptions } from './sample';

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
  /** 'cpu' (default), 'cuda', 'cuda:N' or 'auto' (a GPU when there is one). */
  device?: string;
  /** On CUDA: the encoder's backbone in mixed precision. */
  autocast?: 'bf16' | 'fp16';
  /** Convert embedded ICC profiles to sRGB (default false: the book's pixels, profiles ignored as Pillow does). */
  colorManaged?: boolean;
}

export type CaptionOutcome = { caption: string } | { error: string };

/** Loads a vocabulary from torchcap JSON, a JSON array of words, or the book's vocabulary.pkl. */
export async function loadVocabulary(file: string): Promise<Vocabulary> {
  if (file.endsWith('.pkl')) return Vocabulary.fromWords((await readBookVocabularyPickle(file)).words);
  return Vocabulary.load(file);
}

export class Captioner {
  readonly imageSize: number;
  readonly batchSize: number;
  private queue: Promise<unknown> = Promise.resolve();
  private disposed = false;
  /** The thread this Captioner's native work runs on, so that two Captioners compute at once. */
  private readonly executor: Executor;

  private constructor(
    readonly encoder: CaptionEncoder,
    readonly decoder: CaptionDecoder,
    readonly vocab: Vocabulary,
    private readonly opts: CaptionerOptions,
  ) {
    this.imageSize = opts.imageSize ?? 224;
    this.batchSize = opts.batchSize ?? 16;
    if (decoder.vocabSize !== vocab.size) {
      throw new RangeError(`the decoder predicts ${decoder.vocabSize} words but the vocabulary has ${vocab.size}: they do not belong together`);
    }
    this.executor = new Executor();
  }

  static async load(opts: CaptionerOptions): Promise<Captioner> {
    const [encoder, decoder, vocab] = await Promise.all([
      typeof opts.encoder === 'string' ? loadEncoder(opts.encoder, { backbone: opts.backbone, backboneMode: 'fast' }) : opts.encoder,
      typeof opts.decoder === 'string' ? loadDecoder(opts.decoder, { maxSeqLen: opts.maxLen }) : opts.decoder,
      typeof opts.vocab === 'string' ? loadVocabulary(opts.vocab) : opts.vocab,
    ]);
    const device = resolveDevice(opts.device ?? 'cpu');
    if (opts.autocast) encoder.autocast = opts.autocast;
    if (device !== 'cpu') {
      encoder.to(device);
      decoder.to(device);
    }
    if (!encoder.prepared) await encoder.prepareAsync();
    return new Captioner(encoder, decoder, vocab, opts);
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
    return this.enqueue(async () => {
      const out: CaptionOutcome[] = new Array(inputs.length);
      for (let b = 0; b < inputs.length; b += this.batchSize) {
        const part = inputs.slice(b, b + this.batchSize);
        const decoded = await Promise.all(
          part.map((src) =>
            decodeImage(src, this.imageSize, { colorManaged: this.opts.colorManaged }).catch((e: unknown) => {
              if (e instanceof ImageError) return e;
              throw e;
            }),
          ),
        );
        const good = decoded.flatMap((d, k) => (d instanceof ImageError ? [] : [{ k, image: d }]));
        decoded.forEach((d, k) => {
          if (d instanceof ImageError) out[b + k] = { error: d.message };
        });
        if (!good.length) continue;
        const batch = await toBatchAsync(
          good.map((g) => g.image),
          { crop: this.imageSize },
        );
        const captions = await captionBatch(this, batch, { maxLen: this.opts.maxLen, ...opts });
        good.forEach((g, i) => (out[b + g.k] = { caption: captions[i] }));
        batch.dispose();
      }
      return out;
    });
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
