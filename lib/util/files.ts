/** Small file helpers shared by the readers and writers. */
import * as fs from 'fs';
import * as path from 'path';

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

/**
 * Writes a file atomically: a temporary file in the same folder, flushed to disk, then renamed
 * over the target. On failure the temporary file is removed and the old file is untouched.
 */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`);
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, 'w');
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, file);
  } catch (e) {
    if (fd !== undefined) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}
