/**
 * Getting the COCO 2014 data the book trains on: the image zips `train2014.zip` (13 GB) and
 * `val2014.zip` (6 GB) and the caption annotations, downloaded over HTTP with resume, checked and
 * extracted. The book runs `wget` then `unzip`; this does the same with these guarantees:
 *
 * - Nothing half-written under a final name: a download goes to `NAME.part` and is renamed once
 *   its size is verified; each extracted file goes to a hidden temporary and is renamed once its
 *   size and CRC-32 are verified.
 * - Resumable: a rerun continues `NAME.part` with an HTTP Range request, skips a finished zip, and
 *   skips extracted files that already have the right size.
 * - HTTP answers are checked: 200 or 206 only (206 must carry a Content-Range that starts where
 *   the partial file ends); a 200 to a Range request (a server that ignores Range) restarts from
 *   zero; a 416 means the partial file is complete or does not fit and is started again; the size
 *   announced (Content-Length, Content-Range) must match the size expected; an HTML page instead
 *   of the file is refused. Dropped connections, resets and 5xx answers are retried, resuming
 *   where they stopped.
 * - Zip entries that would land outside the destination (`../x`, `/x`, `C:/x`) or are links are
 *   refused before anything is written (yauzl validates names; the resolved path is checked again).
 *
 * Uses Node's built-in fetch (undici) and yauzl.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Transform } from 'stream';
import { pipeline } from 'stream/promises';
import { setTimeout as sleep } from 'timers/promises';
import * as zlib from 'zlib';
import * as yauzl from 'yauzl';

/** A download that failed; `retryable` tells whether trying again may help. */
export class DownloadError extends Error {
  override name = 'DownloadError';
  constructor(
    message: string,
    readonly url: string,
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface DownloadProgress {
  url: string;
  /** Bytes in the partial file so far (including those of earlier runs). */
  received: number;
  /** The file's size when known. */
  total?: number;
}

export interface DownloadOptions {
  /** The exact size of the file; the download fails when the server announces or sends another. */
  expectedSize?: number;
  onProgress?: (progress: DownloadProgress) => void;
  /** Things worth telling the user: a retry, a restart from zero. */
  onNotice?: (message: string) => void;
  signal?: AbortSignal;
  /** Attempts in a row that may end without a new byte before giving up. Default 5. */
  retries?: number;
  /** Wait before the first retry, doubled each time (up to 30 s). Default 1000 ms. */
  retryDelayMs?: number;
  /** An attempt that receives nothing for this long is dropped and retried. Default 60000 ms. */
  stallTimeoutMs?: number;
}

export interface DownloadResult {
  path: string;
  bytes: number;
  /** 'complete': the file was already there; nothing was fetched. */
  status: 'downloaded' | 'complete';
  /** Bytes that a previous run had already fetched into `NAME.part`. */
  resumedFrom: number;
  /** HTTP requests made. */
  requests: number;
}

const MAX_RETRY_DELAY_MS = 30_000;

function statOrUndefined(p: string): Promise<fs.Stats | undefined> {
  return fs.promises.stat(p).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined;
    throw e;
  });
}

function checkSize(name: string, value: number | undefined): void {
  if (value !== undefined && (!Number.isSafeInteger(value) || value < 0)) {
    throw new TypeError(`Expected a non-negative integer for ${name} but received ${value}`);
  }
}

/** `fetch failed` says little: name the underlying cause (`read ECONNRESET`, `other side closed`). */
function causeText(err: unknown): string {
  const e = err as Error & { cause?: Error & { code?: string } };
  const parts = [e.message];
  if (e.cause?.message && e.cause.message !== e.message) parts.push(e.cause.message);
  if (e.cause?.code && !parts.some((p) => p.includes(e.cause!.code!))) parts.push(`(${e.cause.code})`);
  return parts.join(': ').replace(': (', ' (');
}

/** `bytes 100-199/1000` → {start 100, end 199, total 1000}; total undefined for `/*`. */
function parseContentRange(value: string | null): { start: number; end: number; total?: number } | undefined {
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec((value ?? '').trim());
  if (!m) return undefined;
  const start = Number(m[1]);
  const end = Number(m[2]);
  const total = m[3] === '*' ? undefined : Number(m[3]);
  if (end < start || (total !== undefined && end >= total)) return undefined;
  return { start, end, total };
}

function parseLength(value: string | null, url: string): number | undefined {
  if (value === null) return undefined;
  if (!/^\d+$/.test(value.trim())) throw new DownloadError(`invalid Content-Length "${value}" from ${url}`, url, false);
  return Number(value.trim());
}

async function freeBytes(dir: string): Promise<number | undefined> {
  try {
    const s = await fs.promises.statfs(dir);
    return s.bavail * s.bsize;
  } catch {
    return undefined;
  }
}

function gib(n: number): string {
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

/**
 * Downloads `url` to `dest` through `dest.part`, resuming a partial file with HTTP Range, retrying
 * dropped connections, and renaming to `dest` only once the size is right (see the module comment).
 * An existing `dest` of the expected size (or of any size when none is expected) is left alone.
 */
export async function downloadFile(url: string, dest: string, options: DownloadOptions = {}): Promise<DownloadResult> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError(`Expected an http or https URL but received ${JSON.stringify(url)}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new TypeError(`Expected an http or https URL but received ${JSON.stringify(url)}`);
  }
  const expected = options.expectedSize;
  checkSize('expectedSize', expected);
  const retries = options.retries ?? 5;
  checkSize('retries', retries);
  const baseDelay = options.retryDelayMs ?? 1000;
  checkSize('retryDelayMs', baseDelay);
  const stallMs = options.stallTimeoutMs ?? 60_000;
  checkSize('stallTimeoutMs', stallMs);
  const { signal, onNotice, onProgress } = options;
  const part = `${dest}.part`;

  const existing = await statOrUndefined(dest);
  if (existing !== undefined) {
    if (!existing.isFile()) throw new DownloadError(`${dest} exists and is not a file`, url, false);
    if (expected === undefined || existing.size === expected) {
      return { path: dest, bytes: existing.size, status: 'complete', resumedFrom: existing.size, requests: 0 };
    }
    throw new DownloadError(
      `${dest} already exists with ${existing.size} bytes, but ${expected} are expected; move or delete it to download again`,
      url,
      false,
    );
  }
  await fs.promises.mkdir(path.dirname(dest), { recursive: true });

  const initialPart = (await statOrUndefined(part))?.size ?? 0;
  let total = expected; // the file's size, once known
  let validator: string | undefined; // ETag or Last-Modified, sent as If-Range when resuming
  let requests = 0;
  let fruitless = 0; // attempts in a row that added no byte

  const finish = async (): Promise<DownloadResult> => {
    const size = (await statOrUndefined(part))?.size ?? 0;
    await fs.promises.rename(part, dest);
    return { path: dest, bytes: size, status: 'downloaded', resumedFrom: initialPart, requests };
  };

  /**
   * One request; resolves when the body was received completely. A watchdog aborts it when no
   * byte arrives for `stallMs` (a connection that stays open but sends nothing).
   */
  const attempt = async (have: number): Promise<void> => {
    const watchdog = new AbortController();
    const stalled = new DownloadError(`${url}: no data for ${stallMs / 1000} s`, url, true);
    const timer = setTimeout(() => watchdog.abort(stalled), stallMs);
    try {
      await attemptWith(have, signal ? AbortSignal.any([signal, watchdog.signal]) : watchdog.signal, () => timer.refresh());
    } catch (e) {
      if (watchdog.signal.aborted && !signal?.aborted) throw stalled;
      throw e;
    } finally {
      clearTimeout(timer);
    }
  };

  const attemptWith = async (have: number, signal: AbortSignal, alive: () => void): Promise<void> => {
    const headers: Record<string, string> = { 'accept-encoding': 'identity' };
    if (have > 0) {
      headers.range = `bytes=${have}-`;
      if (validator !== undefined) headers['if-range'] = validator;
    }
    requests++;
    let res: Response;
    try {
      res = await fetch(url, { headers, signal, redirect: 'follow' });
    } catch (e) {
      if (signal.aborted) throw signal.reason;
      throw new DownloadError(`cannot reach ${url}: ${causeText(e)}`, url, true, { cause: e });
    }
    const drop = async (): Promise<void> => {
      await res.body?.cancel().catch(() => undefined);
    };

    if (res.status === 416) {
      await drop();
      const cr = /^bytes \*\/(\d+)$/.exec(res.headers.get('content-range') ?? '');
      const serverSize = cr ? Number(cr[1]) : undefined;
      if (serverSize !== undefined && serverSize === have && (expected === undefined || expected === have)) return;
      onNotice?.(
        `${url}: the server cannot serve bytes ${have}- (416 Range Not Satisfiable${serverSize !== undefined ? `, file size ${serverSize}` : ''}); the partial file does not match, starting again`,
      );
      await fs.promises.rm(part, { force: true });
      throw new DownloadError(`${url}: partial file did not match the server's file`, url, true);
    }
    if (res.status !== 200 && res.status !== 206) {
      await drop();
      const retryable = res.status >= 500 || res.status === 408 || res.status === 429;
      throw new DownloadError(`HTTP ${res.status} ${res.statusText} for ${url}`, url, retryable);
    }
    const contentType = res.headers.get('content-type') ?? '';
    if (/^\s*text\/html/i.test(contentType)) {
      await drop();
      throw new DownloadError(
        `${url} answered with an HTML page (Content-Type ${contentType}) instead of the file: the address is wrong, or the server shows an error or login page`,
        url,
        false,
      );
    }
    const encoding = res.headers.get('content-encoding');
    if (encoding !== null && encoding.trim().toLowerCase() !== 'identity') {
      await drop();
      throw new DownloadError(
        `${url} was sent with Content-Encoding ${encoding} although none was asked; its size cannot be checked`,
        url,
        false,
      );
    }
    let length: number | undefined;
    try {
      length = parseLength(res.headers.get('content-length'), url);
    } catch (e) {
      await drop();
      throw e;
    }

    let start: number;
    let announced: number | undefined; // the whole file's size, as this answer tells it
    if (res.status === 206) {
      const raw = res.headers.get('content-range');
      const cr = parseContentRange(raw);
      if (cr === undefined) {
        await drop();
        throw new DownloadError(`${url}: 206 Partial Content with an invalid Content-Range (${raw ?? 'missing'})`, url, false);
      }
      if (cr.start !== have) {
        await drop();
        throw new DownloadError(`${url}: asked for bytes from ${have}, the server sent them from ${cr.start}`, url, false);
      }
      if (length !== undefined && length !== cr.end - cr.start + 1) {
        await drop();
        throw new DownloadError(
          `${url}: Content-Length ${length} does not match Content-Range ${raw} (${cr.end - cr.start + 1} bytes)`,
          url,
          false,
        );
      }
      start = have;
      announced = cr.total;
    } else {
      if (have > 0) onNotice?.(`${url}: the server ignored the Range request (200 instead of 206); downloading again from the start`);
      start = 0;
      announced = length;
    }
    if (announced !== undefined) {
      if (expected !== undefined && announced !== expected) {
        await drop();
        throw new DownloadError(
          `${url} is ${announced} bytes on the server, but ${expected} are expected: a different file, or a wrong Content-Length`,
          url,
          false,
        );
      }
      if (total !== undefined && announced !== total && start > 0) {
        // Only reachable without an expected size: the file changed on the server between attempts.
        await drop();
        await fs.promises.rm(part, { force: true });
        total = announced;
        throw new DownloadError(`${url} changed size on the server (now ${announced} bytes); starting again`, url, true);
      }
      total = announced;
      const free = await freeBytes(path.dirname(dest));
      if (free !== undefined && free < announced - start) {
        await drop();
        throw new DownloadError(
          `not enough free space in ${path.dirname(dest)} for ${url}: ${gib(announced - start)} more needed, ${gib(free)} available`,
          url,
          false,
        );
      }
    }
    const etag = res.headers.get('etag');
    validator ??= etag !== null && !etag.startsWith('W/') ? etag : (res.headers.get('last-modified') ?? undefined);
    if (res.body === null) throw new DownloadError(`${url}: empty response`, url, true);

    // Each chunk is on disk before the next is read, so whatever was received before a failure is
    // kept as a valid prefix (a pipeline would drop the chunks still buffered when it is destroyed).
    let received = start;
    onProgress?.({ url, received, total });
    let out: fs.promises.FileHandle;
    try {
      out = await fs.promises.open(part, start === 0 ? 'w' : 'a');
    } catch (e) {
      await drop();
      throw new DownloadError(`cannot write ${part}: ${(e as Error).message}`, url, false, { cause: e });
    }
    try {
      const body = res.body as unknown as AsyncIterable<Uint8Array>;
      for await (const chunk of body) {
        try {
          await out.write(chunk);
        } catch (e) {
          throw new DownloadError(`cannot write ${part}: ${(e as Error).message}`, url, false, { cause: e });
        }
        received += chunk.length;
        alive();
        onProgress?.({ url, received, total });
      }
    } catch (e) {
      if (e instanceof DownloadError) throw e;
      if (signal.aborted) throw signal.reason;
      throw new DownloadError(
        `connection to ${url} lost after ${received}${total !== undefined ? ` of ${total}` : ''} bytes: ${causeText(e)}`,
        url,
        true,
        { cause: e },
      );
    } finally {
      await out.close();
    }
    if (total !== undefined && received > total) {
      await fs.promises.rm(part, { force: true });
      throw new DownloadError(`${url}: the server sent ${received} bytes, more than the ${total} it announced`, url, false);
    }
    if (total !== undefined && received < total) {
      throw new DownloadError(`${url}: the answer ended after ${received} of ${total} bytes`, url, true);
    }
  };

  for (;;) {
    signal?.throwIfAborted();
    let have = (await statOrUndefined(part))?.size ?? 0;
    if (total !== undefined && have > total) {
      onNotice?.(`${part} is larger (${have} bytes) than the file (${total}); starting again`);
      await fs.promises.rm(part, { force: true });
      have = 0;
    }
    if (expected !== undefined && have === expected && (expected > 0 || (await statOrUndefined(part)) !== undefined)) {
      return finish();
    }
    try {
      await attempt(have);
      const size = (await statOrUndefined(part))?.size ?? 0;
      if (expected !== undefined && size !== expected) {
        // The server gave no size (chunked answer) and the body was not the expected size.
        if (size < expected) throw new DownloadError(`${url}: got ${size} of ${expected} bytes`, url, true);
        await fs.promises.rm(part, { force: true });
        throw new DownloadError(`${url}: got ${size} bytes, more than the ${expected} expected`, url, false);
      }
      return finish();
    } catch (e) {
      if (!(e instanceof DownloadError) || !e.retryable) throw e;
      const after = (await statOrUndefined(part))?.size ?? 0;
      fruitless = after > have ? 0 : fruitless + 1;
      if (fruitless > retries) {
        throw new DownloadError(
          `${e.message}; gave up after ${fruitless} attempts in a row without progress (${after} bytes kept in ${part}; run again to resume)`,
          url,
          false,
          { cause: e },
        );
      }
      const wait = Math.min(baseDelay * 2 ** Math.max(fruitless - 1, 0), MAX_RETRY_DELAY_MS);
      onNotice?.(`${e.message}; retrying in ${(wait / 1000).toFixed(1)} s (${after} bytes kept)`);
      await sleep(wait, undefined, { signal });
    }
  }
}

export interface ExtractProgress {
  /** Files finished (extracted or skipped). */
  entries: number;
  totalEntries: number;
  /** Bytes of finished and skipped files, plus those written of the current one. */
  bytes: number;
  totalBytes: number;
  file: string;
}

export interface ExtractOptions {
  /** Extract only the entries whose name (as in the zip, `/`-separated) passes. Default: all. */
  filter?: (entryName: string) => boolean;
  onProgress?: (progress: ExtractProgress) => void;
  signal?: AbortSignal;
}

export interface ExtractResult {
  /** Files written in this run. */
  extracted: number;
  /** Files already present with the right size. */
  skipped: number;
  /** Uncompressed bytes of all selected files. */
  bytes: number;
}

const UNZIP_PART_SUFFIX = '.unzip-part';

/** What a file that yauzl cannot open as a zip actually holds, for the error message. */
async function describeNonZip(zipPath: string): Promise<string> {
  try {
    const fh = await fs.promises.open(zipPath, 'r');
    try {
      const { size } = await fh.stat();
      if (size === 0) return 'it is empty (0 bytes)';
      const head = Buffer.alloc(Math.min(size, 256));
      await fh.read(head, 0, head.length, 0);
      const text = head.toString('latin1').trimStart().toLowerCase();
      if (text.startsWith('<!doctype html') || text.startsWith('<html') || text.startsWith('<?xml') || text.startsWith('<')) {
        return 'it holds an HTML or XML page, not a zip (an error page saved as the file?)';
      }
      if (head[0] === 0x50 && head[1] === 0x4b) return `it starts like a zip but is damaged or cut off (${size} bytes)`;
      return `it is not a zip (${size} bytes)`;
    } finally {
      await fh.close();
    }
  } catch (e) {
    return (e as Error).message;
  }
}

async function openZip(zipPath: string): Promise<yauzl.ZipFile> {
  try {
    return await yauzl.openPromise(zipPath, { autoClose: true, decodeStrings: true, validateEntrySizes: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`zip file not found: ${zipPath}`, { cause: e });
    throw new Error(`cannot read ${zipPath} as a zip: ${await describeNonZip(zipPath)} (${(e as Error).message})`, { cause: e });
  }
}

function closeZip(zip: yauzl.ZipFile): void {
  if (zip.isOpen) zip.close();
}

const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;

/**
 * Extracts `zipPath` into `destDir` (see the module comment): first reads the whole central
 * directory and refuses the zip if any name is unsafe, then writes file by file, skipping files
 * already present with the right size.
 */
export async function extractZip(zipPath: string, destDir: string, options: ExtractOptions = {}): Promise<ExtractResult> {
  const root = path.resolve(destDir);
  const keep = options.filter ?? (() => true);
  const { signal } = options;

  // Pass 1: names, kinds and totals; nothing is written unless every entry is acceptable.
  let totalEntries = 0;
  let totalBytes = 0;
  const refuse = (name: string, why: string): Error =>
    new Error(`refusing to extract ${zipPath}: entry ${JSON.stringify(name)} ${why}; nothing was extracted`);
  {
    const zip = await openZip(zipPath);
    try {
      for await (const entry of zip.eachEntry()) {
        const name = entry.fileName;
        const target = path.resolve(root, name);
        if (target !== root && !target.startsWith(root + path.sep)) throw refuse(name, `would be written outside ${root}`);
        const mode = (entry.externalFileAttributes >>> 16) & S_IFMT;
        if (mode === S_IFLNK) throw refuse(name, 'is a symbolic link');
        if (name.endsWith('/') || !keep(name)) continue;
        if (entry.isEncrypted()) throw refuse(name, 'is encrypted');
        if (!entry.canDecodeFileData()) throw refuse(name, `uses compression method ${entry.compressionMethod}, which is not supported`);
        totalEntries++;
        totalBytes += entry.uncompressedSize;
      }
    } catch (e) {
      closeZip(zip);
      if ((e as Error).message.startsWith('refusing')) throw e;
      // yauzl's own checks: "invalid relative path: ../x", "absolute path: /x", bad headers.
      throw new Error(`refusing to extract ${zipPath}: ${(e as Error).message}; nothing was extracted`, { cause: e });
    }
  }

  // Pass 2: write.
  await fs.promises.mkdir(root, { recursive: true });
  const result: ExtractResult = { extracted: 0, skipped: 0, bytes: totalBytes };
  let entries = 0;
  let bytesDone = 0;
  const zip = await openZip(zipPath);
  try {
    for await (const entry of zip.eachEntry()) {
      signal?.throwIfAborted();
      const name = entry.fileName;
      const target = path.resolve(root, name);
      if (name.endsWith('/')) {
        if (keep(name)) await fs.promises.mkdir(target, { recursive: true });
        continue;
      }
      if (!keep(name)) continue;
      const present = await statOrUndefined(target);
      if (present?.isFile() && present.size === entry.uncompressedSize) {
        result.skipped++;
      } else {
        if (present !== undefined && !present.isFile()) throw new Error(`cannot extract ${name}: ${target} exists and is not a file`);
        await fs.promises.mkdir(path.dirname(target), { recursive: true });
        const tmp = path.join(path.dirname(target), `.${path.basename(target)}${UNZIP_PART_SUFFIX}`);
        let crc = 0;
        let written = 0;
        const check = new Transform({
          transform(chunk: Buffer, _enc, done) {
            crc = zlib.crc32(chunk, crc);
            written += chunk.length;
            options.onProgress?.({ entries, totalEntries, bytes: bytesDone + written, totalBytes, file: name });
            done(null, chunk);
          },
        });
        try {
          const stream = await zip.openReadStreamPromise(entry);
          await pipeline(stream, check, fs.createWriteStream(tmp));
          if (written !== entry.uncompressedSize) {
            throw new Error(`${name} in ${zipPath} has ${written} bytes, its header says ${entry.uncompressedSize}`);
          }
          if (crc >>> 0 !== entry.crc32 >>> 0) throw new Error(`${name} in ${zipPath} is corrupt (CRC-32 mismatch)`);
          await fs.promises.rename(tmp, target);
        } catch (e) {
          await fs.promises.rm(tmp, { force: true }).catch(() => undefined);
          throw e;
        }
        result.extracted++;
      }
      entries++;
      bytesDone += entry.uncompressedSize;
      options.onProgress?.({ entries, totalEntries, bytes: bytesDone, totalBytes, file: name });
    }
  } finally {
    closeZip(zip);
  }
  return result;
}

export type CocoPart = 'train2014' | 'val2014' | 'annotations';

export const COCO_PARTS: readonly CocoPart[] = Object.freeze(['train2014', 'val2014', 'annotations'] as CocoPart[]);

export const COCO_BASE_URL = 'http://images.cocodataset.org';

export interface CocoFile {
  /** Path under the base URL. */
  path: string;
  /** Size in bytes of the official file. */
  size: number;
  /** What the zip is unpacked into, under `dir`. */
  contents: string;
  /** Entries to extract (all when absent). */
  filter?: (entryName: string) => boolean;
}

/**
 * The files, with the sizes that images.cocodataset.org serves (the Content-Length in wget logs of
 * these very URLs: 13,510,573,713 and 6,645,013,297 bytes for the image zips, 252,872,794 for the
 * annotations). The book fetched its captions as `captions_train-val2014.zip` (19,673,183 bytes)
 * from msvocds.blob.core.windows.net, a host that is gone; the same two files,
 * `annotations/captions_train2014.json` and `annotations/captions_val2014.json`, are in COCO's
 * `annotations_trainval2014.zip`, and only those two are extracted from it.
 */
export const COCO_FILES: Readonly<Record<CocoPart, CocoFile>> = Object.freeze({
  train2014: { path: 'zips/train2014.zip', size: 13_510_573_713, contents: 'train2014/ (82,783 images)' },
  val2014: { path: 'zips/val2014.zip', size: 6_645_013_297, contents: 'val2014/ (40,504 images)' },
  annotations: {
    path: 'annotations/annotations_trainval2014.zip',
    size: 252_872_794,
    contents: 'annotations/captions_{train,val}2014.json',
    filter: (name: string) => /^annotations\/captions_(train|val)2014\.json$/.test(name),
  },
});

export interface CocoProgress {
  part: CocoPart;
  phase: 'download' | 'extract';
  /** Bytes downloaded, or uncompressed bytes extracted. */
  done: number;
  /** Undefined while the download size is unknown. */
  total?: number;
}

export interface CocoOptions {
  /** Folder for the zips and their contents: `dir/train2014/`, `dir/val2014/`, `dir/annotations/`. */
  dir: string;
  /** Default: all three. */
  parts?: readonly CocoPart[];
  /** Default: `TORCHCAP_COCO_URL`, else http://images.cocodataset.org. */
  baseUrl?: string;
  /**
   * Sizes to insist on. Default: the official sizes when the files come from the official host;
   * from any other base URL (a mirror, a test server) only the server's Content-Length is checked.
   */
  expectedSizes?: Partial<Record<CocoPart, number>>;
  onProgress?: (progress: CocoProgress) => void;
  onNotice?: (message: string) => void;
  signal?: AbortSignal;
  retries?: number;
  retryDelayMs?: number;
}

export interface CocoPartResult {
  part: CocoPart;
  url: string;
  zip: string;
  download: DownloadResult;
  extract: ExtractResult;
}

/** The base URL in use: the option, else `TORCHCAP_COCO_URL`, else the official host. */
export function cocoBaseUrl(baseUrl?: string): string {
  return (baseUrl ?? process.env.TORCHCAP_COCO_URL ?? COCO_BASE_URL).replace(/\/+$/, '');
}

/** Downloads and extracts the COCO 2014 parts the book uses; a rerun resumes or skips what is done. */
export async function downloadCoco(options: CocoOptions): Promise<CocoPartResult[]> {
  const parts = options.parts ?? COCO_PARTS;
  for (const p of parts) {
    if (!COCO_PARTS.includes(p)) throw new TypeError(`Unknown COCO part ${JSON.stringify(p)}; expected one of ${COCO_PARTS.join(', ')}`);
  }
  const base = cocoBaseUrl(options.baseUrl);
  const official = base.replace(/^https:/, 'http:') === COCO_BASE_URL;
  const dir = path.resolve(options.dir);
  await fs.promises.mkdir(dir, { recursive: true });
  const results: CocoPartResult[] = [];
  for (const part of parts) {
    const file = COCO_FILES[part];
    const url = `${base}/${file.path}`;
    const zip = path.join(dir, path.basename(file.path));
    const expectedSize = options.expectedSizes?.[part] ?? (official ? file.size : undefined);
    const download = await downloadFile(url, zip, {
      expectedSize,
      signal: options.signal,
      retries: options.retries,
      retryDelayMs: options.retryDelayMs,
      onNotice: options.onNotice,
      onProgress: (p) => options.onProgress?.({ part, phase: 'download', done: p.received, total: p.total }),
    });
    const extract = await extractZip(zip, dir, {
      filter: file.filter,
      signal: options.signal,
      onProgress: (p) => options.onProgress?.({ part, phase: 'extract', done: p.bytes, total: p.totalBytes }),
    });
    results.push({ part, url, zip, download, extract });
  }
  return results;
}
