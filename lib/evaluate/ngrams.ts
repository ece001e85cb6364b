import { pySplit } from '../util/python';
/**
 * N-gram counting with integer ids, shared by BLEU and CIDEr-D. Each distinct n-gram of a corpus
 * gets one id; a caption becomes its distinct n-grams with their counts, listed in the order the
 * toolkit's Python dictionaries hold them (all unigrams in order of first occurrence, then all
 * bigrams, ...), so sums over them add up in the same order and give the same floating-point result.
 */

/**
 * The distinct n-grams of one caption: `ids[j]` occurs `counts[j]` times; the n-grams of order k
 * (1-based) are at positions `start[k-1]` to `start[k] - 1`.
 */
export interface CaptionNgrams {
  ids: Int32Array;
  counts: Int32Array;
  start: Int32Array;
  /** Number of words. */
  length: number;
}

/**
 * Open-addressing hash table from (n-gram id, word ordinal) to the id of the n-gram extended by
 * that word. Entries are stored as consecutive triples in one typed array (one cache line per
 * probe) and interning allocates nothing.
 */
class ExtensionTable {
  private table: Int32Array;
  private mask: number;
  private used = 0;

  /** `expected`: roughly how many entries will be stored (sizes the table once, avoiding rehashing). */
  constructor(expected: number) {
    let size = 1 << 12;
    while (size < 2 * expected) size *= 2;
    this.table = new Int32Array(3 * size).fill(-1);
    this.mask = size - 1;
  }

  private static hash(a: number, b: number): number {
    let h = Math.imul(a, 0x9e3779b1) ^ Math.imul(b + 0x7f4a7c15, 0x85ebca6b);
    h ^= h >>> 15;
    h = Math.imul(h, 0x2c1b3c6d);
    h ^= h >>> 12;
    return h;
  }

  /** The value stored for (a, b), or the result of `create()`, stored there now. */
  getOrAdd(a: number, b: number, create: () => number): number {
    const t = this.table;
    let i = ExtensionTable.hash(a, b) & this.mask;
    for (;;) {
      const at = 3 * i;
      const ka = t[at];
      if (ka === -1) break;
      if (ka === a && t[at + 1] === b) return t[at + 2];
      i = (i + 1) & this.mask;
    }
    const v = create();
    const at = 3 * i;
    t[at] = a;
    t[at + 1] = b;
    t[at + 2] = v;
    if (++this.used * 2 > this.mask + 1) this.grow();
    return v;
  }

  private grow(): void {
    const old = this.table;
    const size = 2 * (this.mask + 1);
    this.table = new Int32Array(3 * size).fill(-1);
    this.mask = size - 1;
    const t = this.table;
    for (let j = 0; j < old.length; j += 3) {
      if (old[j] === -1) continue;
      let i = ExtensionTable.hash(old[j], old[j + 1]) & this.mask;
      while (t[3 * i] !== -1) i = (i + 1) & this.mask;
      t[3 * i] = old[j];
      t[3 * i + 1] = old[j + 1];
      t[3 * i + 2] = old[j + 2];
    }
  }
}

/** Words in a list of tokenized captions (an upper bound when they hold other whitespace). */
export function countWords(captions: Iterable<string>): number {
  let words = 0;
  for (const c of captions) {
    if (c.length === 0) continue;
    words++;
    for (let i = 0; i < c.length; i++) if (c.charCodeAt(i) === 32) words++;
  }
  return words;
}

export class NgramIndex {
  /** Word to its ordinal among distinct words. */
  private readonly vocab = new Map<string, number>();
  /** Unigram id of each word ordinal. */
  private readonly unigram: number[] = [];
  private readonly extensions: ExtensionTable;
  private size = 0;
  /** Scratch open-addressing set of (id, position + 1) pairs for the n-grams of one order of one caption. */
  private local = new Int32Array(2 * 64);
  /** Scratch per word position: word ordinals, and ids of the n-grams starting there. */
  private ords = new Int32Array(64);
  private grams = new Int32Array(64);
  private readonly newIdFn = (): number => this.newId();

  /**
   * `n`: the highest order counted. `expectedWords`: roughly how many words all the captions to be
   * counted hold together; it only sizes the tables.
   */
  constructor(readonly n: number, expectedWords = 0) {
    // Most longer n-grams repeat across captions, so half the upper bound is plenty (the table grows if not).
    this.extensions = new ExtensionTable((expectedWords * Math.max(0, n - 1)) / 2);
  }

  /** Number of distinct n-grams seen so far; ids run from 0 to `count - 1`. */
  get count(): number {
    return this.size;
  }

  private newId(): number {
    return this.size++;
  }

  /** Counts the n-grams of orders 1..n of a tokenized caption, split into words as Python's `str.split()` does. */
  countCaption(caption: string): CaptionNgrams {
    const words = pySplit(caption);
    const len = words.length;
    if (this.ords.length < len) {
      this.ords = new Int32Array(2 * len);
      this.grams = new Int32Array(2 * len);
    }
    const ords = this.ords;
    const grams = this.grams;
    for (let i = 0; i < len; i++) {
      let ord = this.vocab.get(words[i]);
      if (ord === undefined) {
        ord = this.vocab.size;
        this.vocab.set(words[i], ord);
        this.unigram.push(this.newId());
      }
      ords[i] = ord;
      grams[i] = this.unigram[ord];
    }
    const ids = new Int32Array(len * this.n);
    const counts = new Int32Array(len * this.n);
    const start = new Int32Array(this.n + 1);
    let used = 0;
    for (let k = 1; k <= this.n; k++) {
      start[k - 1] = used;
      const m = len - k + 1;
      // grams[i] becomes the id of the k-gram starting at word i, built from the (k-1)-gram.
      if (k > 1) {
        for (let i = 0; i < m; i++) grams[i] = this.extensions.getOrAdd(grams[i], ords[i + k - 1], this.newIdFn);
      }
      // Distinct ids in order of first occurrence, with their counts.
      let cap = 64;
      let bits = 6;
      while (cap < 2 * m) {
        cap *= 2;
        bits++;
      }
      if (this.local.length < 2 * cap) this.local = new Int32Array(2 * cap);
      const local = this.local;
      local.fill(0, 0, 2 * cap);
      const mask = cap - 1;
      for (let i = 0; i < m; i++) {
        const id = grams[i];
        let h = Math.imul(id, 0x9e3779b1) >>> (32 - bits);
        for (;;) {
          const at = 2 * h;
          if (local[at + 1] === 0) {
            ids[used] = id;
            counts[used] = 1;
            used++;
            local[at] = id;
            local[at + 1] = used;
            break;
          }
          if (local[at] === id) {
            counts[local[at + 1] - 1]++;
            break;
          }
          h = (h + 1) & mask;
        }
      }
    }
    start[this.n] = used;
    return { ids: ids.subarray(0, used), counts: counts.subarray(0, used), start, length: len };
  }
}

/** A growable typed scratch array indexed by n-gram id. */
export class IdArray<T extends Float64Array | Int32Array> {
  constructor(private data: T, private readonly make: (n: number) => T) {}

  /** The array, grown (zero-filled) to hold at least `size` entries. */
  at(size: number): T {
    if (this.data.length < size) {
      const grown = this.make(Math.max(size, this.data.length * 2));
      grown.set(this.data);
      this.data = grown;
    }
    return this.data;
  }
}
