/**
 * What the API fuzzer (test/fuzz.test.ts) found, kept as plain tests: calls that ended the process
 * instead of throwing an error.
 */
import { spawnSync } from 'child_process';
import * as path from 'path';
import { Tensor, LSTM } from '../lib';
import { thrown } from './support/errors';

const DIST = path.join(__dirname, '..', 'dist');

function runNode(code: string) {
  const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', timeout: 60000, env: { ...process.env, TORCHCAP_DIST: DIST } });
  return { status: r.status, signal: r.signal, stdout: r.stdout.trim(), stderr: r.stderr.trim() };
}

test('noGrad refusing an async function does not leave its rejection unhandled (it ended the process)', () => {
  const r = runNode(`
    const { noGrad } = require(process.env.TORCHCAP_DIST);
    try {
      noGrad(async () => { throw new Error('inside'); });
    } catch (e) {
      console.log(e.name);
    }
    setTimeout(() => console.log('still running'), 50);
  `);
  expect(r).toEqual({ status: 0, signal: null, stdout: 'TypeError\nstill running', stderr: '' });
});

test('toArray refuses a tensor whose nested arrays cannot fit in the JS heap (running out of it is fatal)', () => {
  const empty = Tensor.zeros([1e9, 0]); // legal, and empty: but 10^9 nested arrays
  expect(thrown(() => empty.toArray()).message).toBe('toArray: a tensor of shape [1000000000, 0] is too big for nested JS arrays; use toTypedArray()');
  expect(Tensor.zeros([2, 0, 3]).toArray()).toEqual([[], []]);
});

test('an LSTM with 2^62 layers is refused (it crashed with SIGSEGV)', () => {
  expect(thrown(() => new LSTM(4, 4, { numLayers: 2 ** 62 })).name).toBe('RangeError');
});
