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
 *   of distinct objects (times vertical and horizontal jitter). Most of them occur in a training
 *   set of a few thousand scenes, so a held-out scene drawn like the training ones mostly has a
 *   caption seen in training.
 * - Combinations never seen in training: a fixed list of object kinds (size, colour and shape;
 *   `WITHHELD_KINDS`, e.g. "large red cross") appears in no training scene. The held-out split
 *   mixes scenes drawn as the training ones ("seen") with scenes that show at least one withheld
 *   kind ("unseen", 30% by default, spread evenly over the split), so the two can be scored apart.
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
 *   geometry), whether it is unseen, its canonical caption, the options (the withheld kinds
 *   among them) and the palette.
 * The JSON files are written atomically, `scenes.json` last; stale `scene-*` images of an earlier,
 * larger run in the same folder are removed.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { writeFileAtomic } from '../util/files';
import {
  BACKGROUND,
  CAPTIONS_PER_IMAGE,
  DEFAULT_CANONICAL_REFERENCES,
  DEFAULT_UNSEEN_SHARE,
  GENERATOR,
  GENERATOR_VERSION,
  PALETTE,
  SceneOptionsError,
  WITHHELD_KINDS,
  checkSceneOptions,
  checkWithheld,
  isWithheld,
  sampleScene,
  type ColorName,
  type GenerateScenesOptions,
  type GeneratedScenes,
  type Scene,
  type SceneKinds,
  type SceneObject,
  type SceneOptions,
} from './scene-layout';
import { describeScene, sceneReferences } from './scene-captions';
import { renderScene } from './scene-render';

export * from './scene-layout';
export * from './scene-captions';
export * from './scene-render';
export * from './scene-score';
export { mulberry32 } from '../util/random';

// ---------------------------------------------------------------------------------------------
// The set

/** File name of image `id`: `scene-000123.jpg`. */
export function sceneFileName(id: number, format: 'jpeg' | 'png' = 'jpeg'): string {
  return `scene-${String(id).padStart(6, '0')}.${format === 'png' ? 'png' : 'jpg'}`;
}

const SCENE_FILE = /^scene-\d{6,}\.(jpg|png)$/;

/**
 * Describes scene `index` (0-based; its image id is index + 1) without rendering it. With
 * `withheld`, `show` says whether it avoids those kinds ('seen', as every training scene) or shows
 * one ('unseen').
 */
export function makeScene(seed: number, index: number, opts: SceneOptions & SceneKinds & { format?: 'jpeg' | 'png'; canonicalReferences?: number; split?: 'train' | 'test' } = {}): Scene {
  const { objects, rng } = sampleScene(seed, index, opts);
  const size = opts.size ?? 64;
  const positions = opts.positions ?? true;
  return {
    id: index + 1,
    file_name: sceneFileName(index + 1, opts.format),
    width: size,
    height: size,
    split: opts.split ?? 'train',
    unseen: objects.some((o) => isWithheld(o, opts.withheld ?? [])),
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

/** Whether item `j` of `total` is one of `chosen` spread evenly over them (Bresenham's rule). */
function spreadEvenly(j: number, chosen: number, total: number): boolean {
  return Math.floor(((j + 1) * chosen) / total) > Math.floor((j * chosen) / total);
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
  const withheld = checkWithheld(options.withheld ?? WITHHELD_KINDS);
  const unseen = options.unseen ?? (withheld.length ? Math.round(DEFAULT_UNSEEN_SHARE * heldOut) : 0);
  if (!Number.isInteger(unseen) || unseen < 0 || unseen > heldOut) throw new SceneOptionsError(`unseen must be an integer from 0 to heldOut (${heldOut}), got ${String(unseen)}`);
  if (unseen > 0 && withheld.length === 0) throw new SceneOptionsError('unseen scenes need withheld kinds');
  const concurrency = options.concurrency ?? 4 * os.availableParallelism();
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new SceneOptionsError(`concurrency must be a positive integer, got ${String(concurrency)}`);

  const root = path.resolve(outDir);
  const imageDir = path.join(root, 'images');
  await fs.promises.mkdir(imageDir, { recursive: true });

  const scenes: Scene[] = [];
  const firstTest = count - heldOut;
  for (let i = 0; i < count; i++) {
    const split = i >= firstTest ? 'test' : 'train';
    const show = split === 'test' && spreadEvenly(i - firstTest, unseen, heldOut) ? 'unseen' : 'seen';
    scenes.push(makeScene(seed, i, { size, objectsPerScene: [min, max], positions, format, canonicalReferences, split, withheld, show }));
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

  const settings = { seed, count, heldOut, unseen, size, objectsPerScene: [min, max], positions, format, jpegQuality, canonicalReferences, withheld };
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
    scenes: scenes.map((s) => ({ id: s.id, file_name: s.file_name, split: s.split, unseen: s.unseen, caption: s.caption, objects: s.objects })),
  };
  await writeFileAtomic(scenesFile, `${JSON.stringify(sidecar)}\n`);

  const byObjects: Record<number, number> = {};
  for (const s of scenes) byObjects[s.objects.length] = (byObjects[s.objects.length] ?? 0) + 1;
  return {
    train: trainFile,
    test: testFile,
    images: imageDir,
    scenes: scenesFile,
    counts: { images: count, train: train.length, test: test.length, unseen, captions: count * CAPTIONS_PER_IMAGE, byObjects },
    seconds: Number(process.hrtime.bigint() - started) / 1e9,
  };
}

/** What `scenes.json` holds. */
export interface ScenesFile {
  generator: string;
  version: number;
  settings: Record<string, unknown>;
  palette: Record<ColorName | 'background', string>;
  scenes: { id: number; file_name: string; split: 'train' | 'test'; unseen: boolean; caption: string; objects: SceneObject[] }[];
}

/** Reads a `scenes.json` written by {@link generateScenes}. */
export async function readScenesFile(file: string): Promise<ScenesFile> {
  const data = JSON.parse(await fs.promises.readFile(file, 'utf8')) as ScenesFile;
  if (data?.generator !== GENERATOR || !Array.isArray(data.scenes)) throw new Error(`${file} is not a ${GENERATOR} scenes file`);
  return data;
}
