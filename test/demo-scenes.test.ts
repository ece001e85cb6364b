/**
 * The demo's bundled data: the synthetic scene generator (determinism, COCO format, images,
 * captions that say exactly what is drawn, splits, reachable BLEU) and the HTML report (self-contained,
 * escaped, written atomically).
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { computeBleu } from '../lib/evaluate/bleu';
import { tokenizeCaptions } from '../lib/evaluate/ptb-tokenizer';
import { escapeHtml, imageMimeType, writeReport } from '../lib/demo/report';
import {
  BACKGROUND, CAPTIONS_PER_IMAGE, COLORS, type GeneratedScenes, PALETTE, RADIUS, SHAPES, type SceneObject, type ScenesFile,
  SceneOptionsError, WITHHELD_KINDS, describeScene, generateScenes, makeScene, mulberry32, readScenesFile, sampleScene, sceneReferences,
} from '../lib/demo/scenes';

interface Coco {
  info: Record<string, unknown>;
  images: { id: number; file_name: string; width: number; height: number }[];
  annotations: { id: number; image_id: number; caption: string }[];
}

const readJson = <T>(file: string): T => JSON.parse(fs.readFileSync(file, 'utf8')) as T;

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torchcap-scenes-'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

function hashDir(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const name of fs.readdirSync(dir).sort()) out.set(name, createHash('sha256').update(fs.readFileSync(path.join(dir, name))).digest('hex'));
  return out;
}

const SIZE_WORD: Record<string, SceneObject['size']> = { large: 'large', big: 'large', small: 'small', little: 'small' };
const COLOR_RE = new RegExp(`\\b(${COLORS.join('|')})\\b`, 'g');
const SHAPE_RE = new RegExp(`\\b(${SHAPES.join('|')})\\b`, 'g');
const TRIPLE_RE = new RegExp(`\\b(large|big|small|little) (${COLORS.join('|')}) (${SHAPES.join('|')})\\b`, 'g');

/** The (size, colour, shape) triples a caption names, in order; throws on a stray colour or shape word. */
function objectsNamed(caption: string): string[] {
  const text = caption.toLowerCase();
  const triples = [...text.matchAll(TRIPLE_RE)].map((m) => `${SIZE_WORD[m[1]]} ${m[2]} ${m[3]}`);
  expect(text.match(COLOR_RE)?.length ?? 0).toBe(triples.length);
  expect(text.match(SHAPE_RE)?.length ?? 0).toBe(triples.length);
  return triples;
}

const kindOf = (o: Pick<SceneObject, 'size' | 'color' | 'shape'>): string => `${o.size} ${o.color} ${o.shape}`;

/** Whether a point (relative to the centre) is inside a shape of half-extent r, as the generator draws it. */
function inside(shape: SceneObject['shape'], dx: number, dy: number, r: number): boolean {
  switch (shape) {
    case 'circle':
      return dx * dx + dy * dy <= r * r;
    case 'square':
      return Math.abs(dx) <= 0.9 * r && Math.abs(dy) <= 0.9 * r;
    case 'triangle':
      return dy >= -r && dy <= r && Math.abs(dx) <= (dy + r) / 2;
    case 'cross':
      return (Math.abs(dx) <= 0.36 * r && Math.abs(dy) <= r) || (Math.abs(dy) <= 0.36 * r && Math.abs(dx) <= r);
  }
}

describe('generateScenes', () => {
  const COUNT = 80;
  const HELD_OUT = 16;
  const SIZE = 64;
  let a: GeneratedScenes;
  let train: Coco;
  let held: Coco;
  let scenes: ScenesFile;

  beforeAll(async () => {
    a = await generateScenes({ outDir: path.join(tmp, 'a'), count: COUNT, heldOut: HELD_OUT, seed: 7, size: SIZE });
    train = readJson<Coco>(a.train);
    held = readJson<Coco>(a.test);
    scenes = await readScenesFile(a.scenes);
  });

  test('is deterministic for a seed and differs across seeds', async () => {
    const b = await generateScenes({ outDir: path.join(tmp, 'b'), count: COUNT, heldOut: HELD_OUT, seed: 7, size: SIZE, concurrency: 1 });
    for (const f of ['captions_train.json', 'captions_test.json', 'scenes.json']) {
      expect(fs.readFileSync(path.join(tmp, 'b', f))).toEqual(fs.readFileSync(path.join(tmp, 'a', f)));
    }
    expect(hashDir(b.images)).toEqual(hashDir(a.images));

    const c = await generateScenes({ outDir: path.join(tmp, 'c'), count: COUNT, heldOut: HELD_OUT, seed: 8, size: SIZE });
    const other = readJson<Coco>(c.train);
    const differing = other.annotations.filter((ann, i) => ann.caption !== train.annotations[i].caption).length;
    expect(differing).toBeGreaterThan(train.annotations.length / 2);

    // A scene depends on the seed, its index and whether it may show a withheld kind only: a longer set extends a shorter one.
    const seen = { withheld: WITHHELD_KINDS, show: 'seen' } as const;
    expect(makeScene(7, 5, seen).references).toEqual(train.annotations.filter((x) => x.image_id === 6).map((x) => x.caption));
    expect(sampleScene(7, 5, seen).objects).toEqual(scenes.scenes[5].objects);
    const lastUnseen = scenes.scenes.filter((x) => x.unseen).pop()!;
    expect(sampleScene(7, lastUnseen.id - 1, { withheld: WITHHELD_KINDS, show: 'unseen' }).objects).toEqual(lastUnseen.objects);
  });

  test('counts', () => {
    expect(a.counts).toEqual({ images: COUNT, train: COUNT - HELD_OUT, test: HELD_OUT, unseen: Math.round(0.3 * HELD_OUT), captions: COUNT * 5, byObjects: expect.any(Object) });
    expect(train.images).toHaveLength(COUNT - HELD_OUT);
    expect(held.images).toHaveLength(HELD_OUT);
    expect(train.annotations).toHaveLength((COUNT - HELD_OUT) * 5);
    expect(held.annotations).toHaveLength(HELD_OUT * 5);
    const by = a.counts.byObjects;
    expect(Object.keys(by).sort()).toEqual(['1', '2']);
    expect(by[1] + by[2]).toBe(COUNT);
    expect(Math.min(by[1], by[2])).toBeGreaterThan(COUNT / 4);
    expect(a.seconds).toBeGreaterThan(0);
  });

  test('writes valid COCO captions files', () => {
    const imageIds = new Set<number>();
    const annIds = new Set<number>();
    for (const coco of [train, held]) {
      expect(coco.info).toMatchObject({ generator: 'torchcap-scenes', seed: 7, size: SIZE, count: COUNT });
      const here = new Map<number, number>();
      for (const img of coco.images) {
        expect(Number.isInteger(img.id) && img.id > 0).toBe(true);
        expect(imageIds.has(img.id)).toBe(false);
        imageIds.add(img.id);
        here.set(img.id, 0);
        expect(img.file_name).toBe(`scene-${String(img.id).padStart(6, '0')}.jpg`);
        expect([img.width, img.height]).toEqual([SIZE, SIZE]);
      }
      for (const ann of coco.annotations) {
        expect(Number.isInteger(ann.id)).toBe(true);
        expect(annIds.has(ann.id)).toBe(false);
        annIds.add(ann.id);
        expect(here.has(ann.image_id)).toBe(true);
        here.set(ann.image_id, here.get(ann.image_id)! + 1);
        expect(typeof ann.caption).toBe('string');
        expect(ann.caption.trim()).toBe(ann.caption);
        expect(ann.caption.length).toBeGreaterThan(10);
      }
      for (const n of here.values()) expect(n).toBe(CAPTIONS_PER_IMAGE);
    }
    expect([...imageIds].sort((x, y) => x - y)).toEqual(Array.from({ length: COUNT }, (_, i) => i + 1));
  });

  test('train and test images are disjoint; the test split is the last ids', () => {
    const trainIds = new Set(train.images.map((i) => i.id));
    const trainFiles = new Set(train.images.map((i) => i.file_name));
    for (const img of held.images) {
      expect(trainIds.has(img.id)).toBe(false);
      expect(trainFiles.has(img.file_name)).toBe(false);
      expect(img.id).toBeGreaterThan(COUNT - HELD_OUT);
    }
    for (const s of scenes.scenes) expect(s.split).toBe(s.id > COUNT - HELD_OUT ? 'test' : 'train');
  });

  test('no training scene shows a withheld kind; the unseen held-out scenes each show one, spread over the split', () => {
    const withheld = new Set(WITHHELD_KINDS.map(kindOf));
    expect(withheld.size).toBe(6);
    // Every colour, shape and size is still seen in training: each is withheld in some kinds only.
    for (const c of COLORS) expect(WITHHELD_KINDS.filter((k) => k.color === c)).toHaveLength(1);
    expect(scenes.settings.withheld).toEqual(WITHHELD_KINDS);
    const shows = (s: ScenesFile['scenes'][number]): boolean => s.objects.some((o) => withheld.has(kindOf(o)));
    const trainScenes = scenes.scenes.filter((s) => s.split === 'train');
    const heldScenes = scenes.scenes.filter((s) => s.split === 'test');
    for (const s of trainScenes) {
      expect(shows(s)).toBe(false);
      expect(s.unseen).toBe(false);
    }
    for (const s of heldScenes) expect(s.unseen).toBe(shows(s));
    const unseenAt = heldScenes.flatMap((s, j) => (s.unseen ? [j] : []));
    expect(unseenAt).toHaveLength(a.counts.unseen);
    // Spread evenly: never two unseen scenes next to each other at 30%.
    for (let k = 1; k < unseenAt.length; k++) expect(unseenAt[k] - unseenAt[k - 1]).toBeGreaterThan(1);
    // And no word of a training caption names a withheld kind.
    for (const ann of train.annotations) for (const named of objectsNamed(ann.caption)) expect(withheld.has(named)).toBe(false);
  });

  test('a larger set of unseen scenes: each shows a withheld kind at a random place, the rest drawn from all kinds', async () => {
    const r = await generateScenes({ outDir: path.join(tmp, 'unseen'), count: 300, heldOut: 200, unseen: 150, seed: 2 });
    const sc = await readScenesFile(r.scenes);
    const held = sc.scenes.filter((s) => s.split === 'test');
    expect(held.filter((s) => s.unseen)).toHaveLength(150);
    const places = new Set<number>();
    const kinds = new Set<string>();
    for (const s of held.filter((x) => x.unseen)) {
      s.objects.forEach((o, j) => {
        if (WITHHELD_KINDS.some((w) => kindOf(w as SceneObject) === kindOf(o))) {
          places.add(j);
          kinds.add(kindOf(o));
        }
      });
    }
    expect([...places].sort()).toEqual([0, 1]);
    expect(kinds.size).toBe(WITHHELD_KINDS.length);
    // Seen and unseen scenes keep the usual mix of one and two objects.
    const two = held.filter((s) => s.unseen && s.objects.length === 2).length;
    expect(two).toBeGreaterThan(40);
    expect(two).toBeLessThan(110);
  });

  test('every image exists, is size x size JPEG, and nothing else is in the folder', async () => {
    const files = fs.readdirSync(a.images).sort();
    expect(files).toEqual([...train.images, ...held.images].map((i) => i.file_name).sort());
    for (const f of files) {
      const meta = await sharp(path.join(a.images, f)).metadata();
      expect([meta.format, meta.width, meta.height, meta.channels]).toEqual(['jpeg', SIZE, SIZE, 3]);
    }
  });

  test('captions name exactly the objects drawn, left to right, and three of five are the canonical caption', () => {
    const refs = new Map<number, string[]>();
    for (const ann of [...train.annotations, ...held.annotations]) refs.set(ann.image_id, [...(refs.get(ann.image_id) ?? []), ann.caption]);
    for (const s of scenes.scenes) {
      const expected = s.objects.map(kindOf);
      expect(s.caption).toBe(describeScene(s.objects));
      const captions = refs.get(s.id)!;
      for (const c of captions) expect(objectsNamed(c)).toEqual(expected);
      const plain = (c: string): string => c.toLowerCase().replace(/\.$/, '');
      expect(captions.filter((c) => plain(c) === s.caption)).toHaveLength(3);
      // Positions said are the positions drawn.
      if (s.objects.length === 1) {
        const [o] = s.objects;
        expect(s.caption).toBe(`a ${kindOf(o)} ${o.position === 'middle' ? 'in the middle' : `on the ${o.position}`}`);
        if (o.position === 'left') expect(o.cx).toBeLessThan(0.34 * 64);
        if (o.position === 'middle') expect(Math.abs(o.cx - 32)).toBeLessThan(0.09 * 64);
        if (o.position === 'right') expect(o.cx).toBeGreaterThan(0.66 * 64);
      } else {
        expect(s.objects.map((o) => o.position)).toEqual(['left', 'right']);
        expect(s.caption).toBe(`a ${kindOf(s.objects[0])} on the left and a ${kindOf(s.objects[1])} on the right`);
        const [l, r] = s.objects;
        expect(l.cx).toBeLessThan(32);
        expect(r.cx).toBeGreaterThan(32);
        // Never overlapping: a horizontal gap between their boxes.
        expect(r.cx - r.radius - (l.cx + l.radius)).toBeGreaterThan(2);
        expect(kindOf(l)).not.toBe(kindOf(r));
      }
      for (const o of s.objects) {
        expect(o.cx - o.radius).toBeGreaterThan(1);
        expect(o.cy - o.radius).toBeGreaterThan(1);
        expect(o.cx + o.radius).toBeLessThan(63);
        expect(o.cy + o.radius).toBeLessThan(63);
      }
    }
  });

  test('the pixels show the described colour, shape and size of each object and the background elsewhere', async () => {
    const palette = Object.entries({ ...PALETTE, background: BACKGROUND }).map(([name, hex]) => ({
      name,
      rgb: [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)),
    }));
    const nearest = (px: number[]): string => {
      let best = '';
      let bestD = Infinity;
      for (const p of palette) {
        const d = p.rgb.reduce((acc, v, i) => acc + (v - px[i]) ** 2, 0);
        if (d < bestD) [best, bestD] = [p.name, d];
      }
      return best;
    };
    for (const s of scenes.scenes) {
      const { data, info } = await sharp(path.join(a.images, s.file_name)).raw().toBuffer({ resolveWithObject: true });
      const at = (x: number, y: number): number[] => {
        const i = (Math.floor(y) * info.width + Math.floor(x)) * info.channels;
        return [data[i], data[i + 1], data[i + 2]];
      };
      for (const o of s.objects) expect(nearest(at(o.cx, o.cy))).toBe(o.color);
      for (const [x, y] of [[0, 0], [63, 0], [0, 63], [63, 63]]) expect(nearest(at(x, y))).toBe('background');
      // Shape and size: the pixels of the object's colour around it match its outline best.
      for (const o of s.objects) {
        const iou = (shape: SceneObject['shape'], r: number): number => {
          let both = 0;
          let either = 0;
          for (let y = Math.floor(o.cy - 1.6 * o.radius); y <= o.cy + 1.6 * o.radius; y++) {
            for (let x = Math.floor(o.cx - 1.6 * o.radius); x <= o.cx + 1.6 * o.radius; x++) {
              if (x < 0 || y < 0 || x >= 64 || y >= 64) continue;
              const drawn = nearest(at(x, y)) === o.color;
              const expected = inside(shape, x + 0.5 - o.cx, y + 0.5 - o.cy, r);
              if (drawn && expected) both++;
              if (drawn || expected) either++;
            }
          }
          return both / either;
        };
        const own = iou(o.shape, o.radius);
        expect(own).toBeGreaterThan(0.7);
        for (const other of SHAPES) if (other !== o.shape) expect(iou(other, o.radius)).toBeLessThan(own);
        const otherSize = o.size === 'large' ? RADIUS.small * 64 : RADIUS.large * 64;
        expect(iou(o.shape, otherSize)).toBeLessThan(own - 0.2);
      }
    }
  });

  test('held-out references make a BLEU-4 of 1 reachable, and a blind guess stays under 0.5', () => {
    const refsById = new Map<number, string[]>();
    for (const ann of held.annotations) refsById.set(ann.image_id, [...(refsById.get(ann.image_id) ?? []), ann.caption]);
    const ids = held.images.map((i) => i.id);
    const flat = tokenizeCaptions(ids.flatMap((id) => refsById.get(id)!));
    const refs = ids.map((_, i) => flat.slice(i * 5, i * 5 + 5));
    const byId = new Map(scenes.scenes.map((s) => [s.id, s]));
    const oracle = computeBleu(refs, tokenizeCaptions(ids.map((id) => byId.get(id)!.caption)));
    expect(oracle.scores[3]).toBeCloseTo(1, 6);
    // Knowing only how many objects there are (everything else a constant guess) is not enough.
    const blind = computeBleu(refs, tokenizeCaptions(ids.map((id) => (byId.get(id)!.objects.length === 1
      ? 'a small red circle on the left'
      : 'a small red circle on the left and a small red circle on the right'))));
    expect(blind.scores[3]).toBeLessThan(0.5);
  });

  test('a smaller run in the same folder removes the stale images', async () => {
    const dir = path.join(tmp, 'shrink');
    await generateScenes({ outDir: dir, count: 12, heldOut: 2 });
    fs.writeFileSync(path.join(dir, 'images', 'keep-me.txt'), 'not ours');
    const r = await generateScenes({ outDir: dir, count: 5, heldOut: 1 });
    expect(fs.readdirSync(r.images).sort()).toEqual(['keep-me.txt', ...Array.from({ length: 5 }, (_, i) => `scene-00000${i + 1}.jpg`)]);
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });
});

describe('scene options', () => {
  test('three objects without position words, and PNG', async () => {
    const r = await generateScenes({ outDir: path.join(tmp, 'three'), count: 12, heldOut: 3, size: 48, objectsPerScene: [3, 3], positions: false, format: 'png', seed: 3 });
    const sc = await readScenesFile(r.scenes);
    const coco = readJson<Coco>(r.train);
    for (const s of sc.scenes) {
      expect(s.objects).toHaveLength(3);
      expect(s.caption).not.toMatch(/left|right|middle/);
      expect(s.caption).toBe(`a ${kindOf(s.objects[0])}, a ${kindOf(s.objects[1])} and a ${kindOf(s.objects[2])}`);
      // Sorted largest first, then by colour and shape, so the order is learnable without positions.
      const key = (o: SceneObject): number => (o.size === 'large' ? 0 : 100) + COLORS.indexOf(o.color) * 10 + SHAPES.indexOf(o.shape);
      expect(s.objects.map(key)).toEqual([...s.objects.map(key)].sort((x, y) => x - y));
      // Drawn without overlap, in the image.
      const xs = [...s.objects].sort((p, q) => p.cx - q.cx);
      for (let j = 1; j < 3; j++) expect(xs[j].cx - xs[j].radius).toBeGreaterThan(xs[j - 1].cx + xs[j - 1].radius);
      for (const o of s.objects) expect(o.cx + o.radius).toBeLessThan(48);
    }
    for (const ann of coco.annotations) {
      const s = sc.scenes.find((x) => x.id === ann.image_id)!;
      expect(objectsNamed(ann.caption)).toEqual(s.objects.map(kindOf));
    }
    const meta = await sharp(path.join(r.images, 'scene-000001.png')).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['png', 48, 48]);
  });

  test('three objects with positions: left, middle, right', () => {
    for (let i = 0; i < 50; i++) {
      const s = makeScene(1, i, { objectsPerScene: [3, 3] });
      expect(s.objects.map((o) => o.position)).toEqual(['left', 'middle', 'right']);
      expect(s.caption).toMatch(/^a .+ on the left, a .+ in the middle and a .+ on the right$/);
      expect(s.objects[0].cx).toBeLessThan(s.objects[1].cx);
      expect(s.objects[1].cx).toBeLessThan(s.objects[2].cx);
    }
  });

  test('canonicalReferences sets how many references are the canonical caption', () => {
    const { objects } = sampleScene(0, 0);
    for (const canonical of [1, 3, 5]) {
      const refs = sceneReferences(objects, mulberry32(1), { canonical });
      expect(refs).toHaveLength(5);
      expect(new Set(refs.map((r) => r.toLowerCase().replace(/\.$/, ''))).size).toBe(6 - canonical);
    }
  });

  test('invalid options are refused with a message', async () => {
    const out = path.join(tmp, 'never');
    await expect(generateScenes({ outDir: out, count: 0 })).rejects.toThrow(/count must be a positive integer/);
    await expect(generateScenes({ outDir: out, count: 10, heldOut: 11 })).rejects.toThrow(/heldOut/);
    await expect(generateScenes({ outDir: out, count: 10, size: 8 })).rejects.toThrow(SceneOptionsError);
    await expect(generateScenes({ outDir: out, count: 10, objectsPerScene: [0, 2] })).rejects.toThrow(/objectsPerScene/);
    await expect(generateScenes({ outDir: out, count: 10, objectsPerScene: [2, 4] })).rejects.toThrow(/objectsPerScene/);
    await expect(generateScenes({ outDir: out, count: 10, seed: -1 })).rejects.toThrow(/seed/);
    await expect(generateScenes({ outDir: out, count: 10, heldOut: 4, unseen: 5 })).rejects.toThrow(/unseen must be an integer from 0 to heldOut \(4\), got 5/);
    await expect(generateScenes({ outDir: out, count: 10, heldOut: 4, unseen: 2, withheld: [] })).rejects.toThrow(/unseen scenes need withheld kinds/);
    await expect(generateScenes({ outDir: out, count: 10, withheld: [{ size: 'huge', color: 'red', shape: 'circle' } as never] })).rejects.toThrow(/withheld kinds must name a size/);
    await expect(generateScenes({ outDir: out, count: 10, withheld: [WITHHELD_KINDS[0], WITHHELD_KINDS[0]] })).rejects.toThrow(/withheld twice/);
    expect(fs.existsSync(out)).toBe(false);
  });
});

describe('writeReport', () => {
  let scenesDir: GeneratedScenes;
  beforeAll(async () => {
    scenesDir = await generateScenes({ outDir: path.join(tmp, 'report-data'), count: 4, heldOut: 2 });
  });

  const image = (id: number): string => path.join(scenesDir.images, `scene-00000${id}.jpg`);

  test('embeds the images, shows captions, references and metrics', async () => {
    const file = path.join(tmp, 'report', 'sub', 'report.html');
    const result = await writeReport({
      file,
      title: 'Held-out scenes',
      items: [
        { image: image(3), caption: 'a large red circle on the left', references: ['A large red circle on the left.', 'There is a large red circle on the left'], score: 0.8765432 },
        { image: image(4), caption: 'something else', references: ['A small blue square.'] },
      ],
      metrics: { Bleu_4: 0.61234567, CIDEr: 3.5, images: 2 },
      notes: ['trained 2 epochs'],
      scoreLabel: 'BLEU-4',
    });
    expect(result).toEqual({ file, bytes: fs.statSync(file).size, missingImages: [] });
    const html = fs.readFileSync(file, 'utf8');
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    const uris = [...html.matchAll(/src="data:image\/jpeg;base64,([A-Za-z0-9+/=]+)"/g)].map((m) => Buffer.from(m[1], 'base64'));
    expect(uris).toEqual([fs.readFileSync(image(3)), fs.readFileSync(image(4))]);
    expect(html).toContain('image-rendering: pixelated');
    expect(html).toContain('<td>Bleu_4</td><td class="value">0.6123</td>');
    expect(html).toContain('<td>images</td><td class="value">2</td>');
    expect(html).toContain('BLEU-4 0.8765');
    expect(html).toContain('<li>There is a large red circle on the left</li>');
    expect(html).toContain('<li>trained 2 epochs</li>');
    // Only the first caption equals a reference (case and period aside).
    expect(html.match(/matches a reference/g)).toHaveLength(1);
    // Nothing is fetched from outside the file.
    expect(html).not.toMatch(/(src|href)="(?!data:)/);
    expect(html).toContain("default-src 'none'");
  });

  test('escapes all text: a caption with <script> is rendered inert', async () => {
    const file = path.join(tmp, 'report', 'escape.html');
    const evil = '<script>alert("x")</script>';
    await writeReport({
      file,
      title: `Report <b>& ${evil}`,
      items: [{ image: image(1), caption: evil, references: [`ref ${evil}`, `"quoted" & 'single' <img src=x onerror=alert(1)>`], label: `<i>label</i>` }],
      metrics: { [`<script>m</script>`]: 1 },
      notes: [evil],
    });
    const html = fs.readFileSync(file, 'utf8');
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/<img src=x/);
    expect(html).not.toContain('<b>');
    expect(html).not.toContain('<i>label');
    expect(html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;');
    expect(html).toContain('&quot;quoted&quot; &amp; &#39;single&#39; &lt;img src=x onerror=alert(1)&gt;');
    expect(html).toContain('<title>Report &lt;b&gt;&amp; &lt;script&gt;');
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  });

  test('an unreadable or non-image file gets a placeholder and is reported', async () => {
    const file = path.join(tmp, 'report', 'missing.html');
    const notImage = path.join(tmp, 'report', 'notes.txt');
    fs.writeFileSync(notImage, '<svg onload="alert(1)"></svg>');
    const gone = path.join(tmp, 'report', 'gone.jpg');
    const r = await writeReport({ file, title: 't', items: [{ image: gone, caption: 'c', references: [] }, { image: notImage, caption: 'd', references: [] }], metrics: {} });
    expect(r.missingImages).toEqual([{ image: gone, reason: 'file not found' }, { image: notImage, reason: 'not a JPEG, PNG, GIF or WebP image' }]);
    const html = fs.readFileSync(file, 'utf8');
    expect(html).toContain('image not shown (file not found)');
    expect(html).not.toContain('<img');
    expect(html).not.toContain('onload="');
  });

  test('recognises image formats by their first bytes', () => {
    expect(imageMimeType(Buffer.from([0xff, 0xd8, 0xff, 0xe0]))).toBe('image/jpeg');
    expect(imageMimeType(Buffer.from('89504e470d0a1a0a0000', 'hex'))).toBe('image/png');
    expect(imageMimeType(Buffer.from('GIF89a....'))).toBe('image/gif');
    expect(imageMimeType(Buffer.from('RIFF\0\0\0\0WEBPVP8 '))).toBe('image/webp');
    expect(imageMimeType(Buffer.from('<svg/>'))).toBeNull();
  });

  test('is written atomically: a temporary file in the same folder renamed over the old report', async () => {
    const dir = path.join(tmp, 'atomic');
    fs.mkdirSync(dir);
    const file = path.join(dir, 'report.html');
    fs.writeFileSync(file, 'old report');
    const renames: [string, string][] = [];
    const spy = jest.spyOn(fs.promises, 'rename').mockImplementation(async (from, to) => {
      renames.push([String(from), String(to)]);
      // The report is complete under its temporary name before it gets the final one.
      const pending = fs.readFileSync(String(from), 'utf8');
      expect(pending.endsWith('</html>\n')).toBe(true);
      expect(fs.readFileSync(file, 'utf8')).toBe('old report');
      fs.renameSync(String(from), String(to));
    });
    try {
      await writeReport({ file, title: 'new', items: [{ image: image(2), caption: 'c', references: ['r'] }], metrics: { x: 1 } });
    } finally {
      spy.mockRestore();
    }
    expect(renames).toHaveLength(1);
    expect(path.dirname(renames[0][0])).toBe(dir);
    expect(path.basename(renames[0][0])).toMatch(/^\.report\.html\..+\.tmp$/);
    expect(renames[0][1]).toBe(file);
    expect(fs.readFileSync(file, 'utf8')).toContain('<title>new</title>');
    expect(fs.readdirSync(dir)).toEqual(['report.html']);
  });

  test('a failed write leaves the old report and no temporary file', async () => {
    const dir = path.join(tmp, 'atomic-fail');
    fs.mkdirSync(dir);
    const file = path.join(dir, 'report.html');
    fs.writeFileSync(file, 'old report');
    const spy = jest.spyOn(fs.promises, 'rename').mockRejectedValue(Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' }));
    try {
      await expect(writeReport({ file, title: 'new', items: [], metrics: {} })).rejects.toThrow(/ENOSPC/);
    } finally {
      spy.mockRestore();
    }
    expect(fs.readFileSync(file, 'utf8')).toBe('old report');
    expect(fs.readdirSync(dir)).toEqual(['report.html']);
  });
});
