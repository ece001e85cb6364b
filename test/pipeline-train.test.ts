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

test('valid counts get as far as reading the captions', async () => {
  const e = await rejected(train(base));
  expect(e.name).toBe('DatasetError');
  expect(e.message).toMatch(/captions file not found/);
});
