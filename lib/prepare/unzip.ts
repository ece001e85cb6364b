/**
 * Extracting a zip (the COCO zips), resumably and safely: each file goes to a hidden temporary and
 * is renamed once its size and CRC-32 are verified; files that already have the right size are
 * skipped; entries that would land outside the destination (`../x`, `/x`, `C:/x`) or are links are
 * refused before anything is written (yauzl validates names; the resolved path is checked again).
 */
import * as fs from 'fs';
import * as path from 'path';
import { Transform } from 'stream';
import { pipeline } from 'stream/promises';
import * as zlib from 'zlib';
import * as yauzl from 'yauzl';
import { statOrUndefined } from './download';

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
