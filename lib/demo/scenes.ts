/**
 * The demo's bundled data: a synthetic captioning set generated on the spot, so that `npm run demo`
 * needs no download. Each image is a drawn scene of one to three flat shapes on a plain gray
 * background; its five reference captions describe the shapes from left to right.
 *
 * Designed so that a small CNN-LSTM learns it in minutes at 64 x 64 and scores well in BLEU:
 * - Attributes that survive low resolution and JPEG: six colours far apart in hue or lightness (red,
 *   green, blue, yellow, white, black on mid gray), four shapes with distinct outlines (circle,
 *   square, triangle, cross), two sizes whose radii differ by a factor of about 1.9. Shapes are
 *   axis-aligned and never overlap; a margin keeps them off the border.
 * - Positions that are unambiguous: one object sits clearly on the left, in the middle or on the
 *   right; two or three objects are described from left to right and at least a gap apart.
 * - One deterministic core description per image, the canonical caption, e.g. "a large red circle
 *   on the left and a small blue square on the right": all its words come from the pixels, in a
 *   fixed order. Three of the five references are that caption (differing only in capitals and a
 *   final period, which coco-caption's PTB tokenization removes); two are mild paraphrases
 *   ("there is ...", "big"/"little", "to the left of", "in the center"). A model trained on all five
 *   follows the majority at every branching word, so greedy decoding yields the canonical caption,
 *   whose n-grams are all found, unclipped, in those three references; the closest reference length
 *   is its own, so no brevity penalty applies either. A perfect model scores BLEU-4 = 1.
 * - Variety across images comes from the scene: 144 single-object scenes and 2,256 ordered pairs
 *   of distinct objects (times vertical and horizontal jitter), so held-out images mostly show
 *   combinations whose exact caption was seen rarely or never.
 *
 * `positions: false` drops the position words (objects are then named largest first, then in
 * colour and shape order), for an encoder that pools away where things are.
 *
 * Everything is deterministic for a seed: a scene depends only on the seed and its index (mulberry32
 * seeded from both), so a larger `count` extends a smaller one. Images are rendered by sharp from an
 * SVG (librsvg, anti-aliased) and saved as JPEG (quality 90, 4:4:4 chroma) or PNG.
 *
 * Output in `outDir`:
 * - `images/scene-000001.jpg`, ...: the scenes, ids from 1;
 * - `captions_train.json`, `captions_test.json`: COCO captions format (`info`, `images` with `id`,
 *   `file_name`, `width`, `height`, `annotations` with `id`, `image_id`, `caption`); the held-out
 *   test split is the last `heldOut` ids;
 * - `scenes.json`: what each image shows (objects with colour, shape, size, position and pixel
 *   geometry), its canonical caption, the options and the palette.
 * The JSON files are written atomically, `scenes.json` last; stale `scene-*` images of an earlier,
 * larger run in the same folder are removed.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { writeFileAtomicAsync as writeFileAtomic } from '../util/files';

export const COLORS = ['red', 'green', 'blue', 'yellow', 'white', 'black'] as const;
export const SHAPES = ['circle', 'square', 'triangle', 'cross'] as const;
export const SIZES = ['small', 'large'] as const;
export const POSITIONS = ['left', 'middle', 'right'] as const;

export type ColorName = (typeof COLORS)[number];
export type ShapeName = (typeof SHAPES)[number];
export type SizeName = (typeof SIZES)[number];
export type Position = (typeof POSITIONS)[number];

/** Fill of each colour: saturated, and far from the background in hue or lightness. */
export const PALETTE: Readonly<Record<ColorName, string>> = {
  red: '#e02020',
  green: '#20b030',
  blue: '#2040e0',
  yellow: '#f0e020',
  white: '#ffffff',
  black: '#000000',
};

/** The plain background of every scene (mid gray, named "gray" in some paraphrases). */
export const BACKGROUND = '#808080';

/** Object half-extent as a fraction of the image side, for one or two objects per scene. */
export const RADIUS: Readonly<Record<SizeName, number>> = { small: 0.08, large: 0.15 };
/** Radii are scaled by this in three-object scenes, so that three large shapes fit side by side. */
export const THREE_OBJECT_SCALE = 0.8;
/** Free border around every object, and least horizontal gap between two objects (fractions of the side). */
const MARGIN = 0.03;
const GAP = 0.06;

/** Reference captions per image, as in COCO. */
export const CAPTIONS_PER_IMAGE = 5;
/** How many of the five references are the canonical caption (by default). */
export const DEFAULT_CANONICAL_REFERENCES = 3;

export const GENERATOR = 'torchcap-scenes';
export const GENERATOR_VERSION = 1;

export interface SceneObject {
  color: ColorName;
  shape: ShapeName;
  size: SizeName;
  /** Where the caption says it is ("middle" only in one-object and three-object scenes). */
  position: Position;
  /** Centre and half-extent in pixels (two decimals), as drawn. */
  cx: number;
  cy: number;
  radius: number;
}

export interface SceneOptions {
  /** Image side in pixels (at least 16; 64 is the intended size). Default 64. */
  size?: number;
  /** Fewest and most objects in a scene, each count equally likely; within 1..3. Default [1, 2]. */
  objectsPerScene?: readonly [number, number];
  /** Whether captions say where objects are. Default true. */
  positions?: boolean;
}

export interface Scene {
  /** Image id, from 1. */
  id: number;
  file_name: string;
  width: number;
  height: number;
  split: 'train' | 'test';
  /** Left to right when `positions` is on; otherwise in caption order. */
  objects: SceneObject[];
  /** The canonical caption (lower case, no period). */
  caption: string;
  /** The five reference captions, as written to the COCO file. */
  references: string[];
}

export interface GenerateScenesOptions extends SceneOptions {
  /** Folder for everything; created when missing. */
  outDir: string;
  /** Number of images, train and test together. */
  count: number;
  /** Seed of the whole set. Default 0. */
  seed?: number;
  /** Images held out for testing (the last ids). Default a tenth of `count`, rounded. */
  heldOut?: number;
  /** Images rendered at once. Default four per core (rendering waits on file writes too). */
  concurrency?: number;
  /** Image file format. Default 'jpeg' (`.jpg`). */
  format?: 'jpeg' | 'png';
  /** JPEG quality, 1..100. Default 90. */
  jpegQuality?: number;
  /** How many of the five references are the canonical caption, 1..5. Default 3. */
  canonicalReferences?: number;
}

export interface GeneratedScenes {
  /** COCO captions file of the training split. */
  train: string;
  /** COCO captions file of the held-out split. */
  test: string;
  /** Folder of the images (`file_name` is relative to it). */
  images: string;
  /** The scene descriptions (`scenes.json`). */
  scenes: string;
  counts: {
    images: number;
    train: number;
    test: number;
    captions: number;
    /** Images by number of objects. */
    byObjects: Record<number, number>;
  };
  /** Wall time of the generation in seconds. */
  seconds: number;
}

/** Raised for invalid options. */
export class SceneOptionsError extends RangeError {
  constructor(message: string) {
    super(message);
    this.name = 'SceneOptionsError';
  }
}

// ---------------------------------------------------------------------------------------------
// Random numbers

/** mulberry32: a small, fast 32-bit PRNG; returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A 32-bit seed mixed from the set's seed and a scene index (murmur3's finalizer over both). */
export function sceneSeed(seed: number, index: number): number {
  let h = (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul((index >>> 0) + 0x632be5ab, 0x85ebca77)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function pick<T>(rng: () => number, items: readonly T[]): T {
  return items[Math.floor(rng() * items.length)];
}

function uniform(rng: () => number, lo: number, hi: number): number {
  return lo + (hi - lo) * rng();
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

// ---------------------------------------------------------------------------------------------
// Scene sampling

function checkSceneOptions(opts: SceneOptions): { size: number; min: number; max: number; positions: boolean } {
  const size = opts.size ?? 64;
  if (!Number.isInteger(size) || size < 16 || size > 4096) throw new SceneOptionsError(`size must be an integer from 16 to 4096, got ${String(size)}`);
  const range = opts.objectsPerScene ?? [1, 2];
  if (!Array.isArray(range) || range.length !== 2) throw new SceneOptionsError('objectsPerScene must be [fewest, most]');
  const [min, max] = range;
  if (!Number.isInteger(min) || !Number.isInteger(max) || min < 1 || max > 3 || min > max) {
    throw new SceneOptionsError(`objectsPerScene must be two integers with 1 <= fewest <= most <= 3, got [${String(min)}, ${String(max)}]`);
  }
  return { size, min, max, positions: opts.positions ?? true };
}

const SIZE_ORDER: Readonly<Record<SizeName, number>> = { large: 0, small: 1 };

function sameKind(a: Pick<SceneObject, 'color' | 'shape' | 'size'>, b: Pick<SceneObject, 'color' | 'shape' | 'size'>): boolean {
  return a.color === b.color && a.shape === b.shape && a.size === b.size;
}

/**
 * Horizontal centres for objects of radii `r` (left to right): uniform over the placements that
 * keep every object `margin` inside the image and neighbours `gap` apart, restricted so that the
 * first of two or three objects is left of centre and the last right of it (and a middle one near
 * the centre). Sampled as sorted uniforms over the free length, with a few retries for the
 * restriction and an evenly spread fallback.
 */
function placeRow(rng: () => number, r: readonly number[], size: number): number[] {
  const m = MARGIN * size;
  const g = GAP * size;
  const k = r.length;
  const offsets: number[] = [r[0] + m];
  for (let j = 1; j < k; j++) offsets.push(offsets[j - 1] + r[j - 1] + r[j] + g);
  const free = size - r[k - 1] - m - offsets[k - 1];
  if (free < 0) throw new SceneOptionsError(`size ${size} is too small for ${k} objects`);
  const ok = (xs: number[]): boolean => {
    if (k === 1) return true;
    if (xs[0] > 0.45 * size || xs[k - 1] < 0.55 * size) return false;
    return k !== 3 || (xs[1] > 0.35 * size && xs[1] < 0.65 * size);
  };
  for (let attempt = 0; attempt < 64; attempt++) {
    const u = r.map(() => rng() * free).sort((a, b) => a - b);
    const xs = u.map((v, j) => v + offsets[j]);
    if (ok(xs)) return xs;
  }
  return offsets.map((o) => o + free / 2);
}

/** Samples the objects of scene `index` of the set with `seed`, and the generator state after it. */
export function sampleScene(seed: number, index: number, opts: SceneOptions = {}): { objects: SceneObject[]; rng: () => number } {
  const { size, min, max, positions } = checkSceneOptions(opts);
  const rng = mulberry32(sceneSeed(seed, index));
  const k = min + Math.floor(rng() * (max - min + 1));
  const kinds: Pick<SceneObject, 'color' | 'shape' | 'size'>[] = [];
  while (kinds.length < k) {
    const kind = { color: pick(rng, COLORS), shape: pick(rng, SHAPES), size: pick(rng, SIZES) };
    if (!kinds.some((o) => sameKind(o, kind))) kinds.push(kind);
  }
  const scale = k === 3 ? THREE_OBJECT_SCALE : 1;
  const radii = kinds.map((o) => RADIUS[o.size] * scale * size);
  const m = MARGIN * size;
  let xs: number[];
  let place: Position[];
  if (k === 1) {
    const position = pick(rng, POSITIONS);
    const r = radii[0];
    const [lo, hi] = position === 'left' ? [r + m, 0.33 * size] : position === 'middle' ? [0.42 * size, 0.58 * size] : [0.67 * size, size - r - m];
    xs = [uniform(rng, lo, Math.max(lo, hi))];
    place = [position];
  } else {
    xs = placeRow(rng, radii, size);
    place = k === 2 ? ['left', 'right'] : ['left', 'middle', 'right'];
  }
  const objects = kinds.map((kind, j): SceneObject => {
    const r = radii[j];
    // A single object stays in the middle band vertically, so that "in the middle" holds.
    const [lo, hi] = k === 1 ? [Math.max(r + m, 0.3 * size), Math.min(size - r - m, 0.7 * size)] : [r + m, size - r - m];
    return { ...kind, position: place[j], cx: round2(xs[j]), cy: round2(uniform(rng, lo, Math.max(lo, hi))), radius: round2(r) };
  });
  if (!positions) {
    objects.sort((a, b) => SIZE_ORDER[a.size] - SIZE_ORDER[b.size] || COLORS.indexOf(a.color) - COLORS.indexOf(b.color) || SHAPES.indexOf(a.shape) - SHAPES.indexOf(b.shape));
  }
  return { objects, rng };
}

// ---------------------------------------------------------------------------------------------
// Captions

const SIZE_SYNONYM: Readonly<Record<SizeName, string>> = { large: 'big', small: 'little' };
const POSITION_PHRASE: Readonly<Record<Position, string>> = { left: 'on the left', middle: 'in the middle', right: 'on the right' };
const POSITION_PARAPHRASE: Readonly<Record<Position, string>> = { left: 'on the left side', middle: 'in the center', right: 'on the right side' };

/** "a", or "an" before a vowel sound (none of the default words needs it). */
function article(word: string): string {
  return /^[aeiou]/.test(word) ? 'an' : 'a';
}

function nounPhrase(o: SceneObject, synonyms = false): string {
  const size = synonyms ? SIZE_SYNONYM[o.size] : o.size;
  return `${article(size)} ${size} ${o.color} ${o.shape}`;
}

function joinList(parts: readonly string[]): string {
  if (parts.length <= 1) return parts.join('');
  return `${parts.slice(0, -1).join(', ')} and ${parts[parts.length - 1]}`;
}

function withPlaces(objects: readonly SceneObject[], opts: { synonyms?: boolean; paraphrase?: boolean } = {}): string {
  const table = opts.paraphrase ? POSITION_PARAPHRASE : POSITION_PHRASE;
  return joinList(objects.map((o) => `${nounPhrase(o, opts.synonyms)} ${table[o.position]}`));
}

/**
 * The canonical caption of a scene (lower case, no final period): each object as "a SIZE COLOUR
 * SHAPE", followed by where it is unless `positions` is false, joined with commas and "and".
 */
export function describeScene(objects: readonly SceneObject[], opts: { positions?: boolean } = {}): string {
  if (objects.length === 0) throw new SceneOptionsError('a scene has at least one object');
  if (opts.positions ?? true) return withPlaces(objects);
  return joinList(objects.map((o) => nounPhrase(o)));
}

type Paraphrase = (objects: readonly SceneObject[]) => string;

/** Paraphrases of scenes with positions; each keeps the objects in caption order. */
const PLACED_PARAPHRASES: readonly Paraphrase[] = [
  (s) => `there is ${withPlaces(s)}`,
  (s) => withPlaces(s, { synonyms: true }),
  (s) => withPlaces(s, { paraphrase: true }),
  (s) => `a gray background with ${withPlaces(s)}`,
  (s) => {
    if (s.length === 1) return `a single ${withPlaces(s).replace(/^an? /, '')}`;
    if (s.length === 2) return `${nounPhrase(s[0])} to the left of ${nounPhrase(s[1])}`;
    return `${joinList(s.map((o) => nounPhrase(o)))} from left to right`;
  },
];

/** Paraphrases of scenes without positions. */
const UNPLACED_PARAPHRASES: readonly Paraphrase[] = [
  (s) => `there is ${describeScene(s, { positions: false })}`,
  (s) => joinList(s.map((o) => nounPhrase(o, true))),
  (s) => `a picture of ${describeScene(s, { positions: false })}`,
  (s) => `a gray background with ${describeScene(s, { positions: false })}`,
  (s) => (s.length === 1 ? `a single ${describeScene(s, { positions: false }).replace(/^an? /, '')}` : `${describeScene(s, { positions: false })} side by side`),
];

/** COCO-like surface: mostly sentence case, sometimes a final period. */
function surface(rng: () => number, caption: string): string {
  const cased = rng() < 0.8 ? caption.charAt(0).toUpperCase() + caption.slice(1) : caption;
  return rng() < 0.5 ? `${cased}.` : cased;
}

/**
 * The five references of a scene: `canonical` copies of the canonical caption and paraphrases
 * (distinct, chosen with `rng`) for the rest, each with COCO-like capitals and periods, shuffled.
 */
export function sceneReferences(objects: readonly SceneObject[], rng: () => number, opts: { positions?: boolean; canonical?: number } = {}): string[] {
  const positions = opts.positions ?? true;
  const canonical = opts.canonical ?? DEFAULT_CANONICAL_REFERENCES;
  if (!Number.isInteger(canonical) || canonical < 1 || canonical > CAPTIONS_PER_IMAGE) {
    throw new SceneOptionsError(`canonicalReferences must be an integer from 1 to ${CAPTIONS_PER_IMAGE}, got ${String(canonical)}`);
  }
  const base = describeScene(objects, { positions });
  const pool = [...(positions ? PLACED_PARAPHRASES : UNPLACED_PARAPHRASES)];
  const captions: string[] = [];
  for (let i = 0; i < canonical; i++) captions.push(base);
  while (captions.length < CAPTIONS_PER_IMAGE) {
    const [f] = pool.splice(Math.floor(rng() * pool.length), 1);
    captions.push(f(objects));
  }
  for (let i = captions.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [captions[i], captions[j]] = [captions[j], captions[i]];
  }
  return captions.map((c) => surface(rng, c));
}

// ---------------------------------------------------------------------------------------------
// Rendering

function shapeElement(o: SceneObject): string {
  const { cx, cy, radius: r } = o;
  const fill = PALETTE[o.color];
  const f = (x: number): string => round2(x).toString();
  switch (o.shape) {
    case 'circle':
      return `<circle cx="${f(cx)}" cy="${f(cy)}" r="${f(r)}" fill="${fill}"/>`;
    case 'square': {
      // A little smaller than the circle's box, for about the same area.
      const h = 0.9 * r;
      return `<rect x="${f(cx - h)}" y="${f(cy - h)}" width="${f(2 * h)}" height="${f(2 * h)}" fill="${fill}"/>`;
    }
    case 'triangle': {
      // Pointing up, base and height the full box; the centre is inside.
      return `<polygon points="${f(cx)},${f(cy - r)} ${f(cx + r)},${f(cy + r)} ${f(cx - r)},${f(cy + r)}" fill="${fill}"/>`;
    }
    case 'cross': {
      const t = 0.36 * r;
      const pts = [
        [cx - t, cy - r], [cx + t, cy - r], [cx + t, cy - t], [cx + r, cy - t], [cx + r, cy + t], [cx + t, cy + t],
        [cx + t, cy + r], [cx - t, cy + r], [cx - t, cy + t], [cx - r, cy + t], [cx - r, cy - t], [cx - t, cy - t],
      ];
      return `<polygon points="${pts.map(([x, y]) => `${f(x)},${f(y)}`).join(' ')}" fill="${fill}"/>`;
    }
  }
}

/** The SVG of a scene at `size` x `size`. */
export function sceneSvg(objects: readonly SceneObject[], size: number): string {
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}" viewBox="0 0 ${size} ${size}">` +
    `<rect width="${size}" height="${size}" fill="${BACKGROUND}"/>${objects.map(shapeElement).join('')}</svg>`
  );
}

/** Renders a scene to an encoded image (3-channel sRGB, no metadata). */
export async function renderScene(objects: readonly SceneObject[], size: number, opts: { format?: 'jpeg' | 'png'; jpegQuality?: number } = {}): Promise<Buffer> {
  const img = sharp(Buffer.from(sceneSvg(objects, size))).removeAlpha();
  if ((opts.format ?? 'jpeg') === 'png') return img.png({ compressionLevel: 6, adaptiveFiltering: false }).toBuffer();
  return img.jpeg({ quality: opts.jpegQuality ?? 90, chromaSubsampling: '4:4:4' }).toBuffer();
}

// ---------------------------------------------------------------------------------------------
// The set

/** File name of image `id`: `scene-000123.jpg`. */
export function sceneFileName(id: number, format: 'jpeg' | 'png' = 'jpeg'): string {
  return `scene-${String(id).padStart(6, '0')}.${format === 'png' ? 'png' : 'jpg'}`;
}

const SCENE_FILE = /^scene-\d{6,}\.(jpg|png)$/;

/** Describes scene `index` (0-based; its image id is index + 1) without rendering it. */
export function makeScene(seed: number, index: number, opts: SceneOptions & { format?: 'jpeg' | 'png'; canonicalReferences?: number; split?: 'train' | 'test' } = {}): Scene {
  const { objects, rng } = sampleScene(seed, index, opts);
  const size = opts.size ?? 64;
  const positions = opts.positions ?? true;
  return {
    id: index + 1,
    file_name: sceneFileName(index + 1, opts.format),
    width: size,
    height: size,
    split: opts.split ?? 'train',
    objects,
    caption: describeScene(objects, { positions }),
    references: sceneReferences(objects, rng, { positions, canonical: opts.canonicalReferences }),
  };
}

function cocoFile(scenes: readonly Scene[], info: Record<string, unknown>): string {
  const images = scenes.map((s) => ({ id: s.id, file_name: s.file_name, width: s.width, height: s.height }));
  const annotations = scenes.flatMap((s) => s.references.map((caption, j) => ({ id: (s.id - 1) * CAPTIONS_PER_IMAGE + j + 1, image_id: s.id, caption })));
  return `${JSON.stringify({ info, licenses: [], images, annotations })}\n`;
}

async function runPool<T>(items: readonly T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const item = items[next++];
      try {
        await work(item);
      } catch (e) {
        failed = true;
        throw e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, worker));
}

/**
 * Generates the set into `outDir` (see the module comment for what is written) and returns where
 * the files are. Deterministic for the options: the same options give byte-identical files.
 */
export async function generateScenes(options: GenerateScenesOptions): Promise<GeneratedScenes> {
  const started = process.hrtime.bigint();
  const { size, min, max, positions } = checkSceneOptions(options);
  const { outDir, count } = options;
  if (typeof outDir !== 'string' || !outDir) throw new SceneOptionsError('outDir is required');
  if (!Number.isInteger(count) || count < 1) throw new SceneOptionsError(`count must be a positive integer, got ${String(count)}`);
  const seed = options.seed ?? 0;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new SceneOptionsError(`seed must be an integer from 0 to 2^32 - 1, got ${String(seed)}`);
  const heldOut = options.heldOut ?? Math.round(count / 10);
  if (!Number.isInteger(heldOut) || heldOut < 0 || heldOut > count) throw new SceneOptionsError(`heldOut must be an integer from 0 to count (${count}), got ${String(heldOut)}`);
  const format = options.format ?? 'jpeg';
  if (format !== 'jpeg' && format !== 'png') throw new SceneOptionsError(`format must be 'jpeg' or 'png', got ${String(format)}`);
  const jpegQuality = options.jpegQuality ?? 90;
  if (!Number.isInteger(jpegQuality) || jpegQuality < 1 || jpegQuality > 100) throw new SceneOptionsError(`jpegQuality must be an integer from 1 to 100, got ${String(jpegQuality)}`);
  const canonicalReferences = options.canonicalReferences ?? DEFAULT_CANONICAL_REFERENCES;
  const concurrency = options.concurrency ?? 4 * os.availableParallelism();
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new SceneOptionsError(`concurrency must be a positive integer, got ${String(concurrency)}`);

  const root = path.resolve(outDir);
  const imageDir = path.join(root, 'images');
  await fs.promises.mkdir(imageDir, { recursive: true });

  const scenes: Scene[] = [];
  for (let i = 0; i < count; i++) {
    scenes.push(makeScene(seed, i, { size, objectsPerScene: [min, max], positions, format, canonicalReferences, split: i >= count - heldOut ? 'test' : 'train' }));
  }

  // Images: each written under a hidden name and renamed, so no half file ever has a final name.
  await runPool(scenes, concurrency, async (s) => {
    const data = await renderScene(s.objects, size, { format, jpegQuality });
    const target = path.join(imageDir, s.file_name);
    const tmp = path.join(imageDir, `.${s.file_name}.${process.pid}.tmp`);
    await fs.promises.writeFile(tmp, data);
    await fs.promises.rename(tmp, target);
  });
  const keep = new Set(scenes.map((s) => s.file_name));
  for (const name of await fs.promises.readdir(imageDir)) {
    if (SCENE_FILE.test(name) && !keep.has(name)) await fs.promises.unlink(path.join(imageDir, name)).catch(() => undefined);
  }

  const settings = { seed, count, heldOut, size, objectsPerScene: [min, max], positions, format, jpegQuality, canonicalReferences };
  const info = (split: string): Record<string, unknown> => ({
    description: `torchcap synthetic shapes, ${split} split`,
    version: String(GENERATOR_VERSION),
    contributor: 'torchcap',
    generator: GENERATOR,
    ...settings,
  });
  const train = scenes.filter((s) => s.split === 'train');
  const test = scenes.filter((s) => s.split === 'test');
  const trainFile = path.join(root, 'captions_train.json');
  const testFile = path.join(root, 'captions_test.json');
  const scenesFile = path.join(root, 'scenes.json');
  await writeFileAtomic(trainFile, cocoFile(train, info('train')));
  await writeFileAtomic(testFile, cocoFile(test, info('test')));
  const sidecar = {
    generator: GENERATOR,
    version: GENERATOR_VERSION,
    settings,
    palette: { ...PALETTE, background: BACKGROUND },
    scenes: scenes.map((s) => ({ id: s.id, file_name: s.file_name, split: s.split, caption: s.caption, objects: s.objects })),
  };
  await writeFileAtomic(scenesFile, `${JSON.stringify(sidecar)}\n`);

  const byObjects: Record<number, number> = {};
  for (const s of scenes) byObjects[s.objects.length] = (byObjects[s.objects.length] ?? 0) + 1;
  return {
    train: trainFile,
    test: testFile,
    images: imageDir,
    scenes: scenesFile,
    counts: { images: count, train: train.length, test: test.length, captions: count * CAPTIONS_PER_IMAGE, byObjects },
    seconds: Number(process.hrtime.bigint() - started) / 1e9,
  };
}

/** What `scenes.json` holds. */
export interface ScenesFile {
  generator: string;
  version: number;
  settings: Record<string, unknown>;
  palette: Record<ColorName | 'background', string>;
  scenes: { id: number; file_name: string; split: 'train' | 'test'; caption: string; objects: SceneObject[] }[];
}

/** Reads a `scenes.json` written by {@link generateScenes}. */
export async function readScenesFile(file: string): Promise<ScenesFile> {
  const data = JSON.parse(await fs.promises.readFile(file, 'utf8')) as ScenesFile;
  if (data?.generator !== GENERATOR || !Array.isArray(data.scenes)) throw new Error(`${file} is not a ${GENERATOR} scenes file`);
  return data;
}
