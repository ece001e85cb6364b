/**
 * Storages read straight from a weight file into tensor memory: the byte ranges go to the native
 * reader (pread on worker threads, no per-element work and no copy through JavaScript), which
 * hands back each range's CRC-32 for the zip reader to check against its central directory.
 */
import { native } from '../core/native';
import { Tensor } from '../core/tensor';
import type { DType } from '../core/binding';
import type { FileHandle } from './atomic';
import { CheckpointError, messageOf } from './errors';

export interface FileRange {
  offset: number;
  bytes: number;
  dtype: DType;
  /** A contiguous CPU tensor of this dtype and size to fill in place of a new one. */
  into?: Tensor;
}

/**
 * Reads each range of the open file into a new 1-D tensor of its dtype, with the range's CRC-32.
 * Errors (a file cut short, a read that fails) are CheckpointErrors naming `file`.
 */
export async function readFileRanges(handle: FileHandle, ranges: FileRange[], file: string): Promise<{ tensors: Tensor[]; crcs: number[] }> {
  if (ranges.length === 0) return { tensors: [], crcs: [] };
  try {
    const [handles, crcs] = await native.readFileStorages(handle.fd, ranges.map((r) => ({ offset: r.offset, bytes: r.bytes, dtype: r.dtype, into: r.into?.handle })));
    return { tensors: handles.map((h) => new Tensor(h)), crcs };
  } catch (e) {
    throw new CheckpointError(messageOf(e), { file, cause: e });
  }
}

/**
 * The `length` bytes at each offset of the open file, all read in one call on a worker thread (a
 * zip's local headers, one per storage). Errors are CheckpointErrors naming `file`.
 */
export async function readFileBytes(handle: FileHandle, offsets: number[], length: number, file: string): Promise<Buffer[]> {
  if (offsets.length === 0) return [];
  try {
    const all = await native.readFileBytes(handle.fd, offsets, length);
    return offsets.map((_, i) => all.subarray(i * length, (i + 1) * length));
  } catch (e) {
    throw new CheckpointError(messageOf(e), { file, cause: e });
  }
}
