/**
 * Images for the model: decoding real COCO photos and odd inputs to RGB, every kind of bad file
 * refused with an ImageError naming it, and the crop/flip/normalize batching checked by hand and
 * against torchvision's ToTensor + Normalize on the same pixels.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { decodeImage, toBatch, toBatchAsync, loadForInference, IMAGENET_MEAN, IMAGENET_STD, type RawImage } from '../lib/data/images';
import { fixturePhotos } from './support/data';
import { testIf } from './support/skip';
import { rejected } from './support/errors';
import { PYTHON, pythonHas, runPython } from './support/python';

const photos = fixturePhotos;
const torchvision = pythonHas('torch', 'torchvision', 'PIL');
const NO_TORCHVISION = `${PYTHON} lacks torch/torchvision`;

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torchcap-images-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A w×h image of deterministic noise (every pixel different enough to tell crops apart). */
function noise(width: number, height: number, seed = 1): RawImage {
  const data = new Uint8Array(width * height * 3);
  let s = seed >>> 0;
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s >>> 24;
  }
  return { data, width, height };
}

/** The normalized [3, crop, crop] values of one image, computed plainly in float64. */
function byHand(img: RawImage, crop: number, x0: number, y0: number, flip: boolean): Float64Array {
  const out = new Float64Array(3 * crop * crop);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < crop; y++) {
      for (let x = 0; x < crop; x++) {
        const sx = x0 + (flip ? crop - 1 - x : x);
        const v = img.data[((y0 + y) * img.width + sx) * 3 + c] / 255;
        out[(c * crop + y) * crop + x] = (v - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
      }
    }
  }
  return out;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('decodeImage on real COCO photos', () => {
  test('every photo decodes to size×size RGB, portrait and landscape alike', async () => {
    const sizes = new Set<string>();
    for (const p of photos.slice(0, 12)) {
      const meta = await sharp(p).metadata();
      sizes.add(meta.width! > meta.height! ? 'landscape' : 'portrait');
      const img = await decodeImage(p, 224);
      expect([path.basename(p), img.width, img.height, img.data.byteLength]).toEqual([path.basename(p), 224, 224, 224 * 224 * 3]);
    }
    expect(sizes).toEqual(new Set(['landscape', 'portrait']));
  });

  test('an image already at the size is not resampled; file, bytes and raw pixels agree', async () => {
    const p256 = path.join(tmp, 'p256.png');
    await sharp(photos[0]).resize(256, 256, { fit: 'fill' }).png().toFile(p256);
    const raw = await sharp(p256).raw().toBuffer({ resolveWithObject: true });
    const fromFile = await decodeImage(p256, 256);
    expect(Buffer.from(fromFile.data).equals(raw.data)).toBe(true);
    const fromBytes = await decodeImage(fs.readFileSync(p256), 256);
    expect(Buffer.from(fromBytes.data).equals(raw.data)).toBe(true);
    const pixels = { data: new Uint8Array(raw.data), width: 256, height: 256 };
    expect(await decodeImage(pixels, 256)).toBe(pixels);
    // raw pixels of another size are resized as files are
    const small = await decodeImage(pixels, 100);
    expect([small.width, small.height, small.data.byteLength]).toEqual([100, 100, 30000]);
    const viaFile = await decodeImage(p256, 100);
    expect(maxAbsDiff(small.data, viaFile.data)).toBeLessThanOrEqual(1);
  });

  test('grayscale JPEG and PNG, RGBA PNG and 16-bit PNG all come out as 8-bit RGB', async () => {
    const base = sharp(photos[1]).resize(64, 48, { fit: 'fill' });
    const rgb = await decodeImage(await base.clone().png().toBuffer(), 32);
    // [what, bytes, largest difference to the RGB PNG's pixels (null: grey)]
    const cases: [string, Buffer, number | null][] = [
      ['grey JPEG', await base.clone().toColourspace('b-w').jpeg().toBuffer(), null],
      ['grey PNG', await base.clone().toColourspace('b-w').png().toBuffer(), null],
      // alpha dropped before resizing, as PIL's convert('RGB'): the same pixels as without alpha
      ['RGBA PNG', await base.clone().ensureAlpha(0.3).png().toBuffer(), 0],
      // resampled at 16 bits, then rounded
      ['16-bit PNG', await base.clone().toColourspace('rgb16').png().toBuffer(), 1],
    ];
    for (const [what, bytes, tolerance] of cases) {
      const meta = await sharp(bytes).metadata();
      if (what.startsWith('grey')) expect(meta.channels).toBe(1);
      if (what.startsWith('RGBA')) expect(meta.channels).toBe(4);
      if (what.startsWith('16')) expect(meta.depth).toBe('ushort');
      const img = await decodeImage(bytes, 32);
      expect([what, img.width, img.height, img.data.byteLength]).toEqual([what, 32, 32, 32 * 32 * 3]);
      if (tolerance === null) {
        for (let i = 0; i < img.data.length; i += 3) expect(img.data[i] === img.data[i + 1] && img.data[i] === img.data[i + 2]).toBe(true);
      } else {
        expect([what, maxAbsDiff(img.data, rgb.data)]).toEqual([what, expect.any(Number)]);
        expect(maxAbsDiff(img.data, rgb.data)).toBeLessThanOrEqual(tolerance);
      }
    }
  });

  testIf(torchvision, NO_TORCHVISION, 'resizing to 224 is close to PIL Lanczos (the book\'s inference transform)', async () => {
    const files = photos.slice(0, 3);
    const ours = await Promise.all(files.map((f) => decodeImage(f, 224)));
    files.forEach((f, i) => fs.writeFileSync(path.join(tmp, `lanczos${i}.rgb`), ours[i].data));
    const out = runPython(
      `
import sys, json, numpy as np
from PIL import Image
res = []
for i, f in enumerate(sys.argv[2:]):
    a = np.asarray(Image.open(f).convert('RGB').resize((224, 224), Image.LANCZOS)).astype(int)
    b = np.fromfile(f'{sys.argv[1]}/lanczos{i}.rgb', dtype=np.uint8).reshape(224, 224, 3).astype(int)
    d = np.abs(a - b)
    res.append({'mean': float(d.mean()), 'within1': float((d <= 1).mean())})
print(json.dumps(res))
`,
      [tmp, ...files],
    );
    for (const r of JSON.parse(out) as { mean: number; within1: number }[]) {
      expect(r.mean).toBeLessThan(0.5);
      expect(r.within1).toBeGreaterThan(0.99);
    }
  });
});

describe('bad inputs reject with an ImageError naming the file', () => {
  let files: Record<string, string>;
  beforeAll(async () => {
    const jpeg = fs.readFileSync(photos[0]);
    const png = await sharp({ create: { width: 1, height: 1, channels: 3, background: 'red' } }).png().toBuffer();
    // A valid PNG whose header claims 20000 x 20000 pixels (width and height sit at bytes 16..23).
    const bomb = Buffer.from(png);
    bomb.writeUInt32BE(20000, 16);
    bomb.writeUInt32BE(20000, 20);
    files = {
      empty: path.join(tmp, 'empty.jpg'),
      truncated: path.join(tmp, 'truncated.jpg'),
      text: path.join(tmp, 'notes.jpg'),
      folder: path.join(tmp, 'folder.jpg'),
      missing: path.join(tmp, 'missing.jpg'),
      bomb: path.join(tmp, 'bomb.png'),
    };
    fs.writeFileSync(files.empty, '');
    fs.writeFileSync(files.truncated, jpeg.subarray(0, Math.floor(jpeg.length / 2)));
    fs.writeFileSync(files.text, 'this is a text file, not a photo\n');
    fs.mkdirSync(files.folder);
    fs.writeFileSync(files.bomb, bomb);
  });

  test.each([
    ['empty', /empty file \(0 bytes\)/],
    ['truncated', /premature end of JPEG|truncated/i],
    ['text', /not an image/],
    ['folder', /is a directory/],
    ['missing', /file not found/],
    ['bomb', /larger than 178956970 pixels \(refused as a decompression bomb\)/],
  ])('%s', async (kind, reason) => {
    const file = files[kind];
    const e = await rejected(decodeImage(file, 224));
    expect(e.name).toBe('ImageError');
    expect(e.message.startsWith(`${file}: `)).toBe(true);
    expect(e.message).toMatch(reason);
    expect((e as Error & { source: string }).source).toBe(file);
  });

  test('as buffers and raw pixels too', async () => {
    const cases: [Parameters<typeof decodeImage>[0], RegExp][] = [
      [new Uint8Array(0), /<0-byte buffer>: empty image data/],
      [fs.readFileSync(files.truncated), /<\d+-byte buffer>: cannot decode image/],
      [fs.readFileSync(files.text), /<33-byte buffer>: not an image/],
      [fs.readFileSync(files.bomb), /decompression bomb/],
      [{ data: new Uint8Array(10), width: 2, height: 2 }, /<2x2 RGB pixels>: holds 10 bytes but 2x2 RGB needs 12/],
      [{ data: new Uint8Array(0), width: 0, height: 0 }, /positive integer sizes/],
    ];
    for (const [src, reason] of cases) {
      const e = await rejected(decodeImage(src, 16));
      expect(e.name).toBe('ImageError');
      expect(e.message).toMatch(reason);
    }
  });

  test('a lower pixel limit refuses a photo that is otherwise fine', async () => {
    const e = await rejected(decodeImage(photos[0], 224, { maxPixels: 1000 }));
    expect(e.message).toMatch(/larger than 1000 pixels/);
  });
});

describe('toBatch: crop, flip and ImageNet normalization', () => {
  const a = noise(40, 36, 1);
  const b = noise(40, 36, 2);
  const layout = { crop: 32, crops: [[3, 1], [8, 4]] as [number, number][], flips: [false, true] };

  test('equals the computation by hand (x is the column, y the row of the crop corner)', () => {
    const t = toBatch([a, b], layout);
    expect(t.shape).toEqual([2, 3, 32, 32]);
    expect(t.dtype).toBe('float32');
    const got = t.toTypedArray() as Float32Array;
    const want = new Float64Array([...byHand(a, 32, 3, 1, false), ...byHand(b, 32, 8, 4, true)]);
    expect(maxAbsDiff(got, want)).toBeLessThan(1e-6);
  });

  test('async equals sync; no crop given means the top-left corner; custom mean and std', async () => {
    const sync = toBatch([a, b], layout);
    const async_ = await toBatchAsync([a, b], layout);
    expect(maxAbsDiff(sync.toTypedArray() as Float32Array, async_.toTypedArray() as Float32Array)).toBe(0);
    const plain = toBatch([a], { crop: 32 }).toTypedArray() as Float32Array;
    expect(maxAbsDiff(plain, byHand(a, 32, 0, 0, false))).toBeLessThan(1e-6);
    const unit = toBatch([a], { crop: 2, mean: [0, 0, 0], std: [1, 1, 1] }).toTypedArray() as Float32Array;
    expect(Array.from(unit.slice(0, 2)).map((v) => Math.round(v * 255))).toEqual([a.data[0], a.data[3]]);
  });

  test('a crop outside the image and malformed pixels are refused with a message', () => {
    expect(() => toBatch([a], { crop: 32, crops: [[9, 0]] })).toThrow(/crop of 32x32 at \(9, 0\) does not fit image 0 of 40x36/);
    expect(() => toBatch([{ data: new Uint8Array(5), width: 2, height: 2 }], { crop: 1 })).toThrow(/holds 5 bytes but 2x2 RGB needs 12/);
    expect(() => toBatch([], { crop: 1 })).toThrow(/at least one image/);
  });

  testIf(torchvision, NO_TORCHVISION, 'equals torchvision: crop + hflip + ToTensor + Normalize on the same decoded pixels (1e-6)', async () => {
    // Real photos decoded as for training (256) with the loader's kind of crops, and one at 224 for inference.
    const srcs = photos.slice(0, 3);
    const imgs = await Promise.all(srcs.map((p) => decodeImage(p, 256)));
    const crops: [number, number][] = [[0, 32], [17, 5], [32, 0]];
    const flips = [true, false, true];
    const ours = toBatch(imgs, { crop: 224, crops, flips });
    imgs.forEach((img, i) => fs.writeFileSync(path.join(tmp, `tv${i}.rgb`), img.data));
    const infer = await decodeImage(srcs[0], 224);
    fs.writeFileSync(path.join(tmp, 'tv-infer.rgb'), infer.data);
    const oursInfer = toBatch([infer], { crop: 224 });
    runPython(
      `
import sys, json, numpy as np, torch
from PIL import Image
import torchvision.transforms as T
import torchvision.transforms.functional as F
d, spec = sys.argv[1], json.loads(sys.argv[2])
norm = T.Compose([T.ToTensor(), T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
out = []
for i, (x, y, flip) in enumerate(spec):
    img = Image.fromarray(np.fromfile(f'{d}/tv{i}.rgb', dtype=np.uint8).reshape(256, 256, 3))
    img = F.crop(img, top=y, left=x, height=224, width=224)  # what RandomCrop(224) does for a drawn (top, left)
    if flip:
        img = F.hflip(img)
    out.append(norm(img))
torch.stack(out).numpy().astype(np.float32).tofile(f'{d}/tv-train.f32')
img = Image.fromarray(np.fromfile(f'{d}/tv-infer.rgb', dtype=np.uint8).reshape(224, 224, 3))
norm(img).numpy().astype(np.float32).tofile(f'{d}/tv-infer.f32')
`,
      [tmp, JSON.stringify(crops.map((c, i) => [c[0], c[1], flips[i]]))],
    );
    const read = (f: string) => new Float32Array(new Uint8Array(fs.readFileSync(path.join(tmp, f))).buffer);
    expect(maxAbsDiff(ours.toTypedArray() as Float32Array, read('tv-train.f32'))).toBeLessThan(1e-6);
    expect(maxAbsDiff(oursInfer.toTypedArray() as Float32Array, read('tv-infer.f32'))).toBeLessThan(1e-6);
  });

  test('loadForInference: each image resized to 224, no crop, no flip', async () => {
    const batch = await loadForInference([photos[0], photos[1]], 224);
    expect(batch.shape).toEqual([2, 3, 224, 224]);
    const second = await decodeImage(photos[1], 224);
    const row = batch.select(0, 1).contiguous().toTypedArray() as Float32Array;
    expect(maxAbsDiff(row, byHand(second, 224, 0, 0, false))).toBeLessThan(1e-6);
  });
});
