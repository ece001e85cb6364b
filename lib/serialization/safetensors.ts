/** Reading safetensors files: the header (JSON, checked entry by entry) and the tensors it places. */
import { Tensor } from '../core/tensor';
import type { DType } from '../core/binding';
import { CheckpointError, messageOf } from './errors';
import { OrderedDict } from './pickle';
import { MAX_SAFETENSORS_HEADER, type Source } from './source';
import type { TorchFileContents } from './torch-file';
import { HOST_LITTLE } from './materialize';
import { readFileRanges } from './file-storages';

// ----- safetensors

const SAFETENSORS_DTYPES: Readonly<Record<string, { size: number; dtype?: DType }>> = {
  F64: { size: 8, dtype: 'float64' },
  F32: { size: 4, dtype: 'float32' },
  F16: { size: 2, dtype: 'float16' },
  BF16: { size: 2, dtype: 'bfloat16' },
  I64: { size: 8, dtype: 'int64' },
  I32: { size: 4, dtype: 'int32' },
  U8: { size: 1, dtype: 'uint8' },
  BOOL: { size: 1, dtype: 'bool' },
  I16: { size: 2 },
  I8: { size: 1 },
  U16: { size: 2 },
  U32: { size: 4 },
  U64: { size: 8 },
  F8_E4M3: { size: 1 },
  F8_E5M2: { size: 1 },
  C64: { size: 8 },
};

/** The safetensors dtype code of each torchcap dtype. */
export const SAFETENSORS_CODES: Readonly<Record<DType, string>> = {
  float64: 'F64',
  float32: 'F32',
  float16: 'F16',
  bfloat16: 'BF16',
  int64: 'I64',
  int32: 'I32',
  uint8: 'U8',
  bool: 'BOOL',
};

interface SafetensorsEntry {
  name: string;
  dtype: DType;
  code: string;
  shape: number[];
  begin: number;
  end: number;
}

function parseSafetensorsHeader(text: string, dataLen: number, file: string, maxTensors: number): { entries: SafetensorsEntry[]; metadata: Record<string, string> } {
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    throw new CheckpointError(`safetensors header is not valid JSON: ${messageOf(e)}`, { file });
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new CheckpointError('safetensors header is not a JSON object', { file });
  const names = Object.keys(header);
  const count = names.length - (names.includes('__metadata__') ? 1 : 0);
  if (count > maxTensors) {
    throw new CheckpointError(
      `the safetensors header lists ${count} tensors, more than the limit of ${maxTensors} (ReadOptions.maxTensors; by default 10,000 + one per KiB of the file)`,
      { file },
    );
  }
  const metadata: Record<string, string> = {};
  const entries: SafetensorsEntry[] = [];
  for (const [name, info] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof info !== 'object' || info === null || Array.isArray(info)) throw new CheckpointError('safetensors __metadata__ is not an object of strings', { file });
      for (const [k, v] of Object.entries(info as Record<string, unknown>)) {
        if (typeof v !== 'string') throw new CheckpointError(`safetensors __metadata__ value for ${JSON.stringify(k)} is not a string`, { file });
        Object.defineProperty(metadata, k, { value: v, enumerable: true, writable: true, configurable: true });
      }
      continue;
    }
    const bad = (why: string): never => {
      throw new CheckpointError(`safetensors tensor ${JSON.stringify(name)}: ${why}`, { file });
    };
    if (typeof info !== 'object' || info === null) bad('its entry is not an object');
    const { dtype, shape, data_offsets: offsets } = info as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof dtype !== 'string' || !(dtype in SAFETENSORS_DTYPES)) bad(`unknown dtype ${JSON.stringify(dtype)}`);
    const spec = SAFETENSORS_DTYPES[dtype as string];
    if (!spec.dtype) bad(`dtype ${dtype as string} is not supported by torchcap's tensors (supported: ${Object.values(SAFETENSORS_CODES).join(', ')})`);
    if (!Array.isArray(shape) || !shape.every((s) => Number.isSafeInteger(s) && s >= 0)) bad('shape is not a list of non-negative integers');
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((s) => Number.isSafeInteger(s) && s >= 0)) bad('data_offsets is not [begin, end]');
    const [begin, end] = offsets as number[];
    const numel = (shape as number[]).reduce((a, b) => a * b, 1);
    if (!Number.isSafeInteger(numel * spec.size)) bad('its size is impossibly large');
    if (end < begin || end - begin !== numel * spec.size) bad(`data_offsets [${begin}, ${end}] do not hold ${numel} ${dtype as string} elements (${numel * spec.size} bytes)`);
    if (end > dataLen) bad(`data_offsets end at ${end} but the data holds ${dataLen} bytes`);
    entries.push({ name, dtype: spec.dtype!, code: dtype as string, shape: shape as number[], begin, end });
  }
  // The format requires the tensors to tile the data exactly: no overlaps, no holes.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  for (const e of sorted) {
    if (e.begin !== at) {
      throw new CheckpointError(
        e.begin < at ? `safetensors tensor ${JSON.stringify(e.name)} overlaps the previous tensor` : `safetensors data has a hole before tensor ${JSON.stringify(e.name)} (bytes ${at}..${e.begin})`,
        { file },
      );
    }
    at = e.end;
  }
  if (at !== dataLen) throw new CheckpointError(`safetensors data holds ${dataLen} bytes but the tensors cover ${at}`, { file });
  return { entries: sorted, metadata };
}

/** Reads a safetensors file; more than `maxTensors` entries in its header is an error. */
export async function readSafetensorsFormat(src: Source, maxTensors: number): Promise<TorchFileContents> {
  const file = src.name;
  if (src.size < 8) throw new CheckpointError('truncated: a safetensors file needs at least 8 bytes', { file });
  const n = (await src.read(0, 8)).readBigUInt64LE(0);
  if (n > BigInt(MAX_SAFETENSORS_HEADER)) throw new CheckpointError(`safetensors header of ${n} bytes exceeds the limit of ${MAX_SAFETENSORS_HEADER}`, { file });
  if (8n + n > BigInt(src.size)) throw new CheckpointError(`truncated: the safetensors header needs ${n} bytes but the file holds ${src.size - 8} after the length`, { file });
  const headerBytes = await src.read(8, Number(n));
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch {
    throw new CheckpointError('safetensors header is not valid UTF-8', { file });
  }
  const dataStart = 8 + Number(n);
  const { entries, metadata } = parseSafetensorsHeader(text, src.size - dataStart, file, maxTensors);
  const value = new OrderedDict<string, Tensor>();
  const rawDtype = (e: SafetensorsEntry): DType => (e.dtype === 'bool' ? 'uint8' : e.dtype);
  // From a file, every tensor's bytes are read natively straight into its memory.
  const fromFile =
    src.handle && HOST_LITTLE
      ? (await readFileRanges(src.handle, entries.map((e) => ({ offset: dataStart + e.begin, bytes: e.end - e.begin, dtype: rawDtype(e) })), file)).tensors
      : undefined;
  for (const [i, e] of entries.entries()) {
    const numel = e.shape.reduce((a, b) => a * b, 1);
    try {
      const raw = fromFile ? fromFile[i] : Tensor.fromBytes(await src.view(dataStart + e.begin, e.end - e.begin), rawDtype(e), [numel]);
      const flat = e.dtype === 'bool' ? raw.ne(0) : raw;
      const t = flat.reshape(e.shape);
      if (flat !== raw) flat.dispose();
      raw.dispose();
      value.set(e.name, t);
    } catch (err) {
      fromFile?.slice(i).forEach((t) => t.dispose());
      throw new CheckpointError(`safetensors tensor ${JSON.stringify(e.name)} cannot be loaded: ${messageOf(err)}`, { file, cause: err });
    }
  }
  return { format: 'safetensors', value, metadata, byteOrder: 'little' };
}

