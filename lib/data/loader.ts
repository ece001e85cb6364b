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
import * as fs from 'fs';
import { Tensor, checkInt } from '../tensor';
import { decodeImage, toBatchAsync, ImageError, type RawImage } from './images';
import { nativeJpeg, isJpegOfSize, decodeJpegBatch } from './jpeg';

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

  /** The crop window and flip of sample i in an epoch (a function of seed, epoch and sample only). */
  private augmentation(i: number, epoch: number): { crop: [number, number]; flip: boolean } {
    const span = this.resize - this.crop;
    if (!this.augment) return { crop: [span >> 1, span >> 1], flip: false };
    const rng = mulberry32(((this.opts.seed ?? 0) * 1_000_003 + epoch * 7_919 + i) | 0);
    return { crop: [Math.floor(rng() * (span + 1)), Math.floor(rng() * (span + 1))], flip: rng() < 0.5 };
  }

  private async load(index: number, indices: number[], epoch: number): Promise<Batch | null> {
    const items = indices.map((i) => ({ i, sample: this.samples[i], ...this.augmentation(i, epoch) }));
    const skip = (k: number, reason: string) => this.opts.onSkip?.(items[k].sample, reason);
    const bytes = await Promise.all(
      items.map((it, k) =>
        fs.promises.readFile(it.sample.image).catch((e: NodeJS.ErrnoException) => {
          skip(k, `${it.sample.image}: ${e.code === 'ENOENT' ? 'file not found' : e.code === 'EISDIR' ? 'is a directory' : e.message}`);
          return null;
        }),
      ),
    );
    // JPEGs already at the decode size go to the native decoder; the rest through sharp.
    const jpeg: number[] = [];
    const other: number[] = [];
    bytes.forEach((b, k) => {
      if (b) (nativeJpeg && isJpegOfSize(b, this.resize) ? jpeg : other).push(k);
    });
    const [native, decoded] = await Promise.all([
      jpeg.length ? decodeJpegBatch(jpeg.map((k) => bytes[k]!), { size: this.resize, crop: this.crop, crops: jpeg.map((k) => items[k].crop), flips: jpeg.map((k) => items[k].flip) }) : null,
      Promise.all(
        other.map((k) =>
          decodeImage(items[k].sample.image, this.resize).catch((e: unknown) => {
            if (!(e instanceof ImageError)) throw e;
            skip(k, e.message);
            return null;
          }),
        ),
      ),
    ]);
    // Row of each surviving item in cat([native batch, sharp batch]).
    const rowOf = new Map<number, number>();
    let row = 0;
    jpeg.forEach((k, j) => {
      const why = native!.failed.get(j);
      if (why) skip(k, `${items[k].sample.image}: ${why}`);
      else rowOf.set(k, row++);
    });
    const rawOk = other.filter((_, j) => decoded[j] !== null);
    const rawImages = decoded.filter((d): d is RawImage => d !== null);
    const rawBatch = rawImages.length
      ? await toBatchAsync(rawImages, { crop: this.crop, crops: rawOk.map((k) => items[k].crop), flips: rawOk.map((k) => items[k].flip) })
      : null;
    rawOk.forEach((k) => rowOf.set(k, row++));
    if (!rowOf.size) return null;
    // The book's collate: longest caption first; ties keep the sampler's order.
    const order = [...rowOf.keys()].sort((a, b) => items[b].sample.ids.length - items[a].sample.ids.length || a - b);
    const parts = [native?.batch, rawBatch].filter((t): t is Tensor => !!t);
    const all = parts.length === 1 ? parts[0] : Tensor.cat(parts, 0);
    const rows = order.map((k) => rowOf.get(k)!);
    const images = rows.every((r, n) => r === n) ? all : all.indexSelect(0, Tensor.from(rows, { dtype: 'int64' }));
    const samples = order.map((k) => items[k].sample);
    return { images, ...padCaptions(samples.map((s) => s.ids)), samples, index };
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
