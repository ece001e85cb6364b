/**
 * The captioning loop, the one every caption comes from (the Captioner and so `caption` and
 * `serve`, validation during training, evaluation): decode a batch of images (unreadable ones are
 * reported in their place, never fatal), encode it (eval mode, no gradients), sample word ids
 * (greedy or beam), turn the ids into words.
 */
import { dispatchWithGrad, type Tensor } from '../core/tensor';
import { positiveInt } from '../util/checks';
import { DEFAULT_MAX_SEQ_LEN, type CaptionEncoder, type CaptionDecoder } from '../model';
import type { Vocabulary } from '../vocabulary';
import { imageBatches, chunks, type ImageSource } from '../data';
import { greedy, type SampleOptions } from './greedy';
import { beamSearch } from './beam';

/** How images are captioned unless told otherwise: the book's input size and greedy decoding of up to 20 words. */
export const CAPTION_DEFAULTS = Object.freeze({ imageSize: 224, batchSize: 16, beam: 1, maxLen: DEFAULT_MAX_SEQ_LEN, device: 'cpu' });

/** What captioning needs: a trained encoder and decoder and the vocabulary they were trained with. */
export interface CaptionModels {
  encoder: CaptionEncoder;
  decoder: CaptionDecoder;
  vocab: Vocabulary;
}

/** One image's outcome: its caption, or why it could not be read. */
export type CaptionOutcome = { caption: string } | { error: string };

export interface CaptionImagesOptions extends SampleOptions {
  /** Images are resized to imageSize×imageSize (224 in the book). */
  imageSize?: number;
  /** Convert embedded ICC profiles to sRGB (default false: ignored, as Pillow does). */
  colorManaged?: boolean;
  /** Images per encoder pass (CAPTION_DEFAULTS.batchSize). */
  batchSize?: number;
  /** Called after each batch: images done (captioned or failed) and in all. */
  onProgress?: (done: number, total: number) => void;
}

/** Greedy for beam 1 (or unset), beam search otherwise. */
export function sampleIds(decoder: CaptionDecoder, features: Tensor, opts: SampleOptions = {}): Promise<number[][]> {
  return (opts.beam ?? 1) <= 1 ? greedy(decoder, features, opts) : beamSearch(decoder, features, opts);
}

/** Word ids -> caption text, without `<start>`/`<end>`. */
export function idsToCaption(vocab: Vocabulary, ids: number[]): string {
  return vocab.decode(ids).join(' ');
}

/** Captions for a normalized image batch [B, 3, H, W]. */
export async function captionBatch(models: CaptionModels, images: Tensor, opts: SampleOptions = {}): Promise<string[]> {
  const features = await dispatchWithGrad(false, () => models.encoder.forwardAsync(images, { train: false }));
  const ids = await sampleIds(models.decoder, features, opts);
  return ids.map((i) => idsToCaption(models.vocab, i));
}

/** Captions of `sources` (paths, encoded bytes or raw pixels), one outcome each, in order. */
export async function captionImages(models: CaptionModels, sources: readonly ImageSource[], opts: CaptionImagesOptions = {}): Promise<CaptionOutcome[]> {
  const size = positiveInt(opts.imageSize, 'imageSize', CAPTION_DEFAULTS.imageSize);
  const batchSize = positiveInt(opts.batchSize, 'batchSize', CAPTION_DEFAULTS.batchSize);
  const items = sources.map((source, index) => ({ source, index }));
  const out: CaptionOutcome[] = new Array(sources.length);
  let done = 0;
  for await (const batch of imageBatches(chunks(items, batchSize), { size, colorManaged: opts.colorManaged })) {
    for (const f of batch.failed) out[f.item.index] = { error: f.reason };
    if (batch.images) {
      const captions = await captionBatch(models, batch.images, opts);
      batch.readable.forEach((it, k) => (out[it.index] = { caption: captions[k] }));
      batch.images.dispose();
    }
    done += batch.readable.length + batch.failed.length;
    opts.onProgress?.(done, sources.length);
  }
  return out;
}
