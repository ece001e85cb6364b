/**
 * Downloading one large file over HTTP, resumably (the COCO zips: coco.ts says which). A download
 * goes to `NAME.part` and is renamed once its size is verified; a rerun continues `NAME.part` with
 * an HTTP Range request and skips a finished file.
 *
 * HTTP answers are checked: 200 or 206 only (206 must carry a Content-Range that starts where the
 * partial file ends); a 200 to a Range request (a server that ignores Range) restarts from zero; a
 * 416 means the partial file is complete or does not fit and is started again; the size announced
 * (Content-Length, Content-Range) must match the size expected; an HTML page instead of the file is
 * refused. Dropped connections, resets and 5xx answers are retried, resuming where they stopped.
 *
 * Uses Node's built-in fetch (undici).
 */
import * as fs from 'fs';
import * as path from 'path';
import { setTimeout as sleep } from 'timers/promises';
import { checkInt } from '../util/checks';

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

/** The file's stats, or undefined when it does not exist. */
export function statOrUndefined(p: string): Promise<fs.Stats | undefined> {
  return fs.promises.stat(p).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined;
    throw e;
  });
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
  if (expected !== undefined) checkInt(expected, 'expectedSize', 0);
  const retries = options.retries ?? 5;
  if (retries !== undefined) checkInt(retries, 'retries', 0);
  const baseDelay = options.retryDelayMs ?? 1000;
  if (baseDelay !== undefined) checkInt(baseDelay, 'retryDelayMs', 0);
  const stallMs = options.stallTimeoutMs ?? 60_000;
  if (stallMs !== undefined) checkInt(stallMs, 'stallTimeoutMs', 0);
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
