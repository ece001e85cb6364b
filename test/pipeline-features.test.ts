/**
 * Cached backbone features (`--cache-features`): the first run computes features.safetensors
 * (the frozen ResNet in eval mode on the centre crop), a second run with the same settings reuses
 * it without running the backbone, and a differently initialised backbone recomputes it.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createHash } from 'crypto';
import { train, type Trainer, type TrainOptions } from '../lib/train';
import { readSafetensors } from '../lib/serialization';
import { decodeImage, toBatch } from '../lib/data/images';
import { readCoco } from '../lib/data/datasets';
import { noGrad } from '../lib/core/tensor';
import { FIXTURE_CAPTIONS, FIXTURE_IMAGES } from './support/data';
import { describeIf } from './support/skip';
import { runCli, cliBuilt, NO_CLI } from './support/cli';

const CAPTIONS = FIXTURE_CAPTIONS;

const sha = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

describeIf(cliBuilt, NO_CLI, 'cached backbone features', () => {
  let root: string;
  let out: string;
  let file: string;
  const options = (): TrainOptions => ({
    images: FIXTURE_IMAGES,
    captions: CAPTIONS,
    threshold: 1,
    out,
    backbone: 18,
    epochs: 1,
    batchSize: 13,
    resize: 128,
    crop: 112,
    cacheFeatures: true,
    quiet: true,
  });
  /** Runs training through the API, counting the backbone's forward passes. */
  async function trainCounting(opts: TrainOptions): Promise<{ calls: number; trainer: Trainer; steps: number }> {
    let calls = 0;
    let trainer: Trainer | undefined;
    const summary = await train(opts, (t) => {
      trainer = t;
      const real = t.encoder.featuresAsync.bind(t.encoder);
      t.encoder.featuresAsync = (...args) => {
        calls++;
        return real(...args);
      };
    });
    return { calls, trainer: trainer!, steps: summary.globalStep };
  }

  beforeAll(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'torchcap-features-'));
    out = path.join(root, 'out');
    file = path.join(out, 'features.safetensors');
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  test('--cache-features trains and writes features.safetensors: the eval-mode backbone on the centre crop', async () => {
    const o = options();
    const r = await runCli([
      'train', '--images', o.images, '--captions', o.captions, '--threshold', '1', '--out', out, '--backbone', 'resnet18',
      '--epochs', '1', '--batch-size', '13', '--resize', '128', '--crop', '112', '--cache-features', '--quiet',
    ]);
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(r.stdout).toMatch(/done: 5 steps, last loss \d+\.\d{4}, 0 images skipped/);
    const { tensors, metadata } = await readSafetensors(file);
    const features = tensors.get('features')!;
    expect(features.shape).toEqual([13, 512]);
    const settings = JSON.parse(metadata.settings);
    expect([settings.resize, settings.crop, settings.backbone, settings.images.length]).toEqual([128, 112, 18, 13]);
    expect(JSON.parse(metadata.missing)).toEqual([]);

    // row i is image i's backbone output (eval mode, centre 112 crop of the 128 decode)
    const { trainer } = await trainCounting({ ...options(), maxStepsPerEpoch: 1 });
    const corpus = readCoco(CAPTIONS, o.images);
    const firstImage = corpus.imagePath(corpus.annotations[0].imageId);
    expect(settings.images[0]).toBe(firstImage);
    const x = toBatch([await decodeImage(firstImage, 128)], { crop: 112, crops: [[8, 8]] });
    const direct = noGrad(() => trainer.encoder.features(x, { train: false }));
    const row = features.select(0, 0).unsqueeze(0);
    expect(direct.sub(row).abs().max().item()).toBeLessThan(1e-4);
  }, 300000);

  test('a second run reuses the file without running the backbone; another seed recomputes it', async () => {
    const mtime = fs.statSync(file).mtimeMs;
    const hash = sha(file);
    const signature = JSON.parse((await readSafetensors(file)).metadata.settings).signature;
    const again = await trainCounting(options());
    expect(again.calls).toBe(0);
    expect(again.steps).toBe(5);
    expect(fs.statSync(file).mtimeMs).toBe(mtime);
    expect(sha(file)).toBe(hash);

    const reseeded = await trainCounting({ ...options(), seed: 1 });
    expect(reseeded.calls).toBeGreaterThan(0);
    expect(sha(file)).not.toBe(hash);
    expect(JSON.parse((await readSafetensors(file)).metadata.settings).signature).not.toBe(signature);
  }, 300000);

  test('unreadable images: zero rows listed as missing, their captions left out, steps counted without them', async () => {
    const bad = path.join(root, 'bad');
    fs.mkdirSync(bad);
    fs.writeFileSync(path.join(bad, 'empty.jpg'), '');
    fs.writeFileSync(path.join(bad, 'notes.jpg'), 'not a photo');
    const coco = JSON.parse(fs.readFileSync(CAPTIONS, 'utf8'));
    ['empty.jpg', 'notes.jpg', 'missing.jpg'].forEach((f, i) => {
      coco.images.push({ id: 900 + i, file_name: path.join(bad, f) });
      for (let k = 0; k < 5; k++) coco.annotations.push({ id: 9000 + 10 * i + k, image_id: 900 + i, caption: 'a thing on a table' });
    });
    const captions = path.join(root, 'with-bad.json');
    fs.writeFileSync(captions, JSON.stringify(coco));
    const logged: string[] = [];
    const skipped: string[] = [];
    const summary = await train({ ...options(), captions, out: path.join(root, 'out-bad'), logEvery: 1 }, (t) => {
      t.on('log', (l) => logged.push(l));
      t.on('skip', ({ image }) => skipped.push(image));
    });
    // 65 usable captions at batch 13: 5 steps, and the log says 5
    expect(summary.globalStep).toBe(5);
    expect(summary.skipped).toBe(3);
    expect(skipped.sort()).toEqual(['empty.jpg', 'missing.jpg', 'notes.jpg'].map((f) => path.join(bad, f)));
    expect(logged.filter((l) => l.startsWith('Epoch'))).toHaveLength(5);
    expect(logged[logged.length - 1]).toMatch(/^Epoch \[0\/1\], Step \[4\/5\]/);
    expect(fs.existsSync(path.join(root, 'out-bad', 'encoder-1-5.ckpt'))).toBe(true);
    const { tensors, metadata } = await readSafetensors(path.join(root, 'out-bad', 'features.safetensors'));
    expect(JSON.parse(metadata.missing).sort()).toEqual(skipped);
    expect(tensors.get('features')!.shape).toEqual([16, 512]);
    expect(tensors.get('features')!.select(0, 13).abs().sum().item()).toBe(0);
  }, 300000);
});
