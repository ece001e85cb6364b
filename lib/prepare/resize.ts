/**
 * The book's preprocessing, done once before training: every image of a folder resized to
 * 256 x 256 (aspect ratio not kept, antialiased) and saved under the same file name in a new
 * folder. The book does it with PIL, `image.resize([256, 256], Image.ANTIALIAS)` then
 * `image.save(...)`, one file after another; here sharp (libvips) does it on all cores.
 *
 * Decisions, against what the book's PIL code did:
 * - Kernel: Lanczos-3 (`kernel: 'lanczos3'`), the filter behind PIL's ANTIALIAS (= LANCZOS). Like
 *   PIL, libvips widens the kernel by the reduction factor, so downscaling is antialiased. JPEG
 *   shrink-on-load (decoding at 1/2, 1/4, 1/8 scale inside libjpeg) is limited with
 *   `fastShrinkOnLoad: false` so that at least a factor of two is left to the Lanczos step: PIL
 *   decodes at full size too. COCO images are at most 640 px, so they reach 256 px by Lanczos alone.
 * - Aspect ratio: not kept (`fit: 'fill'`), as the book does.
 * - EXIF orientation: not applied, as in the book: PIL's `Image.open` and `resize` ignore the
 *   Orientation tag, so the book's model was trained on the pixels as stored. COCO's own
 *   annotations are also given in stored-pixel coordinates. The output carries no EXIF at all (sharp
 *   drops metadata by default, PIL's `save` did not copy it either), so every viewer and loader sees
 *   the same pixels that training sees. `autoOrient: true` rotates instead, for custom photo sets.
 * - Format: each file keeps its name and its real format (JPEG stays JPEG, PNG stays PNG, also
 *   WebP, GIF, TIFF); other formats are reported as failures. Grey, CMYK, 16-bit and ICC-tagged
 *   inputs come out as 8-bit sRGB (the book's loader converts every image to RGB anyway).
 * - JPEG quality: 90 with 4:4:4 chroma (no chroma subsampling), where PIL's default was 75 with
 *   4:2:0. The files are an intermediate that every epoch decodes again, and COCO's originals are
 *   themselves 4:4:4: on the 50 COCO photos of the test data, re-encoding the 256 x 256 result costs
 *   32.4 dB PSNR at 75/4:2:0 (12.7 KB a file), 35.2 dB at 90/4:2:0 (21.4 KB) and 37.4 dB at 90/4:4:4
 *   (27.2 KB); that is about 3.3 GB for the 123,287 images of train2014 + val2014, a sixth of the
 *   originals. `jpegQuality` changes it.
 *
 * Robustness: a corrupt, truncated, zero-byte or non-image file is a failure with its reason and
 * the run goes on; an image over `maxPixels` is refused before it is decoded (decompression bombs).
 * Each output is written to a hidden temporary name (`.NAME.resize-part`) and renamed when complete,
 * so a killed run never leaves a half file under a final name; temporaries left by a killed run are
 * removed at the start of the next one. A file whose output already exists, says size x size in
 * its header and is not cut off is skipped, so a rerun resumes. Errors while writing (disk full, read-only folder) are
 * not per-image problems: they stop the run with the system's message.
 *
 * Not supported: two runs writing to the same output folder at once.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp, { type FormatEnum, type Metadata } from 'sharp';

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
  /** JPEG (and WebP) quality, 1..100. Default 90; see the module comment. */
  jpegQuality?: number;
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

export const DEFAULT_SIZE = 256;
export const DEFAULT_JPEG_QUALITY = 90;
export const DEFAULT_MAX_PIXELS = 178_956_970;

/** Suffix of the temporary files, hidden by a leading dot: `.NAME.resize-part`. */
const PART_SUFFIX = '.resize-part';

/** Formats written back as they came. */
const WRITABLE = new Set(['jpeg', 'png', 'webp', 'gif', 'tiff']);

/** A problem with one input file: counted and reported, the run goes on. */
class InputProblem extends Error {}

function checkPositiveInteger(name: string, value: unknown, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    const shown = typeof value === 'number' ? String(value) : `${typeof value} ${JSON.stringify(value)}`;
    throw new TypeError(`Expected an integer between 1 and ${max} for ${name} but received ${shown}`);
  }
  return value;
}

/**
 * Why a file could not be decoded. libvips keeps one error log for the whole process, so when
 * several images are decoded at once its message can be lost ("Unknown error") or belong to
 * another image (lovell/sharp#902, libvips/libvips#707); a cut-off file is therefore recognised
 * from its own bytes, and the decoder's words are only quoted.
 */
function decodeReason(err: unknown, edges?: Edges, format?: string): string {
  const msg = (err instanceof Error ? err.message : String(err)).split('\n')[0].trim();
  if (/unsupported image format/i.test(msg) && format === undefined) return 'not an image (unrecognised format)';
  if (/exceeds pixel limit/i.test(msg)) return 'image too large (pixel limit exceeded)';
  if (edges !== undefined && format !== undefined && !endsComplete(edges, format)) {
    return `truncated ${format.toUpperCase()}: the file (${edges.size} bytes) ends before the image does`;
  }
  return /^unknown error$/i.test(msg) ? 'corrupt image (the decoder gave no details)' : `corrupt image: ${msg}`;
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
  const quality = checkPositiveInteger('jpegQuality', options.jpegQuality ?? DEFAULT_JPEG_QUALITY, 100);
  const maxPixels = checkPositiveInteger('maxPixels', options.maxPixels ?? DEFAULT_MAX_PIXELS);
  const autoOrient = options.autoOrient ?? false;
  const input = path.resolve(options.input);
  const output = path.resolve(options.output);
  const started = Date.now();

  const inStat = await fs.promises.stat(input).catch(() => undefined);
  if (inStat === undefined) throw new Error(`input folder not found: ${input}`);
  if (!inStat.isDirectory()) throw new Error(`input is not a folder: ${input}`);
  await fs.promises.mkdir(output, { recursive: true });
  if ((await fs.promises.realpath(input)) === (await fs.promises.realpath(output))) {
    throw new Error(`output folder must differ from the input folder (${input}): resizing in place would overwrite the originals`);
  }
  await removeStaleParts(output);

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

    let meta: Metadata;
    try {
      meta = await sharp(src).metadata();
    } catch (e) {
      throw new InputProblem(decodeReason(e));
    }
    const format = meta.format;
    if (format === undefined || !WRITABLE.has(format)) {
      throw new InputProblem(`unsupported format ${format ?? 'unknown'} (JPEG, PNG, WebP, GIF and TIFF are resized)`);
    }
    if (meta.width !== undefined && meta.height !== undefined && meta.width * meta.height > maxPixels) {
      throw new InputProblem(
        `image too large: ${meta.width} x ${meta.height} = ${meta.width * meta.height} pixels, over the limit of ${maxPixels} (a decompression bomb?)`,
      );
    }
    let encoded: Buffer;
    try {
      let pipeline = sharp(src, { failOn: 'error', limitInputPixels: maxPixels, autoOrient }).resize(size, size, {
        fit: 'fill',
        kernel: 'lanczos3',
        fastShrinkOnLoad: false,
      });
      if (format === 'jpeg') pipeline = pipeline.jpeg({ quality, chromaSubsampling: '4:4:4' });
      else if (format === 'webp') pipeline = pipeline.webp({ quality });
      else pipeline = pipeline.toFormat(format as keyof FormatEnum);
      encoded = await pipeline.toBuffer();
    } catch (e) {
      throw new InputProblem(decodeReason(e, await readEdges(src).catch(() => undefined), format));
    }
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
