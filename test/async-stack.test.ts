/**
 * A failed async call rejects with an error whose stack leads back to the line that made the
 * call. The work runs on an executor thread and the promise settles from the event loop, where no
 * frame of the caller is left; the stack is recorded when the call is made and put under the
 * error's own message.
 */
import { types } from 'util';
import { Linear, Tensor, crossEntropyAsync, toBatchAsync } from '../lib';
import { rejected } from './support/errors';

/** `file:line` of the caller's line, as this file's stack frames show it. */
function here(stack: string | undefined): string {
  const m = /async-stack\.test\.ts:\d+/.exec(stack ?? '');
  if (!m) throw new Error(`no frame of this file in ${stack}`);
  return m[0];
}

test('a libtorch error in forwardAsync names the test file and the line of the call', async () => {
  const linear = new Linear(3, 2);
  const [call, line] = [linear.forwardAsync(Tensor.zeros([4, 5])), here(new Error().stack)];
  const err = await rejected(call);
  // Native errors belong to Node's main realm (jest runs tests in another): compare names.
  expect(types.isNativeError(err) && err.name).toBe('Error');
  expect(err.message).toMatch(/mat1 and mat2 shapes cannot be multiplied \(4x5 and 3x2\)/);
  const lines = (err.stack ?? '').split('\n');
  expect(lines[0]).toBe(`Error: ${err.message}`);
  expect(err.stack).toContain(line);
});

test('the error keeps its class: an out-of-range class index is a RangeError from the caller\'s line', async () => {
  const logits = Tensor.zeros([2, 3]);
  const targets = Tensor.from([0, 7], { dtype: 'int64' });
  const [call, line] = [crossEntropyAsync(logits, targets), here(new Error().stack)];
  const err = await rejected(call);
  expect(err.name).toBe('RangeError');
  expect(err.message).toMatch(/Target 7 is out of bounds/);
  expect((err.stack ?? '').split('\n')[0]).toBe(`RangeError: ${err.message}`);
  expect(err.stack).toContain(line);
});

test('an error raised by the native layer before the work runs keeps the caller\'s line too', async () => {
  // A 1x1 image whose bytes do not match its size: refused by the native layer synchronously,
  // which the async function turns into a rejection with the ordinary JS stack.
  const [call, line] = [toBatchAsync([{ data: new Uint8Array(5), width: 1, height: 1 }] as never, { crop: 1 }), here(new Error().stack)];
  const err = await rejected(call);
  expect(err.name).toBe('RangeError');
  expect(err.message).toMatch(/holds 5 bytes/);
  expect(err.stack).toContain(line);
});
