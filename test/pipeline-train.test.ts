/** The training loop's option checks: counts and sizes that would hang or silently do nothing are refused up front. */
import { train, type TrainOptions } from '../lib/train';
import { rejected } from './support/errors';

const base: TrainOptions = { images: '/nonexistent', captions: '/nonexistent/captions.json', out: '/nonexistent/out' };

test.each<[Partial<TrainOptions>, RegExp]>([
  [{ batchSize: 0 }, /Expected an integer >= 1 for batchSize but received 0/], // looped forever on empty batches
  [{ batchSize: 2.5 }, /Expected an integer for batchSize but received number 2\.5/],
  [{ epochs: 0 }, /epochs/],
  [{ logEvery: 0 }, /logEvery/], // logged nothing
  [{ saveEvery: 0 }, /saveEvery/], // saved only at epoch ends
  [{ crop: NaN }, /crop/],
  [{ seed: -1 }, /seed/],
  [{ maxStepsPerEpoch: 0 }, /maxStepsPerEpoch/],
])('%j is refused before any data is read', async (opts, message) => {
  const e = await rejected(train({ ...base, ...opts }));
  expect(e.name).toMatch(/RangeError|TypeError/);
  expect(e.message).toMatch(message);
});

test.each<[Partial<TrainOptions>, RegExp]>([
  [{ lr: 0 }, /Expected a number above 0 for lr but received 0/],
  [{ batchSize: 1 }, /batchSize 1 cannot train: the encoder's BatchNorm1d/],
  [{ fineTune: ['layer4'], cacheFeatures: true }, /fineTune trains backbone stages, which cacheFeatures computes once/],
  [{ evalEvery: 10 }, /evalEvery scores captions of validation images: it needs valCaptions/],
  [{ resize: 128, crop: 224 }, /crop \(224\) is larger than resize \(128\)/],
])('%j is refused before any data is read', async (opts, message) => {
  const e = await rejected(train({ ...base, ...opts }));
  expect(e.name).toMatch(/RangeError|TypeError/);
  expect(e.message).toMatch(message);
});

test('valid counts get as far as the images folder, then the captions', async () => {
  const e = await rejected(train(base));
  expect(e.name).toBe('DatasetError');
  expect(e.message).toBe('images folder not found: /nonexistent');
  const withImages = await rejected(train({ ...base, images: __dirname }));
  expect(withImages.message).toMatch(/captions file not found/);
});

describe('the output folder of an earlier run', () => {
  const fs = require('fs') as typeof import('fs');
  const os = require('os') as typeof import('os');
  const path = require('path') as typeof import('path');
  const { generateScenes } = require('../lib/demo/scenes') as typeof import('../lib/demo/scenes');
  const { Trainer } = require('../lib/train/trainer') as typeof import('../lib/train');

  test('a fresh run drops its latest.json, so that --resume later continues the fresh run', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torchcap-fresh-'));
    try {
      const g = await generateScenes({ outDir: path.join(dir, 'data'), count: 8, heldOut: 0, size: 32 });
      const out = path.join(dir, 'out');
      fs.mkdirSync(out);
      fs.writeFileSync(path.join(out, 'latest.json'), JSON.stringify({ encoder: 'encoder-9-9.ckpt' }));
      const opts = { images: g.images, captions: g.train, out, backbone: 18 as const, resize: 32, crop: 32, threshold: 1, quiet: true };
      // with the stale index, --resume would fail on its missing encoder-9-9.ckpt
      await expect(Trainer.create({ ...opts, resume: true })).rejects.toThrow(/encoder-9-9/);
      await Trainer.create(opts);
      expect(fs.existsSync(path.join(out, 'latest.json'))).toBe(false);
      await expect(Trainer.create({ ...opts, resume: true })).resolves.toBeDefined();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
