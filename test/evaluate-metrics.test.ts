/**
 * BLEU, ROUGE-L and CIDEr-D on tokenized captions: hand-worked cases, degenerate inputs, and the
 * numbers published by coco-caption and nlg-eval for their own inputs.
 */
import * as fs from 'fs';
import * as path from 'path';
import {
  BLEU_SMALL, BLEU_TINY, bleuFromStats, computeBleu, computeCiderD, computeRougeL, evaluateCaptionsSync, npMean, pySplit, rougeL,
} from '../lib/evaluate';

/** (matched + tiny) / (candidate n-grams + small): one factor of the toolkit's BLEU product. */
const p = (correct: number, guess: number) => (correct + BLEU_TINY) / (guess + BLEU_SMALL);

describe('BLEU (hand-worked)', () => {
  test('n-gram precisions and their geometric means', () => {
    // candidate "a b c d" vs reference "a b c e":
    // unigrams a,b,c match (3 of 4); bigrams "a b","b c" (2 of 3); trigram "a b c" (1 of 2); no 4-gram (0 of 1).
    const r = computeBleu([['a b c e']], ['a b c d']);
    expect(r.stats).toEqual({ testlen: 4, reflen: 4, guess: [4, 3, 2, 1], correct: [3, 2, 1, 0] });
    expect(r.scores[0]).toBeCloseTo(0.75, 9);
    expect(r.scores[1]).toBeCloseTo(Math.sqrt(0.75 * (2 / 3)), 9);
    expect(r.scores[2]).toBeCloseTo(Math.cbrt(0.75 * (2 / 3) * 0.5), 9);
    // No matching 4-gram: the toolkit's constants give (0.25 * 1e-15)^(1/4), not 0.
    expect(r.scores[3]).toBeCloseTo(Math.pow(0.25 * 1e-15, 0.25), 12);
    expect(r.scores[3]).toBeGreaterThan(1e-4);
  });

  test('brevity penalty exp(1 - reflen/testlen) when the candidates are shorter', () => {
    // "a b" vs "a b c d": testlen 2, reflen 4, penalty e^(1-2). No trigram or 4-gram to match:
    // their factors are (0 + 1e-15) / (0 + 1e-9) = 1e-6.
    const r = computeBleu([['a b c d']], ['a b']);
    expect(r.stats).toEqual({ testlen: 2, reflen: 4, guess: [2, 1, 0, 0], correct: [2, 1, 0, 0] });
    expect(r.scores[0]).toBeCloseTo(Math.exp(-1), 9);
    expect(r.scores[1]).toBeCloseTo(Math.exp(-1), 9);
    expect(r.scores[2]).toBeCloseTo(Math.exp(-1) * Math.cbrt(1e-6), 10);
    expect(r.scores[3]).toBeCloseTo(Math.exp(-1) * Math.pow(1e-12, 0.25), 10);
    expect(r.ratio).toBeCloseTo(0.5, 9);
    // With the constants exactly: ratio (2 + tiny) / (4 + small), factors p(2,2), p(1,1), p(0,0).
    const bp = Math.exp(1 - 1 / ((2 + BLEU_TINY) / (4 + BLEU_SMALL)));
    expect(r.scores[2]).toBeCloseTo(bp * Math.cbrt(p(2, 2) * p(1, 1) * p(0, 0)), 15);
  });

  test('counts are clipped by the largest count in any one reference', () => {
    // "the" appears 4 times in the candidate but at most once in a reference: 1 of 4 unigrams match.
    const r = computeBleu([['the cat', 'a cat on the']], ['the the the the']);
    expect(r.stats.correct[0]).toBe(1);
    expect(r.stats.reflen).toBe(4);
    expect(r.scores[0]).toBeCloseTo(0.25, 9);
    // Two references, each with "the" once and twice: the clip is 2.
    expect(computeBleu([['the cat', 'the cat and the dog']], ['the the the the']).stats.correct[0]).toBe(2);
  });

  test('effective reference length: the closest, ties to the shorter', () => {
    expect(computeBleu([['a b', 'a b c d']], ['x y z']).stats.reflen).toBe(2);
    expect(computeBleu([['a b c d', 'a b c d e']], ['x y z']).stats.reflen).toBe(4);
    expect(computeBleu([['a', 'a b c d e f', 'a b c d']], ['x y z w v']).stats.reflen).toBe(4);
  });

  test('corpus level: counts are summed over images before dividing', () => {
    // Image 1 matches 2 of 2 unigrams, image 2 none of 4: 2/6, not the mean of 1 and 0.
    const r = computeBleu([['a b'], ['x y z w']], ['a b', 'c d e f']);
    expect(r.stats).toEqual({ testlen: 6, reflen: 6, guess: [6, 4, 2, 1], correct: [2, 1, 0, 0] });
    expect(r.scores[0]).toBeCloseTo(1 / 3, 9);
    // Per image, BLEU of that image alone: 2 of 2 (1 but for the constants), and 0 of 4.
    expect(r.perImage[0][0]).toBeCloseTo(1, 8);
    expect(r.perImage[1][0]).toBeCloseTo(0, 9);
  });

  test('the published BLEU statistics of the coco-caption demo give its printed scores', () => {
    // cocoEvalCapDemo.ipynb prints, for its 1,000 fake captions:
    // {'reflen': 9855, 'guess': [9893, 8893, 7893, 6893], 'testlen': 9893, 'correct': [5732, 2510, 1043, 423]}
    // ratio: 1.00385591071, Bleu_1: 0.579, Bleu_2: 0.404, Bleu_3: 0.279, Bleu_4: 0.191
    const r = bleuFromStats({ reflen: 9855, guess: [9893, 8893, 7893, 6893], testlen: 9893, correct: [5732, 2510, 1043, 423] });
    expect(r.ratio.toPrecision(12)).toBe('1.00385591071');
    expect(r.scores.map((s) => s.toFixed(3))).toEqual(['0.579', '0.404', '0.279', '0.191']);
  });

  test('degenerate: empty candidates', () => {
    const r = computeBleu([['a b c']], ['']);
    expect(r.stats).toEqual({ testlen: 0, reflen: 3, guess: [0, 0, 0, 0], correct: [0, 0, 0, 0] });
    expect(r.scores).toEqual([0, 0, 0, 0]);
    expect(() => computeBleu([[]], ['a'])).toThrow(/no references/);
    expect(() => computeBleu([['a']], ['a', 'b'])).toThrow(/1 reference sets for 2 candidates/);
  });
});

describe('ROUGE-L (hand-worked)', () => {
  test('best precision and best recall may come from different references', () => {
    // candidate "a b c d" (4 words):
    //   vs "a c d e f": LCS "a c d" = 3 -> precision 3/4, recall 3/5
    //   vs "b c":       LCS "b c"   = 2 -> precision 2/4, recall 2/2
    // max precision 0.75, max recall 1: F = (1 + 1.2^2) * 0.75 * 1 / (1 + 1.2^2 * 0.75)
    const expected = ((1 + 1.44) * 0.75 * 1) / (1 + 1.44 * 0.75);
    expect(rougeL('a b c d', ['a c d e f', 'b c'])).toBeCloseTo(expected, 12);
    expect(expected).toBeCloseTo(0.879807692, 8);
  });

  test('identical captions score 1; disjoint ones 0; the corpus score is the mean over images', () => {
    expect(rougeL('a dog on a mat', ['a dog on a mat'])).toBe(1);
    expect(rougeL('a dog', ['the cat'])).toBe(0);
    const r = computeRougeL([['a dog on a mat'], ['the cat']], ['a dog on a mat', 'a dog']);
    expect(r.perImage).toEqual([1, 0]);
    expect(r.score).toBe(0.5);
  });

  test('degenerate: an empty caption is one empty word, as with Python split(" ")', () => {
    expect(rougeL('', ['a b'])).toBe(0);
    expect(rougeL('', [''])).toBe(1);
    expect(rougeL('a', [''])).toBe(0);
  });
});

describe('CIDEr-D (hand-worked)', () => {
  test('two images whose n-grams each occur in one image: every weight is log 2', () => {
    // Image 1: candidate "a b" vs refs "a b" (unigrams 2L^2/(sqrt2 L)^2 = 1, bigram 1) and "a c"
    // (unigram "a" only: 1/2); orders 3 and 4 have zero norms and contribute 0. Sums per order
    // [1.5, 1, 0, 0], mean 0.625, over 2 references 0.3125, times 10 = 3.125. Image 2 is the same.
    const r = computeCiderD([['a b', 'a c'], ['d e', 'd f']], ['a b', 'd e']);
    expect(r.perImage[0]).toBeCloseTo(3.125, 12);
    expect(r.perImage[1]).toBeCloseTo(3.125, 12);
    expect(r.score).toBeCloseTo(3.125, 12);
  });

  test('n-grams only in the candidate keep the full idf; the Gaussian length penalty uses bigram counts', () => {
    // Image 1: candidate "a b c" vs reference "a b". All weights are log 2 (c, "b c", "a b c" have
    // document frequency 0, counted as 1). Unigrams: 2L^2 / (sqrt3 L * sqrt2 L) = 2/sqrt6;
    // bigrams: L^2 / (sqrt2 L * L) = 1/sqrt2; trigrams: the reference norm is 0, so 0.
    // Lengths are bigram counts, 2 and 1: penalty exp(-1/72). Image 2 scores (1 + 1) / 4 * 10 = 5.
    const r = computeCiderD([['a b'], ['d e']], ['a b c', 'd e']);
    const image1 = (10 * (2 / Math.sqrt(6) + 1 / Math.sqrt(2)) * Math.exp(-1 / 72)) / 4;
    expect(r.perImage[0]).toBeCloseTo(image1, 12);
    expect(r.perImage[1]).toBeCloseTo(5, 12);
    expect(r.score).toBeCloseTo((image1 + 5) / 2, 12);
  });

  test('document frequency is over the evaluated images only', () => {
    // The same candidate and references score differently when a third image shares their words.
    const alone = computeCiderD([['a b', 'a c'], ['d e', 'd f']], ['a b', 'd e']).perImage[0];
    const shared = computeCiderD([['a b', 'a c'], ['d e', 'd f'], ['a b x']], ['a b', 'd e', 'a b x']).perImage[0];
    expect(shared).not.toBeCloseTo(alone, 3);
  });

  test('degenerate: one image scores 0 (log 1 = 0); empty candidates score 0, never NaN', () => {
    expect(computeCiderD([['a b c']], ['a b c']).score).toBe(0);
    const r = computeCiderD([['a b'], ['c d']], ['', 'c d']);
    expect(r.perImage[0]).toBe(0);
    expect(Number.isNaN(r.score)).toBe(false);
    expect(computeCiderD([[''], ['']], ['', '']).score).toBe(0);
  });
});

describe('Python and NumPy details', () => {
  test('pySplit splits on Unicode whitespace like Python str.split()', () => {
    expect(pySplit('')).toEqual([]);
    expect(pySplit('  a  b ')).toEqual(['a', 'b']);
    expect(pySplit('22\u00a03\\/4 x')).toEqual(['22', '3\\/4', 'x']);
    expect(pySplit('a\u3000b\u2009c')).toEqual(['a', 'b', 'c']);
  });

  test('npMean sums pairwise like NumPy', () => {
    expect(npMean([1, 2, 3, 4])).toBe(2.5);
    expect(Number.isNaN(npMean([]))).toBe(true);
    // np.mean(np.full(1000, 0.1)) is 0.10000000000000002; adding one by one gives 0.09999999999999859.
    const xs = new Array<number>(1000).fill(0.1);
    expect(npMean(xs)).toBe(0.10000000000000002);
  });
});

describe('nlg-eval published scores (its scorers are coco-caption\'s)', () => {
  // nlg-eval's test suite: compute_individual_metrics(ref, hyp) on untokenized strings,
  // checked with assertAlmostEqual(places=5).
  const close5 = (a: number, b: number) => expect(Math.abs(a - b)).toBeLessThan(5e-6);

  test('"this is a good test" against two references', () => {
    const refs = [['this is a test', 'this is also a test']];
    const hyps = ['this is a good test'];
    const b = computeBleu(refs, hyps).scores;
    close5(b[0], 0.799999);
    close5(b[1], 0.632455);
    close5(b[2], 0.5108729);
    close5(b[3], 0.0000903602);
    close5(computeRougeL(refs, hyps).score, 0.9070631);
    close5(computeCiderD(refs, hyps).score, 0.0);
  });

  test('non-ASCII words', () => {
    const refs = [['Test en fran\u00e7ais.', 'Le test en fran\u00e7ais.']];
    const hyps = ['Le test est en fran\u00e7ais.'];
    const b = computeBleu(refs, hyps).scores;
    close5(b[0], 0.799999);
    close5(b[1], 0.632455);
    close5(b[2], 0.0000051);
    close5(b[3], 0);
    close5(computeRougeL(refs, hyps).score, 0.9070631);
    close5(computeCiderD(refs, hyps).score, 0.0);
    const j = [['\u30c6\u30b9\u30c8']];
    close5(computeBleu(j, ['\u30c6\u30b9\u30c8']).scores[0], 0.99999999);
    close5(computeRougeL(j, ['\u30c6\u30b9\u30c8']).score, 1.0);
    close5(computeCiderD(j, ['\u30c6\u30b9\u30c8']).score, 0.0);
  });
});

describe('nlg-eval README example (examples/hyp.txt, ref1.txt, ref2.txt)', () => {
  // The README prints, for `nlg-eval --hypothesis=examples/hyp.txt --references=examples/ref1.txt
  // --references=examples/ref2.txt`:
  //   Bleu_1: 0.550000  Bleu_2: 0.428174  Bleu_3: 0.284043  Bleu_4: 0.201143
  //   ROUGE_L: 0.522104  CIDEr: 1.242192  (METEOR: 0.295797 needs the METEOR jar)
  const lines = (name: string) => fs.readFileSync(path.join(__dirname, 'fixtures', 'evaluate', 'nlg-eval', name), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '');
  const hyp = lines('hyp.txt');
  const ref1 = lines('ref1.txt');
  const ref2 = lines('ref2.txt');
  const expected = { Bleu_1: '0.550000', Bleu_2: '0.428174', Bleu_3: '0.284043', Bleu_4: '0.201143', ROUGE_L: '0.522104', CIDEr: '1.242192' };

  test('the scorers reproduce the printed scores to the printed precision', () => {
    expect(hyp.length).toBe(2);
    const refs = hyp.map((_h, i) => [ref1[i], ref2[i]]);
    const b = computeBleu(refs, hyp);
    expect({
      Bleu_1: b.scores[0].toFixed(6),
      Bleu_2: b.scores[1].toFixed(6),
      Bleu_3: b.scores[2].toFixed(6),
      Bleu_4: b.scores[3].toFixed(6),
      ROUGE_L: computeRougeL(refs, hyp).score.toFixed(6),
      CIDEr: computeCiderD(refs, hyp).score.toFixed(6),
    }).toEqual(expected);
    expect(b.stats).toEqual({ testlen: 20, reflen: 16, guess: [20, 18, 16, 14], correct: [11, 6, 2, 1] });
  });

  test('so does the full evaluation, whose tokenizer leaves these plain lowercase sentences as they are', () => {
    const refs = new Map(hyp.map((_h, i) => [i, [ref1[i], ref2[i]]]));
    const ev = evaluateCaptionsSync(refs, hyp.map((caption, image_id) => ({ image_id, caption })), { keepTokenized: true });
    expect(ev.tokenized!.candidates).toEqual(hyp);
    const m = ev.metrics;
    expect({
      Bleu_1: m.Bleu_1.toFixed(6), Bleu_2: m.Bleu_2.toFixed(6), Bleu_3: m.Bleu_3.toFixed(6), Bleu_4: m.Bleu_4.toFixed(6),
      ROUGE_L: m.ROUGE_L.toFixed(6), CIDEr: m.CIDEr.toFixed(6),
    }).toEqual(expected);
  });
});
