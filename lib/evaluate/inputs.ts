/**
 * Reading and checking evaluation inputs: references in COCO captions format and results as
 * `[{"image_id", "caption"}]`, with an error that names the problem for anything the toolkit
 * would reject (or, where it would crash with a bare assertion, what that assertion meant).
 */
import { readJsonFile as readJson } from '../util/files';

/** An image id as it appears in the JSON (COCO uses integers; compared by value and type, as Python does). */
export type ImageId = number | string;

/** COCO captions format: what `captions_val2017.json` holds (other fields are ignored). */
export interface CocoCaptions {
  images: Array<{ id: ImageId; [key: string]: unknown }>;
  annotations: Array<{ image_id: ImageId; caption: string; [key: string]: unknown }>;
  [key: string]: unknown;
}

/** One generated caption, as coco-caption takes results. */
export interface CaptionResult {
  image_id: ImageId;
  caption: string;
}

/** References by image, in evaluation order (the order of `images` in a COCO file). */
export type ReferenceMap = Map<ImageId, string[]>;

/** Raised for unusable evaluation inputs; the message names the file or value and the problem. */
export class EvaluationInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EvaluationInputError';
  }
}

function showId(id: unknown): string {
  return JSON.stringify(id) ?? String(id);
}

function isImageId(v: unknown): v is ImageId {
  return (typeof v === 'number' && Number.isFinite(v)) || typeof v === 'string';
}

function listSome(items: readonly string[], max = 5): string {
  const shown = items.slice(0, max).join(', ');
  return items.length > max ? `${shown} and ${items.length - max} more` : shown;
}

/** Reads and parses a JSON file, saying which file and what went wrong. */
export function readJsonFile(file: string, what: string): unknown {
  return readJson(file, what, EvaluationInputError);
}

/**
 * Checks a parsed COCO captions object and returns its references by image. Every image listed in
 * `images` gets an entry (possibly empty), in the file's order; captions are kept in file order.
 * `source` names the input in error messages.
 */
export function referencesFromCoco(data: unknown, source = 'references'): ReferenceMap {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new EvaluationInputError(`${source}: expected a COCO captions object with "images" and "annotations", got ${Array.isArray(data) ? 'an array' : data === null ? 'null' : typeof data}`);
  }
  const obj = data as Record<string, unknown>;
  if (!Array.isArray(obj.images)) {
    throw new EvaluationInputError(`${source}: missing the "images" array of the COCO captions format (coco-caption evaluates the images listed there)`);
  }
  if (!Array.isArray(obj.annotations)) {
    throw new EvaluationInputError(`${source}: missing the "annotations" array of the COCO captions format`);
  }
  const refs: ReferenceMap = new Map();
  obj.images.forEach((img: unknown, i: number) => {
    const id = img !== null && typeof img === 'object' ? (img as Record<string, unknown>).id : undefined;
    if (!isImageId(id)) throw new EvaluationInputError(`${source}: images[${i}] has no valid "id" (got ${showId(id)})`);
    if (!refs.has(id)) refs.set(id, []);
  });
  obj.annotations.forEach((ann: unknown, i: number) => {
    if (ann === null || typeof ann !== 'object') throw new EvaluationInputError(`${source}: annotations[${i}] is not an object`);
    const a = ann as Record<string, unknown>;
    if (!isImageId(a.image_id)) throw new EvaluationInputError(`${source}: annotations[${i}] has no valid "image_id" (got ${showId(a.image_id)})`);
    if (typeof a.caption !== 'string') throw new EvaluationInputError(`${source}: annotations[${i}] (image ${showId(a.image_id)}) has no "caption" string (got ${showId(a.caption)})`);
    // Captions of images not listed in "images" are never evaluated (as in pycocotools).
    refs.get(a.image_id)?.push(a.caption);
  });
  return refs;
}

/** Checks a parsed results array (`[{"image_id", "caption"}, ...]`). */
export function resultsFromJson(data: unknown, source = 'results'): CaptionResult[] {
  if (!Array.isArray(data)) {
    throw new EvaluationInputError(`${source}: expected an array of {"image_id", "caption"} objects, got ${data === null ? 'null' : typeof data}`);
  }
  if (data.length === 0) throw new EvaluationInputError(`${source}: no results to evaluate (the array is empty)`);
  return data.map((r: unknown, i: number) => {
    if (r === null || typeof r !== 'object' || Array.isArray(r)) throw new EvaluationInputError(`${source}: entry ${i} is not an object`);
    const o = r as Record<string, unknown>;
    if (!isImageId(o.image_id)) throw new EvaluationInputError(`${source}: entry ${i} has no valid "image_id" (got ${showId(o.image_id)})`);
    if (typeof o.caption !== 'string') throw new EvaluationInputError(`${source}: entry ${i} (image ${showId(o.image_id)}) has no "caption" string (got ${showId(o.caption)})`);
    return { image_id: o.image_id, caption: o.caption };
  });
}

/** Results as a JSON array in COCO's format, one object a line (what resultsFromJson reads back). */
export function resultsToJson(results: readonly CaptionResult[]): string {
  return results.length ? `[\n${results.map((r) => `  ${JSON.stringify({ image_id: r.image_id, caption: r.caption })}`).join(',\n')}\n]\n` : '[]\n';
}

/** Reads a COCO captions references file. */
export function readReferencesFile(file: string): ReferenceMap {
  return referencesFromCoco(readJsonFile(file, 'references'), file);
}

/** Reads a results file. */
export function readResultsFile(file: string): CaptionResult[] {
  return resultsFromJson(readJsonFile(file, 'results'), file);
}

/** Accepts references as a map (image id to captions, in evaluation order) or a COCO captions object. */
export function toReferenceMap(references: ReferenceMap | CocoCaptions | ReadonlyMap<ImageId, readonly string[]>): ReferenceMap {
  if (references instanceof Map) {
    const out: ReferenceMap = new Map();
    for (const [id, caps] of references) {
      if (!isImageId(id)) throw new EvaluationInputError(`references: image id ${showId(id)} is not a number or string`);
      if (!Array.isArray(caps) || caps.some((c) => typeof c !== 'string')) {
        throw new EvaluationInputError(`references: image ${showId(id)} must map to an array of caption strings`);
      }
      out.set(id, [...caps]);
    }
    return out;
  }
  return referencesFromCoco(references);
}

/**
 * Pairs results with references the way pycocotools' `loadRes` and coco-caption do, or says why
 * that fails:
 * - every result's image must be among the references' images (the toolkit asserts "Results do not
 *   correspond to current coco set");
 * - one result per image (the toolkit's scorers assert one candidate per image, so duplicates are
 *   an error here too, listing the ids);
 * - every evaluated image needs at least one reference caption.
 * Images are evaluated in the references' order, restricted to those with a result.
 */
export function pairInputs(refs: ReferenceMap, results: readonly CaptionResult[]): { ids: ImageId[]; references: string[][]; candidates: string[] } {
  if (results.length === 0) throw new EvaluationInputError('results: no results to evaluate (the array is empty)');
  const byId = new Map<ImageId, string>();
  const duplicates: string[] = [];
  const unknown: string[] = [];
  for (const r of results) {
    if (byId.has(r.image_id)) {
      duplicates.push(showId(r.image_id));
      continue;
    }
    byId.set(r.image_id, r.caption);
    if (!refs.has(r.image_id)) unknown.push(showId(r.image_id));
  }
  if (unknown.length > 0) {
    const hint = unknown.some((u) => u.startsWith('"')) ? ' (ids are compared by value and type: "42" is not 42)' : '';
    throw new EvaluationInputError(`results name ${unknown.length} image id${unknown.length > 1 ? 's' : ''} that ${unknown.length > 1 ? 'are' : 'is'} not in the references: ${listSome(unknown)}${hint}`);
  }
  if (duplicates.length > 0) {
    const uniq = [...new Set(duplicates)];
    throw new EvaluationInputError(`results have more than one caption for ${uniq.length} image${uniq.length > 1 ? 's' : ''}: ${listSome(uniq)} (coco-caption scores exactly one caption per image)`);
  }
  const ids: ImageId[] = [];
  const references: string[][] = [];
  const candidates: string[] = [];
  const empty: string[] = [];
  for (const [id, caps] of refs) {
    const cand = byId.get(id);
    if (cand === undefined) continue;
    if (caps.length === 0) empty.push(showId(id));
    ids.push(id);
    references.push(caps);
    candidates.push(cand);
  }
  if (empty.length > 0) {
    throw new EvaluationInputError(`references have no captions for ${empty.length} evaluated image${empty.length > 1 ? 's' : ''}: ${listSome(empty)}`);
  }
  return { ids, references, candidates };
}
