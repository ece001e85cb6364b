import { Tensor, manualSeed, noGrad, isGradEnabled, memory } from '../lib';

const arr = (t: Tensor) => Array.from(t.toTypedArray() as ArrayLike<number | bigint>, Number);

describe('creation', () => {
  test('from typed arrays keeps dtype and copies the data', () => {
    const src = new Float32Array([1, 2, 3, 4, 5, 6]);
    const t = Tensor.from(src, { shape: [2, 3] });
    expect(t.shape).toEqual([2, 3]);
    expect(t.dtype).toBe('float32');
    expect(t.device).toBe('cpu');
    src[0] = 100;
    expect(arr(t)).toEqual([1, 2, 3, 4, 5, 6]);
    const out = t.toTypedArray();
    (out as Float32Array)[1] = 50;
    expect(arr(t)[1]).toBe(2);
    expect(Tensor.from(new Int32Array([1, 2])).dtype).toBe('int32');
    expect(Tensor.from(new Float64Array([1, 2])).dtype).toBe('float64');
    expect(Tensor.from(new BigInt64Array([1n, -2n])).toArray()).toEqual([1, -2]);
    expect(Tensor.from(new Uint8Array([1, 0]), { dtype: 'bool' }).toArray()).toEqual([true, false]);
  });

  test('from nested arrays infers shape and dtype', () => {
    const t = Tensor.from([[1, 2], [3, 4], [5, 6]]);
    expect(t.shape).toEqual([3, 2]);
    expect(t.dtype).toBe('float32');
    expect(t.toArray()).toEqual([[1, 2], [3, 4], [5, 6]]);
    expect(Tensor.from([[true, false]]).dtype).toBe('bool');
    expect(Tensor.from([1, 2, 3], { dtype: 'int64' }).toArray()).toEqual([1, 2, 3]);
    expect(Tensor.from(7).shape).toEqual([]);
    expect(Tensor.from(7).item()).toBe(7);
    expect(Tensor.from([1.5, 2.5], { dtype: 'float16' }).to('float32').toArray()).toEqual([1.5, 2.5]);
  });

  test('fromBytes reads raw bytes as any dtype', () => {
    const f = new Float32Array([1.5, -2]);
    const t = Tensor.fromBytes(new Uint8Array(f.buffer), 'float32', [2]);
    expect(t.toArray()).toEqual([1.5, -2]);
    expect(() => Tensor.fromBytes(new Uint8Array(7), 'float32', [2])).toThrow(/7 bytes but shape and dtype float32 need 8/);
  });

  test('zeros, ones, full, arange', () => {
    expect(Tensor.zeros([2, 2]).toArray()).toEqual([[0, 0], [0, 0]]);
    expect(Tensor.ones([3], { dtype: 'int64' }).toArray()).toEqual([1, 1, 1]);
    expect(Tensor.full([2], 3.5).toArray()).toEqual([3.5, 3.5]);
    expect(Tensor.arange(5).toArray()).toEqual([0, 1, 2, 3, 4]);
    expect(Tensor.arange(5).dtype).toBe('int64');
    expect(Tensor.arange(1, 2, 0.25).toArray()).toEqual([1, 1.25, 1.5, 1.75]);
    expect(Tensor.arange(1, 2, 0.25).dtype).toBe('float32');
  });

  test('manualSeed makes randn and randperm reproducible', () => {
    manualSeed(42);
    const a = arr(Tensor.randn([5]));
    const p = arr(Tensor.randperm(10));
    manualSeed(42);
    expect(arr(Tensor.randn([5]))).toEqual(a);
    expect(arr(Tensor.randperm(10))).toEqual(p);
    expect([...p].sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const r = Tensor.randint(3, 7, [1000]);
    expect(r.min().item()).toBeGreaterThanOrEqual(3);
    expect(r.max().item()).toBeLessThan(7);
    const u = Tensor.rand([1000]);
    expect(u.min().item()).toBeGreaterThanOrEqual(0);
    expect(u.max().item()).toBeLessThan(1);
  });
});

describe('operations', () => {
  const a = () => Tensor.from([[1, 2, 3], [4, 5, 6]]);

  test('shape operations', () => {
    expect(a().reshape(3, 2).toArray()).toEqual([[1, 2], [3, 4], [5, 6]]);
    expect(a().view([-1]).toArray()).toEqual([1, 2, 3, 4, 5, 6]);
    expect(a().transpose(0, 1).toArray()).toEqual([[1, 4], [2, 5], [3, 6]]);
    expect(a().permute(1, 0).contiguous().strides).toEqual([2, 1]);
    expect(a().unsqueeze(0).shape).toEqual([1, 2, 3]);
    expect(a().unsqueeze(0).squeeze(0).shape).toEqual([2, 3]);
    expect(a().flatten().shape).toEqual([6]);
    expect(Tensor.from([1, 2]).unsqueeze(1).expand(2, 3).toArray()).toEqual([[1, 1, 1], [2, 2, 2]]);
  });

  test('slicing and indexing', () => {
    expect(a().slice(1, 1).toArray()).toEqual([[2, 3], [5, 6]]);
    expect(a().slice(1, 0, 3, 2).toArray()).toEqual([[1, 3], [4, 6]]);
    expect(a().slice(0, -1).toArray()).toEqual([[4, 5, 6]]);
    expect(a().select(0, 1).toArray()).toEqual([4, 5, 6]);
    expect(a().narrow(1, 1, 1).toArray()).toEqual([[2], [5]]);
    expect(a().indexSelect(1, [2, 0]).toArray()).toEqual([[3, 1], [6, 4]]);
    expect(a().gather(1, Tensor.from([[0], [2]], { dtype: 'int64' })).toArray()).toEqual([[1], [6]]);
    expect(a().maskedFill(a().gt(3), 0).toArray()).toEqual([[1, 2, 3], [0, 0, 0]]);
    const base = Tensor.arange(6, undefined, 1, { dtype: 'float32' });
    expect(base.asStrided([2, 2], [3, 1], 1).toArray()).toEqual([[1, 2], [4, 5]]);
  });

  test('cat and stack', () => {
    expect(Tensor.cat([a(), a()], 0).shape).toEqual([4, 3]);
    expect(Tensor.cat([a(), a()], 1).shape).toEqual([2, 6]);
    expect(Tensor.stack([a(), a()], 0).shape).toEqual([2, 2, 3]);
  });

  test('arithmetic with tensors and numbers follows PyTorch promotion', () => {
    expect(a().add(1).toArray()).toEqual([[2, 3, 4], [5, 6, 7]]);
    expect(a().mul(a()).sum().item()).toBe(91);
    expect(a().sub(a().mean()).sum().item()).toBeCloseTo(0, 5);
    expect(a().div(2).toArray()).toEqual([[0.5, 1, 1.5], [2, 2.5, 3]]);
    expect(a().pow(2).select(1, 2).select(0, 0).item()).toBe(9);
    const i = Tensor.from([1, 2], { dtype: 'int32' });
    expect(i.add(2).dtype).toBe('int32');
    expect(i.add(2.5).dtype).toBe('float32');
    expect(i.add(2.5).toArray()).toEqual([3.5, 4.5]);
    expect(i.div(2).dtype).toBe('float32');
    expect(a().matmul(a().transpose(0, 1)).toArray()).toEqual([[14, 32], [32, 77]]);
    expect(a().neg().abs().toArray()).toEqual(a().toArray());
    expect(Tensor.from([0]).exp().item()).toBe(1);
    expect(Tensor.from([Math.E]).log().item()).toBeCloseTo(1, 6);
    expect(Tensor.from([-1, 2]).clamp(0, 1).toArray()).toEqual([0, 1]);
  });

  test('in-place operations change the tensor itself', () => {
    const t = a();
    t.addInPlace(1).mulInPlace(2);
    expect(t.toArray()).toEqual([[4, 6, 8], [10, 12, 14]]);
    t.subInPlace(Tensor.ones([2, 3]), 2);
    expect(t.select(0, 0).toArray()).toEqual([2, 4, 6]);
    t.zero();
    expect(t.sum().item()).toBe(0);
    t.fill(3).copyFrom(a());
    expect(t.toArray()).toEqual(a().toArray());
  });

  test('copyFrom a tensor sharing its memory (a loader reading a file straight into a module) keeps the values; with gradients recorded the copy is still recorded', () => {
    const t = a();
    const alias = t.view([6]).view([2, 3]);
    noGrad(() => t.copyFrom(alias));
    expect(t.toArray()).toEqual(a().toArray());
    // a detached alias copied from the tensor it aliases, which requires grad: copy_ records it
    const x = Tensor.from([1, 2, 3], { requiresGrad: true });
    const y = x.detach();
    y.copyFrom(x);
    expect(y.requiresGrad).toBe(true);
    y.mul(y).sum().backward();
    expect(x.grad!.toArray()).toEqual([2, 4, 6]);
  });

  test('reductions', () => {
    expect(a().sum().item()).toBe(21);
    expect(a().sum(0).toArray()).toEqual([5, 7, 9]);
    expect(a().sum(1, true).shape).toEqual([2, 1]);
    expect(a().mean([0, 1]).item()).toBe(3.5);
    expect(a().max().item()).toBe(6);
    const m = a().max(1);
    expect(m.values.toArray()).toEqual([3, 6]);
    expect(m.indices.toArray()).toEqual([2, 2]);
    expect(a().min(0).indices.toArray()).toEqual([0, 0, 0]);
    expect(a().argmax(1).toArray()).toEqual([2, 2]);
    expect(a().argmax().item()).toBe(5);
    const k = Tensor.from([3, 1, 4, 1, 5, 9, 2, 6]).topk(3);
    expect(k.values.toArray()).toEqual([9, 6, 5]);
    expect(k.indices.toArray()).toEqual([5, 7, 4]);
    expect(Tensor.from([3, 1, 2]).sort().values.toArray()).toEqual([1, 2, 3]);
    expect(Tensor.from([1, 2, 3, 4]).variance().item()).toBeCloseTo(5 / 3, 5);
  });

  test('softmax and logSoftmax', () => {
    const x = Tensor.from([[1, 2, 3]]);
    const s = x.softmax(1).toArray() as number[][];
    const e = [1, 2, 3].map(Math.exp);
    const z = e.reduce((p, q) => p + q);
    s[0].forEach((v, i) => expect(v).toBeCloseTo(e[i] / z, 6));
    const l = x.logSoftmax(1).toArray() as number[][];
    l[0].forEach((v, i) => expect(v).toBeCloseTo(Math.log(e[i] / z), 6));
    expect(x.logsumexp(1).item()).toBeCloseTo(Math.log(z), 5);
  });

  test('dtype and clone/detach conversions', () => {
    const t = a();
    expect(t.to('int64').dtype).toBe('int64');
    expect(t.to({ dtype: 'float64' }).dtype).toBe('float64');
    const c = t.clone();
    c.fill(0);
    expect(t.sum().item()).toBe(21);
    expect(t.equal(a())).toBe(true);
    expect(t.allclose(a().add(1e-7))).toBe(true);
    expect(t.allclose(a().add(1e-2))).toBe(false);
  });
});

describe('autograd', () => {
  test('backward computes gradients like d/dx of sum(x^2 * w)', () => {
    const x = Tensor.from([1, 2, 3], { requiresGrad: true });
    const w = Tensor.from([2, 2, 2]);
    const y = x.pow(2).mul(w).sum();
    expect(y.requiresGrad).toBe(true);
    y.backward();
    expect(x.grad!.toArray()).toEqual([4, 8, 12]);
    // gradients accumulate until zeroed
    x.pow(2).mul(w).sum().backward();
    expect(x.grad!.toArray()).toEqual([8, 16, 24]);
    x.zeroGrad();
    expect(x.grad).toBeNull();
    expect(w.grad).toBeNull();
  });

  test('matmul, softmax and log gradients match hand derivations', () => {
    const a = Tensor.from([[1, 2], [3, 4]], { requiresGrad: true });
    const b = Tensor.from([[1, 0], [0, 1]]);
    a.matmul(b).sum().backward();
    expect(a.grad!.toArray()).toEqual([[1, 1], [1, 1]]);
    const x = Tensor.from([0.5, 1.5], { requiresGrad: true });
    x.logSoftmax(0).select(0, 0).backward();
    const p = x.detach().softmax(0).toArray() as number[];
    const g = x.grad!.toArray() as number[];
    expect(g[0]).toBeCloseTo(1 - p[0], 6);
    expect(g[1]).toBeCloseTo(-p[1], 6);
  });

  test('noGrad turns tracking off inside and restores it after', () => {
    const x = Tensor.from([1, 2], { requiresGrad: true });
    expect(isGradEnabled()).toBe(true);
    const y = noGrad(() => {
      expect(isGradEnabled()).toBe(false);
      return x.mul(2);
    });
    expect(y.requiresGrad).toBe(false);
    expect(isGradEnabled()).toBe(true);
    expect(() => noGrad(() => { throw new Error('inner'); })).toThrow('inner');
    expect(isGradEnabled()).toBe(true);
    expect(x.detach().requiresGrad).toBe(false);
  });
});

describe('memory', () => {
  test('dispose frees the tensor and counters follow', () => {
    const before = memory();
    const t = Tensor.zeros([1000]);
    expect(memory().tensors).toBe(before.tensors + 1);
    expect(memory().bytes).toBe(before.bytes + 4000);
    t.dispose();
    t.dispose();
    expect(t.isDisposed).toBe(true);
    expect(memory()).toEqual(before);
  });

  test('using disposes at the end of the block', () => {
    const before = memory().tensors;
    {
      const t = Tensor.ones([10]);
      t[Symbol.dispose]();
    }
    expect(memory().tensors).toBe(before);
  });
});
