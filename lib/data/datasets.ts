/**
 * Caption datasets: COCO captions JSON (indexed as pycocotools does), Flickr8k
 * (`Flickr8k.token.txt` and its split lists) and a plain folder with a JSONL file for custom data.
 * All become a `CaptionCorpus`: images (id, file) and caption annotations in file order.
 */
import * as fs from 'fs';
import * as path from 'path';
import { readJsonFile } from '../util/files';

export type ImageId = number | string;

export interface ImageRecord {
  id: ImageId;
  /** Path of the image file, relative to the corpus's image folder. */
  file: string;
}

export interface Annotation {
  id: number;
  imageId: ImageId;
  caption: string;
}

/** Raised for unusable dataset files; the message names the file and the problem. */
export class DatasetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DatasetError';
  }
}

export class CaptionCorpus {
  readonly imageById: ReadonlyMap<ImageId, ImageRecord>;
  readonly captionsByImage: ReadonlyMap<ImageId, string[]>;

  constructor(
    readonly images: readonly ImageRecord[],
    /** Annotations in file order (the order the book's dataset iterates and counts words in). */
    readonly annotations: readonly Annotation[],
    /** Folder the image files are relative to. */
    readonly imageDir: string,
    readonly source: string,
  ) {
    const byId = new Map<ImageId, ImageRecord>();
    const caps = new Map<ImageId, string[]>();
    for (const img of images) {
      if (byId.has(img.id)) throw new DatasetError(`${source}: image id ${JSON.stringify(img.id)} appears twice`);
      byId.set(img.id, img);
      caps.set(img.id, []);
    }
    for (const a of annotations) {
      const list = caps.get(a.imageId);
      if (!list) throw new DatasetError(`${source}: annotation ${a.id} refers to image ${JSON.stringify(a.imageId)}, which is not among the images`);
      list.push(a.caption);
    }
    this.imageById = byId;
    this.captionsByImage = caps;
  }

  imagePath(id: ImageId): string {
    const img = this.imageById.get(id);
    if (!img) throw new DatasetError(`${this.source}: no image with id ${JSON.stringify(id)}`);
    return path.resolve(this.imageDir, img.file);
  }

  /** The corpus restricted to some images (their annotations keep file order). */
  subset(ids: Iterable<ImageId>, source = `${this.source} (subset)`): CaptionCorpus {
    const keep = new Set(ids);
    return new CaptionCorpus(
      this.images.filter((i) => keep.has(i.id)),
      this.annotations.filter((a) => keep.has(a.imageId)),
      this.imageDir,
      source,
    );
  }

  /** COCO captions format, as `torchcap evaluate` and coco-caption take references. */
  toCoco(): { images: { id: ImageId; file_name: string }[]; annotations: { id: number; image_id: ImageId; caption: string }[] } {
    return {
      images: this.images.map((i) => ({ id: i.id, file_name: i.file })),
      annotations: this.annotations.map((a) => ({ id: a.id, image_id: a.imageId, caption: a.caption })),
    };
  }
}

/**
 * A COCO captions file (`captions_train2014.json` and the like). `imageDir` is where the images
 * named by `file_name` live.
 */
export function readCoco(file: string, imageDir: string): CaptionCorpus {
  const data = readJsonFile(file, 'captions', DatasetError) as Record<string, unknown>;
  if (data === null || typeof data !== 'object' || Array.isArray(data)) throw new DatasetError(`${file}: expected a COCO captions object`);
  if (!Array.isArray(data.images)) throw new DatasetError(`${file}: missing the "images" array of the COCO captions format`);
  if (!Array.isArray(data.annotations)) throw new DatasetError(`${file}: missing the "annotations" array of the COCO captions format`);
  const images = data.images.map((raw: unknown, i: number): ImageRecord => {
    const img = raw as Record<string, unknown>;
    if (!img || (typeof img.id !== 'number' && typeof img.id !== 'string')) throw new DatasetError(`${file}: images[${i}] has no valid "id"`);
    if (typeof img.file_name !== 'string' || !img.file_name) throw new DatasetError(`${file}: images[${i}] (id ${JSON.stringify(img.id)}) has no "file_name"`);
    return { id: img.id, file: img.file_name };
  });
  const annotations = data.annotations.map((raw: unknown, i: number): Annotation => {
    const a = raw as Record<string, unknown>;
    if (!a || (typeof a.image_id !== 'number' && typeof a.image_id !== 'string')) throw new DatasetError(`${file}: annotations[${i}] has no valid "image_id"`);
    if (typeof a.caption !== 'string') throw new DatasetError(`${file}: annotations[${i}] has no "caption" string`);
    return { id: typeof a.id === 'number' ? a.id : i, imageId: a.image_id, caption: a.caption };
  });
  return new CaptionCorpus(images, annotations, imageDir, file);
}

function readLines(file: string, what: string): string[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new DatasetError(code === 'ENOENT' ? `${what} file not found: ${file}` : `cannot read ${what} file ${file}: ${(e as Error).message}`);
  }
  return text.split(/\r?\n/);
}

/**
 * Flickr8k: `Flickr8k.token.txt` (`IMAGE#N<TAB>caption`) and optionally a split list
 * (`Flickr_8k.trainImages.txt`) restricting the images. Image ids are the file names.
 */
export function readFlickr8k(tokenFile: string, imageDir: string, splitFile?: string): CaptionCorpus {
  const keep = splitFile ? new Set(readLines(splitFile, 'Flickr8k split').map((l) => l.trim()).filter(Boolean)) : null;
  const images: ImageRecord[] = [];
  const seen = new Set<string>();
  const annotations: Annotation[] = [];
  readLines(tokenFile, 'Flickr8k captions').forEach((line, n) => {
    if (!line.trim()) return;
    // A few lines of the distribution separate with spaces instead of a tab.
    const m = /^(\S+?)#(\d+)\s+(.*)$/.exec(line);
    if (!m) throw new DatasetError(`${tokenFile}:${n + 1}: expected "IMAGE#N<TAB>caption", got ${JSON.stringify(line.slice(0, 80))}`);
    const [, file, , caption] = m;
    if (keep && !keep.has(file)) return;
    if (!seen.has(file)) {
      seen.add(file);
      images.push({ id: file, file });
    }
    annotations.push({ id: annotations.length, imageId: file, caption: caption.trim() });
  });
  if (keep) {
    const missing = [...keep].filter((f) => !seen.has(f));
    if (missing.length) throw new DatasetError(`${splitFile}: ${missing.length} listed images have no captions in ${tokenFile} (first: ${missing[0]})`);
  }
  return new CaptionCorpus(images, annotations, imageDir, tokenFile);
}

/**
 * Custom data: a JSONL file, one object a line, `{"image": "path/in/folder.jpg", "caption": "..."}`
 * or `{"image": ..., "captions": ["...", ...]}`; image paths are relative to `imageDir`
 * (default: the JSONL file's folder).
 */
export function readJsonl(file: string, imageDir = path.dirname(file)): CaptionCorpus {
  const images: ImageRecord[] = [];
  const annotations: Annotation[] = [];
  const seen = new Set<string>();
  readLines(file, 'captions JSONL').forEach((line, n) => {
    if (!line.trim()) return;
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(line);
    } catch (e) {
      throw new DatasetError(`${file}:${n + 1}: not valid JSON (${(e as Error).message})`);
    }
    if (!o || typeof o.image !== 'string' || !o.image) throw new DatasetError(`${file}:${n + 1}: needs an "image" path`);
    const caps = typeof o.caption === 'string' ? [o.caption] : Array.isArray(o.captions) ? o.captions : null;
    if (!caps || !caps.length || caps.some((c) => typeof c !== 'string')) throw new DatasetError(`${file}:${n + 1}: needs a "caption" string or a "captions" array of strings`);
    if (!seen.has(o.image)) {
      seen.add(o.image);
      images.push({ id: o.image, file: o.image });
    }
    for (const c of caps as string[]) annotations.push({ id: annotations.length, imageId: o.image, caption: c });
  });
  if (!images.length) throw new DatasetError(`${file}: no captions found`);
  return new CaptionCorpus(images, annotations, imageDir, file);
}

/** Reads a dataset by the form of its captions file: `.json` (COCO), `.jsonl`, or Flickr8k `.txt`. */
export function readCaptions(file: string, imageDir: string, opts: { split?: string } = {}): CaptionCorpus {
  if (opts.split !== undefined && !file.endsWith('.txt')) {
    throw new DatasetError(`a split list (${opts.split}) applies to Flickr8k's token file (.txt); ${file} is read whole (COCO JSON or JSONL name their own images)`);
  }
  if (file.endsWith('.jsonl')) return readJsonl(file, imageDir);
  if (file.endsWith('.txt')) return readFlickr8k(file, imageDir, opts.split);
  return readCoco(file, imageDir);
}
