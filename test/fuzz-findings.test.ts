/**
 * What the API fuzzer (test/fuzz.test.ts) found, kept as plain tests: calls that ended the process
 * instead of throwing an error.
 */
import { spawnSync } from 'child_process';
import * as path from 'path';
import { Tensor, LSTM } from '../lib';
import { thrown } from './support/errors';

const DIST = path.join(__dirname, '..', 'dist');

function runNode(code: string, nodeFlags: string[] = []) {
  const r = spawnSync(process.execPath, [...nodeFlags, '-e', code], { encoding: 'utf8', timeout: 60000, env: { ...process.env, TORCHCAP_DIST: DIST } });
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

test('toArray counts what the JS heap already holds: a heap that is half full refuses what would not fit (it ran out, fatal)', () => {
  // The fuzzer's processes run with a 512 MB heap; 8M empty arrays take about 340 MB of it.
  const r = runNode(
    `
    const { Tensor } = require(process.env.TORCHCAP_DIST);
    const ballast = Array.from({ length: 200 }, () => Array.from({ length: 1 << 17 }, (_, i) => i + 0.5)); // about 200 MB of the JS heap
    try {
      Tensor.zeros([8e6, 0]).toArray();
      console.log('made');
    } catch (e) {
      console.log(e.name + ': ' + e.message);
    }
    console.log(ballast.length, Tensor.zeros([1000, 0]).toArray().length);
  `,
    ['--max-old-space-size=512'],
  );
  expect(r).toEqual({
    status: 0,
    signal: null,
    stdout: 'RangeError: toArray: a tensor of shape [8000000, 0] is too big for nested JS arrays; use toTypedArray()\n200 1000',
    stderr: '',
  });
});

test('an LSTM with 2^62 layers is refused (it crashed with SIGSEGV)', () => {
  expect(thrown(() => new LSTM(4, 4, { numLayers: 2 ** 62 })).name).toBe('RangeError');
});
