/**
 * Broken files in an image folder, through the command line: `resize` counts and lists them and
 * exits 0, `train` skips them (counted once per image in its summary) and finishes, `caption`
 * captions the good images, names each bad one on stderr and exits 1, never crashing.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { FIXTURE_CAPTIONS, FIXTURE_IMAGES, fixturePhotoNames } from './support/data';
import { describeIf } from './support/skip';
import { runCli, lines, cliBuilt, NO_CLI, type CliResult } from './support/cli';

/** The bad entries and what stderr must say about each. */
const BAD: Record<string, RegExp> = {
  'empty.jpg': /empty file \(0 bytes\)/,
  'truncated.jpg': /premature end of JPEG|truncated/i,
  'notes.jpg': /not an image/,
  'x.jpg': /is a directory/,
  'missing.jpg': /file not found/,
};

let root: string;
let input: string;
let captions: string;

function noCrash(r: CliResult): void {
  expect(r.signal).toBeNull();
  // an error message, not a stack trace or an abort from native code
  expect(r.stderr).not.toMatch(/\n\s+at .+:\d+:\d+\)?\n|Segmentation|Aborted|terminate called|FATAL/);
}

describeIf(cliBuilt, NO_CLI, 'bad files among the 13 fixture COCO photos, through the CLI', () => {
  let photos: string[];
  beforeAll(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'torchcap-badfiles-'));
    input = path.join(root, 'images');
    fs.mkdirSync(input);
    photos = [...fixturePhotoNames];
    for (const f of photos) fs.copyFileSync(path.join(FIXTURE_IMAGES, f), path.join(input, f));
    const whole = fs.readFileSync(path.join(input, photos[0]));
    fs.writeFileSync(path.join(input, 'empty.jpg'), '');
    fs.writeFileSync(path.join(input, 'truncated.jpg'), whole.subarray(0, Math.floor(whole.length / 2)));
    fs.writeFileSync(path.join(input, 'notes.jpg'), 'a text file, not a photo\n');
    fs.mkdirSync(path.join(input, 'x.jpg'));
    await sharp(path.join(input, photos[1])).png().toFile(path.join(input, 'photo.png'));
    // the fixture captions plus captions that name the extra files (and one that does not exist)
    const coco = JSON.parse(fs.readFileSync(FIXTURE_CAPTIONS, 'utf8'));
    const extra = ['photo.png', ...Object.keys(BAD)];
    extra.forEach((file, i) => {
      coco.images.push({ id: 900000 + i, file_name: file });
      for (const k of [0, 1]) coco.annotations.push({ id: 9000000 + i * 10 + k, image_id: 900000 + i, caption: `A photo of a thing number ${k}.` });
    });
    captions = path.join(root, 'captions.json');
    fs.writeFileSync(captions, JSON.stringify(coco));
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  test('resize: the good images and the PNG done, the broken files counted and listed, exit 0; a folder is no file', async () => {
    const out = path.join(root, 'resized');
    const r = await runCli(['resize', '--input', input, '--output', out, '--quiet']);
    noCrash(r);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/resized 14, already done 0, failed 3 of 17 files/);
    expect(r.stdout).toMatch(/3 files could not be resized:/);
    expect(r.stdout).toMatch(/ {2}empty\.jpg: empty file \(0 bytes\)/);
    expect(r.stdout).toMatch(/ {2}truncated\.jpg: .*truncated/);
    expect(r.stdout).toMatch(/ {2}notes\.jpg: .*not an image/);
    expect(fs.readdirSync(out).sort()).toEqual(['.torchcap-resize.json', ...photos, 'photo.png'].sort());
  });

  test('train: the bad images skipped, each reported once and counted in the summary; training finishes', async () => {
    const out = path.join(root, 'ckpt');
    const r = await runCli([
      'train', '--images', input, '--captions', captions, '--threshold', '1', '--out', out,
      '--backbone', 'resnet18', '--epochs', '1', '--batch-size', '8', '--resize', '128', '--crop', '112', '--quiet',
    ]);
    noCrash(r);
    expect(r.code).toBe(0);
    // 77 captions (65 + 2 of the PNG + 10 of the bad entries) in batches of 8: 10 steps; the 10
    // captions of the 5 bad images are dropped from their batches
    expect(r.stdout).toMatch(/done: 10 steps, last loss \d+\.\d{4}, 5 images skipped/);
    const skipped = lines(r.stderr).filter((l) => l.startsWith('skipped: '));
    expect(skipped).toHaveLength(5);
    for (const [file, reason] of Object.entries(BAD)) {
      const line = skipped.find((l) => l.includes(path.join(input, file)));
      expect([file, line]).toEqual([file, expect.stringMatching(reason)]);
    }
    expect(fs.existsSync(path.join(out, 'encoder-1-10.ckpt'))).toBe(true);
  }, 300000);

  test('caption: good captions on stdout, each bad file named on stderr, exit 1', async () => {
    const ckpt = path.join(root, 'ckpt');
    const good = [path.join(input, photos[2]), path.join(input, 'photo.png'), path.join(input, photos[3])];
    const bad = Object.keys(BAD).map((f) => path.join(input, f));
    const args = ['--encoder', path.join(ckpt, 'encoder-1-10.ckpt'), '--decoder', path.join(ckpt, 'decoder-1-10.ckpt'), '--vocab', path.join(ckpt, 'vocab.json')];
    const r = await runCli(['caption', good[0], bad[0], good[1], ...bad.slice(1), good[2], ...args, '--json']);
    noCrash(r);
    expect(r.code).toBe(1);
    const objects = lines(r.stdout).map((l) => JSON.parse(l));
    expect(objects.map((o) => o.image)).toEqual(good);
    for (const o of objects) expect(o.caption).toEqual(expect.any(String));
    const errors = lines(r.stderr);
    expect(errors).toHaveLength(bad.length);
    for (const [file, reason] of Object.entries(BAD)) {
      const line = errors.find((l) => l.includes(path.join(input, file)));
      expect([file, line]).toEqual([file, expect.stringMatching(new RegExp(`^torchcap caption: .*${file.replace('.', '\\.')}: .*(?:${reason.source})`, reason.flags))]);
    }

    // plain output, only bad files, and unusable model files: still messages and exit 1
    const plain = await runCli(['caption', good[0], ...args]);
    expect(plain.code).toBe(0);
    expect(plain.stdout).toMatch(new RegExp(`^${good[0].replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: \\S`));
    const onlyBad = await runCli(['caption', bad[0], bad[2], ...args]);
    noCrash(onlyBad);
    expect([onlyBad.code, onlyBad.stdout, lines(onlyBad.stderr).length]).toEqual([1, '', 2]);
    const badModel = await runCli(['caption', good[0], '--encoder', bad[0], '--decoder', path.join(ckpt, 'decoder-1-10.ckpt'), '--vocab', path.join(ckpt, 'vocab.json')]);
    noCrash(badModel);
    expect(badModel.code).toBe(1);
    expect(badModel.stderr).toMatch(/^torchcap caption: .*empty\.jpg/);
  }, 120000);
});
