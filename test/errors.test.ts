/** Every bad call throws a JS error with a clear message, and the process lives on. */
import { Tensor, setNumThreads, manualSeed } from '../lib';
import { thrown } from './support/errors';
import { native } from '../lib/core/native';

const a = () => Tensor.from([[1, 2, 3], [4, 5, 6]]);

test('shape mismatch arrives as an Error with libtorch\'s message and no C++ backtrace', () => {
  const err = thrown(() => a().matmul(a()));
  expect(err.name).toBe('Error');
  expect(err.message).toMatch(/mat1 and mat2 shapes cannot be multiplied|size mismatch/);
  expect(err.message).not.toMatch(/Exception raised from|frame #/);
  expect(() => a().add(Tensor.ones([4]))).toThrow(/size of tensor a \(3\) must match the size of tensor b \(4\)/);
  expect(() => a().view(4, 2)).toThrow(/shape '\[4, 2\]' is invalid for input of size 6/);
  expect(() => Tensor.cat([a(), Tensor.ones([2, 2, 2])], 0)).toThrow(/Tensors must have same number of dimensions/);
});

test('index errors are RangeErrors', () => {
  expect(thrown(() => a().select(0, 5)).name).toBe('RangeError');
  expect(() => a().select(0, 5)).toThrow(/index 5 out of range/);
  expect(() => a().sum(3)).toThrow(/Dimension out of range/);
});

test('wrong dtype is reported', () => {
  expect(() => a().indexSelect(0, Tensor.from([0.5]))).toThrow(/index_select\(\): Expected dtype int32 or int64 for index/);
  expect(() => Tensor.from([1], { dtype: 'complex' as never })).toThrow(TypeError);
  expect(() => Tensor.from([1], { dtype: 'complex' as never })).toThrow(/Expected one of float32.*for dtype but received the string "complex"/);
  expect(() => a().to('float8' as never)).toThrow(/Unknown device 'float8'|Expected 'cpu', 'cuda' or 'cuda:N'/);
});

test('disposed tensors throw instead of crashing', () => {
  const t = a();
  const u = a();
  t.dispose();
  expect(() => t.shape).toThrow('Tensor has been disposed');
  expect(() => t.add(1)).toThrow('Tensor has been disposed');
  expect(() => u.add(t)).toThrow(/Tensor passed as other has been disposed/);
  expect(() => Tensor.cat([u, t])).toThrow(/has been disposed/);
  expect(t.toString()).toBe('Tensor(disposed)');
});

test('wrong argument types are TypeErrors naming the argument', () => {
  expect(() => a().add('x' as never)).toThrow(/Expected a Tensor for other but received the string "x"/);
  expect(() => a().reshape('x' as never)).toThrow(TypeError);
  expect(() => a().select(0.5, 0)).toThrow(/Expected an integer for dim but received number 0.5/);
  expect(() => Tensor.zeros([2, -3])).toThrow(RangeError);
  expect(() => Tensor.from({} as never)).toThrow(/Expected a TypedArray, a nested array of numbers or a number for data/);
  expect(() => Tensor.from([[1, 2], [3]])).toThrow(/Ragged nested array: data\[1\] should be an array of length 2/);
  expect(() => Tensor.from(new Float32Array(6), { shape: [4, 2] })).toThrow(/24 bytes but shape and dtype float32 need 32/);
  expect(() => manualSeed(-1)).toThrow(RangeError);
  expect(() => setNumThreads(0)).toThrow(RangeError);
});

test('the native layer itself rejects wrong types without crashing', () => {
  const n = native as unknown as Record<string, (...args: unknown[]) => unknown>;
  expect(() => n.fromData('nope', 'float32', [1])).toThrow(/Expected a TypedArray or Buffer for data/);
  expect(() => n.cat([{}], 0)).toThrow(/Expected a Tensor for tensors/);
  expect(() => n.full([1], 'x')).toThrow(/Expected a number for value/);
  expect(() => n.arange(0, 1, 0)).toThrow(/step must not be zero/);
  const h = a().handle as unknown as Record<string, (...args: unknown[]) => unknown>;
  expect(() => h.unary('explode')).toThrow(/Unknown unary operation 'explode'/);
  expect(() => h.asStrided([10], [1], 0)).toThrow(/view reaches element 9 but the storage holds 6/);
  expect(() => h.reshape([1.5])).toThrow(/Expected an integer for shape/);
});

test('backward on a tensor without grad is an error', () => {
  expect(() => a().sum().backward()).toThrow(/does not require grad/);
  const x = Tensor.from([1, 2], { requiresGrad: true });
  expect(() => x.mul(2).backward()).toThrow(/grad can be implicitly created only for scalar outputs/);
});

test('item on a multi-element tensor is a RangeError', () => {
  expect(() => a().item()).toThrow(/exactly one element, got 6/);
});

test('the process is still healthy after all of the above', () => {
  expect(a().sum().item()).toBe(21);
});

describe('ending the process while async work runs', () => {
  const { spawnSync } = require('child_process') as typeof import('child_process');
  const script = require('path').join(__dirname, 'scripts', 'exit-during-work.js') as string;
  test.each([
    ['process.exit(3)', 'exit', 3],
    ['an uncaught exception', 'throw', 1],
  ])('%s exits with its status, not a crash in libtorch teardown (3 runs)', (_name, how, status) => {
    for (let i = 0; i < 3; i++) {
      const r = spawnSync(process.execPath, [script, how as string], { encoding: 'utf8', timeout: 60000 });
      expect({ status: r.status, signal: r.signal }).toEqual({ status, signal: null });
    }
  });
  test.each([
    ['process.exit(3)', 'exit', 3],
    ['an uncaught exception', 'throw', 1],
  ])('%s while a call is still running after the grace period ends the process with its status at once', (_name, how, status) => {
    const env = { ...process.env, TORCHCAP_EXIT_GRACE_MS: '0' };
    for (let i = 0; i < 3; i++) {
      const r = spawnSync(process.execPath, [script, how as string], { encoding: 'utf8', timeout: 60000, env });
      expect({ status: r.status, signal: r.signal }).toEqual({ status, signal: null });
    }
  });
});
