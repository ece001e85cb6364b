/**
 * NumPy's mean, reproduced so that the coco-caption scores agree to the last bits (Python's string
 * methods are in util/python.ts).
 */

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
