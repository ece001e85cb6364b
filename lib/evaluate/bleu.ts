/**
 * BLEU as coco-caption computes it (its `bleu_scorer.py`): corpus-level modified n-gram precision
 * with clipped counts, the reference length closest to each hypothesis (ties go to the shorter
 * reference), one brevity penalty over the corpus, and two small constants that keep the
 * arithmetic finite when a count is zero.
 */
import { countWords, IdArray, NgramIndex } from './ngrams';

/** Added to the matched n-gram counts (so a zero count still gives a positive precision). */
export const BLEU_TINY = 1e-15;
/** Added to the candidate n-gram counts (so an empty candidate does not divide by zero). */
export const BLEU_SMALL = 1e-9;

/**
 * The counts behind a BLEU score, as the toolkit prints them: total candidate length, total
 * effective reference length, and per n-gram order the candidate n-grams (`guess`) and the clipped
 * matches (`correct`).
 */
export interface BleuStats {
  testlen: number;
  reflen: number;
  guess: number[];
  correct: number[];
}

export interface BleuResult {
  /** Bleu_1 .. Bleu_n over the corpus. */
  scores: number[];
  stats: BleuStats;
  /** `testlen / reflen` as the toolkit prints it (with its small constants). */
  ratio: number;
  /** Per image, Bleu_1 .. Bleu_n of that image scored on its own (the corpus formula over its counts). */
  perImage: number[][];
}

/** Bleu_1 .. Bleu_n from accumulated counts, exactly as the toolkit's `compute_score` does it. */
export function bleuFromStats(stats: BleuStats): { scores: number[]; ratio: number } {
  const n = stats.guess.length;
  if (stats.correct.length !== n) throw new Error(`BLEU statistics: guess has ${n} orders, correct has ${stats.correct.length}`);
  const ratio = (stats.testlen + BLEU_TINY) / (stats.reflen + BLEU_SMALL);
  const scores: number[] = [];
  let product = 1;
  for (let k = 0; k < n; k++) {
    product *= (stats.correct[k] + BLEU_TINY) / (stats.guess[k] + BLEU_SMALL);
    let b = Math.pow(product, 1 / (k + 1));
    if (ratio < 1) b *= Math.exp(1 - 1 / ratio);
    scores.push(b);
  }
  return { scores, ratio };
}

/**
 * BLEU over a corpus: `refs[i]` are the tokenized references of image i, `hyps[i]` its tokenized
 * candidate. Captions are split into words with Python's `str.split()`, as the toolkit does.
 */
export function computeBleu(refs: readonly (readonly string[])[], hyps: readonly string[], n = 4): BleuResult {
  if (refs.length !== hyps.length) throw new Error(`BLEU: ${refs.length} reference sets for ${hyps.length} candidates`);
  const total: BleuStats = { testlen: 0, reflen: 0, guess: new Array<number>(n).fill(0), correct: new Array<number>(n).fill(0) };
  const perImage: number[][] = [];
  const index = new NgramIndex(n, countWords(refs.flat()) + countWords(hyps));
  // Per n-gram id, its largest count in any reference of the current image (reset after each image).
  const maxCounts = new IdArray(new Int32Array(0), (size) => new Int32Array(size));
  const touched: number[] = [];
  for (let i = 0; i < hyps.length; i++) {
    const imageRefs = refs[i];
    if (imageRefs.length === 0) throw new Error(`BLEU: image ${i} has no references`);
    const refLens: number[] = [];
    for (const r of imageRefs) {
      const g = index.countCaption(r);
      refLens.push(g.length);
      const mc = maxCounts.at(index.count);
      for (let j = 0; j < g.ids.length; j++) {
        const id = g.ids[j];
        if (g.counts[j] > mc[id]) {
          if (mc[id] === 0) touched.push(id);
          mc[id] = g.counts[j];
        }
      }
    }
    const h = index.countCaption(hyps[i]);
    const mc = maxCounts.at(index.count);
    const testlen = h.length;
    // 'closest' effective reference length: smallest |len - testlen|, then the shorter length.
    let reflen = refLens[0];
    for (const l of refLens) {
      const d = Math.abs(l - testlen);
      const bd = Math.abs(reflen - testlen);
      if (d < bd || (d === bd && l < reflen)) reflen = l;
    }
    const one: BleuStats = { testlen, reflen, guess: [], correct: new Array<number>(n).fill(0) };
    for (let k = 0; k < n; k++) {
      one.guess.push(Math.max(0, testlen - k));
      for (let j = h.start[k]; j < h.start[k + 1]; j++) one.correct[k] += Math.min(mc[h.ids[j]], h.counts[j]);
    }
    for (const id of touched) mc[id] = 0;
    touched.length = 0;
    total.testlen += testlen;
    total.reflen += reflen;
    for (let k = 0; k < n; k++) {
      total.guess[k] += one.guess[k];
      total.correct[k] += one.correct[k];
    }
    perImage.push(bleuFromStats(one).scores);
  }
  const { scores, ratio } = bleuFromStats(total);
  return { scores, stats: total, ratio, perImage };
}
