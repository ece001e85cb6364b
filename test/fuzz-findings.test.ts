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

test('the fast path on an empty batch gives [0, C] and on an empty image says why, as the plain path does (it ended the process with SIGFPE)', () => {
  // in a child process: on the build before, the first call killed it (oneDNN divides by the batch size)
  const r = runNode(`
    const { ResNet, Tensor, noGrad } = require(process.env.TORCHCAP_DIST);
    const m = new ResNet(18);
    (async () => {
      const out = [];
      for (const shape of [[0, 3, 8, 8], [0, 3, 0, 4], [1, 3, 0, 4], [2, 3, 5, 0]]) {
        for (const call of [() => noGrad(() => m.forward(Tensor.zeros(shape), { train: false, fast: true })), () => m.forwardAsync(Tensor.zeros(shape), { train: false, fast: true })]) {
          try {
            out.push(JSON.stringify((await call()).shape));
          } catch (e) {
            out.push(e.name + ': ' + e.message);
          }
        }
        try {
          m.forward(Tensor.zeros(shape), { train: false });
          out.push('plain: returned');
        } catch (e) {
          out.push('plain: ' + e.name + ': ' + e.message);
        }
      }
      console.log(JSON.stringify(out));
    })();
  `);
  expect([r.status, r.signal]).toEqual([0, null]);
  const out: string[] = JSON.parse(r.stdout);
  expect(out.slice(0, 2)).toEqual(['[0,512]', '[0,512]']);
  expect(out[2]).toBe('plain: returned');
  for (let i = 3; i < out.length; i += 3) {
    // the fast path's two calls refuse an image of no pixels with the plain path's own error
    expect(out[i]).toMatch(/^Error: Calculated padded input size per channel: \(\d+ x \d+\)\. Kernel size: \(7 x 7\)\. Kernel size can't be greater than actual input size/);
    expect(out[i + 1]).toBe(out[i]);
    expect(out[i + 2]).toBe(`plain: ${out[i]}`);
  }
});
