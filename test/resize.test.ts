/**
 * `resizeImages` and `torchcap resize` on real COCO photos mixed with broken files, plus the
 * progress display they use.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { runResize } from '../lib/commands/resize';
import { createProgress, formatBytes, formatDuration } from '../lib/util/progress';
import { type ResizeProgress, resizeImages } from '../lib/prepare/resize';
import { FIXTURE_IMAGES, fixturePhotoNames } from './support/data';

const PHOTOS = FIXTURE_IMAGES;
const photoNames = fixturePhotoNames;

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'torchcap-resize-'));
}

/** Captures a command's output. */
function capture(): { out: string[]; err: string[]; io: { out: (t: string) => void; err: (t: string) => void } } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (t) => out.push(t), err: (t) => err.push(t) } };
}

/**
 * An input folder with 4 real photos, a PNG made from a fifth, and the broken files a long run meets:
 * a zero-byte file, a JPEG cut in half, a text file named .jpg. Plus things that are not candidates:
 * a hidden file and a subfolder.
 */
async function makeInput(dir: string): Promise<{ good: string[]; bad: Record<string, RegExp> }> {
  const good = photoNames.slice(0, 4);
  for (const f of good) fs.copyFileSync(path.join(PHOTOS, f), path.join(dir, f));
  await sharp(path.join(PHOTOS, photoNames[4])).png().toFile(path.join(dir, 'photo.png'));
  good.push('photo.png');
  fs.writeFileSync(path.join(dir, 'empty.jpg'), '');
  const whole = fs.readFileSync(path.join(PHOTOS, photoNames[5]));
  fs.writeFileSync(path.join(dir, 'truncated.jpg'), whole.subarray(0, Math.floor(whole.length / 2)));
  fs.writeFileSync(path.join(dir, 'notes.jpg'), 'this is a text file, not a photo\n');
  fs.writeFileSync(path.join(dir, '.DS_Store'), 'hidden');
  fs.mkdirSync(path.join(dir, 'subfolder'));
  return {
    good,
    bad: { 'empty.jpg': /empty file \(0 bytes\)/, 'truncated.jpg': /truncated/, 'notes.jpg': /not an image/ },
  };
}

describe('resizeImages on real COCO photos', () => {
  let root: string;
  let input: string;
  let output: string;
  beforeEach(() => {
    root = tempDir();
    input = path.join(root, 'in');
    output = path.join(root, 'out');
    fs.mkdirSync(input);
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  test('resizes every image to 256 x 256 in its own format and lists the broken files with reasons', async () => {
    const { good, bad } = await makeInput(input);
    const events: ResizeProgress[] = [];
    const r = await resizeImages({ input, output, concurrency: 3, onProgress: (p) => events.push(p) });

    expect(r.total).toBe(good.length + Object.keys(bad).length);
    expect(r.done).toBe(good.length);
    expect(r.skipped).toBe(0);
    expect(r.failed.map((f) => f.file)).toEqual(Object.keys(bad).sort());
    for (const f of r.failed) expect(f.reason).toMatch(bad[f.file]);

    for (const name of good) {
      const meta = await sharp(path.join(output, name)).metadata();
      expect([name, meta.width, meta.height]).toEqual([name, 256, 256]);
      expect(meta.format).toBe(name.endsWith('.png') ? 'png' : 'jpeg');
      expect(meta.orientation).toBeUndefined(); // no EXIF carried over
    }
    // Nothing is written for a failure, no temporaries remain, hidden files and folders are left out
    // (the folder's record of its settings aside).
    expect(fs.readdirSync(output).sort()).toEqual(['.torchcap-resize.json', ...good].sort());
    expect(events).toHaveLength(r.total);
    expect(events[events.length - 1]).toMatchObject({ total: r.total, done: good.length, failed: 3 });
  });

  test('the pixels are the photo squeezed, not cropped or rotated', async () => {
    const name = photoNames.find((f) => fs.statSync(path.join(PHOTOS, f)).size > 0)!;
    fs.copyFileSync(path.join(PHOTOS, name), path.join(input, name));
    await resizeImages({ input, output, concurrency: 1 });
    // Compared with an 8 x 8 thumbnail of the original squeezed the same way: same layout of colours.
    const thumb = async (file: string) => sharp(file).resize(8, 8, { fit: 'fill' }).removeAlpha().raw().toBuffer();
    const a = await thumb(path.join(PHOTOS, name));
    const b = await thumb(path.join(output, name));
    let diff = 0;
    for (let i = 0; i < a.length; i++) diff += Math.abs(a[i] - b[i]);
    expect(diff / a.length).toBeLessThan(4);
  });

  test('a rerun skips the finished files and does not rewrite them', async () => {
    const { good } = await makeInput(input);
    await resizeImages({ input, output });
    const before = good.map((f) => fs.statSync(path.join(output, f)).mtimeMs);
    const again = await resizeImages({ input, output });
    expect(again.done).toBe(0);
    expect(again.skipped).toBe(good.length);
    expect(again.failed).toHaveLength(3);
    expect(good.map((f) => fs.statSync(path.join(output, f)).mtimeMs)).toEqual(before);
  });

  test('a rerun with other encoding settings is refused, naming both, and the finished files stay', async () => {
    const names = photoNames.slice(0, 2);
    for (const f of names) fs.copyFileSync(path.join(PHOTOS, f), path.join(input, f));
    await resizeImages({ input, output, jpegQuality: 75 });
    const before = names.map((f) => fs.readFileSync(path.join(output, f)));
    // Finished files are skipped by their size alone: quality 95 would have kept the quality-75 files.
    await expect(resizeImages({ input, output, jpegQuality: 95 })).rejects.toThrow(/holds images resized with quality 75, .*this run asks for quality 95, .*fresh folder/);
    await expect(resizeImages({ input, output, jpegQuality: 75, subsampling: '4:4:4' })).rejects.toThrow(/subsampling 4:2:0.*subsampling 4:4:4/);
    expect(names.map((f) => fs.readFileSync(path.join(output, f)))).toEqual(before);
    // The same settings resume as before.
    expect(await resizeImages({ input, output, jpegQuality: 75 })).toMatchObject({ done: 0, skipped: 2 });
  });

  test('an output that is a file is refused by name', async () => {
    fs.copyFileSync(path.join(PHOTOS, photoNames[0]), path.join(input, photoNames[0]));
    const file = path.join(output, 'not-a-folder');
    fs.mkdirSync(output, { recursive: true });
    fs.writeFileSync(file, 'x');
    await expect(resizeImages({ input, output: file })).rejects.toThrow(`output is a file, not a folder: ${file}`);
  });

  test('what a killed run leaves (a temporary, a half-written output) is redone', async () => {
    const names = photoNames.slice(0, 3);
    for (const f of names) fs.copyFileSync(path.join(PHOTOS, f), path.join(input, f));
    await resizeImages({ input, output });
    const finished = fs.readFileSync(path.join(output, names[0]));
    // A run killed while writing: a temporary of ours, and an output cut off at its final name (as an
    // in-place writer such as the book's script would leave it), and one output missing.
    fs.writeFileSync(path.join(output, `.${names[0]}.resize-part`), finished.subarray(0, 100));
    fs.writeFileSync(path.join(output, names[1]), finished.subarray(0, Math.floor(finished.length * 0.7)));
    fs.rmSync(path.join(output, names[2]));
    const r = await resizeImages({ input, output });
    expect(r).toMatchObject({ done: 2, skipped: 1, failed: [] });
    expect(fs.readdirSync(output).sort()).toEqual(['.torchcap-resize.json', ...names].sort());
    for (const f of names) {
      const { info } = await sharp(path.join(output, f), { failOn: 'truncated' }).raw().toBuffer({ resolveWithObject: true });
      expect([info.width, info.height]).toEqual([256, 256]);
    }
  });

  test('EXIF orientation is not applied (as PIL in the book), unless autoOrient', async () => {
    // A landscape image, red on the left and blue on the right, tagged "rotate 90 degrees clockwise".
    const w = 64;
    const h = 32;
    const raw = Buffer.alloc(w * h * 3);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) raw.set(x < w / 2 ? [255, 0, 0] : [0, 0, 255], (y * w + x) * 3);
    await sharp(raw, { raw: { width: w, height: h, channels: 3 } })
      .jpeg({ quality: 95 })
      .withMetadata({ orientation: 6 })
      .toFile(path.join(input, 'tagged.jpg'));
    expect((await sharp(path.join(input, 'tagged.jpg')).metadata()).orientation).toBe(6);

    const pixel = async (file: string, x: number, y: number) => {
      const { data } = await sharp(file).raw().toBuffer({ resolveWithObject: true });
      const i = (y * 256 + x) * 3;
      return [data[i], data[i + 1], data[i + 2]];
    };
    await resizeImages({ input, output, size: 256 });
    const out = path.join(output, 'tagged.jpg');
    expect((await sharp(out).metadata()).orientation).toBeUndefined();
    expect((await pixel(out, 10, 128))[0]).toBeGreaterThan(200); // left stays red
    expect((await pixel(out, 245, 128))[2]).toBeGreaterThan(200); // right stays blue

    const rotated = path.join(root, 'rotated');
    await resizeImages({ input, output: rotated, size: 256, autoOrient: true });
    // Rotated 90 degrees clockwise: the left (red) half is now on top.
    expect((await pixel(path.join(rotated, 'tagged.jpg'), 128, 10))[0]).toBeGreaterThan(200);
    expect((await pixel(path.join(rotated, 'tagged.jpg'), 128, 245))[2]).toBeGreaterThan(200);
  });

  test('images over the pixel limit are refused before decoding (decompression bombs)', async () => {
    fs.copyFileSync(path.join(PHOTOS, photoNames[0]), path.join(input, 'big.jpg'));
    const r = await resizeImages({ input, output, maxPixels: 10_000 });
    expect(r.done).toBe(0);
    expect(r.failed).toEqual([{ file: 'big.jpg', reason: expect.stringMatching(/image too large: \d+ x \d+ = \d+ pixels, over the limit of 10000/) }]);
  });

  test('folder problems and bad arguments are errors that name the problem', async () => {
    await expect(resizeImages({ input: path.join(root, 'missing'), output })).rejects.toThrow(/input folder not found: .*missing/);
    await expect(resizeImages({ input, output: input })).rejects.toThrow(/must differ from the input folder/);
    await expect(resizeImages({ input, output, size: 0 })).rejects.toThrow('Expected an integer between 1 and 16383 for size but received 0');
    await expect(resizeImages({ input, output, concurrency: 1.5 })).rejects.toThrow(/for concurrency but received 1.5/);
    fs.writeFileSync(path.join(root, 'file'), 'x');
    await expect(resizeImages({ input: path.join(root, 'file'), output })).rejects.toThrow(/input is not a folder/);
  });

  test('a write error stops the run instead of failing every image', async () => {
    for (const f of photoNames.slice(0, 3)) fs.copyFileSync(path.join(PHOTOS, f), path.join(input, f));
    // The temporary's name is taken by a folder: writing fails as a full or read-only disk would.
    fs.mkdirSync(path.join(output, `.${photoNames[1]}.resize-part`), { recursive: true });
    await expect(resizeImages({ input, output, concurrency: 1 })).rejects.toThrow(/^cannot write to .*out: EISDIR/);
  });

  test('torchcap resize: exit 0 with the failures listed; exit 1 when nothing could be read or the folder is missing', async () => {
    const { good } = await makeInput(input);
    const ok = capture();
    expect(await runResize({ input, output, quiet: true }, ok.io)).toBe(0);
    const text = ok.out.join('');
    expect(text).toContain(`resized ${good.length}, already done 0, failed 3 of ${good.length + 3} files`);
    expect(text).toContain('3 files could not be resized:');
    expect(text).toMatch(/ {2}empty\.jpg: empty file \(0 bytes\)/);
    expect(ok.err.join('')).toBe('');

    const junk = path.join(root, 'junk');
    fs.mkdirSync(junk);
    fs.writeFileSync(path.join(junk, 'a.jpg'), '');
    fs.writeFileSync(path.join(junk, 'b.jpg'), 'text');
    const bad = capture();
    expect(await runResize({ input: junk, output: path.join(root, 'junk-out'), quiet: true }, bad.io)).toBe(1);
    expect(bad.err.join('')).toMatch(/none of the 2 files .* could be read as an image/);

    const missing = capture();
    expect(await runResize({ input: path.join(root, 'nope'), output, quiet: true }, missing.io)).toBe(1);
    expect(missing.err.join('')).toMatch(/^torchcap resize: input folder not found: /);

    const empty = capture();
    fs.mkdirSync(path.join(root, 'empty'));
    expect(await runResize({ input: path.join(root, 'empty'), output, quiet: true }, empty.io)).toBe(1);
    expect(empty.err.join('')).toMatch(/no files in/);
  });

  test('throughput on the 13 fixture COCO photos with 2 workers', async () => {
    for (const f of photoNames) fs.copyFileSync(path.join(PHOTOS, f), path.join(input, f));
    const r = await resizeImages({ input, output, concurrency: 2 });
    expect(r.done).toBe(photoNames.length);
    // eslint-disable-next-line no-console
    console.log(`resize: ${r.done} COCO photos in ${r.seconds.toFixed(2)} s = ${(r.done / r.seconds).toFixed(1)} images/s (concurrency 2, ${os.availableParallelism()} cores)`);
  });
});

describe('progress display', () => {
  /** A stream stand-in that records what is written. */
  function sink(isTTY: boolean): { stream: NodeJS.WriteStream; text: () => string } {
    const chunks: string[] = [];
    const stream = { isTTY, write: (s: string) => (chunks.push(s), true), columns: 100, on: () => stream, removeListener: () => stream } as unknown as NodeJS.WriteStream;
    return { stream, text: () => chunks.join('') };
  }

  test('formats sizes and durations', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(13_510_573_713)).toBe('12.58 GiB');
    expect(formatDuration(45)).toBe('45s');
    expect(formatDuration(965)).toBe('16m05s');
    expect(formatDuration(9480)).toBe('2h38m');
    expect(formatDuration(NaN)).toBe('?');
  });

  test('off a terminal it prints plain lines now and then, and a last one', () => {
    const s = sink(false);
    const p = createProgress({ label: 'resize', total: 100, itemName: 'img', stream: s.stream, intervalMs: 0 });
    p.update(10);
    p.increment(40);
    p.stop();
    p.stop();
    const lines = s.text().trim().split('\n');
    expect(lines[0]).toMatch(/^resize: 10\/100 \(10\.0%\) /);
    expect(lines[1]).toMatch(/^resize: 50\/100 \(50\.0%\) .* img\/s, ETA /);
    expect(lines[2]).toMatch(/^resize: 50\/100 \(50\.0%\) in \d+s$/);
    expect(lines).toHaveLength(3);
  });

  test('quiet prints nothing; a run that never started prints no summary', () => {
    const s = sink(false);
    const q = createProgress({ label: 'x', total: 10, quiet: true, stream: s.stream, intervalMs: 0 });
    q.update(5);
    q.stop();
    const never = createProgress({ label: 'y', total: 10, stream: s.stream });
    never.stop();
    expect(s.text()).toBe('');
    expect(q.value).toBe(5);
  });

  test('bytes are shown in binary units', () => {
    const s = sink(false);
    const p = createProgress({ label: 'train2014 download', total: 2 * 1024 ** 3, unit: 'bytes', stream: s.stream, intervalMs: 0 });
    p.update(1024 ** 3);
    p.stop();
    expect(s.text()).toContain('train2014 download: 1.00 GiB/2.00 GiB (50.0%)');
  });
});
