/**
 * `torchcap resize` against the book's `reshape_images` run by live Pillow 9.4: on the 50 COCO
 * photos and on generated images of every mode, the files either writes, decoded by Pillow and
 * converted to RGB, hold the same pixels (the bytes may differ). The few outputs that cannot be
 * Pillow's to the level are named here with the reason and bounded.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { native } from '../lib/core/native';
import { PYTHON, pythonHas } from './support/python';
import { sharedData } from './support/data';
import { describeIf } from './support/skip';
import { runCli, cliBuilt, NO_CLI } from './support/cli';

const SCRIPT = path.join(__dirname, '..', 'scripts', 'fixtures', 'pillow_images.py');
const PHOTOS = sharedData('coco-val2017-mini', 'images');
const photos = fs.existsSync(PHOTOS) ? fs.readdirSync(PHOTOS).filter((f) => f.endsWith('.jpg')).sort() : [];
const havePil = pythonHas('PIL', 'numpy');

type Compared = Record<string, { max?: number; mean?: number; modes?: string[]; sizes?: number[][]; missing?: string }>;

function py(args: string[]): string {
  return execFileSync(PYTHON, [SCRIPT, ...args], { encoding: 'utf8', maxBuffer: 1 << 26 });
}

/**
 * Outputs that are not Pillow's to the level, and why (each is still checked: same size, close).
 * CMYK JPEG: Pillow writes plain CMYK, libjpeg-turbo's TurboJPEG API only YCCK. GIF with
 * transparency: sharp's GIF writer, not Pillow's.
 */
const CLOSE: Record<string, string> = {
  'cmyk.jpg': 'CMYK JPEG written as YCCK',
  'cmyk-icc.jpg': 'CMYK JPEG written as YCCK',
  'square-cmyk.jpg': 'CMYK JPEG written as YCCK',
  'p-trns.gif': "GIF written by sharp's encoder",
};

const reason = !havePil ? `${PYTHON} cannot import PIL and numpy (Pillow is the reference)` : !cliBuilt ? NO_CLI : !native.hasTurboJpeg ? 'this build has no libjpeg-turbo (JPEGs are then written by sharp)' : `the 50 COCO photos are not in ${PHOTOS}`;

describeIf(havePil && cliBuilt && native.hasTurboJpeg && photos.length === 50, reason, "torchcap resize against the book's reshape_images", () => {
  let root: string;
  let input: string;
  beforeAll(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'torchcap-pillow-resize-'));
    input = path.join(root, 'in');
    fs.mkdirSync(input, { recursive: true });
    for (const f of photos) fs.copyFileSync(path.join(PHOTOS, f), path.join(input, f));
    py(['make', input, path.join(PHOTOS, '000000020247.jpg')]);
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  test('with the defaults (Pillow\'s: quality 75, 4:2:0), every file decodes to the book\'s pixels', async () => {
    const book = path.join(root, 'book');
    const refused: Record<string, string> = JSON.parse(py(['reshape', input, book, '256']));
    const r = await runCli(['resize', '--input', input, '--output', path.join(root, 'ours'), '--quiet']);
    expect(r.code).toBe(0);
    // Pillow refuses to resample 16-bit TIFF (I;16) with ANTIALIAS, and so do we, saying why; a
    // CMYK TIFF Pillow writes, we do not (sharp cannot write CMYK from raw pixels).
    expect(refused).toEqual({ 'i16.tif': 'ValueError: image has wrong mode' });
    expect(r.stdout).toMatch(/ {2}i16\.tif: Pillow resamples 16-bit \(I;16\) images with NEAREST only/);
    expect(r.stdout).toMatch(/ {2}cmyk\.tif: cannot write mode CMYK as TIFF/);

    const compared: Compared = JSON.parse(py(['compare', book, path.join(root, 'ours')]));
    const exact = Object.entries(compared).filter(([name]) => !(name in CLOSE) && name !== 'cmyk.tif');
    expect(exact.length).toBeGreaterThanOrEqual(50 + 30);
    const differ = exact.filter(([, c]) => c.max !== 0).map(([name, c]) => `${name}: ${JSON.stringify(c)}`);
    expect(differ).toEqual([]);
    // the photos stay JPEG, grey stays grey: the book's files in mode and size
    for (const f of photos) expect(compared[f]).toMatchObject({ modes: ['RGB', 'RGB'], sizes: [[256, 256], [256, 256]] });
    expect(compared['l.jpg'].modes).toEqual(['L', 'L']);
    expect(compared['la.png'].modes).toEqual(['LA', 'LA']);
    for (const [name, why] of Object.entries(CLOSE)) {
      const c = compared[name];
      expect([name, why, c.sizes]).toEqual([name, why, [[256, 256], [256, 256]]]);
      expect([name, why, c.mean! < 4]).toEqual([name, why, true]);
    }
    expect(compared['cmyk.tif']).toEqual({ missing: path.join(root, 'ours') });
  }, 300000);

  test('--quality 90 --subsampling 4:4:4 gives what Pillow saves with quality=90, subsampling=4:4:4', async () => {
    const only = path.join(root, 'photos');
    fs.mkdirSync(only);
    for (const f of photos.slice(0, 10)) fs.copyFileSync(path.join(PHOTOS, f), path.join(only, f));
    expect(JSON.parse(py(['reshape', only, path.join(root, 'book-90'), '256', '90', '4:4:4']))).toEqual({});
    const r = await runCli(['resize', '--input', only, '--output', path.join(root, 'ours-90'), '--quality', '90', '--subsampling', '4:4:4', '--quiet']);
    expect(r.code).toBe(0);
    const compared: Compared = JSON.parse(py(['compare', path.join(root, 'book-90'), path.join(root, 'ours-90')]));
    expect(Object.values(compared).map((c) => c.max)).toEqual(Array(10).fill(0));
    // and they are not the default files
    py(['reshape', only, path.join(root, 'book-75'), '256']);
    const defaults: Compared = JSON.parse(py(['compare', path.join(root, 'book-75'), path.join(root, 'ours-90')]));
    expect(Object.values(defaults).every((c) => c.max! > 0)).toBe(true);
  }, 300000);
});
