/**
 * ROUGE-L as coco-caption computes it (its `rouge.py`): for each image, the longest common
 * subsequence between the candidate and each reference gives a precision and a recall; the best
 * precision and the best recall (possibly from different references) are combined into an
 * F-measure with beta = 1.2, and the corpus score is the mean over images.
 *
 * Captions are split on single spaces (Python's `split(" ")`), so an empty caption is one empty
 * word: it scores 0 against non-empty references and 1 against an empty one, as in the toolkit.
 */
import { npMean } from './numeric';

export const ROUGE_BETA = 1.2;

export interface RougeResult {
  score: number;
  perImage: number[];
}

/** Length of the longest common subsequence of two word sequences (given as interned ids). */
function lcsLength(a: Int32Array, b: Int32Array, row: Int32Array): number {
  // Keep the shorter sequence along the row.
  const [long, short] = a.length >= b.length ? [a, b] : [b, a];
  const m = short.length;
  row.fill(0, 0, m + 1);
  for (let i = 1; i <= long.length; i++) {
    let diag = 0; // row[j-1] of the previous line
    const x = long[i - 1];
    for (let j = 1; j <= m; j++) {
      const up = row[j];
      row[j] = x === short[j - 1] ? diag + 1 : (up > row[j - 1] ? up : row[j - 1]);
      diag = up;
    }
  }
  return row[m];
}

/** ROUGE-L of one candidate against its references (all already tokenized). */
export function rougeL(candidate: string, references: readonly string[], beta = ROUGE_BETA): number {
  return computeRougeL([references], [candidate], beta).perImage[0];
}

/** ROUGE-L over a corpus: `refs[i]` are the tokenized references of image i, `hyps[i]` its candidate. */
export function computeRougeL(refs: readonly (readonly string[])[], hyps: readonly string[], beta = ROUGE_BETA): RougeResult {
  if (refs.length !== hyps.length) throw new Error(`ROUGE-L: ${refs.length} reference sets for ${hyps.length} candidates`);
  const ids = new Map<string, number>();
  const intern = (s: string): Int32Array => {
    const words = s.split(' ');
    const out = new Int32Array(words.length);
    for (let i = 0; i < words.length; i++) {
      let id = ids.get(words[i]);
      if (id === undefined) {
        id = ids.size;
        ids.set(words[i], id);
      }
      out[i] = id;
    }
    return out;
  };
  let row = new Int32Array(64);
  const perImage = new Float64Array(hyps.length);
  const b2 = beta * beta;
  for (let i = 0; i < hyps.length; i++) {
    if (refs[i].length === 0) throw new Error(`ROUGE-L: image ${i} has no references`);
    const cand = intern(hyps[i]);
    let precMax = 0;
    let recMax = 0;
    for (const r of refs[i]) {
      const ref = intern(r);
      if (row.length <= Math.min(ref.length, cand.length)) row = new Int32Array(2 * Math.min(ref.length, cand.length) + 1);
      const lcs = lcsLength(ref, cand, row);
      const prec = lcs / cand.length;
      const rec = lcs / ref.length;
      if (prec > precMax) precMax = prec;
      if (rec > recMax) recMax = rec;
    }
    perImage[i] = precMax !== 0 && recMax !== 0 ? ((1 + b2) * precMax * recMax) / (recMax + b2 * precMax) : 0;
  }
  return { score: npMean(perImage), perImage: Array.from(perImage) };
}
