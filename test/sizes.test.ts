/**
 * Requests for tensors that cannot exist here are refused before libtorch tries to allocate them,
 * with a RangeError that names the shape: negative sizes, counts past int64, and more bytes than
 * the smaller of the address-space limit and the machine's physical memory.
 */
import { spawnSync } from 'child_process';
import * as path from 'path';
import { Tensor, Linear, Embedding, LSTM } from '../lib';
import { thrown } from './support/errors';

const refusal = (fn: () => unknown) => {
  const e = thrown(fn);
  return `${e.name}: ${e.message}`;
};

test('creation refuses shapes past the machine with a RangeError naming the shape', () => {
  expect(refusal(() => Tensor.zeros([1e6, 1e6, 1e6]))).toMatch(
    /^RangeError: zeros: shape \[1000000, 1000000, 1000000\] of float32 needs 3\.5 EiB, more than the machine's physical memory \(\d+\.\d GiB\)$/,
  );
  expect(refusal(() => Tensor.randn([2 ** 40, 2 ** 40]))).toBe(
    'RangeError: randn: shape [1099511627776, 1099511627776] has more elements than an int64 can count',
  );
  expect(refusal(() => Tensor.rand([2 ** 61, 2], { dtype: 'float64' }))).toBe(
    'RangeError: rand: shape [2305843009213693952, 2] of float64 needs more bytes than an int64 can count',
  );
  // A zero empties the tensor, but libtorch computes strides from the other sizes.
  expect(refusal(() => Tensor.zeros([0, 2 ** 62, 2 ** 62]))).toMatch(/^RangeError: zeros: shape \[0, 4611686018427387904, 4611686018427387904\] has more elements/);
  expect(refusal(() => Tensor.arange(0, 1e15))).toMatch(/^RangeError: arange: shape \[1000000000000000\] of int64 needs 7\.1 PiB/);
  expect(refusal(() => Tensor.randperm(1e13))).toMatch(/^RangeError: randperm: shape \[10000000000000\] of int64 needs/);
  expect(refusal(() => Tensor.fromBytes(new Uint8Array(0), 'float32', [2 ** 62, 4]))).toMatch(/^RangeError: fromData: shape \[4611686018427387904, 4\] has more elements/);
});

test('an empty tensor whose other sizes are huge is refused: operators would loop over them for hours', () => {
  // sort of an empty [1, 4, 2^40, 0] visits its 2^42 rows (libtorch 1.13): found by the API fuzzer
  const extent = /is empty, but its other sizes multiply to 4398046511104, more than 2147483647 \(operators would loop over them\)$/;
  expect(refusal(() => Tensor.zeros([1, 4, 2 ** 40, 0]))).toMatch(/^RangeError: zeros: shape \[1, 4, 1099511627776, 0\]/);
  expect(refusal(() => Tensor.zeros([1, 4, 2 ** 40, 0]))).toMatch(extent);
  const empty = Tensor.zeros([0]);
  expect(refusal(() => empty.reshape([1, 4, 2 ** 40, 0]))).toMatch(/^RangeError: tensor: shape \[1, 4, 1099511627776, 0\] is empty/);
  expect(refusal(() => Tensor.zeros([1, 0]).expand([2 ** 31, 0]))).toMatch(/^RangeError: expand: shape \[2147483648, 0\] is empty/);
  // up to the bound they are made, and sorting them is quick
  const big = empty.reshape([1, 2 ** 31 - 1, 0]);
  expect(big.shape).toEqual([1, 2 ** 31 - 1, 0]);
  expect(Tensor.zeros([0, 3, 224, 224]).sort(-1).values.shape).toEqual([0, 3, 224, 224]);
});

test('modules refuse weights that cannot exist, naming the weight and its shape', () => {
  expect(refusal(() => new Linear(1e6, 1e6))).toMatch(/^RangeError: Linear weight: shape \[1000000, 1000000\] of float32 needs 3\.6 TiB/);
  expect(refusal(() => new Embedding(2 ** 40, 2 ** 40))).toMatch(/^RangeError: Embedding weight: shape \[1099511627776, 1099511627776\] has more elements/);
  expect(refusal(() => new LSTM(10, 10, { numLayers: 1e9 }))).toMatch(/^RangeError: LSTM weights: shape \[1000000000, 4, 10, 22\] of float32 needs/);
});

test('sizes that fit are still made', () => {
  expect(Tensor.zeros([0, 5]).shape).toEqual([0, 5]);
  expect(Tensor.arange(0, 10, 3).shape).toEqual([4]);
  expect(new Linear(4, 3).stateDict().get('weight')?.shape).toEqual([3, 4]);
});

test('under an address-space limit (ulimit -v) the limit is what is named, and what does not fit is an error', () => {
  const limitKb = 4 * 1024 * 1024; // 4 GiB: the process takes about 2 to start
  const script = path.join(__dirname, 'scripts', 'sizes-under-limit.js');
  const left = 3 * 2 ** 30; // under the limit, more than what the process has left
  const r = spawnSync('bash', ['-c', `ulimit -v ${limitKb} && exec "${process.execPath}" "${script}" ${left / 4}`], {
    encoding: 'utf8',
    timeout: 60000,
    env: { ...process.env, OMP_NUM_THREADS: '1' },
  });
  expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
  const out = JSON.parse(r.stdout);
  expect(out.overLimit).toEqual({
    name: 'RangeError',
    message: "zeros: shape [1073741824, 2] of float32 needs 8.0 GiB, more than the process's address-space limit (ulimit -v) (4.0 GiB)",
  });
  expect(out.overWhatIsLeft.name).toBe('Error');
  expect(out.overWhatIsLeft.message).toMatch(/can't allocate memory: you tried to allocate 3221225472 bytes/);
  expect(out.after).toEqual({ ok: true, shape: [] });
});
