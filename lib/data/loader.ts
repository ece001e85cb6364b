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
import { Tensor } from '../tensor';
import { decodeImage, toBatchAsync, ImageError, type RawImage } from './images';

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
  /** Random crop and flip (training); false: center crop, no flip. */
  augment?: boolean;
  /** Batches decoded ahead of the one being consumed. */
  prefetch?: number;
  rank?: number;
  worldSize?: number;
  onSkip?: (sample: Sample, reason: string) => void;
}

/** Small deterministic generator (mulberry32) for crop positions and flips. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
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
   * batches ahead while the caller computes.
   */
  async *epoch(epoch: number, from = 0): AsyncGenerator<Batch> {
    const order = epochOrder(this.samples.length, epoch, this.opts);
    const bs = this.opts.batchSize;
    const count = Math.ceil(order.length / bs);
    const ahead = Math.max(1, this.opts.prefetch ?? 2);
    const pending: Promise<Batch | null>[] = [];
    let next = from;
    const fill = (): void => {
      while (pending.length < ahead && next < count) {
        const b = next++;
        const p = this.load(b, order.slice(b * bs, (b + 1) * bs), epoch);
        p.catch(() => undefined); // rejections surface when awaited below
        pending.push(p);
      }
    };
    fill();
    while (pending.length) {
      const batch = await pending.shift()!;
      fill();
      if (batch) yield batch;
    }
  }

  private async load(index: number, indices: number[], epoch: number): Promise<Batch | null> {
    const decoded = await Promise.all(
      indices.map(async (i) => {
        const s = this.samples[i];
        try {
          return { sample: s, i, image: await decodeImage(s.image, this.resize) };
        } catch (e) {
          if (!(e instanceof ImageError)) throw e;
          this.opts.onSkip?.(s, e.message);
          return null;
        }
      }),
    );
    const ok = decoded.filter((d): d is { sample: Sample; i: number; image: RawImage } => d !== null);
    if (!ok.length) return null;
    // The book's collate: longest caption first (a stable sort keeps ties in sampler order).
    ok.sort((a, b) => b.sample.ids.length - a.sample.ids.length);
    const crops: [number, number][] = [];
    const flips: boolean[] = [];
    for (const d of ok) {
      const span = this.resize - this.crop;
      if (this.augment) {
        const rng = mulberry32(((this.opts.seed ?? 0) * 1_000_003 + epoch * 7_919 + d.i) | 0);
        crops.push([Math.floor(rng() * (d.image.width - this.crop + 1)), Math.floor(rng() * (d.image.height - this.crop + 1))]);
        flips.push(rng() < 0.5);
      } else {
        crops.push([span >> 1, span >> 1]);
        flips.push(false);
      }
    }
    const images = await toBatchAsync(
      ok.map((d) => d.image),
      { crop: this.crop, crops, flips },
    );
    return { images, ...padCaptions(ok.map((d) => d.sample.ids)), samples: ok.map((d) => d.sample), index };
  }
}

/** Captions already sorted longest first -> int64 [B, T] padded with 0, and their lengths. */
export function padCaptions(ids: number[][]): { captions: Tensor; lengths: number[] } {
  const lengths = ids.map((c) => c.length);
  const T = lengths[0];
  const padded = new BigInt64Array(ids.length * T);
  ids.forEach((c, r) => c.forEach((id, k) => (padded[r * T + k] = BigInt(id))));
  return { captions: Tensor.from(padded, { shape: [ids.length, T] }), lengths };
}
