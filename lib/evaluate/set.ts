/**
 * The images an evaluation captions and scores, chosen the same way on every machine: those the
 * references name (COCO captions format, each image's `file_name` found in a folder), restricted
 * to a split when one is given (image ids or file names), sorted by image id, the first N kept.
 *
 * Model-free: captioning the set is sample/evaluate.ts. The set also scores results against its
 * references, in the references' order, so that its scores are exactly those of
 * `torchcap evaluate --results` on the same captions.
 */
import * as fs from 'fs';
import * as path from 'path';
import { checkInt } from '../util/checks';
import { EvaluationInputError, readJsonFile, referencesFromCoco, type CaptionResult, type ImageId, type ReferenceMap } from './inputs';
import { CaptionEvaluator, evaluateCaptions, type CaptionEvaluation, type EvaluateWithMeteorOptions } from './scores';

/** One image of the set: its id, its file name in the references, and where it is looked for. */
export interface EvaluationImage {
  id: ImageId;
  file: string;
  path: string;
}

export interface EvaluationSetOptions {
  /** The folder the references' file names are found in. */
  images: string;
  /** Image ids or file names to keep (a Karpathy-style split), or a file listing them (see readSplitFile). */
  split?: string | readonly (string | number)[];
  /** Keep the first `limit` images by id (after the split). */
  limit?: number;
  /** What to call the references in messages (default "references"). */
  source?: string;
}

/** Image ids in the stated order: numbers ascending, then strings by code unit. */
export function compareImageIds(a: ImageId, b: ImageId): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'number') return -1;
  if (typeof b === 'number') return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

function listSome(items: readonly string[], max = 5): string {
  const shown = items.slice(0, max).join(', ');
  return items.length > max ? `${shown} and ${items.length - max} more` : shown;
}

export class EvaluationSet {
  private evaluator: CaptionEvaluator | undefined;

  constructor(
    /** The images to caption, sorted by id. */
    readonly images: readonly EvaluationImage[],
    /** Their reference captions, in the references' own order. */
    readonly references: ReferenceMap,
    /** Where the references came from (for messages). */
    readonly source: string,
    /** How many images the references name (before the split and the limit). */
    readonly available: number,
  ) {}

  /** The reference captions of one image of the set. */
  referencesOf(id: ImageId): readonly string[] {
    return this.references.get(id) ?? [];
  }

  /**
   * Scores captions of some of the set's images (one each): BLEU-1..4, ROUGE-L, CIDEr-D, and
   * METEOR when it is available and `meteor` is not false. Without METEOR the references are
   * tokenized once for all calls (CaptionEvaluator: the same numbers, for repeated validation).
   */
  score(results: readonly CaptionResult[], opts: EvaluateWithMeteorOptions = {}): Promise<CaptionEvaluation> {
    if (opts.meteor !== false) return evaluateCaptions(this.references, results, opts);
    this.evaluator ??= new CaptionEvaluator(this.references);
    return Promise.resolve(this.evaluator.evaluate(results, opts));
  }
}

/**
 * A split file: a JSON array of image ids or file names, or text with one a line (blank lines
 * skipped; a line may carry more after a space, e.g. `val2014/COCO_val2014_000000391895.jpg 391895`).
 */
export function readSplitFile(file: string): (string | number)[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new EvaluationInputError(code === 'ENOENT' ? `split file not found: ${file}` : code === 'EISDIR' ? `split path is a directory, not a file: ${file}` : `cannot read split file ${file}: ${(e as Error).message}`);
  }
  let entries: (string | number)[];
  if (/^\s*\[/.test(text)) {
    const data = readJsonFile(file, 'split');
    if (!Array.isArray(data)) throw new EvaluationInputError(`split file ${file}: expected an array of image ids or file names`);
    data.forEach((v, i) => {
      if (typeof v !== 'string' && !(typeof v === 'number' && Number.isFinite(v))) throw new EvaluationInputError(`split file ${file}: entry ${i} is not an image id or file name (got ${JSON.stringify(v)})`);
    });
    entries = data as (string | number)[];
  } else {
    entries = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
  }
  if (entries.length === 0) throw new EvaluationInputError(`split file ${file} lists no images`);
  return entries;
}

/**
 * Finds the image that a split entry or a file path means: an id (as given, or a string of digits
 * as a number; unless `byId` is false), a file name as the references write it, or a file's base
 * name (when no two images share it).
 */
export function imageResolver(images: readonly { id: ImageId; file: string }[], opts: { byId?: boolean } = {}): (entry: string | number) => ImageId | undefined {
  const byId = opts.byId ?? true;
  const ids = new Set<ImageId>(images.map((i) => i.id));
  const byFile = new Map<string, ImageId>();
  const byBase = new Map<string, ImageId | null>(); // null: two images share the base name
  for (const { id, file } of images) {
    if (!byFile.has(file)) byFile.set(file, id);
    const base = path.basename(file);
    byBase.set(base, byBase.has(base) && byBase.get(base) !== id ? null : id);
  }
  const one = (s: string | number): ImageId | undefined => {
    if (byId && ids.has(s)) return s;
    if (typeof s === 'number') return undefined;
    if (byId && /^\d+$/.test(s) && ids.has(Number(s))) return Number(s);
    return byFile.get(s) ?? byBase.get(path.basename(s)) ?? undefined;
  };
  return (entry) => one(entry) ?? (typeof entry === 'string' && /\s/.test(entry.trim()) ? one(entry.trim().split(/\s+/)[0]) : undefined);
}

/** The images of checked references with their file names (the first entry of an id that appears twice). */
function fileNames(coco: unknown, source: string): { id: ImageId; file: string }[] {
  const files: { id: ImageId; file: string }[] = [];
  const seen = new Set<ImageId>();
  (coco as { images: { id: ImageId; file_name?: unknown }[] }).images.forEach((img, i) => {
    if (typeof img.file_name !== 'string' || img.file_name === '') {
      throw new EvaluationInputError(`${source}: images[${i}] (id ${JSON.stringify(img.id)}) has no "file_name", so its image file cannot be found`);
    }
    if (!seen.has(img.id)) files.push({ id: img.id, file: img.file_name });
    seen.add(img.id);
  });
  return files;
}

/** The images of parsed references (COCO captions format, checked) with their file names. */
export function cocoImageFiles(coco: unknown, source = 'references'): { id: ImageId; file: string }[] {
  referencesFromCoco(coco, source);
  return fileNames(coco, source);
}

/**
 * The set from parsed references (a COCO captions object whose `images` carry `file_name`); see
 * the module comment for how images are chosen. Every chosen image needs a reference caption.
 */
export function evaluationSet(coco: unknown, opts: EvaluationSetOptions): EvaluationSet {
  const source = opts.source ?? 'references';
  const limit = opts.limit === undefined ? undefined : checkInt(opts.limit, 'limit', 1);
  const references = referencesFromCoco(coco, source);
  const dir = path.resolve(opts.images);
  const stat = fs.statSync(dir, { throwIfNoEntry: false });
  if (!stat) throw new EvaluationInputError(`images folder not found: ${opts.images}`);
  if (!stat.isDirectory()) throw new EvaluationInputError(`the images folder ${opts.images} is a file, not a folder`);
  const files = fileNames(coco, source);
  if (files.length === 0) throw new EvaluationInputError(`${source}: the "images" array is empty: no images to evaluate`);
  let chosen = files;
  if (opts.split !== undefined) {
    const splitName = typeof opts.split === 'string' ? `split file ${opts.split}` : 'split';
    const entries = typeof opts.split === 'string' ? readSplitFile(opts.split) : opts.split;
    const resolve = imageResolver(files);
    const keep = new Set<ImageId>();
    const unknown: string[] = [];
    for (const e of entries) {
      const id = resolve(e);
      if (id === undefined) unknown.push(JSON.stringify(e));
      else keep.add(id);
    }
    if (unknown.length > 0) {
      throw new EvaluationInputError(`${splitName}: ${unknown.length} of its ${entries.length} entries name no image of ${source} (by id or file name): ${listSome(unknown)}`);
    }
    chosen = files.filter((f) => keep.has(f.id));
  }
  chosen = [...chosen].sort((a, b) => compareImageIds(a.id, b.id)).slice(0, limit);
  const empty = chosen.filter((f) => references.get(f.id)!.length === 0).map((f) => JSON.stringify(f.id));
  if (empty.length > 0) {
    throw new EvaluationInputError(`${source} has no captions for ${empty.length} image${empty.length > 1 ? 's' : ''} to evaluate: ${listSome(empty)}`);
  }
  const ids = new Set(chosen.map((f) => f.id));
  const kept: ReferenceMap = new Map([...references].filter(([id]) => ids.has(id)));
  return new EvaluationSet(
    chosen.map((f) => ({ id: f.id, file: f.file, path: path.resolve(dir, f.file) })),
    kept,
    source,
    files.length,
  );
}

/** The set of a references file (COCO captions format, e.g. captions_val2014.json). */
export function readEvaluationSet(referencesFile: string, opts: Omit<EvaluationSetOptions, 'source'>): EvaluationSet {
  return evaluationSet(readJsonFile(referencesFile, 'references'), { ...opts, source: referencesFile });
}
