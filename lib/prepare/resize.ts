/**
 * The book's preprocessing, done once before training: every image of a folder resized to
 * 256 x 256 and saved under the same file name in a new folder. The book's `reshape_images` does
 * it with Pillow, one file after another:
 *
 *     image = Image.open(path); image = image.resize([256, 256], Image.ANTIALIAS)
 *     image.save(output_path, image.format)
 *
 * Here the same pixels, on all cores: the image is decoded into the mode Pillow opens it in and
 * resized with Pillow's Lanczos arithmetic (lib/data/images.ts, native/pillow), then saved as
 * Pillow saves it. Decisions, against the book's code:
 * - No conversion: the image keeps its mode (grey stays grey, CMYK stays CMYK, a palette image is
 *   resized with NEAREST as Pillow does, RGBA and LA are resampled premultiplied); the training
 *   loader converts to RGB when it reads. Embedded ICC profiles are ignored, as Pillow ignores
 *   them; `colorManaged: true` converts them to sRGB first.
 * - Format: `image.format` is None after `resize`, so Pillow picks the output format from the file
 *   name's extension, and so does this: `.jpg`/`.jpeg` are written as JPEG whatever the input
 *   was, `.png` as PNG, and so on. What Pillow cannot save fails the same way (an RGBA image named
 *   `.jpg`: "cannot write mode RGBA as JPEG"), and so does an unknown extension.
 * - JPEG: Pillow's defaults, quality 75 with 4:2:0 chroma subsampling and no ICC profile, written
 *   by libjpeg-turbo with Pillow's settings, so that the files decode to the book's pixels.
 *   `jpegQuality` and `subsampling` make better files (90 and 4:4:4 cost about 2x the bytes). CMYK
 *   is the exception: libjpeg-turbo's TurboJPEG API writes it as YCCK where Pillow writes plain
 *   CMYK, so its pixels differ by compression noise. Without a libjpeg-turbo build, sharp encodes.
 * - PNG and TIFF are lossless (TIFF uncompressed, as Pillow's default), written by sharp from
 *   Pillow's pixels: they decode to the book's pixels. WebP (Pillow's default quality 80) and GIF
 *   are encoded by sharp's libwebp and cgif: close to Pillow's files, not identical.
 * - Aspect ratio: not kept, as the book does.
 * - EXIF orientation: not applied, as in the book: Pillow's `Image.open` and `resize` ignore the
 *   Orientation tag, so the book's model was trained on the pixels as stored. COCO's own
 *   annotations are also given in stored-pixel coordinates. The output carries no EXIF at all
 *   (Pillow's `save` did not copy it either), so every viewer and loader sees the same pixels that
 *   training sees. `autoOrient: true` rotates instead, for custom photo sets.
 *
 * Robustness: a corrupt, truncated, zero-byte or non-image file is a failure with its reason and
 * the run goes on; an image over `maxPixels` is refused before it is decoded (decompression bombs).
 * Each output is written to a hidden temporary name (`.NAME.resize-part`) and renamed when complete,
 * so a killed run never leaves a half file under a final name; temporaries left by a killed run are
 * removed at the start of the next one. A file whose output already exists, says size x size in
 * its header and is not cut off is skipped, so a rerun resumes; the folder records the encoding
 * settings of its first run (`.torchcap-resize.json`) and a rerun with other settings is refused,
 * so that it never mixes files of both. Errors while writing (disk full, read-only folder) are
 * not per-image problems: they stop the run with the system's message.
 *
 * Not supported: two runs writing to the same output folder at once.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Sharp } from 'sharp';
import { sharp } from '../util/sharp';
import { DecodeError, encodeJpeg, loadPixels, sniffFormat, toRGB, type PillowImage } from '../data/images';
import { jpegHeader, nativeJpeg } from '../data/jpeg';
import { checkSettings } from './resize-settings';

export interface ResizeProgress {
  /** Files considered (all regular, non-hidden files of the input folder). */
  total: number;
  /** Resized in this run. */
  done: number;
  /** Already resized by an earlier run. */
  skipped: number;
  /** Could not be read. */
  failed: number;
  /** The file just finished. */
  file: string;
  outcome: 'done' | 'skipped' | 'failed';
}

export interface ResizeOptions {
  /** Folder of source images (not recursed into; hidden files are ignored). */
  input: string;
  /** Folder for the resized images; created when missing; must differ from `input`. */
  output: string;
  /** Width and height of every output. Default 256, as in the book. */
  size?: number;
  /** Images in flight at once. Default `os.availableParallelism()`. */
  concurrency?: number;
  /** JPEG (and WebP) quality, 1..100. Default: Pillow's, 75 for JPEG (80 for WebP), as the book. */
  jpegQuality?: number;
  /** JPEG chroma subsampling. Default '4:2:0', Pillow's and so the book's. */
  subsampling?: JpegSubsampling;
  /** Convert embedded ICC profiles (and CMYK) to sRGB before resizing. Default false, as Pillow. */
  colorManaged?: boolean;
  /** Apply the EXIF Orientation tag before resizing. Default false, as PIL in the book. */
  autoOrient?: boolean;
  /**
   * Largest input accepted, in pixels (width x height). Default 178,956,970: where Pillow refuses
   * an image as a decompression bomb (twice its `MAX_IMAGE_PIXELS`).
   */
  maxPixels?: number;
  /** Called after each file. */
  onProgress?: (progress: ResizeProgress) => void;
  /** Stops taking new files; the files in flight are finished, then the call rejects. */
  signal?: AbortSignal;
}

export interface ResizeFailure {
  /** File name inside the input folder. */
  file: string;
  /** Why it could not be resized, e.g. `empty file (0 bytes)`. */
  reason: string;
}

export interface ResizeResult {
  total: number;
  done: number;
  skipped: number;
  failed: ResizeFailure[];
  /** Wall time of the run. */
  seconds: number;
}

export type JpegSubsampling = '4:4:4' | '4:2:2' | '4:2:0';

export const DEFAULT_SIZE = 256;
/** Pillow's JPEG defaults, which the book's `image.save` used. */
export const DEFAULT_JPEG_QUALITY = 75;
export const DEFAULT_SUBSAMPLING: JpegSubsampling = '4:2:0';
/** Pillow's WebP default quality. */
export const DEFAULT_WEBP_QUALITY = 80;
export const DEFAULT_MAX_PIXELS = 178_956_970;

/** Suffix of the temporary files, hidden by a leading dot: `.NAME.resize-part`. */
const PART_SUFFIX = '.resize-part';

/** Output formats by file extension, as Pillow's `save` picks them; `bmp` is Pillow's but not sharp's. */
const FORMAT_OF_EXTENSION: Record<string, string> = {
  '.jpg': 'jpeg', '.jpeg': 'jpeg', '.jpe': 'jpeg', '.jfif': 'jpeg',
  '.png': 'png', '.webp': 'webp', '.gif': 'gif', '.tif': 'tiff', '.tiff': 'tiff',
  '.bmp': 'bmp', '.dib': 'bmp',
};

/** A problem with one input file: counted and reported, the run goes on. */
class InputProblem extends Error {}

function checkPositiveInteger(name: string, value: unknown, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    const shown = typeof value === 'number' ? String(value) : `${typeof value} ${JSON.stringify(value)}`;
    throw new TypeError(`Expected an integer between 1 and ${max} for ${name} but received ${shown}`);
  }
  return value;
}

/** Width and height from the file's header, before anything is decoded (0 x 0 when unreadable: decoding then says why). */
async function headerSize(bytes: Buffer, format: string | undefined): Promise<[number, number]> {
  const h = format === 'jpeg' ? jpegHeader(bytes) : undefined;
  if (h !== undefined) return h ? [h.width, h.height] : [0, 0];
  try {
    const meta = await sharp(bytes, { limitInputPixels: false, failOn: 'none' }).metadata();
    return [meta.width ?? 0, meta.pageHeight ?? meta.height ?? 0];
  } catch {
    return [0, 0];
  }
}

/** Bytes a pixel has in each mode Pillow saves as PNG or TIFF (P: as held, RGB or RGBA). */
function rawChannels(img: PillowImage): 1 | 2 | 3 | 4 {
  switch (img.mode) {
    case '1': case 'L': case 'I': case 'I;16': return 1;
    case 'LA': return 2;
    case 'RGB': return 3;
    case 'P': return img.data.length === img.width * img.height * 4 ? 4 : 3;
    default: return 4;
  }
}

/** sharp reading Pillow's pixels as they are (16-bit for I and I;16, I clipped to 0..65535 as Pillow packs it). */
function sharpOf(img: PillowImage): Sharp {
  const channels = rawChannels(img);
  const raw = { width: img.width, height: img.height, channels };
  if (img.mode === 'I' || img.mode === 'I;16') {
    const src = img.mode === 'I' ? new Int32Array(img.data.buffer, img.data.byteOffset, img.width * img.height) : new Uint16Array(img.data.buffer, img.data.byteOffset, img.width * img.height);
    const u16 = new Uint16Array(src.length);
    for (let i = 0; i < src.length; i++) u16[i] = Math.min(65535, Math.max(0, src[i]));
    return sharp(u16, { raw }).toColourspace('grey16');
  }
  return channels <= 2 ? sharp(img.data, { raw }).toColourspace('b-w') : sharp(img.data, { raw });
}

/**
 * The output file, as Pillow's save writes `img` in `format`; what Pillow refuses to write is this
 * image's failure with Pillow's reason.
 */
async function encode(img: PillowImage, format: string, o: { quality?: number; subsampling: JpegSubsampling }): Promise<Buffer> {
  switch (format) {
    case 'jpeg': {
      if (!['1', 'L', 'RGB', 'CMYK'].includes(img.mode)) throw new InputProblem(`cannot write mode ${img.mode} as JPEG (Pillow cannot either; name the file .png)`);
      const quality = o.quality ?? DEFAULT_JPEG_QUALITY;
      if (nativeJpeg()) return encodeJpeg(img, { quality, subsampling: o.subsampling });
      if (img.mode === 'CMYK') throw new InputProblem('CMYK JPEG output needs a build with libjpeg-turbo');
      return sharpOf(img).jpeg({ quality, chromaSubsampling: o.subsampling }).toBuffer();
    }
    case 'png':
    case 'tiff': {
      if (img.mode === 'CMYK') throw new InputProblem(`cannot write mode CMYK as ${format.toUpperCase()} (name the file .jpg)`);
      const s = sharpOf(img);
      return (format === 'png' ? s.png() : s.tiff({ compression: 'none' })).toBuffer();
    }
    case 'webp':
    case 'gif': {
      // Pillow's WebP writer takes RGB or RGBA and converts anything else; the GIF writer
      // quantizes to a palette (sharp's quantizer here, not Pillow's).
      const alpha = img.mode === 'LA' || img.mode === 'RGBA' || (img.mode === 'P' && rawChannels(img) === 4);
      let rgb = img;
      if (img.mode === 'LA') {
        rgb = { ...img, mode: 'RGBA', data: Buffer.alloc(img.width * img.height * 4) };
        for (let i = 0; i < img.width * img.height; i++) rgb.data.set([img.data[i * 2], img.data[i * 2], img.data[i * 2], img.data[i * 2 + 1]], i * 4);
      } else if (!alpha && img.mode !== 'RGB') {
        rgb = await toRGB(img);
      }
      const s = sharpOf(rgb);
      return (format === 'webp' ? s.webp({ quality: o.quality ?? DEFAULT_WEBP_QUALITY }) : s.gif()).toBuffer();
    }
    default:
      throw new InputProblem(`${format.toUpperCase()} output is not supported (sharp cannot write it); rename the file .png`);
  }
}

/**
 * Why a file could not be decoded. libvips keeps one error log for the whole process, so when
 * several images are decoded at once its message can be lost ("Unknown error") or belong to
 * another image (lovell/sharp#902, libvips/libvips#707); a cut-off file is therefore recognised
 * from its own bytes, and the decoder's words are only quoted.
 */
function decodeReason(err: unknown, edges?: Edges, format?: string): string {
  if (!(err instanceof DecodeError)) return `corrupt image: ${(err instanceof Error ? err.message : String(err)).split('\n')[0].trim()}`;
  const msg = err.message;
  if (/^not an image/.test(msg)) return 'not an image (unrecognised format)';
  if (/larger than \d+ pixels/.test(msg)) return `image too large (${msg})`;
  if (edges !== undefined && format !== undefined && !endsComplete(edges, format)) {
    return `truncated ${format.toUpperCase()}: the file (${edges.size} bytes) ends before the image does`;
  }
  const inner = /^cannot decode image \((.*)\)$/.exec(msg)?.[1];
  if (inner === undefined) return msg; // not a decoding problem: what Pillow refuses to do with it
  return /^unknown error$/i.test(inner) ? 'corrupt image (the decoder gave no details)' : `corrupt image: ${inner}`;
}

function systemReason(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'ENOENT') return 'file disappeared during the run';
  if (e.code === 'EACCES' || e.code === 'EPERM') return 'permission denied';
  if (e.code === 'EISDIR') return 'is a folder';
  return e.message ?? String(err);
}

/** The first and last bytes of a file: enough to tell whether it was cut off. */
interface Edges {
  head: Buffer;
  tail: Buffer;
  size: number;
}

async function readEdges(file: string): Promise<Edges> {
  const fh = await fs.promises.open(file, 'r');
  try {
    const { size } = await fh.stat();
    const n = Math.min(size, 16);
    const head = Buffer.alloc(n);
    const tail = Buffer.alloc(n);
    await fh.read(head, 0, n, 0);
    await fh.read(tail, 0, n, size - n);
    return { head, tail, size };
  } finally {
    await fh.close();
  }
}

/** True when the file ends as a complete file of that format ends (not cut off while written). */
function endsComplete({ head, tail, size }: Edges, format: string | undefined): boolean {
  const n = tail.length;
  switch (format) {
    case 'jpeg':
      return n >= 4 && tail[n - 2] === 0xff && tail[n - 1] === 0xd9; // EOI marker
    case 'png':
      return n >= 12 && tail.toString('latin1', n - 8, n - 4) === 'IEND';
    case 'webp':
      return n >= 12 && head.readUInt32LE(4) + 8 === size; // RIFF size
    case 'gif':
      return n >= 1 && tail[n - 1] === 0x3b; // trailer
    default:
      return true;
  }
}

/**
 * True when `file` is a finished output of an earlier run: its header says size x size and it is
 * not cut off. (Header and end checks cost well under 1 ms; decoding every output again would
 * cost several times that on a rerun over 123k files.)
 */
async function isFinishedOutput(file: string, size: number): Promise<boolean> {
  try {
    const meta = await sharp(file).metadata();
    return meta.width === size && meta.height === size && endsComplete(await readEdges(file), meta.format);
  } catch {
    return false;
  }
}

/** Lists the candidate files: regular files (or links to them) whose names do not start with a dot. */
async function listImages(dir: string): Promise<string[]> {
  const entries = await fs.promises.readdir(dir, { withFileTypes: true });
  const names: string[] = [];
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    if (e.isFile()) names.push(e.name);
    else if (e.isSymbolicLink()) {
      const st = await fs.promises.stat(path.join(dir, e.name)).catch(() => undefined);
      // A dangling link is listed so that it is reported rather than silently dropped.
      if (st === undefined || st.isFile()) names.push(e.name);
    }
  }
  return names.sort();
}

/** Removes temporaries that a killed run left behind. */
async function removeStaleParts(dir: string): Promise<void> {
  for (const e of await fs.promises.readdir(dir, { withFileTypes: true })) {
    if (!e.isDirectory() && e.name.startsWith('.') && e.name.endsWith(PART_SUFFIX)) {
      await fs.promises.rm(path.join(dir, e.name), { force: true });
    }
  }
}

/**
 * Resizes every image of `input` into `output` (see the module comment). Resolves when all files
 * were tried; rejects only for problems with the folders themselves (missing input, unwritable
 * output, disk full) or when `signal` aborts.
 */
export async function resizeImages(options: ResizeOptions): Promise<ResizeResult> {
  const size = checkPositiveInteger('size', options.size ?? DEFAULT_SIZE, 16383);
  const concurrency = checkPositiveInteger('concurrency', options.concurrency ?? os.availableParallelism(), 1024);
  if (options.jpegQuality !== undefined) checkPositiveInteger('jpegQuality', options.jpegQuality, 100);
  const subsampling = options.subsampling ?? DEFAULT_SUBSAMPLING;
  if (!['4:4:4', '4:2:2', '4:2:0'].includes(subsampling)) {
    throw new TypeError(`Expected '4:4:4', '4:2:2' or '4:2:0' for subsampling but received ${JSON.stringify(subsampling)}`);
  }
  const colorManaged = options.colorManaged ?? false;
  const maxPixels = checkPositiveInteger('maxPixels', options.maxPixels ?? DEFAULT_MAX_PIXELS);
  const autoOrient = options.autoOrient ?? false;
  const input = path.resolve(options.input);
  const output = path.resolve(options.output);
  const started = Date.now();

  const inStat = await fs.promises.stat(input).catch(() => undefined);
  if (inStat === undefined) throw new Error(`input folder not found: ${input}`);
  if (!inStat.isDirectory()) throw new Error(`input is not a folder: ${input}`);
  const outStat = await fs.promises.stat(output).catch(() => undefined);
  if (outStat !== undefined && !outStat.isDirectory()) throw new Error(`output is a file, not a folder: ${output}`);
  await fs.promises.mkdir(output, { recursive: true });
  if ((await fs.promises.realpath(input)) === (await fs.promises.realpath(output))) {
    throw new Error(`output folder must differ from the input folder (${input}): resizing in place would overwrite the originals`);
  }
  await removeStaleParts(output);
  await checkSettings(output, { quality: options.jpegQuality ?? null, subsampling, colorManaged, autoOrient });

  const files = await listImages(input);
  const result: ResizeResult = { total: files.length, done: 0, skipped: 0, failed: [], seconds: 0 };

  const resizeOne = async (name: string): Promise<'done' | 'skipped'> => {
    const src = path.join(input, name);
    const dst = path.join(output, name);
    const st = await fs.promises.stat(src).catch((e: unknown) => {
      throw new InputProblem(systemReason(e));
    });
    if (st.size === 0) throw new InputProblem('empty file (0 bytes)');
    if (await isFinishedOutput(dst, size)) return 'skipped';

    const ext = path.extname(name).toLowerCase();
    const outFormat = FORMAT_OF_EXTENSION[ext];
    if (outFormat === undefined) {
      throw new InputProblem(`unknown file extension '${ext}' (the output format is chosen from the file name, as Pillow's save does: .jpg, .png, .webp, .gif, .tif)`);
    }
    const bytes = await fs.promises.readFile(src).catch((e: unknown) => {
      throw new InputProblem(systemReason(e));
    });
    const format = sniffFormat(bytes);
    const [width, height] = await headerSize(bytes, format);
    if (width * height > maxPixels) {
      throw new InputProblem(`image too large: ${width} x ${height} = ${width * height} pixels, over the limit of ${maxPixels} (a decompression bomb?)`);
    }
    let image: PillowImage;
    try {
      const orientation = autoOrient ? ((await sharp(bytes).metadata()).orientation ?? 1) : 1;
      image = await loadPixels(bytes, { size: [size, size], filter: 'lanczos', maxPixels, colorManaged, orientation, failOn: 'error' });
    } catch (e) {
      throw new InputProblem(decodeReason(e, await readEdges(src).catch(() => undefined), format));
    }
    const encoded = await encode(image, outFormat, { quality: options.jpegQuality, subsampling });
    // Writing errors are the output folder's problem, not this image's: they end the run.
    const part = path.join(output, `.${name}${PART_SUFFIX}`);
    try {
      await fs.promises.writeFile(part, encoded);
      await fs.promises.rename(part, dst);
    } catch (e) {
      await fs.promises.rm(part, { force: true }).catch(() => undefined);
      throw e;
    }
    return 'done';
  };

  let next = 0;
  let fatal: unknown;
  const worker = async (): Promise<void> => {
    while (fatal === undefined && !options.signal?.aborted && next < files.length) {
      const name = files[next++];
      let outcome: ResizeProgress['outcome'];
      try {
        outcome = await resizeOne(name);
        if (outcome === 'done') result.done++;
        else result.skipped++;
      } catch (e) {
        if (!(e instanceof InputProblem)) {
          fatal ??= e;
          return;
        }
        outcome = 'failed';
        result.failed.push({ file: name, reason: e.message });
      }
      options.onProgress?.({
        total: files.length,
        done: result.done,
        skipped: result.skipped,
        failed: result.failed.length,
        file: name,
        outcome,
      });
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(files.length, 1)) }, worker));
  if (fatal !== undefined) {
    const e = fatal as NodeJS.ErrnoException;
    throw new Error(`cannot write to ${output}: ${e.message ?? String(fatal)}`, { cause: fatal });
  }
  options.signal?.throwIfAborted();
  result.failed.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
  result.seconds = (Date.now() - started) / 1000;
  return result;
}
