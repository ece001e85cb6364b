/**
 * Sampling captions: greedy as the book, batched; beam search checked against greedy, against an
 * exhaustive search, and by teacher-forcing its result back through the decoder; captions come
 * back without special tokens.
 */
import { Tensor, manualSeed, noGrad } from '../lib/core/tensor';
import { CaptionEncoder, CaptionDecoder } from '../lib/model';
import { greedy, beamSearch, sampleIds, cutAtEnd } from '../lib/sample';
import { captionBatch, idsToCaption } from '../lib/sample';
import { Vocabulary, START, END, PAD } from '../lib/vocabulary/vocabulary';

/** A small random decoder; `endBias` raises <end>'s logit so that captions finish. */
function decoderFor(seed: number, opts: { V?: number; maxSeqLen?: number; endBias?: number; numLayers?: number } = {}): CaptionDecoder {
  manualSeed(seed);
  const V = opts.V ?? 12;
  const dec = new CaptionDecoder({ vocabSize: V, embedSize: 8, hiddenSize: 16, maxSeqLen: opts.maxSeqLen ?? 8, numLayers: opts.numLayers });
  if (opts.endBias) {
    const bias = dec.stateDict().get('linear_layer.bias')!;
    const shift = new Float32Array(V);
    shift[END] = opts.endBias;
    noGrad(() => bias.copyFrom(bias.add(Tensor.from(shift))));
  }
  return dec;
}

/** Sum of log p(ids[t] | image, ids[<t]), by teacher forcing through decoder.forward (independent of sampling). */
function logProb(dec: CaptionDecoder, feature: Tensor, ids: number[]): number {
  return noGrad(() => {
    const caps = Tensor.from(BigInt64Array.from(ids.map(BigInt)), { shape: [1, ids.length] });
    const lp = dec.forward(feature, caps, [ids.length], { train: false }).logSoftmax(1).toArray() as number[][];
    return ids.reduce((s, id, t) => s + lp[t][id], 0);
  });
}

/** The book's sample loop, step by step with the synchronous API: maxLen ids per image, uncut. */
function bookSample(dec: CaptionDecoder, feats: Tensor, maxLen: number): number[][] {
  return noGrad(() => {
    let inputs = feats;
    let state;
    const steps: number[][] = [];
    for (let t = 0; t < maxLen; t++) {
      const r = dec.step(inputs, state);
      state = r.state;
      const next = r.logits.argmax(1);
      steps.push(Array.from(next.toTypedArray() as BigInt64Array, Number));
      inputs = dec.embed(next);
    }
    return Array.from({ length: feats.shape[0] }, (_, b) => steps.map((st) => st[b]));
  });
}

const row = (t: Tensor, i: number) => t.slice(0, i, i + 1);

describe('greedy', () => {
  test("as the book's sample: argmax fed back maxLen times, cut after <end>", async () => {
    const dec = decoderFor(1, { endBias: 1 });
    const feats = Tensor.randn([3, 8]);
    const ids = await greedy(dec, feats);
    expect(ids).toEqual(bookSample(dec, feats, dec.maxSeqLen).map(cutAtEnd));
    expect(ids.some((s) => s.includes(END))).toBe(true);
    for (const s of ids) expect(s.indexOf(END)).toBe(s.includes(END) ? s.length - 1 : -1);
  });

  test('batched equals one image at a time (greedy and beam), also with two LSTM layers', async () => {
    for (const numLayers of [1, 2]) {
      const dec = decoderFor(2, { endBias: 0.5, numLayers });
      const feats = Tensor.randn([6, 8]).mul(2);
      const batched = await greedy(dec, feats);
      const beamBatched = await beamSearch(dec, feats, { beam: 3 });
      for (let i = 0; i < 6; i++) {
        expect(await greedy(dec, row(feats, i))).toEqual([batched[i]]);
        expect(await beamSearch(dec, row(feats, i), { beam: 3 })).toEqual([beamBatched[i]]);
      }
    }
  });

  test('stops once every caption has its <end>, with the same captions as the full loop', async () => {
    const dec = decoderFor(4, { endBias: 3, maxSeqLen: 20 });
    const feats = Tensor.randn([4, 8]);
    let calls = 0;
    const step = dec.stepAsync.bind(dec);
    dec.stepAsync = (...a: Parameters<typeof dec.stepAsync>) => (calls++, step(...a));
    const ids = await greedy(dec, feats);
    const longest = Math.max(...ids.map((s) => s.length));
    expect(ids.every((s) => s[s.length - 1] === END)).toBe(true);
    expect(calls).toBe(longest); // not 20
    expect(ids).toEqual(bookSample(dec, feats, 20).map(cutAtEnd));
  });

  test('maxLen limits the words', async () => {
    const dec = decoderFor(3);
    const ids = await greedy(dec, Tensor.randn([2, 8]), { maxLen: 3 });
    for (const s of ids) expect(s.length).toBeLessThanOrEqual(3);
    await expect(greedy(dec, Tensor.randn([1, 8]), { maxLen: 0 })).rejects.toThrow(/maxLen/);
  });
});

describe('beam search', () => {
  test('beam 1 is greedy', async () => {
    for (let seed = 0; seed < 8; seed++) {
      const dec = decoderFor(seed, { endBias: seed % 2 });
      const feats = Tensor.randn([4, 8]).mul(2);
      expect(await beamSearch(dec, feats, { beam: 1 })).toEqual(await greedy(dec, feats));
      expect(await sampleIds(dec, feats, { beam: 1 })).toEqual(await greedy(dec, feats));
    }
  });

  test('beam K >= 2 finds a caption at least as probable as greedy (log-probabilities by teacher forcing)', async () => {
    let better = 0;
    let compared = 0;
    for (let seed = 0; seed < 12; seed++) {
      const dec = decoderFor(100 + seed, { endBias: 0.5, maxSeqLen: 12 });
      const feats = Tensor.randn([4, 8]).mul(3);
      const g = await greedy(dec, feats);
      for (const K of [2, 3, 5]) {
        const b = await sampleIds(dec, feats, { beam: K });
        for (let i = 0; i < 4; i++) {
          // Only whole captions compare: one cut at maxLen without <end> has no total probability.
          if (g[i][g[i].length - 1] !== END || b[i][b[i].length - 1] !== END) continue;
          const lg = logProb(dec, row(feats, i), g[i]);
          const lb = logProb(dec, row(feats, i), b[i]);
          expect(lb).toBeGreaterThanOrEqual(lg - 1e-5);
          compared++;
          if (lb > lg + 1e-5) better++;
        }
      }
    }
    expect(compared).toBeGreaterThan(100);
    expect(better).toBeGreaterThan(5); // beam search does find better captions than greedy's
  });

  test('with K >= V^maxLen it is exhaustive: the most probable finished caption of all', async () => {
    const V = 5;
    const L = 3;
    const dec = decoderFor(7, { V, maxSeqLen: L });
    const feats = Tensor.randn([2, 8]).mul(2);
    const beam = await beamSearch(dec, feats, { beam: V ** L }); // more beams than words: must not fail
    // every caption of at most L words that ends at its first <end>
    const words = [0, 1, 3, 4];
    const all: number[][] = [[END]];
    for (const a of words) all.push([a, END]);
    for (const a of words) for (const b of words) all.push([a, b, END]);
    for (let i = 0; i < 2; i++) {
      const scores = all.map((ids) => logProb(dec, row(feats, i), ids));
      const best = Math.max(...scores);
      expect(beam[i]).toEqual(all[scores.indexOf(best)]);
    }
  });

  test('a length penalty favours longer captions', async () => {
    const dec = decoderFor(11, { endBias: 1.5, maxSeqLen: 12 });
    const feats = Tensor.randn([8, 8]).mul(2);
    const plain = await beamSearch(dec, feats, { beam: 4 });
    const penalized = await beamSearch(dec, feats, { beam: 4, lengthPenalty: 1 });
    const total = (x: number[][]) => x.reduce((s, c) => s + c.length, 0);
    expect(total(penalized)).toBeGreaterThanOrEqual(total(plain));
  });
});

describe('captions', () => {
  test('never contain <start>, <end> or <pad>, even when the model emits them', async () => {
    const vocab = Vocabulary.build(['a dog runs on the grass', 'a cat sits on the mat'], { threshold: 1 });
    manualSeed(5);
    const encoder = new CaptionEncoder({ backbone: 18, embedSize: 8 });
    const decoder = new CaptionDecoder({ vocabSize: vocab.size, embedSize: 8, hiddenSize: 16 });
    // make <start> and <pad> likely, so that sampled ids are full of them
    const bias = decoder.stateDict().get('linear_layer.bias')!;
    const shift = new Float32Array(vocab.size);
    shift[START] = 3;
    shift[PAD] = 3;
    noGrad(() => bias.copyFrom(bias.add(Tensor.from(shift))));
    const images = Tensor.randn([3, 3, 64, 64]);
    const features = noGrad(() => encoder.forward(images, { train: false }));
    const ids = await greedy(decoder, features);
    expect(ids.flat().some((i) => i === START || i === PAD)).toBe(true);
    for (const beam of [1, 3]) {
      const captions = await captionBatch({ encoder, decoder, vocab }, images, { beam });
      expect(captions).toHaveLength(3);
      for (const c of captions) {
        expect(typeof c).toBe('string');
        expect(c).not.toMatch(/<start>|<end>|<pad>/);
      }
    }
    expect(idsToCaption(vocab, [START, vocab.id('a'), PAD, vocab.id('dog'), END, vocab.id('cat')])).toBe('a dog');
  });
});
