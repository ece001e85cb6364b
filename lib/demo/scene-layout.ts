/**
 * What a demo scene is (see scenes.ts for the whole set): one to three flat shapes of six colours,
 * four shapes and two sizes on a gray background, placed left, middle or right; and how a scene is
 * drawn at random, deterministically from the set's seed and the scene's index.
 */
import { mulberry32 } from '../util/random';

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
export const MARGIN = 0.03;
export const GAP = 0.06;

/** Reference captions per image, as in COCO. */
export const CAPTIONS_PER_IMAGE = 5;
/** How many of the five references are the canonical caption (by default). */
export const DEFAULT_CANONICAL_REFERENCES = 3;

export const GENERATOR = 'torchcap-scenes';
/** 2: training scenes never show a withheld kind; the held-out split mixes seen and unseen scenes. */
export const GENERATOR_VERSION = 2;

/** What an object is, apart from where: its size, colour and shape. */
export type ObjectKind = Pick<SceneObject, 'size' | 'color' | 'shape'>;

/**
 * Object kinds that no training scene shows: each colour once, each shape and size at least once
 * (6 of the 48 kinds). Every word pair of their captions occurs in training ("large red" with other
 * shapes, "red cross" when small, other large crosses): a held-out scene with one of them tests
 * whether the model composes what it learnt separately.
 */
export const WITHHELD_KINDS: readonly ObjectKind[] = Object.freeze([
  { size: 'large', color: 'red', shape: 'cross' },
  { size: 'small', color: 'green', shape: 'triangle' },
  { size: 'large', color: 'blue', shape: 'circle' },
  { size: 'small', color: 'yellow', shape: 'square' },
  { size: 'large', color: 'white', shape: 'triangle' },
  { size: 'small', color: 'black', shape: 'cross' },
] as const);

/** Share of the held-out scenes that show a withheld kind, by default. */
export const DEFAULT_UNSEEN_SHARE = 0.3;

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
  /** Whether it shows a withheld kind (only held-out scenes do). */
  unseen: boolean;
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
  /** Object kinds no training scene shows. Default {@link WITHHELD_KINDS}; [] withholds nothing. */
  withheld?: readonly ObjectKind[];
  /**
   * Held-out scenes that show at least one withheld kind ("unseen"); the others show none, as the
   * training scenes. Default 30% of `heldOut` (rounded), 0 when nothing is withheld.
   */
  unseen?: number;
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
    /** Held-out scenes that show a withheld kind. */
    unseen: number;
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

export function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

// ---------------------------------------------------------------------------------------------
// Scene sampling

export function checkSceneOptions(opts: SceneOptions): { size: number; min: number; max: number; positions: boolean } {
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

export function sameKind(a: ObjectKind, b: ObjectKind): boolean {
  return a.color === b.color && a.shape === b.shape && a.size === b.size;
}

/** Whether `kind` is one of `withheld`. */
export function isWithheld(kind: ObjectKind, withheld: readonly ObjectKind[]): boolean {
  return withheld.some((w) => sameKind(w, kind));
}

/** Checks a list of withheld kinds: known words, no repeats, and at least one kind left to train on. */
export function checkWithheld(withheld: unknown): readonly ObjectKind[] {
  if (!Array.isArray(withheld)) throw new SceneOptionsError('withheld must be an array of { size, color, shape }');
  const seen: ObjectKind[] = [];
  for (const w of withheld as ObjectKind[]) {
    if (!w || !SIZES.includes(w.size) || !COLORS.includes(w.color) || !SHAPES.includes(w.shape)) {
      throw new SceneOptionsError(`withheld kinds must name a size (${SIZES.join(', ')}), a colour (${COLORS.join(', ')}) and a shape (${SHAPES.join(', ')}), got ${JSON.stringify(w)}`);
    }
    if (isWithheld(w, seen)) throw new SceneOptionsError(`${w.size} ${w.color} ${w.shape} is withheld twice`);
    seen.push(w);
  }
  // Three distinct kinds must remain for a three-object training scene.
  if (SIZES.length * COLORS.length * SHAPES.length - seen.length < 3) throw new SceneOptionsError('withheld leaves too few kinds to draw training scenes from');
  return seen;
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

/** Which kinds a sampled scene may show: none of `withheld` ('seen'), or at least one of them ('unseen'). */
export interface SceneKinds {
  withheld?: readonly ObjectKind[];
  show?: 'seen' | 'unseen';
}

/**
 * Samples the objects of scene `index` of the set with `seed`, and the generator state after it.
 * With `withheld`, a 'seen' scene draws its kinds from the others only; an 'unseen' scene puts a
 * withheld kind at a random one of its places and draws the rest from all kinds.
 */
export function sampleScene(seed: number, index: number, opts: SceneOptions & SceneKinds = {}): { objects: SceneObject[]; rng: () => number } {
  const { size, min, max, positions } = checkSceneOptions(opts);
  const withheld = opts.withheld ?? [];
  if (opts.show === 'unseen' && withheld.length === 0) throw new SceneOptionsError('an unseen scene needs withheld kinds');
  const rng = mulberry32(sceneSeed(seed, index));
  const k = min + Math.floor(rng() * (max - min + 1));
  const kinds: ObjectKind[] = [];
  const forced = opts.show === 'unseen' ? Math.floor(rng() * k) : -1;
  while (kinds.length < k) {
    // (An earlier place may already show a withheld kind; then the forced place is drawn freely.)
    const force = kinds.length === forced && !kinds.some((o) => isWithheld(o, withheld));
    const kind: ObjectKind = force ? pick(rng, withheld) : { color: pick(rng, COLORS), shape: pick(rng, SHAPES), size: pick(rng, SIZES) };
    if (kinds.some((o) => sameKind(o, kind))) continue;
    if (opts.show === 'seen' && isWithheld(kind, withheld)) continue;
    kinds.push(kind);
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

