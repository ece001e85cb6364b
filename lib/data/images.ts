/**
 * Images for the model, with the book's pixels. The book reads every image with Pillow:
 * `Image.open(path).convert('RGB')`, then for inference `resize([224, 224], Image.LANCZOS)`
 * (training reads the 256 x 256 files that `torchcap resize` wrote, crops 224 and may flip), then
 * ToTensor and Normalize. Here the same pixels come from native code written after Pillow 9.4
 * (native/pillow): JPEGs are decoded by libjpeg-turbo with Pillow's settings, other formats by
 * sharp into the mode Pillow would open them in (no colour conversion), then Pillow's
 * convert('RGB') and Image.resize, all off the JS thread; the tests compare with Pillow live.
 * Embedded ICC profiles are ignored, as Pillow ignores them; `colorManaged: true` converts them
 * (and CMYK) to sRGB instead, for models trained that way.
 *
 * Native code then crops, flips and normalizes a whole batch into one float tensor (the HWC ->
 * CHW loop in JS would be the bottleneck). Training: the image at `resize` x `resize` (an image of
 * another size is resized with Lanczos first), a `crop` x `crop` window and a horizontal flip,
 * ImageNet normalization. Inference: resized straight to `crop` x `crop`, no crop, no flip.
 */
import * as fs from 'fs';
import * as os from 'os';
import type { Metadata } from 'sharp';
import { sharp } from '../util/sharp';
import type { RawImage, PillowImage, PillowMode, ResampleFilter } from '../core/binding';
import { Tensor } from '../core/tensor';
import { dispatch, Executor } from '../core/executor';
import { native } from '../core/native';
import { allInOrder } from '../util/promises';

export type { RawImage, PillowImage, PillowMode, ResampleFilter } from '../core/binding';

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

export interface DecodeOptions {
  /** Larger images are refused before they are decoded. Default MAX_PIXELS (Pillow's limit). */
  maxPixels?: number;
  /**
   * Convert embedded ICC profiles (and CMYK) to sRGB. Default false: Pillow ignores profiles,
   * so the book's model was trained on the stored values.
   */
  colorManaged?: boolean;
}

// ---------- native image threads ----------

let pool: Executor[] | undefined;

/**
 * Runs a native image call on the least busy of a pool of native threads (one a core, made on
 * first use): decoding and resizing many images at once uses every core, and never waits behind
 * a model's work on its own executor.
 */
function onImageThread<T>(start: () => Promise<T>): Promise<T> {
  pool ??= Array.from({ length: Math.max(1, Math.min(os.availableParallelism(), 32)) }, () => new Executor());
  let exec = pool[0];
  for (const e of pool) if (e.pending < exec.pending) exec = e;
  return exec.run(() => dispatch(start));
}

// ---------- reading an encoded image into Pillow's mode ----------

/** The format of encoded bytes, from their signature (undefined: not one Pillow and sharp both read). */
export function sniffFormat(b: Uint8Array): 'jpeg' | 'png' | 'gif' | 'webp' | 'tiff' | undefined {
  const ascii = (start: number, end: number) => String.fromCharCode(...b.subarray(start, end));
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length >= 8 && b[0] === 0x89 && ascii(1, 4) === 'PNG') return 'png';
  if (b.length >= 6 && (ascii(0, 6) === 'GIF87a' || ascii(0, 6) === 'GIF89a')) return 'gif';
  if (b.length >= 12 && ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return 'webp';
  if (b.length >= 4 && (ascii(0, 4) === 'II*\0' || ascii(0, 4) === 'MM\0*')) return 'tiff';
  return undefined;
}

/** A decoding problem with its reason, e.g. `not an image (unsupported format)`. */
export class DecodeError extends Error {}

export interface PixelOptions extends DecodeOptions {
  /** Image.convert('RGB') after decoding. */
  rgb?: boolean;
  /** Image.resize([width, height], filter) after converting; unchanged when absent. */
  size?: [number, number];
  /** Default 'lanczos' (the book's ANTIALIAS). */
  filter?: ResampleFilter;
  /** Undo this EXIF Orientation first (1..8; default 1: the stored pixels, as Pillow gives them). */
  orientation?: number;
  /** sharp's decoding strictness for formats other than JPEG. Default 'truncated'. */
  failOn?: 'truncated' | 'error';
}

/**
 * Encoded image bytes to Pillow's pixels: decoded into the mode `Image.open` gives, then oriented,
 * converted and resized as `opts` asks. Rejects with a DecodeError saying why.
 */
export async function loadPixels(bytes: Uint8Array, opts: PixelOptions = {}): Promise<PillowImage> {
  const maxPixels = opts.maxPixels ?? MAX_PIXELS;
  const [width, height] = opts.size ?? [undefined, undefined];
  const steps = { rgb: opts.rgb ?? false, width, height, filter: opts.filter ?? 'lanczos', orientation: opts.orientation ?? 1 };
  const format = sniffFormat(bytes);
  if (format === 'jpeg' && native.hasTurboJpeg && !opts.colorManaged) {
    const header = native.jpegSize!(bytes);
    if (header && header.width * header.height > maxPixels) throw tooLarge(header.width, header.height, maxPixels);
    try {
      return tidy(await onImageThread(() => native.pillowImage(bytes, { ...steps, maxPixels })));
    } catch (e) {
      throw new DecodeError((e as Error).message);
    }
  }
  const input = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let meta: Metadata;
  try {
    meta = await sharp(input, { limitInputPixels: false, failOn: 'none' }).metadata();
  } catch (e) {
    const msg = (e as Error).message;
    if (/unsupported image format/i.test(msg)) throw new DecodeError('not an image (unsupported format)');
    throw new DecodeError(`cannot decode image (${msg.split('\n')[0]})`);
  }
  if (meta.width && meta.height && meta.width * (meta.pageHeight ?? meta.height) > maxPixels) throw tooLarge(meta.width, meta.pageHeight ?? meta.height, maxPixels);
  let image: PillowImage;
  try {
    image = opts.colorManaged ? await colourManaged(input, opts) : await pillowMode(input, format, meta, opts);
  } catch (e) {
    if (e instanceof DecodeError) throw e;
    throw new DecodeError(`cannot decode image (${(e as Error).message.split('\n')[0]})`);
  }
  try {
    return tidy(await onImageThread(() => native.pillowImage(image, steps)));
  } catch (e) {
    throw new DecodeError((e as Error).message);
  }
}

function tooLarge(width: number, height: number, maxPixels: number): DecodeError {
  return new DecodeError(`image is larger than ${maxPixels} pixels (refused as a decompression bomb): ${width}x${height}`);
}

function tidy(img: PillowImage): PillowImage {
  return { data: img.data, width: img.width, height: img.height, mode: img.mode };
}

/** sharp's pixels in colour space `space`, unconverted (no ICC transform, no CMYK profile). */
async function sharpRaw(input: Buffer, opts: PixelOptions, space: string, depth: 'uchar' | 'ushort') {
  const { data, info } = await sharp(input, { ignoreIcc: true, failOn: opts.failOn ?? 'truncated', limitInputPixels: false })
    .pipelineColourspace(space)
    .toColourspace(space)
    .raw({ depth })
    .toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

/** Keeps `keep` of every pixel's `channels` bytes (in that order); `map` transforms each kept byte. */
function pick(data: Uint8Array, channels: number, keep: number[], map?: (v: number) => number): Buffer {
  const n = data.length / channels;
  const out = Buffer.allocUnsafe(n * keep.length);
  for (let i = 0, o = 0; i < n; i++) for (const c of keep) out[o++] = map ? map(data[i * channels + c]) : data[i * channels + c];
  return out;
}

/** 16-bit samples (host order) to their high bytes, keeping `keep` of every pixel's `channels`. */
function high(data: Buffer, channels: number, keep: number[]): Buffer {
  const u16 = new Uint16Array(data.buffer, data.byteOffset, data.length / 2);
  const n = u16.length / channels;
  const out = Buffer.allocUnsafe(n * keep.length);
  for (let i = 0, o = 0; i < n; i++) for (const c of keep) out[o++] = u16[i * channels + c] >> 8;
  return out;
}

/** PNG's bit depth and colour type (IHDR). */
function pngHeader(b: Uint8Array): { depth: number; type: number } {
  return { depth: b[24], type: b[25] };
}

/**
 * The palette and transparent index of a GIF's first frame (its local palette, else the global
 * one), read from the file: libvips gives transparent pixels colour 0, Pillow their palette colour.
 */
function gifFirstFrame(b: Uint8Array): { palette?: Uint8Array; transparent?: number } {
  const table = (at: number, flags: number) => (flags & 0x80 ? b.subarray(at, at + 3 * (2 << (flags & 7))) : undefined);
  let palette = table(13, b[10]);
  let p = 13 + (palette?.length ?? 0);
  let transparent: number | undefined;
  while (p < b.length) {
    if (b[p] === 0x2c) {
      const local = table(p + 10, b[p + 9]);
      return { palette: local ?? palette, transparent };
    }
    if (b[p] !== 0x21) break;
    if (b[p + 1] === 0xf9 && b[p + 2] === 4 && b[p + 3] & 1) transparent = b[p + 6];
    p += 2;
    while (p < b.length && b[p] !== 0) p += b[p] + 1; // data sub-blocks
    p++;
  }
  return { palette, transparent };
}

/** Pillow opens a GIF whose palette is the grey ramp (entry i is (i, i, i)), or has none, as L. */
function isGreyRamp(palette: Uint8Array | undefined): boolean {
  if (!palette) return true;
  for (let i = 0; i < palette.length / 3; i++) if (palette[i * 3] !== i || palette[i * 3 + 1] !== i || palette[i * 3 + 2] !== i) return false;
  return true;
}

/**
 * Decodes with sharp into the mode Pillow 9.4's plugins open the file in, with Pillow's reading
 * of 16-bit samples (the high byte, or I for 16-bit grey PNG) and of transparency (kept for P,
 * dropped for L and RGB, whose tRNS Pillow keeps aside).
 */
async function pillowMode(input: Buffer, format: string | undefined, meta: Metadata, opts: PixelOptions): Promise<PillowImage> {
  const space = meta.space ?? 'srgb';
  const sized = (data: Buffer, r: { width: number; height: number }, mode: PillowMode): PillowImage => ({ data, width: r.width, height: r.height, mode });
  if (format === 'png') {
    const { depth, type } = pngHeader(input);
    if (type === 0 && depth === 16) {
      const r = await sharpRaw(input, opts, 'grey16', 'ushort');
      const u16 = new Uint16Array(r.data.buffer, r.data.byteOffset, r.data.length / 2);
      const i32 = new Int32Array(r.width * r.height);
      for (let i = 0; i < i32.length; i++) i32[i] = u16[i * r.channels];
      return sized(Buffer.from(i32.buffer), r, 'I');
    }
    if (type === 0) {
      const r = await sharpRaw(input, opts, 'b-w', 'uchar');
      return sized(pick(r.data, r.channels, [0]), r, depth === 1 ? '1' : 'L');
    }
    if (type === 4 && depth === 16) {
      const r = await sharpRaw(input, opts, 'grey16', 'ushort');
      return sized(high(r.data, r.channels, [0, 0, 0, 1]), r, 'RGBA');
    }
    if (type === 4) {
      const r = await sharpRaw(input, opts, 'srgb', 'uchar');
      return sized(pick(r.data, r.channels, [0, 3]), r, 'LA');
    }
    const deep = depth === 16;
    const r = await sharpRaw(input, opts, deep ? 'rgb16' : 'srgb', deep ? 'ushort' : 'uchar');
    const keep = type === 2 ? [0, 1, 2] : r.channels === 4 ? [0, 1, 2, 3] : [0, 1, 2];
    const data = deep ? high(r.data, r.channels, keep) : pick(r.data, r.channels, keep);
    return sized(data, r, type === 3 ? 'P' : type === 2 ? 'RGB' : 'RGBA');
  }
  if (format === 'gif') {
    const r = await sharpRaw(input, opts, 'srgb', 'uchar');
    const frame = gifFirstFrame(input);
    if (r.channels === 4 && frame.palette && frame.transparent !== undefined) {
      const colour = frame.palette.subarray(frame.transparent * 3, frame.transparent * 3 + 3);
      for (let i = 0; i < r.data.length; i += 4) if (r.data[i + 3] === 0) r.data.set(colour, i);
    }
    if (isGreyRamp(frame.palette)) return sized(pick(r.data, r.channels, [0]), r, 'L');
    return sized(pick(r.data, r.channels, r.channels === 4 ? [0, 1, 2, 3] : [0, 1, 2]), r, 'P');
  }
  const alpha = meta.hasAlpha ?? false;
  switch (space) {
    case 'b-w': {
      if (alpha) {
        const r = await sharpRaw(input, opts, 'srgb', 'uchar');
        return sized(pick(r.data, r.channels, [0, 3]), r, 'LA');
      }
      const r = await sharpRaw(input, opts, 'b-w', 'uchar');
      return sized(pick(r.data, r.channels, [0]), r, meta.bitsPerSample === 1 ? '1' : 'L');
    }
    case 'grey16': {
      const r = await sharpRaw(input, opts, 'grey16', 'ushort');
      const u16 = new Uint16Array(r.data.buffer, r.data.byteOffset, r.data.length / 2);
      const out = new Uint16Array(r.width * r.height);
      for (let i = 0; i < out.length; i++) out[i] = u16[i * r.channels];
      return sized(Buffer.from(out.buffer), r, 'I;16');
    }
    case 'cmyk': {
      const r = await sharpRaw(input, opts, 'cmyk', 'uchar');
      return sized(pick(r.data, r.channels, [0, 1, 2, 3]), r, 'CMYK');
    }
    case 'rgb16': {
      const r = await sharpRaw(input, opts, 'rgb16', 'ushort');
      return sized(high(r.data, r.channels, alpha ? [0, 1, 2, 3] : [0, 1, 2]), r, alpha ? 'RGBA' : 'RGB');
    }
    default: {
      const r = await sharpRaw(input, opts, 'srgb', 'uchar');
      const mode: PillowMode = meta.isPalette ? 'P' : r.channels === 4 ? 'RGBA' : 'RGB';
      return sized(pick(r.data, r.channels, r.channels === 4 ? [0, 1, 2, 3] : [0, 1, 2]), r, mode);
    }
  }
}

/** The opt-in colour-managed reading: embedded profiles (and CMYK) converted to sRGB by sharp. */
async function colourManaged(input: Buffer, opts: PixelOptions): Promise<PillowImage> {
  const { data, info } = await sharp(input, { failOn: opts.failOn ?? 'truncated', limitInputPixels: false })
    .toColourspace('srgb')
    .raw()
    .toBuffer({ resolveWithObject: true });
  const alpha = info.channels === 4;
  return { data: alpha ? data : pick(data, info.channels, [0, 1, 2]), width: info.width, height: info.height, mode: alpha ? 'RGBA' : 'RGB' };
}

/**
 * A JPEG file as Pillow's `save` writes one (modes 1, L, RGB and CMYK), on an image thread.
 * Needs a libjpeg-turbo build (`native.hasTurboJpeg`).
 */
export async function encodeJpeg(img: PillowImage, opts: { quality: number; subsampling: '4:4:4' | '4:2:2' | '4:2:0' }): Promise<Buffer> {
  if (!native.pillowEncodeJpeg) throw new Error('this build has no native JPEG encoding (libjpeg-turbo was not found at build time)');
  const encode = native.pillowEncodeJpeg;
  return onImageThread(() => encode(img, opts));
}

/** Pillow's convert('RGB') of an image, on an image thread. */
export async function toRGB(img: PillowImage): Promise<PillowImage> {
  return tidy(await onImageThread(() => native.pillowImage(img, { rgb: true })));
}

// ---------- the model's input ----------

/**
 * Decodes an image file or buffer to RGB as the book's `Image.open(...).convert('RGB')` does,
 * resized to size x size with Lanczos (aspect ratio not kept) unless it already has that size.
 * Corrupt, truncated, empty, non-image and oversized inputs reject with an ImageError naming the
 * source and the reason.
 */
export async function decodeImage(src: ImageSource, size: number, opts: DecodeOptions = {}): Promise<RawImage> {
  const name = sourceName(src);
  if (isRaw(src)) return resizeRaw(src, size, name);
  if (typeof src !== 'string' && !(src instanceof Uint8Array)) throw new ImageError(`expected a file path, a Buffer or { data, width, height } but received ${typeof src}`, String(src));
  let bytes: Uint8Array;
  if (typeof src === 'string') {
    try {
      bytes = await fs.promises.readFile(src);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new ImageError(`${name}: file not found`, name);
      if (code === 'EISDIR') throw new ImageError(`${name}: is a directory, not an image file`, name);
      throw new ImageError(`${name}: cannot read the file (${(e as Error).message})`, name);
    }
    if (bytes.byteLength === 0) throw new ImageError(`${name}: empty file (0 bytes)`, name);
  } else {
    bytes = src;
    if (bytes.byteLength === 0) throw new ImageError(`${name}: empty image data`, name);
  }
  try {
    const img = await loadPixels(bytes, { ...opts, rgb: true, size: [size, size] });
    return { data: img.data, width: img.width, height: img.height };
  } catch (e) {
    if (e instanceof DecodeError) throw new ImageError(`${name}: ${e.message}`, name);
    throw e;
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
  const out = await onImageThread(() => native.pillowImage({ data, width, height, mode: 'RGB' }, { width: size, height: size, filter: 'lanczos' }));
  return { data: out.data, width: out.width, height: out.height };
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

/** Inference input: each image resized to size×size and normalized, as one batch (the book's load_image + transform). */
export async function loadForInference(sources: ImageSource[], size = 224, opts: DecodeOptions = {}): Promise<Tensor> {
  // the first unreadable source in order is the one named, whichever failed first
  const images = await allInOrder(sources.map((s) => decodeImage(s, size, opts)));
  return toBatchAsync(images, { crop: size });
}
