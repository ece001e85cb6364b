/**
 * `torchcap download coco`'s work: getting the COCO 2014 data the book trains on: the image zips `train2014.zip` (13 GB) and
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
 * Downloading is download.ts, extracting unzip.ts.
 */
import * as fs from 'fs';
import * as path from 'path';
import { downloadFile, type DownloadResult } from './download';
import { extractZip, type ExtractResult } from './unzip';

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
