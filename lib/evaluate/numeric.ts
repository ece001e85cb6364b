/**
 * Small pieces of Python and NumPy behaviour the coco-caption scorers depend on, reproduced so the
 * scores agree to the last bits where that is cheap.
 */

/** Characters Python 3's `str.split()` splits on. */
const PY_WHITESPACE = /[\t\n\u000b\u000c\r\u001c-\u001f \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/;

/**
 * Python 3 `s.split()`: splits on runs of Unicode whitespace and drops empty pieces. The scorers
 * split tokenized captions this way (BLEU and CIDEr-D); ROUGE-L splits on single spaces instead.
 */
const PY_WHITESPACE_NOT_SPACE = /[\t\n\u000b\u000c\r\u001c-\u001f\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/;

export function pySplit(s: string): string[] {
  if (s.length === 0) return [];
  if (!PY_WHITESPACE_NOT_SPACE.test(s)) {
    // Only plain spaces: the common case of a tokenized caption.
    const parts = s.split(' ');
    return parts.indexOf('') < 0 ? parts : parts.filter((p) => p !== '');
  }
  const parts = s.split(PY_WHITESPACE);
  if (parts[0] === '') parts.shift();
  if (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
  return parts;
}

const PY_TRAILING_WHITESPACE = /[\t\n\u000b\u000c\r\u001c-\u001f \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/;

/** Python 3 `s.rstrip()`. */
export function pyRstrip(s: string): string {
  return s.replace(PY_TRAILING_WHITESPACE, '');
}

/** NumPy's pairwise summation of float64 values (what `np.sum` and `np.mean` use on a 1-D array). */
function pairwiseSum(a: ArrayLike<number>, start: number, n: number): number {
  if (n < 8) {
    let res = 0;
    for (let i = 0; i < n; i++) res += a[start + i];
    return res;
  }
  if (n <= 128) {
    const r = [a[start], a[start + 1], a[start + 2], a[start + 3], a[start + 4], a[start + 5], a[start + 6], a[start + 7]];
    let i = 8;
    for (; i < n - (n % 8); i += 8) {
      for (let j = 0; j < 8; j++) r[j] += a[start + i + j];
    }
    let res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; i++) res += a[start + i];
    return res;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return pairwiseSum(a, start, n2) + pairwiseSum(a, start + n2, n - n2);
}

/** `np.mean` of a 1-D float64 array; NaN for an empty one, as NumPy gives. */
export function npMean(a: ArrayLike<number>): number {
  if (a.length === 0) return NaN;
  return pairwiseSum(a, 0, a.length) / a.length;
}
