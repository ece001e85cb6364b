/**
 * The book's pixels: torchcap's decoding, convert('RGB') and resizing against live Pillow 9.4
 * (/usr/bin/python3, the book's code) on the 50 COCO photos and on generated images of every mode
 * Pillow reads, with and without ICC profiles, at odd sizes, up and down, with every filter.
 * Exact: a difference of one level anywhere fails.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { decodeImage, loadForInference, loadPixels, type PillowImage, type ResampleFilter } from '../lib/data/images';
import { native } from '../lib/core/native';
import { PYTHON, pythonHas } from './support/python';
import { sharedData } from './support/data';
import { describeIf, testIf } from './support/skip';
import { rejected, thrown } from './support/errors';

const SCRIPT = path.join(__dirname, '..', 'scripts', 'fixtures', 'pillow_images.py');
const PHOTOS = sharedData('coco-val2017-mini', 'images');
const photos = fs.existsSync(PHOTOS) ? fs.readdirSync(PHOTOS).filter((f) => f.endsWith('.jpg')).sort() : [];
const ADOBE_RGB_PHOTO = path.join(PHOTOS, '000000020247.jpg'); // carries an Adobe RGB (1998) profile

const havePil = pythonHas('PIL', 'numpy');
const NO_PIL = `${PYTHON} cannot import PIL and numpy (Pillow is the reference)`;
const haveBook = pythonHas('PIL', 'numpy', 'torch', 'torchvision');

interface Job {
  file: string;
  out: string;
  rgb: boolean;
  size: [number, number] | null;
  filter: ResampleFilter;
  /** ImageOps.exif_transpose first (ours: the orientation sharp reads from EXIF). */
  transpose?: boolean;
}
type PillowResult = { mode: string; width: number; height: number } | { error: string };

/** Pillow's result for every job (pixels in job.out). */
function pillow(jobs: Job[], dir: string): PillowResult[] {
  const file = path.join(dir, `jobs-${Date.now()}.json`);
  fs.writeFileSync(file, JSON.stringify(jobs));
  return JSON.parse(execFileSync(PYTHON, [SCRIPT, 'pixels', file], { encoding: 'utf8', maxBuffer: 1 << 28 }));
}

/** Ours for each job, compared with Pillow's: the jobs whose pixels (or refusal) differ. */
async function mismatches(jobs: Job[], dir: string): Promise<string[]> {
  const ref = pillow(jobs, dir);
  const bad: string[] = [];
  for (let i = 0; i < jobs.length; i++) {
    const j = jobs[i];
    const r = ref[i];
    const tag = `${path.basename(j.file)} rgb=${j.rgb} size=${j.size} ${j.filter}`;
    let ours: PillowImage | undefined;
    let error: string | undefined;
    try {
      const bytes = fs.readFileSync(j.file);
      const orientation = j.transpose ? ((await sharp(bytes).metadata()).orientation ?? 1) : 1;
      ours = await loadPixels(bytes, { rgb: j.rgb, size: j.size ?? undefined, filter: j.filter, orientation });
    } catch (e) {
      error = (e as Error).message;
    }
    if ('error' in r || error !== undefined) {
      if (!('error' in r && error !== undefined)) bad.push(`${tag}: Pillow ${'error' in r ? r.error : 'ok'}, torchcap ${error ?? 'ok'}`);
      continue;
    }
    const want = fs.readFileSync(j.out);
    if (ours!.mode !== r.mode || ours!.width !== r.width || ours!.height !== r.height) {
      bad.push(`${tag}: ${ours!.mode} ${ours!.width}x${ours!.height}, Pillow ${r.mode} ${r.width}x${r.height}`);
    } else if (!want.equals(Buffer.from(ours!.data))) {
      let max = 0;
      for (let k = 0; k < want.length; k++) max = Math.max(max, Math.abs(want[k] - ours!.data[k]));
      bad.push(`${tag}: pixels differ by up to ${max}`);
    }
  }
  return bad;
}

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torchcap-pillow-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describeIf(havePil && photos.length === 50, havePil ? `the 50 COCO photos are not in ${PHOTOS}` : NO_PIL, 'the 50 COCO photos, as Pillow reads them', () => {
  test("decode + convert('RGB') is Pillow's exactly, and so are the LANCZOS resizes to 224 and 256", async () => {
    const jobs: Job[] = [];
    for (const f of photos) {
      for (const size of [null, [224, 224], [256, 256]] as const) {
        jobs.push({ file: path.join(PHOTOS, f), out: path.join(tmp, `photo-${jobs.length}.raw`), rgb: true, size: size && [...size], filter: 'lanczos' });
      }
    }
    expect(await mismatches(jobs, tmp)).toEqual([]);
  }, 120000);

  test('decodeImage (what caption, serve and the loader call) gives the same pixels', async () => {
    const ref = pillow(
      photos.map((f, i) => ({ file: path.join(PHOTOS, f), out: path.join(tmp, `decode-${i}.raw`), rgb: true, size: [224, 224], filter: 'lanczos' })),
      tmp,
    );
    expect(ref.every((r) => !('error' in r))).toBe(true);
    const ours = await Promise.all(photos.map((f) => decodeImage(path.join(PHOTOS, f), 224)));
    const differ = photos.filter((f, i) => !fs.readFileSync(path.join(tmp, `decode-${i}.raw`)).equals(Buffer.from(ours[i].data)));
    expect(differ).toEqual([]);
  }, 120000);

  testIf(haveBook, `${PYTHON} lacks torch or torchvision (the book's transform)`, "the normalized inference tensor is the book's load_image + transform to within 1e-6", async () => {
    const files = photos.map((f) => path.join(PHOTOS, f));
    const out = path.join(tmp, 'book-tensor.raw');
    execFileSync(PYTHON, [SCRIPT, 'tensor', out, '224', ...files], { maxBuffer: 1 << 26 });
    const raw = fs.readFileSync(out);
    const book = new Float32Array(raw.buffer, raw.byteOffset, raw.length / 4);
    const ours = await loadForInference(files, 224);
    expect(ours.shape).toEqual([50, 3, 224, 224]);
    const data = ours.toTypedArray() as Float32Array;
    expect(data.length).toBe(book.length);
    let max = 0;
    for (let i = 0; i < data.length; i++) max = Math.max(max, Math.abs(data[i] - book[i]));
    expect(max).toBeLessThanOrEqual(1e-6);
  }, 180000);

  test('colorManaged converts an embedded profile to sRGB (opt-in); without a profile it changes nothing', async () => {
    const tagged = fs.readFileSync(ADOBE_RGB_PHOTO);
    const plain = fs.readFileSync(path.join(PHOTOS, '000000000139.jpg')); // no profile
    const meanDiff = (a: PillowImage, b: PillowImage) => {
      let s = 0;
      for (let i = 0; i < a.data.length; i++) s += Math.abs(a.data[i] - b.data[i]);
      return s / a.data.length;
    };
    const raw = await loadPixels(tagged, { rgb: true });
    const managed = await loadPixels(tagged, { rgb: true, colorManaged: true });
    // Adobe RGB's wider gamut: saturated colours move by several levels once converted
    expect(meanDiff(raw, managed)).toBeGreaterThan(1);
    expect(meanDiff(await loadPixels(plain, { rgb: true }), await loadPixels(plain, { rgb: true, colorManaged: true }))).toBe(0);
  });
});

describeIf(havePil, NO_PIL, "generated images of every mode Pillow reads, against Pillow", () => {
  let files: { file: string; mode: string; icc: boolean }[];
  beforeAll(() => {
    const dir = path.join(tmp, 'generated');
    const icc = fs.existsSync(ADOBE_RGB_PHOTO) ? [ADOBE_RGB_PHOTO] : [];
    files = JSON.parse(execFileSync(PYTHON, [SCRIPT, 'make', dir, ...icc], { encoding: 'utf8' }));
    files = files.map((f) => ({ ...f, file: path.join(dir, f.file) }));
  });

  test('the set covers L, LA, P with and without transparency, RGB, RGBA, CMYK, I;16, I and 1, with and without profiles', () => {
    const modes = new Set(files.map((f) => f.mode));
    expect([...modes].sort()).toEqual(['1', 'CMYK', 'I', 'I;16', 'L', 'LA', 'P', 'RGB', 'RGBA']);
    expect(files.filter((f) => f.icc).map((f) => path.basename(f.file)).sort()).toEqual(['cmyk-icc.jpg', 'rgb-icc.jpg', 'rgb-icc.png', 'rgba-icc.png']);
    expect(files.some((f) => path.basename(f.file) === 'one-pixel.png') && files.some((f) => path.basename(f.file) === 'strip.png')).toBe(true);
  });

  test("decode + convert('RGB') and every filter, down and up, equal Pillow's (profiles ignored, as Pillow does)", async () => {
    const filters: ResampleFilter[] = ['nearest', 'box', 'bilinear', 'hamming', 'bicubic', 'lanczos'];
    const jobs: Job[] = [];
    for (const { file } of files) {
      jobs.push({ file, out: path.join(tmp, `gen-${jobs.length}.raw`), rgb: true, size: null, filter: 'lanczos' });
      for (const size of [[224, 224], [5, 3], [97, 131]] as [number, number][]) {
        for (const filter of filters) jobs.push({ file, out: path.join(tmp, `gen-${jobs.length}.raw`), rgb: true, size, filter });
      }
    }
    expect(await mismatches(jobs, tmp)).toEqual([]);
  }, 300000);

  testIf(native.hasTurboJpeg, 'this build has no libjpeg-turbo', "the training loader's JPEG batch decoder gives Pillow's convert('RGB') pixels for RGB, L and CMYK JPEGs", async () => {
    const squares = files.filter((f) => path.basename(f.file).startsWith('square-'));
    expect(squares.map((f) => f.mode).sort()).toEqual(['CMYK', 'L', 'RGB']);
    const ref = pillow(squares.map((f, i) => ({ file: f.file, out: path.join(tmp, `square-${i}.raw`), rgb: true, size: null, filter: 'lanczos' })), tmp);
    expect(ref.every((r) => !('error' in r))).toBe(true);
    // mean 0 and std 1: the batch holds each pixel / 255, so the 8-bit values can be read back exactly
    const r = await native.decodeJpegBatch!(squares.map((f) => fs.readFileSync(f.file)), { size: 48, outH: 48, outW: 48, mean: [0, 0, 0], std: [1, 1, 1] });
    expect(r.failed).toEqual([]);
    const batch = new Float32Array((r.tensor!.toTypedArray() as Float32Array));
    squares.forEach((_, i) => {
      const want = fs.readFileSync(path.join(tmp, `square-${i}.raw`)); // HWC
      let differ = 0;
      for (let y = 0; y < 48; y++) for (let x = 0; x < 48; x++) for (let c = 0; c < 3; c++) {
        if (Math.round(batch[((i * 3 + c) * 48 + y) * 48 + x] * 255) !== want[(y * 48 + x) * 3 + c]) differ++;
      }
      expect([squares[i].mode, differ]).toEqual([squares[i].mode, 0]);
    });
  });

  test("resizing in the image's own mode follows Pillow's rules: P and 1 nearest, LA and RGBA premultiplied, I;16 refused", async () => {
    const jobs: Job[] = [];
    for (const { file } of files) {
      for (const filter of ['lanczos', 'nearest', 'bilinear'] as ResampleFilter[]) {
        jobs.push({ file, out: path.join(tmp, `mode-${jobs.length}.raw`), rgb: false, size: [256, 256], filter });
      }
      jobs.push({ file, out: path.join(tmp, `mode-${jobs.length}.raw`), rgb: false, size: null, filter: 'lanczos' });
    }
    expect(await mismatches(jobs, tmp)).toEqual([]);
    // the refusal is Pillow's and says why
    const i16 = files.find((f) => f.mode === 'I;16')!.file;
    const e = await rejected(loadPixels(fs.readFileSync(i16), { size: [10, 10], filter: 'lanczos' }));
    expect(e.message).toMatch(/I;16.*NEAREST only/);
  }, 300000);
});

describeIf(havePil, NO_PIL, 'EXIF orientation, when asked for (resize --auto-orient)', () => {
  test("every Orientation value turns the pixels as Pillow's ImageOps.exif_transpose does", async () => {
    const dir = path.join(tmp, 'oriented');
    const made: { file: string }[] = JSON.parse(execFileSync(PYTHON, [SCRIPT, 'make', dir], { encoding: 'utf8' }));
    const jobs: Job[] = made
      .filter((f) => f.file.startsWith('orient-'))
      .flatMap((f, i) => [
        { file: path.join(dir, f.file), out: path.join(tmp, `orient-${i}.raw`), rgb: true, size: null, filter: 'lanczos' as const, transpose: true },
        { file: path.join(dir, f.file), out: path.join(tmp, `orient-${i}-r.raw`), rgb: true, size: [16, 16] as [number, number], filter: 'lanczos' as const, transpose: true },
      ]);
    expect(jobs).toHaveLength(16);
    expect(await mismatches(jobs, tmp)).toEqual([]);
  }, 120000);
});

describe('resampling arguments', () => {
  test('bad sizes, filters and modes throw at the call, naming the problem; an undecodable JPEG rejects', async () => {
    const img = { data: new Uint8Array(12), width: 2, height: 2, mode: 'RGB' as const };
    expect(thrown(() => native.pillowImage(img, { width: 0, height: 3 })).message).toMatch(/width and height must both be positive/);
    expect(thrown(() => native.pillowImage(img, { width: 3, height: 3, filter: 'cubic' as ResampleFilter })).message).toMatch(/unknown resampling filter 'cubic'/);
    expect(thrown(() => native.pillowImage({ ...img, mode: 'YCbCr' as 'RGB' }, {})).message).toMatch(/unsupported image mode 'YCbCr'/);
    expect(thrown(() => native.pillowImage({ ...img, data: new Uint8Array(5) }, {})).message).toMatch(/holds 5 bytes but 2x2 RGB needs 12/);
    expect((await rejected(native.pillowImage(new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 1, 2]), { rgb: true }))).message).toMatch(/cannot decode image \(not a readable JPEG/);
  });
});
