/** Small file helpers shared by the readers and writers. */
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';

const fsp = fs.promises;

type ErrorClass = new (message: string) => Error;

/** Reads and parses a JSON file; errors name the file, what it was for, and what went wrong. */
export function readJsonFile(file: string, what: string, ErrorType: ErrorClass = Error): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ErrorType(`${what} file not found: ${file}`);
    if (code === 'EISDIR') throw new ErrorType(`${what} path is a directory, not a JSON file: ${file}`);
    throw new ErrorType(`cannot read ${what} file ${file}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch (e) {
    throw new ErrorType(`${what} file ${file} is not valid JSON: ${(e as Error).message}`);
  }
}

/** The longest file name most file systems take, in bytes (NAME_MAX). */
const NAME_MAX = 255;

/**
 * The hidden temporary name `target` is written under, in its own folder (so the rename is
 * atomic): `.NAME.PID.RANDOM.tmp`, with NAME cut short where the whole would pass NAME_MAX bytes.
 */
export function temporaryName(target: string): string {
  const abs = path.resolve(target);
  const tail = `.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  let base = path.basename(abs);
  const room = NAME_MAX - 1 - Buffer.byteLength(tail);
  if (Buffer.byteLength(base) > room) {
    base = Buffer.from(base).subarray(0, room).toString('utf8').replace(/\uFFFD+$/, '');
  }
  return path.join(path.dirname(abs), `.${base}${tail}`);
}

/**
 * Where an atomic write of `target` goes: the file a symbolic link (or a chain of them) points to,
 * so the link stays a link and its target is replaced; the path itself when nothing is there.
 */
function resolveTarget(target: string): string {
  let at = path.resolve(target);
  for (let hops = 0; hops < 40; hops++) {
    let link: string;
    try {
      if (!fs.lstatSync(at).isSymbolicLink()) return at;
      link = fs.readlinkSync(at);
    } catch {
      return at; // nothing there yet (or unreadable: the write reports it)
    }
    at = path.resolve(path.dirname(at), link);
  }
  return at;
}

/** The permission bits of the file at `file`, when there is one: the new file keeps them. */
function existingMode(file: string): number | undefined {
  try {
    const st = fs.statSync(file);
    return st.isFile() ? st.mode & 0o7777 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Writes a file atomically: a temporary file in the same folder, flushed to disk, then renamed
 * over the target. On failure the temporary file is removed and the old file is untouched. A
 * symbolic link stays one (the file it points to is replaced); an existing file keeps its mode.
 */
export function writeFileAtomicSync(file: string, data: string | Uint8Array): void {
  const target = resolveTarget(file);
  const tmp = temporaryName(target);
  const mode = existingMode(target);
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, 'wx');
    if (mode !== undefined) fs.fchmodSync(fd, mode);
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, target);
  } catch (e) {
    if (fd !== undefined) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

/**
 * writeFileAtomicSync without blocking (links and modes as it does): `content` is the data, or a
 * function that writes it to the open handle (for files written in parts). The folder is synced afterwards (best effort), so the
 * rename itself survives a crash. Readers see the old file or the new one, never a part.
 */
export async function writeFileAtomic(target: string, content: string | Uint8Array | ((fh: fs.promises.FileHandle) => Promise<void>)): Promise<void> {
  const abs = resolveTarget(target);
  const tmp = temporaryName(abs);
  const mode = existingMode(abs);
  let fh: fs.promises.FileHandle | undefined;
  try {
    fh = await fsp.open(tmp, 'wx');
    if (mode !== undefined) await fh.chmod(mode);
    if (typeof content === 'function') await content(fh);
    else await fh.writeFile(content);
    await fh.sync();
    await fh.close();
    fh = undefined;
    await fsp.rename(tmp, abs);
  } catch (e) {
    if (fh) await fh.close().catch(() => undefined);
    await fsp.unlink(tmp).catch(() => undefined);
    throw e;
  }
  // Some file systems cannot fsync a folder; the file is in place either way.
  try {
    const d = await fsp.open(path.dirname(abs), 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  } catch {
    /* best effort */
  }
}
