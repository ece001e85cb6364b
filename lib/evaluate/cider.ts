/**
 * CIDEr-D as coco-caption computes it (its `cider_scorer.py`, reported as "CIDEr"):
 *
 * - n-grams of orders 1..4; each is weighted by term frequency times
 *   `log(number of images) - log(max(1, document frequency))`, where the document frequency of an
 *   n-gram is the number of evaluated images whose references contain it;
 * - per order, the similarity of the candidate to a reference is the sum over the candidate's
 *   n-grams of `min(candidate weight, reference weight) * reference weight` (the clipping),
 *   divided by the product of the two vector norms (left undivided when a norm is 0, which only
 *   happens when the sum is 0 too);
 * - each similarity is multiplied by the Gaussian length penalty `exp(-delta^2 / (2 sigma^2))`
 *   with sigma = 6. The toolkit measures length as the number of bigrams (it counts the terms of
 *   order index 1), so `delta` is the difference in bigram counts; kept as is;
 * - the image score is the mean over orders of the similarities summed over references, divided
 *   by the number of references, times 10; the corpus score is the mean over images.
 *
 * Document frequencies come from the references of the images being evaluated, so the same
 * candidate can score differently in a different set of images, and a single image scores 0
 * (`log(1) = 0`), exactly as in the toolkit.
 */
import { type CaptionNgrams, countWords, NgramIndex } from './ngrams';
import { npMean } from './numeric';

export interface CiderOptions {
  /** Highest n-gram order (4). */
  n?: number;
  /** Standard deviation of the Gaussian length penalty (6). */
  sigma?: number;
}

export interface CiderResult {
  score: number;
  perImage: number[];
}

interface TfIdf {
  /** Weight of each n-gram of the caption, aligned with its `CaptionNgrams.ids`. */
  weights: Float64Array;
  norm: Float64Array;
  /** Bigram count: what the toolkit uses as the caption length. */
  length: number;
}

/** `idf[id]`: `log(number of images) - log(max(1, document frequency))`, the weight of one occurrence. */
function toTfIdf(g: CaptionNgrams, idf: Float64Array, n: number): TfIdf {
  const weights = new Float64Array(g.ids.length);
  const norm = new Float64Array(n);
  let length = 0;
  for (let k = 0; k < n; k++) {
    let sq = 0;
    for (let j = g.start[k]; j < g.start[k + 1]; j++) {
      const w = g.counts[j] * idf[g.ids[j]];
      weights[j] = w;
      sq += w * w;
      if (k === 1) length += g.counts[j];
    }
    norm[k] = Math.sqrt(sq);
  }
  return { weights, norm, length };
}

/**
 * CIDEr-D over a corpus: `refs[i]` are the tokenized references of image i, `hyps[i]` its tokenized
 * candidate.
 */
export function computeCiderD(refs: readonly (readonly string[])[], hyps: readonly string[], opts: CiderOptions = {}): CiderResult {
  const n = opts.n ?? 4;
  const sigma = opts.sigma ?? 6;
  if (refs.length !== hyps.length) throw new Error(`CIDEr-D: ${refs.length} reference sets for ${hyps.length} candidates`);
  const index = new NgramIndex(n, countWords(refs.flat()) + countWords(hyps));
  const refGrams = refs.map((rs, i) => {
    if (rs.length === 0) throw new Error(`CIDEr-D: image ${i} has no references`);
    return rs.map((r) => index.countCaption(r));
  });
  const hypGrams = hyps.map((h) => index.countCaption(h));
  // Document frequency: in how many images' reference sets each n-gram occurs.
  const df = new Int32Array(index.count);
  const lastImage = new Int32Array(index.count);
  refGrams.forEach((imageRefs, i) => {
    for (const g of imageRefs) {
      for (const id of g.ids) {
        if (lastImage[id] !== i + 1) {
          lastImage[id] = i + 1;
          df[id]++;
        }
      }
    }
  });
  const logImages = Math.log(refs.length);
  const idf = new Float64Array(index.count);
  for (let id = 0; id < idf.length; id++) idf[id] = logImages - Math.log(Math.max(1, df[id]));
  const twoSigma2 = 2 * sigma * sigma;
  const perImage = new Float64Array(hyps.length);
  const sums = new Float64Array(n);
  // Per n-gram id, its weight in the reference being compared (0 elsewhere).
  const refWeight = new Float64Array(index.count);
  for (let i = 0; i < hyps.length; i++) {
    const cg = hypGrams[i];
    const cand = toTfIdf(cg, idf, n);
    sums.fill(0);
    for (const rg of refGrams[i]) {
      const ref = toTfIdf(rg, idf, n);
      for (let j = 0; j < rg.ids.length; j++) refWeight[rg.ids[j]] = ref.weights[j];
      const delta = cand.length - ref.length;
      const penalty = Math.pow(Math.E, -(delta * delta) / twoSigma2);
      for (let k = 0; k < n; k++) {
        let val = 0;
        for (let j = cg.start[k]; j < cg.start[k + 1]; j++) {
          const r = refWeight[cg.ids[j]];
          val += Math.min(cand.weights[j], r) * r;
        }
        if (cand.norm[k] !== 0 && ref.norm[k] !== 0) val /= cand.norm[k] * ref.norm[k];
        sums[k] += val * penalty;
      }
      for (let j = 0; j < rg.ids.length; j++) refWeight[rg.ids[j]] = 0;
    }
    perImage[i] = (npMean(sums) / refGrams[i].length) * 10;
  }
  return { score: npMean(perImage), perImage: Array.from(perImage) };
}
