/**
 * The sampling step (CaptionDecoder.step/stepAsync, used by greedy and beam search): without
 * gradients on the CPU its LSTM gates and logits are computed row by row as matrix-vector products.
 * What a user relies on: the same numbers as PyTorch's LSTM and Linear to float rounding, each
 * caption independent of the other images in its batch, no autograd graph recorded, and every
 * other use of the layers (training, several time steps, gradients on) exactly as before.
 */
import { Tensor, noGrad, manualSeed } from '../lib';
import { Linear } from '../lib/nn/layers';
import { LSTM } from '../lib/nn/rnn';
import { CaptionDecoder } from '../lib/model';
import { greedy } from '../lib/sample/greedy';
import { dispatchWithGrad } from '../lib/core/tensor';

const maxAbs = (a: Tensor, b: Tensor) => a.sub(b).abs().max().item();

describe('LSTM, one step row by row', () => {
  const cases: [string, number, boolean, number][] = [
    ['1 layer, batch-first, 1 row (the book: one image)', 1, true, 1],
    ['1 layer, batch-first, 5 rows', 1, true, 5],
    ['2 layers, batch-first, 3 rows', 2, true, 3],
    ['3 layers, time-first, 2 rows', 3, false, 2],
  ];
  test.each(cases)('%s: output and state equal PyTorch\'s LSTM to float rounding, with and without a state', (_, layers, batchFirst, b) => {
    manualSeed(7);
    const lstm = new LSTM(9, 13, { numLayers: layers, batchFirst });
    const x = batchFirst ? Tensor.randn([b, 1, 9]) : Tensor.randn([1, b, 9]);
    const given = { h: Tensor.randn([layers, b, 13]), c: Tensor.randn([layers, b, 13]) };
    noGrad(() => {
      for (const state of [undefined, given]) {
        const plain = lstm.forward(x, { train: false }, state);
        const rows = lstm.forward(x, { train: false }, state, { rows: true });
        expect(rows.output.shape).toEqual(plain.output.shape);
        expect(rows.state.h.shape).toEqual([layers, b, 13]);
        expect(maxAbs(rows.output, plain.output)).toBeLessThan(1e-6);
        expect(maxAbs(rows.state.h, plain.state.h)).toBeLessThan(1e-6);
        expect(maxAbs(rows.state.c, plain.state.c)).toBeLessThan(1e-6);
      }
    });
  });

  test('each row is independent of the batch: row r of a batch is bit for bit that row stepped alone', () => {
    manualSeed(8);
    const lstm = new LSTM(9, 13, { batchFirst: true });
    const x = Tensor.randn([4, 1, 9]);
    noGrad(() => {
      const all = lstm.forward(x, { train: false }, undefined, { rows: true });
      for (let r = 0; r < 4; r++) {
        const one = lstm.forward(x.narrow(0, r, 1), { train: false }, undefined, { rows: true });
        expect(one.output.toArray()).toEqual(all.output.narrow(0, r, 1).toArray());
      }
    });
  });

  test('several time steps, train mode, or gradients on: PyTorch\'s own LSTM, bit for bit', () => {
    manualSeed(9);
    const lstm = new LSTM(9, 13, { batchFirst: true });
    const seq = Tensor.randn([2, 3, 9]);
    const one = Tensor.randn([2, 1, 9]);
    noGrad(() => {
      expect(lstm.forward(seq, { train: false }, undefined, { rows: true }).output.toArray()).toEqual(lstm.forward(seq, { train: false }).output.toArray());
      expect(lstm.forward(one, { train: true }, undefined, { rows: true }).output.toArray()).toEqual(lstm.forward(one, { train: true }).output.toArray());
    });
    const withGrad = lstm.forward(one, { train: false }, undefined, { rows: true });
    expect(withGrad.output.requiresGrad).toBe(true);
    expect(withGrad.output.toArray()).toEqual(lstm.forward(one, { train: false }).output.toArray());
  });
});

describe('Linear row by row', () => {
  test('equals the matrix product to float rounding, each row independent of the batch; with gradients on, the matrix product itself', () => {
    manualSeed(10);
    const linear = new Linear(64, 300);
    const x = Tensor.randn([5, 64]);
    noGrad(() => {
      const plain = linear.forward(x);
      const rows = linear.forward(x, { rows: true });
      // float32 rounding of sums of 64 products, against the largest output
      expect(maxAbs(rows, plain)).toBeLessThan(1e-6 * plain.abs().max().item());
      for (let r = 0; r < 5; r++) expect(linear.forward(x.narrow(0, r, 1), { rows: true }).toArray()).toEqual(rows.narrow(0, r, 1).toArray());
    });
    const graded = linear.forward(x, { rows: true });
    expect(graded.requiresGrad).toBe(true);
    expect(graded.toArray()).toEqual(linear.forward(x).toArray());
  });

  test('a wrong input size is refused with PyTorch\'s message, not computed', () => {
    const linear = new Linear(8, 4);
    expect(() => noGrad(() => linear.forward(Tensor.randn([2, 7]), { rows: true }))).toThrow(/shape|size|mat/i);
  });
});

describe('the decoder step in sampling', () => {
  test('records no autograd graph: the no-grad mode reaches the work started after an await', async () => {
    manualSeed(11);
    const dec = new CaptionDecoder({ vocabSize: 40, embedSize: 16, hiddenSize: 24 });
    const r = await dispatchWithGrad(false, () => dec.stepAsync(Tensor.randn([2, 16])));
    expect(r.logits.requiresGrad).toBe(false);
    expect(r.state.h.requiresGrad).toBe(false);
    // outside a no-grad chain the layers still record their graph
    const graded = await dec.stepAsync(Tensor.randn([2, 16]));
    expect(graded.logits.requiresGrad).toBe(true);
  });

  test('greedy captions of a batch are each image\'s own: the same ids as captioning each image alone', async () => {
    manualSeed(12);
    const dec = new CaptionDecoder({ vocabSize: 500, embedSize: 32, hiddenSize: 48 });
    const features = Tensor.randn([6, 32]);
    const batch = await greedy(dec, features);
    for (let i = 0; i < 6; i++) expect(await greedy(dec, features.narrow(0, i, 1))).toEqual([batch[i]]);
  });

  test('sync and async steps give the same logits', async () => {
    manualSeed(13);
    const dec = new CaptionDecoder({ vocabSize: 40, embedSize: 16, hiddenSize: 24 });
    const x = Tensor.randn([3, 16]);
    const sync = noGrad(() => dec.step(x));
    const asyncStep = await dispatchWithGrad(false, () => dec.stepAsync(x));
    expect(asyncStep.logits.toArray()).toEqual(sync.logits.toArray());
  });
});
