/**
 * The training loader: one sample per caption (as the book's dataset: each image is seen once per
 * caption), shuffled per epoch, decoded and augmented off the JS thread, collated as the book's
 * `collate_function` does: sorted by caption length (longest first), images stacked, captions
 * padded with 0, lengths returned.
 *
 * Order: the permutation of epoch e is `torch.randperm(n, generator=manual_seed(seed + e))`, and
 * with several ranks each takes every worldSize-th index after padding, exactly as PyTorch's
 * DistributedSampler; one process is rank 0 of 1. Crop windows and flips come from a generator
 * seeded by (seed, epoch, sample), so a resumed epoch sees the same batches.
 *
 * A sample whose image is missing or corrupt is dropped from its batch and reported through
 * `onSkip`; a long run never ends because of one bad file.
 */
import { Tensor } from '../core/tensor';
import { checkInt } from '../util/checks';
import { mulberry32 } from '../util/random';
import { imageBatches, type ImageItem } from './image-batches';

export interface Sample {
  image: string;
  /** Caption ids with <start> and <end>. */
  ids: number[];
}

export interface Batch {
  /** [B, 3, crop, crop] float32, normalized. */
  images: Tensor;
  /** [B, T] int64, padded with 0, longest first. */
  captions: Tensor;
  /** Caption lengths, decreasing. */
  lengths: number[];
  /** The samples of the batch, in batch order. */
  samples: Sample[];
  /** Index of the batch within the epoch (0-based). */
  index: number;
}

export interface LoaderOptions {
  batchSize: number;
  shuffle?: boolean;
  seed?: number;
  /** Decode size: images not of this size are resized to it first (the book: 256). */
  resize?: number;
  /** Crop size (the book: 224). */
  crop?: number;
  /** Convert embedded ICC profiles to sRGB (default false: ignored, as Pillow and the book do). */
  colorManaged?: boolean;
  /** Random crop and flip (training); false: center crop, no flip. */
  augment?: boolean;
  /** Batches decoded ahead of the one being consumed. */
  prefetch?: number;
  rank?: number;
  worldSize?: number;
  onSkip?: (sample: Sample, reason: string) => void;
}

/**
 * The indices one rank visits in an epoch, as torch.utils.data.DistributedSampler (shuffle, not
 * drop_last): randperm with seed + epoch, padded by repeating from the start to a multiple of
 * worldSize, then every worldSize-th from `rank`.
 */
export function epochOrder(n: number, epoch: number, opts: { shuffle?: boolean; seed?: number; rank?: number; worldSize?: number } = {}): number[] {
  const world = opts.worldSize ?? 1;
  const rank = opts.rank ?? 0;
  let order: number[];
  if (opts.shuffle ?? true) order = Array.from(Tensor.randperm(n, (opts.seed ?? 0) + epoch).toTypedArray() as BigInt64Array, Number);
  else order = Array.from({ length: n }, (_, i) => i);
  const total = Math.ceil(n / world) * world;
  while (order.length < total) order = order.concat(order.slice(0, total - order.length));
  return order.filter((_, i) => i % world === rank);
}

export class CaptionLoader {
  readonly resize: number;
  readonly crop: number;
  readonly augment: boolean;

  constructor(
    readonly samples: readonly Sample[],
    readonly opts: LoaderOptions,
  ) {
    if (!samples.length) throw new RangeError('the loader has no samples');
    checkInt(opts.batchSize, 'batchSize', 1);
    this.resize = opts.resize ?? 256;
    this.crop = opts.crop ?? 224;
    this.augment = opts.augment ?? true;
    if (this.crop > this.resize) throw new RangeError(`crop ${this.crop} is larger than the decoded size ${this.resize}`);
  }

  /** Batches in an epoch for this rank. */
  batchesPerEpoch(): number {
    const perRank = Math.ceil(this.samples.length / (this.opts.worldSize ?? 1));
    return Math.ceil(perRank / this.opts.batchSize);
  }

  /**
   * The batches of `epoch`, starting at batch `from` (to resume mid-epoch), decoding `prefetch`
   * batches ahead while the caller computes. A batch whose images are all unreadable is left out.
   */
  async *epoch(epoch: number, from = 0): AsyncGenerator<Batch> {
    const order = epochOrder(this.samples.length, epoch, this.opts);
    const bs = this.opts.batchSize;
    const count = Math.ceil(order.length / bs);
    const self = this;
    function* groups(): Generator<LoaderItem[]> {
      for (let b = from; b < count; b++) {
        yield order.slice(b * bs, (b + 1) * bs).map((i) => ({ index: b, sample: self.samples[i], source: self.samples[i].image, ...self.augmentation(i, epoch) }));
      }
    }
    for await (const decoded of imageBatches(groups(), { size: this.resize, crop: this.crop, nativeJpeg: true, colorManaged: this.opts.colorManaged, prefetch: this.opts.prefetch ?? 2 })) {
      for (const f of decoded.failed) this.opts.onSkip?.(f.item.sample, f.reason);
      if (decoded.images) yield collate(decoded.images, decoded.readable);
    }
  }

  /** The crop window and flip of sample i in an epoch (a function of seed, epoch and sample only). */
  private augmentation(i: number, epoch: number): { crop: [number, number]; flip: boolean } {
    const span = this.resize - this.crop;
    if (!this.augment) return { crop: [span >> 1, span >> 1], flip: false };
    const rng = mulberry32(((this.opts.seed ?? 0) * 1_000_003 + epoch * 7_919 + i) | 0);
    return { crop: [Math.floor(rng() * (span + 1)), Math.floor(rng() * (span + 1))], flip: rng() < 0.5 };
  }
}

interface LoaderItem extends ImageItem {
  /** The batch's index within the epoch. */
  index: number;
  sample: Sample;
}

/** The book's collate: longest caption first (ties keep the sampler's order), images in that order, captions padded. */
function collate(images: Tensor, items: LoaderItem[]): Batch {
  const order = items.map((_, k) => k).sort((a, b) => items[b].sample.ids.length - items[a].sample.ids.length || a - b);
  const sorted = order.every((r, n) => r === n) ? images : images.indexSelect(0, Tensor.from(order, { dtype: 'int64' }));
  const samples = order.map((k) => items[k].sample);
  return { images: sorted, ...padCaptions(samples.map((s) => s.ids)), samples, index: items[0].index };
}

/** Captions already sorted longest first -> int64 [B, T] padded with 0, and their lengths. */
export function padCaptions(ids: number[][]): { captions: Tensor; lengths: number[] } {
  const lengths = ids.map((c) => c.length);
  const T = lengths[0];
  const padded = new BigInt64Array(ids.length * T);
  ids.forEach((c, r) => c.forEach((id, k) => (padded[r * T + k] = BigInt(id))));
  return { captions: Tensor.from(padded, { shape: [ids.length, T] }), lengths };
}
