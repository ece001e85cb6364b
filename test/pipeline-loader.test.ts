/**
 * The training loader: PyTorch's DistributedSampler order, the book's collate (longest first,
 * padded, lengths), RandomCrop + flip within the image, resuming an epoch mid-way, bad images
 * dropped and reported, and prefetching that really runs ahead of the consumer.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { CaptionLoader, epochOrder, padCaptions, type Batch, type Sample } from '../lib/data/loader';
import { IMAGENET_MEAN, IMAGENET_STD } from '../lib/data/images';
import { PYTHON, pythonHas, runPython } from './support/python';
import { describeIf, testIf } from './support/skip';
import { fixturePhotos } from './support/data';

const torch = pythonHas('torch');

let tmp: string;
/** 20 noise images of 40×40 (PNG, lossless, so decoded pixels are known exactly). */
let pixels: Map<string, Uint8Array>;
let samples: Sample[];
/** The same as JPEGs at the decode size (what `torchcap resize` makes), their pixels as sharp decodes them. */
let jpegSamples: Sample[];

function noise(seed: number, n: number): Uint8Array {
  const data = new Uint8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s >>> 24;
  }
  return data;
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torchcap-loader-'));
  pixels = new Map();
  samples = [];
  for (let i = 0; i < 20; i++) {
    const file = path.join(tmp, `img${i}.png`);
    const data = noise(i + 1, 40 * 40 * 3);
    await sharp(Buffer.from(data), { raw: { width: 40, height: 40, channels: 3 } }).png().toFile(file);
    pixels.set(file, data);
    // two captions per image, lengths 3..9 (with <start> and <end>), ids tell sample and position apart
    const jpeg = path.join(tmp, `img${i}.jpg`);
    await sharp(Buffer.from(data), { raw: { width: 40, height: 40, channels: 3 } }).jpeg({ quality: 100, chromaSubsampling: '4:4:4' }).toFile(jpeg);
    pixels.set(jpeg, new Uint8Array(await sharp(jpeg).raw().toBuffer()));
    for (let k = 0; k < 2; k++) {
      const n = samples.length;
      const len = 3 + ((n * 5) % 7);
      samples.push({ image: file, ids: [1, ...Array.from({ length: len - 2 }, (_, j) => 4 + ((n + j) % 50)), 2] });
    }
  }
  jpegSamples = samples.map((s) => ({ image: s.image.replace(/\.png$/, '.jpg'), ids: s.ids }));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function collect(loader: CaptionLoader, epoch: number, from = 0): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of loader.epoch(epoch, from)) out.push(b);
  return out;
}

/** CPU time of the JS thread (Linux: /proc/self/task/<pid>/stat, utime + stime in clock ticks of 10 ms). */
function mainThreadCpuMs(): number {
  const stat = fs.readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10; // fields 14 and 15 of stat(5)
}
/** CPU time of the whole process, every thread. */
function processCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

const values = (b: Batch) => b.images.toTypedArray() as Float32Array;

describe('epochOrder', () => {
  test('a permutation per epoch, fixed by (seed, epoch); without shuffle the identity', () => {
    const a = epochOrder(50, 0, { seed: 3 });
    expect([...a].sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(epochOrder(50, 0, { seed: 3 })).toEqual(a);
    expect(epochOrder(50, 1, { seed: 3 })).not.toEqual(a);
    expect(epochOrder(50, 0, { seed: 4 })).not.toEqual(a);
    expect(epochOrder(5, 2, { shuffle: false })).toEqual([0, 1, 2, 3, 4]);
    // ranks: padded by repeating from the start, then every world-th
    expect(epochOrder(5, 0, { shuffle: false, rank: 1, worldSize: 3 })).toEqual([1, 4]);
    expect(epochOrder(5, 0, { shuffle: false, rank: 2, worldSize: 3 })).toEqual([2, 0]);
    const all = [0, 1, 2].flatMap((rank) => epochOrder(50, 1, { seed: 9, rank, worldSize: 3 }));
    expect(new Set(all).size).toBe(50);
    expect(all).toHaveLength(51);
  });

  describeIf(torch, `${PYTHON} lacks torch`, 'against torch.utils.data.DistributedSampler', () => {
    test('the same indices for every (n, epoch, rank, world, seed)', () => {
      const cases: [number, number, number, number, number][] = [
        [10, 0, 0, 1, 0],
        [250, 1, 0, 1, 0],
        [10, 3, 1, 3, 42],
        [7, 1, 2, 4, 5],
        [2, 0, 4, 5, 0], // padding longer than the data
        [1000, 2, 0, 1, 123],
        [414113, 4, 3, 8, 7], // train2014's captions
      ];
      const ours = cases.map(([n, epoch, rank, world, seed]) => epochOrder(n, epoch, { seed, rank, worldSize: world }));
      const theirs = JSON.parse(
        runPython(
          `
import sys, json
from torch.utils.data import DistributedSampler
out = []
for n, epoch, rank, world, seed in json.loads(sys.argv[1]):
    s = DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=True, seed=seed)
    s.set_epoch(epoch)
    out.append(list(s))
print(json.dumps(out))
`,
          [JSON.stringify(cases)],
        ),
      );
      cases.forEach((c, i) => expect([c, ours[i]]).toEqual([c, theirs[i]]));
    });
  });
});

describe('CaptionLoader', () => {
  const opts = { batchSize: 6, seed: 5, resize: 40, crop: 32 };

  test('a batch size that is not a whole number >= 1 is refused at construction', () => {
    expect(() => new CaptionLoader(samples, { ...opts, batchSize: 0 })).toThrow(/batchSize/);
    expect(() => new CaptionLoader(samples, { ...opts, batchSize: 2.5 })).toThrow(/batchSize/);
  });

  test('every sample once an epoch, in the sampler order, collated as the book: longest first, padded, lengths', async () => {
    const loader = new CaptionLoader(samples, opts);
    expect(loader.batchesPerEpoch()).toBe(7);
    const batches = await collect(loader, 0);
    expect(batches.map((b) => b.index)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    const order = epochOrder(samples.length, 0, { seed: 5 });
    for (const b of batches) {
      const chunk = order.slice(b.index * 6, b.index * 6 + 6).map((i) => samples[i]);
      // a stable sort by length, longest first (Python's sort(reverse=True) keeps ties in order)
      const expected = [...chunk].sort((x, y) => y.ids.length - x.ids.length);
      expect(b.samples).toEqual(expected);
      expect(b.lengths).toEqual(expected.map((s) => s.ids.length));
      expect(b.images.shape).toEqual([expected.length, 3, 32, 32]);
      const T = b.lengths[0];
      expect(b.captions.shape).toEqual([expected.length, T]);
      expect(b.captions.dtype).toBe('int64');
      const rows = b.captions.toArray() as number[][];
      rows.forEach((row, r) => expect(row).toEqual([...expected[r].ids, ...new Array(T - expected[r].ids.length).fill(0)]));
    }
    expect(batches.flatMap((b) => b.samples)).toHaveLength(samples.length);
    expect(new Set(batches.flatMap((b) => b.samples))).toEqual(new Set(samples));
  });

  test('padCaptions on its own', () => {
    const { captions, lengths } = padCaptions([[1, 7, 8, 2], [1, 9, 2], [1, 2]]);
    expect(lengths).toEqual([4, 3, 2]);
    expect(captions.toArray()).toEqual([[1, 7, 8, 2], [1, 9, 2, 0], [1, 2, 0, 0]]);
  });

  /**
   * Finds, for every image of an epoch's batches, the one 32×32 window of its 40×40 source (and
   * flip) that it shows, comparing a few pixels within `tolerance` levels.
   */
  async function windows(set: Sample[], tolerance: number): Promise<{ corners: Set<string>; flipped: number; n: number }> {
    const batches = await collect(new CaptionLoader(set, opts), 1);
    const corners = new Set<string>();
    let flipped = 0;
    let n = 0;
    for (const b of batches) {
      const v = values(b);
      b.samples.forEach((s, k) => {
        const src = pixels.get(s.image)!;
        // the image's own pixels, back from the normalized tensor
        const at = (c: number, y: number, x: number) => Math.round((v[((k * 3 + c) * 32 + y) * 32 + x] * IMAGENET_STD[c] + IMAGENET_MEAN[c]) * 255);
        const matches: string[] = [];
        for (let y0 = 0; y0 <= 8; y0++) {
          for (let x0 = 0; x0 <= 8; x0++) {
            for (const flip of [false, true]) {
              let ok = true;
              for (let c = 0; c < 3 && ok; c++) {
                for (const [y, x] of [[0, 0], [0, 31], [31, 0], [13, 17], [31, 31], [7, 3]]) {
                  if (Math.abs(at(c, y, x) - src[((y0 + y) * 40 + x0 + (flip ? 31 - x : x)) * 3 + c]) > tolerance) ok = false;
                }
              }
              if (ok) matches.push(`${x0},${y0},${flip}`);
            }
          }
        }
        expect([s.image, matches.length]).toEqual([s.image, 1]);
        corners.add(matches[0].split(',').slice(0, 2).join(','));
        if (matches[0].endsWith('true')) flipped++;
        n++;
      });
    }
    return { corners, flipped, n };
  }

  test.each([
    ['PNG', 0],
    ['JPEG at the decode size', 1],
  ])('training images (%s) are a random 32×32 window of the 40×40 image, sometimes flipped, normalized', async (kind, tolerance) => {
    const { corners, flipped, n } = await windows(kind === 'PNG' ? samples : jpegSamples, tolerance as number);
    expect(n).toBe(40);
    expect(corners.size).toBeGreaterThan(20); // 81 possible corners
    expect(flipped).toBeGreaterThan(8);
    expect(flipped).toBeLessThan(32);
  });

  test('PNG and JPEG copies of the same pictures get the same windows and flips', async () => {
    const a = await collect(new CaptionLoader(samples, opts), 3);
    const b = await collect(new CaptionLoader(jpegSamples, opts), 3);
    expect(b.map((x) => x.samples.map((s) => s.image.replace(/\.jpg$/, '.png')))).toEqual(a.map((x) => x.samples.map((s) => s.image)));
    a.forEach((x, i) => {
      const va = values(x);
      const vb = values(b[i]);
      let worst = 0;
      for (let j = 0; j < va.length; j++) worst = Math.max(worst, Math.abs(va[j] - vb[j]));
      // JPEG at quality 100 is not lossless: a few levels at most, never a different window
      expect(worst).toBeLessThan(12 / 255 / 0.224);
    });
  });

  test('without augmentation: the centre window, never flipped', async () => {
    const [b] = await collect(new CaptionLoader(samples, { ...opts, augment: false }), 0);
    const v = values(b);
    const src = pixels.get(b.samples[0].image)!;
    for (const [y, x] of [[0, 0], [5, 30], [31, 31]]) {
      expect(Math.round((v[y * 32 + x] * IMAGENET_STD[0] + IMAGENET_MEAN[0]) * 255)).toBe(src[((4 + y) * 40 + 4 + x) * 3]);
    }
  });

  test('seeded: the same batches again; a resumed epoch from batch k equals batches k.. of the whole epoch', async () => {
    const whole = await collect(new CaptionLoader(samples, opts), 2);
    const again = await collect(new CaptionLoader(samples, opts), 2);
    const resumed = await collect(new CaptionLoader(samples, opts), 2, 4);
    expect(again.map((b) => b.samples)).toEqual(whole.map((b) => b.samples));
    expect(resumed.map((b) => b.index)).toEqual([4, 5, 6]);
    resumed.forEach((b, i) => {
      const w = whole[4 + i];
      expect(b.samples).toEqual(w.samples);
      expect(b.captions.toArray()).toEqual(w.captions.toArray());
      expect(Buffer.from(values(b).buffer).equals(Buffer.from(values(w).buffer))).toBe(true);
    });
    const other = await collect(new CaptionLoader(samples, { ...opts, seed: 6 }), 2);
    expect(other.map((b) => b.samples)).not.toEqual(whole.map((b) => b.samples));
  });

  test('bad images are dropped from their batch and reported; the epoch goes on', async () => {
    const empty = path.join(tmp, 'empty.png');
    const text = path.join(tmp, 'text.png');
    fs.writeFileSync(empty, '');
    fs.writeFileSync(text, 'not a picture');
    const whole = fs.readFileSync(jpegSamples[0].image);
    const truncated = path.join(tmp, 'truncated.jpg');
    fs.writeFileSync(truncated, whole.subarray(0, Math.floor(whole.length * 0.6))); // a JPEG of the decode size, cut short
    const bad: Sample[] = [
      { image: empty, ids: [1, 5, 2] },
      { image: truncated, ids: [1, 7, 2] },
      { image: text, ids: [1, 5, 6, 2] },
      { image: path.join(tmp, 'missing.png'), ids: [1, 2] },
    ];
    const all = [...samples.slice(0, 9), ...bad];
    const skipped: [string, string][] = [];
    const loader = new CaptionLoader(all, { ...opts, batchSize: 4, onSkip: (s, reason) => skipped.push([s.image, reason]) });
    const batches = await collect(loader, 0);
    expect(batches.flatMap((b) => b.samples)).toHaveLength(9);
    expect(new Set(batches.flatMap((b) => b.samples.map((s) => s.image)))).toEqual(new Set(samples.slice(0, 9).map((s) => s.image)));
    expect(skipped.map(([image]) => image).sort()).toEqual(bad.map((s) => s.image).sort());
    for (const [image, reason] of skipped) expect(reason.startsWith(`${image}: `)).toBe(true);
    for (const b of batches) expect(b.images.shape[0]).toBe(b.samples.length);

    // a batch of only bad images is left out; the indices of the others stay
    const onlyBad = await collect(new CaptionLoader([...bad, ...samples.slice(0, 4)], { batchSize: 4, shuffle: false, resize: 40, crop: 32 }), 0);
    expect(onlyBad.map((b) => b.index)).toEqual([1]);
  });

  test('prefetch: the next batches are being decoded before the consumer asks for them', async () => {
    // Decoding a file starts with reading it (once: its bytes go to the decoder).
    const calls: { image: string; at: number }[] = [];
    const real = fs.promises.readFile;
    const spy = jest.spyOn(fs.promises, 'readFile').mockImplementation(((file: string, o?: unknown) => {
      calls.push({ image: String(file), at: Date.now() });
      return real(file, o as never);
    }) as typeof fs.promises.readFile);
    try {
      const loader = new CaptionLoader(samples, { ...opts, prefetch: 2 });
      const order = epochOrder(samples.length, 0, { seed: 5 });
      const imagesOf = (b: number) => new Set(order.slice(b * 6, b * 6 + 6).map((i) => samples[i].image));
      const it = loader.epoch(0);
      const first = await it.next();
      expect(first.value!.index).toBe(0);
      // the consumer "computes" for a while; the loader works meanwhile
      await new Promise((r) => setTimeout(r, 300));
      const asked = Date.now();
      const started = new Set(calls.filter((c) => c.at < asked).map((c) => c.image));
      for (const b of [1, 2]) for (const img of imagesOf(b)) expect(started.has(img)).toBe(true);
      // not further than `prefetch` batches ahead
      const beyond = [...imagesOf(3)].filter((img) => ![...imagesOf(0), ...imagesOf(1), ...imagesOf(2)].some((x) => x === img));
      for (const img of beyond) expect(started.has(img)).toBe(false);
      const second = await it.next();
      expect(second.value!.index).toBe(1);
      await it.return(undefined);
    } finally {
      spy.mockRestore();
    }
  });

  testIf(fs.existsSync(`/proc/self/task/${process.pid}/stat`), "no per-thread CPU counters (Linux's /proc) here", 'decoding real photos and batching them leave the event loop free: the CPU goes to the image threads', async () => {
    // the 13 fixture photos eight times: eight batches of 13, enough CPU time (about a second)
    // for the clock ticks of 10 ms that count it
    const photos = Array.from({ length: 8 }, () => fixturePhotos).flat().map((image) => ({ image, ids: [1, 4, 2] }));
    // Loading libtorch and sharp (once per process, synchronous like every require) is not the
    // loader's work: one small epoch first.
    await collect(new CaptionLoader(photos.slice(0, 2), { batchSize: 2, seed: 0 }), 0);
    // Where the epoch's CPU time went: the JS thread's own (Linux's per-thread counters) against
    // the whole process's. Decoding on the JS thread would put most of it there. CPU time counts only
    // what a thread ran, not what it waited for a core, so other test files running beside this one
    // do not move the share (a timer's gaps, measured here before, did).
    const before = { main: mainThreadCpuMs(), all: processCpuMs() };
    const started = Date.now();
    const batches = await collect(new CaptionLoader(photos, { batchSize: 13, seed: 0 }), 0);
    const elapsed = Date.now() - started;
    const main = mainThreadCpuMs() - before.main;
    const all = processCpuMs() - before.all;
    expect(batches.map((b) => b.images.shape)).toEqual(Array.from({ length: 8 }, () => [13, 3, 224, 224]));
    // eslint-disable-next-line no-console
    console.log(`loader epoch: ${elapsed} ms; CPU ${all.toFixed(0)} ms in all, ${main.toFixed(0)} ms of it on the JS thread`);
    expect(main / all).toBeLessThan(0.4);
  });

  test('options are checked', () => {
    expect(() => new CaptionLoader([], opts)).toThrow(/no samples/);
    expect(() => new CaptionLoader(samples, { batchSize: 2, resize: 32, crop: 40 })).toThrow(/crop 40 is larger than the decoded size 32/);
  });
});
