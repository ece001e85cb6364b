/**
 * Decoding images for the model: sharp decodes (and resizes when needed) to 8-bit RGB off the JS
 * thread, then native code crops, flips and normalizes a whole batch into one float tensor
 * (the HWC -> CHW loop in JS would be the bottleneck).
 *
 * Training: the image at `resize`×`resize` (the book resizes once to 256 beforehand; an image of
 * another size is resized here with the same Lanczos kernel), a random `crop`×`crop` window and a
 * random horizontal flip, ImageNet normalization. Inference: resized straight to `crop`×`crop`
 * with Lanczos, no crop, no flip. The book uses PIL's Lanczos; sharp's lanczos3 differs from it
 * by rounding only.
 */
import * as fs from 'fs';
import sharp from 'sharp';
import type { RawImage } from '../core/binding';
import { Tensor } from '../core/tensor';
import { dispatch } from '../core/executor';
import { native } from '../core/native';

export type { RawImage } from '../core/binding';

/** ImageNet statistics, as torchvision's pretrained models expect. */
export const IMAGENET_MEAN: readonly number[] = [0.485, 0.456, 0.406];
export const IMAGENET_STD: readonly number[] = [0.229, 0.224, 0.225];

/** Pillow's decompression-bomb limit (twice MAX_IMAGE_PIXELS): larger images are refused. */
export const MAX_PIXELS = 178_956_970;

export class ImageError extends Error {
  constructor(
    message: string,
    readonly source: string,
  ) {
    super(message);
    this.name = 'ImageError';
  }
}

/** An image file path, its encoded bytes (JPEG, PNG, ...), or raw RGB pixels. */
export type ImageSource = string | Uint8Array | RawImage;

function isRaw(src: ImageSource): src is RawImage {
  return typeof src === 'object' && !(src instanceof Uint8Array) && src !== null && 'data' in src;
}

function sourceName(src: ImageSource): string {
  if (typeof src === 'string') return src;
  if (isRaw(src)) return `<${src.width}x${src.height} RGB pixels>`;
  return `<${src.byteLength}-byte buffer>`;
}

/**
 * Decodes an image file or buffer to RGB, resized to size×size (aspect ratio not kept) unless it
 * already has that size. Corrupt, truncated, empty, non-image and oversized inputs reject with an
 * ImageError naming the source and the reason.
 */
export async function decodeImage(src: ImageSource, size: number, opts: { maxPixels?: number } = {}): Promise<RawImage> {
  const name = sourceName(src);
  if (isRaw(src)) return resizeRaw(src, size, name);
  if (typeof src !== 'string' && !(src instanceof Uint8Array)) throw new ImageError(`expected a file path, a Buffer or { data, width, height } but received ${typeof src}`, String(src));
  if (typeof src !== 'string' && src.byteLength === 0) throw new ImageError(`${name}: empty image data`, name);
  try {
    const input = typeof src === 'string' ? src : Buffer.from(src.buffer, src.byteOffset, src.byteLength);
    const img = sharp(input, { failOn: 'truncated', limitInputPixels: opts.maxPixels ?? MAX_PIXELS });
    const meta = await img.metadata();
    if (!meta.width || !meta.height) throw new Error('no image dimensions');
    let pipeline = img.removeAlpha().toColourspace('srgb');
    if (meta.hasAlpha && (meta.width !== size || meta.height !== size)) {
      // sharp resizes before it removes alpha, weighting colours by alpha; PIL's convert('RGB')
      // drops alpha first. Do the same: RGB at full size, then resize.
      const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
      if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels`);
      return await resizeRaw({ data, width: info.width, height: info.height }, size, name);
    }
    if (meta.width !== size || meta.height !== size) {
      pipeline = pipeline.resize(size, size, { fit: 'fill', kernel: 'lanczos3', fastShrinkOnLoad: false });
    }
    const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels`);
    return { data, width: info.width, height: info.height };
  } catch (e) {
    if (e instanceof ImageError) throw e;
    const msg = (e as Error).message;
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || /Input file is missing/.test(msg)) throw new ImageError(`${name}: file not found`, name);
    if (/pixel limit/i.test(msg)) throw new ImageError(`${name}: image is larger than ${opts.maxPixels ?? MAX_PIXELS} pixels (refused as a decompression bomb)`, name);
    if (/unsupported image format/i.test(msg)) {
      // libvips says the same for an empty file and a folder: tell them apart for the user.
      const stat = typeof src === 'string' ? fs.statSync(src, { throwIfNoEntry: false }) : undefined;
      if (stat?.isDirectory()) throw new ImageError(`${name}: is a directory, not an image file`, name);
      if (stat?.size === 0) throw new ImageError(`${name}: empty file (0 bytes)`, name);
      throw new ImageError(`${name}: not an image (unsupported format)`, name);
    }
    if (/empty/i.test(msg)) throw new ImageError(`${name}: empty file`, name);
    throw new ImageError(`${name}: cannot decode image (${msg.split('\n')[0]})`, name);
  }
}

async function resizeRaw(src: RawImage, size: number, name: string): Promise<RawImage> {
  const { data, width, height } = src;
  if (!(data instanceof Uint8Array) || !Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new ImageError(`${name}: raw pixels need { data: Uint8Array, width, height } with positive integer sizes`, name);
  }
  if (data.byteLength !== width * height * 3) {
    throw new ImageError(`${name}: holds ${data.byteLength} bytes but ${width}x${height} RGB needs ${width * height * 3}`, name);
  }
  if (width === size && height === size) return src;
  const out = await sharp(Buffer.from(data.buffer, data.byteOffset, data.byteLength), { raw: { width, height, channels: 3 } })
    .resize(size, size, { fit: 'fill', kernel: 'lanczos3' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { data: out.data, width: out.info.width, height: out.info.height };
}

export interface BatchLayout {
  /** Output height and width. */
  crop: number;
  /** Per image: top-left corner of the crop window (default: [0, 0]). */
  crops?: [number, number][];
  /** Per image: flip horizontally. */
  flips?: boolean[];
  mean?: readonly number[];
  std?: readonly number[];
}

function batchOptions(layout: BatchLayout) {
  return {
    outH: layout.crop,
    outW: layout.crop,
    crops: layout.crops,
    flips: layout.flips,
    mean: [...(layout.mean ?? IMAGENET_MEAN)],
    std: [...(layout.std ?? IMAGENET_STD)],
  };
}

/** Decoded images -> normalized float [N, 3, crop, crop] (on a worker thread). */
export async function toBatchAsync(images: RawImage[], layout: BatchLayout): Promise<Tensor> {
  return new Tensor((await dispatch(() => native.imagesToTensorAsync(images, batchOptions(layout))))[0]);
}

export function toBatch(images: RawImage[], layout: BatchLayout): Tensor {
  return new Tensor(native.imagesToTensor(images, batchOptions(layout))[0]);
}

/** Inference input: each image resized to size×size and normalized, as one batch. */
export async function loadForInference(sources: ImageSource[], size = 224): Promise<Tensor> {
  const images = await Promise.all(sources.map((s) => decodeImage(s, size)));
  return toBatchAsync(images, { crop: size });
}
