/**
 * The image loop, the one every path that feeds images to the model goes through (the training
 * loader, the feature cache, the Captioner, validation and evaluation): decode the sources, skip
 * and report the unreadable ones, stack the rest into one normalized batch, hand it on.
 *
 * Files are read once: their bytes go to the decoder. JPEGs already at the decode size can go to
 * the native decoder (crop, flip and normalization in the same pass, `nativeJpeg`); everything
 * else is decoded by `decodeImage` and batched by `toBatchAsync` (images.ts).
 */
import * as fs from 'fs';
import { Tensor } from '../core/tensor';
import { decodeImage, toBatchAsync, ImageError, type ImageSource, type RawImage } from './images';

import { nativeJpeg, isJpegOfSize, decodeJpegBatch } from './jpeg';

/** One image to decode, and where its crop window sits. */
export interface ImageItem {
  /** A file path, encoded bytes, or raw RGB pixels. */
  source: ImageSource;
  /** Top-left corner [x, y] of the crop window in the decoded image (default: centred). */
  crop?: [number, number];
  /** Flip horizontally. */
  flip?: boolean;
}

export interface DecodeOptions {
  /** Images are decoded at size×size (resized first when they have another size). */
  size: number;
  /** The crop×crop window that goes into the batch (default: size, the whole image). */
  crop?: number;
  /** JPEGs of size×size through the native decoder (default false). */
  nativeJpeg?: boolean;
  /** Convert embedded ICC profiles to sRGB (default false: ignored, as Pillow does). */
  colorManaged?: boolean;
}

/** A decoded batch: `images` holds one row per readable item, in item order. */
export interface DecodedBatch<T extends ImageItem = ImageItem> {
  /** [readable.length, 3, crop, crop] float32, normalized; null when no item was readable. */
  images: Tensor | null;
  /** The items whose rows `images` holds, in order. */
  readable: T[];
  /** Positions (in the items given) of the readable ones. */
  rows: number[];
  /** The unreadable items and why, in item order. */
  failed: { item: T; index: number; reason: string }[];
}

/** A readable name for a source in messages. */
export function sourceLabel(src: ImageSource): string {
  if (typeof src === 'string') return src;
  if (src instanceof Uint8Array) return `<${src.byteLength}-byte buffer>`;
  if (src && typeof src === 'object' && 'width' in src) return `<${src.width}x${src.height} RGB pixels>`;
  return String(src);
}

/** A file's bytes, or the reason it cannot be read ("file not found", "is a directory", ...). */
async function readSource(src: ImageSource): Promise<Uint8Array | RawImage | string> {
  if (typeof src !== 'string') return src;
  try {
    const bytes = await fs.promises.readFile(src);
    return bytes.byteLength === 0 ? `${src}: empty file (0 bytes)` : bytes;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'file not found' : code === 'EISDIR' ? 'is a directory, not an image file' : (e as Error).message;
    return `${src}: ${why}`;
  }
}

/** An ImageError's message for bytes read from `src`, naming the file rather than the buffer. */
function decodeReason(src: ImageSource, e: ImageError): string {
  return typeof src === 'string' ? `${src}: ${e.message.replace(/^<[^>]*>: /, '')}` : e.message;
}

/** Decodes `items` and stacks the readable ones into one normalized batch (see DecodedBatch). */
export async function decodeBatch<T extends ImageItem>(items: readonly T[], opts: DecodeOptions): Promise<DecodedBatch<T>> {
  const size = opts.size;
  const crop = opts.crop ?? size;
  if (crop > size) throw new RangeError(`crop ${crop} is larger than the decoded size ${size}`);
  const centre = (size - crop) >> 1;
  const windowOf = (it: T): [number, number] => it.crop ?? [centre, centre];
  const reasons = new Map<number, string>();
  const read = await Promise.all(items.map((it) => readSource(it.source)));
  // JPEGs already at the decode size to the native decoder (when asked); the rest through decodeImage.
  const jpegs: number[] = [];
  const other: number[] = [];
  read.forEach((r, k) => {
    if (typeof r === 'string') reasons.set(k, r);
    else if (opts.nativeJpeg && !opts.colorManaged && r instanceof Uint8Array && nativeJpeg() && isJpegOfSize(r, size)) jpegs.push(k);
    else other.push(k);
  });
  const [fromJpeg, decoded] = await Promise.all([
    jpegs.length
      ? decodeJpegBatch(
          jpegs.map((k) => read[k] as Uint8Array),
          { size, crop, crops: jpegs.map((k) => windowOf(items[k])), flips: jpegs.map((k) => items[k].flip ?? false) },
        )
      : null,
    Promise.all(
      other.map((k) =>
        decodeImage(read[k] as Uint8Array | RawImage, size, { colorManaged: opts.colorManaged }).catch((e: unknown) => {
          if (!(e instanceof ImageError)) throw e;
          reasons.set(k, decodeReason(items[k].source, e));
          return null;
        }),
      ),
    ),
  ]);
  // Rows of cat([native batch, decodeImage batch]) for each readable item.
  const rowOf = new Map<number, number>();
  let row = 0;
  jpegs.forEach((k, j) => {
    const why = fromJpeg!.failed.get(j);
    if (why) reasons.set(k, `${sourceLabel(items[k].source)}: ${why}`);
    else rowOf.set(k, row++);
  });
  const rawOk = other.filter((_, j) => decoded[j] !== null);
  const rawBatch = rawOk.length
    ? await toBatchAsync(
        decoded.filter((d): d is RawImage => d !== null),
        { crop, crops: rawOk.map((k) => windowOf(items[k])), flips: rawOk.map((k) => items[k].flip ?? false) },
      )
    : null;
  rawOk.forEach((k) => rowOf.set(k, row++));
  const rows = [...rowOf.keys()].sort((a, b) => a - b);
  const failed = [...reasons.entries()].sort(([a], [b]) => a - b).map(([index, reason]) => ({ item: items[index], index, reason }));
  const parts = [fromJpeg?.batch, rawBatch].filter((t): t is Tensor => !!t);
  if (!parts.length) return { images: null, readable: [], rows: [], failed };
  const all = parts.length === 1 ? parts[0] : Tensor.cat(parts, 0);
  const order = rows.map((k) => rowOf.get(k)!);
  const images = order.every((r, n) => r === n) ? all : all.indexSelect(0, Tensor.from(order, { dtype: 'int64' }));
  return { images, readable: rows.map((k) => items[k]), rows, failed };
}

/**
 * The loop: decodes the groups of items one batch each, `prefetch` batches ahead of the one the
 * caller works on (decoding overlaps the model's work), and yields them in order. A failure other
 * than an unreadable image (ImageError) rejects at the batch it belongs to.
 */
export async function* imageBatches<T extends ImageItem>(groups: Iterable<readonly T[]>, opts: DecodeOptions & { prefetch?: number }): AsyncGenerator<DecodedBatch<T>> {
  const ahead = Math.max(1, opts.prefetch ?? 1);
  const source = groups[Symbol.iterator]();
  const pending: Promise<DecodedBatch<T>>[] = [];
  const fill = (): void => {
    while (pending.length < ahead) {
      const next = source.next();
      if (next.done) return;
      const p = decodeBatch(next.value, opts);
      p.catch(() => undefined); // surfaces when awaited below
      pending.push(p);
    }
  };
  fill();
  while (pending.length) {
    const batch = await pending.shift()!;
    fill();
    yield batch;
  }
}

/** `items` in groups of `size` (the last one shorter). */
export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
