/**
 * The caption vocabulary, built as the book builds it: every caption is lower-cased and tokenized
 * with `word_tokenize` (see `text/tokenizer.ts`), tokens are counted over all captions, and those
 * seen at least `threshold` times (4 in the book) get ids after the four special tokens
 * `<pad>`=0, `<start>`=1, `<end>`=2, `<unk>`=3, in the order in which they first appear. Built from
 * the same captions file, the ids equal those of the book's `vocabulary.pkl` and so match its
 * checkpoints.
 *
 * Stored as JSON: `{"format":"torchcap-vocabulary","version":1,"threshold":4,"words":[...],
 * "counts":[...]}` (index = id). `load` also accepts a plain JSON array of words.
 */
import * as fs from 'fs';
import * as path from 'path';
import { wordTokenize } from '../text/tokenizer';
import { writeFileAtomicSync } from '../util/files';
import { describe } from '../util/checks';

export const PAD = 0;
export const START = 1;
export const END = 2;
export const UNK = 3;

/** The special tokens, at their ids. */
export const SPECIAL_TOKENS: readonly string[] = Object.freeze(['<pad>', '<start>', '<end>', '<unk>']);

export const VOCABULARY_FORMAT = 'torchcap-vocabulary';
export const VOCABULARY_VERSION = 1;

/** The book's threshold: words seen fewer times than this map to `<unk>`. */
export const DEFAULT_THRESHOLD = 4;

/** The JSON form of a vocabulary. */
export interface VocabularyJSON {
  format: typeof VOCABULARY_FORMAT;
  version: typeof VOCABULARY_VERSION;
  /** The threshold it was built with, or null when it was made from a word list. */
  threshold: number | null;
  words: string[];
  /** Occurrences of each word in the captions it was built from (0 for the specials). */
  counts: number[];
}

export interface BuildOptions {
  /** Keep words seen at least this many times (a positive integer; default 4). */
  threshold?: number;
}

/** A vocabulary file or word list that cannot be used; the message names the source and the problem. */
export class VocabularyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VocabularyError';
  }
}

/** Lower-cases and tokenizes a caption as the book does before counting or encoding it. */
export function tokenizeCaption(caption: string): string[] {
  return wordTokenize(String(caption).toLowerCase());
}

export class Vocabulary {
  /** The words; a word's index is its id. */
  readonly words: readonly string[];
  /** Occurrences of each word in the captions it was built from (0 for the specials and when unknown). */
  readonly counts: readonly number[];
  /** The threshold it was built with, or null when it was made from a word list. */
  readonly threshold: number | null;
  private readonly ids: Map<string, number>;

  private constructor(words: string[], counts: number[], threshold: number | null, ids: Map<string, number>) {
    this.words = Object.freeze(words);
    this.counts = Object.freeze(counts);
    this.threshold = threshold;
    this.ids = ids;
  }

  /**
   * Builds the vocabulary from captions in their file order, as the book does: count the tokens of
   * every lower-cased caption, keep those seen at least `threshold` times in order of first
   * appearance.
   */
  static build(captions: Iterable<string>, opts: BuildOptions = {}): Vocabulary {
    const threshold = opts.threshold ?? DEFAULT_THRESHOLD;
    if (!Number.isInteger(threshold) || threshold < 1) {
      throw new VocabularyError(`Vocabulary threshold must be a positive integer, got ${describe(threshold)}`);
    }
    const counter = new Map<string, number>();
    let n = 0;
    for (const caption of captions) {
      if (typeof caption !== 'string') {
        throw new VocabularyError(`Caption ${n} is ${describe(caption)}, not a string`);
      }
      for (const tok of tokenizeCaption(caption)) counter.set(tok, (counter.get(tok) ?? 0) + 1);
      n++;
    }
    const words = [...SPECIAL_TOKENS];
    const counts = [0, 0, 0, 0];
    for (const [word, count] of counter) {
      if (count < threshold || SPECIAL_TOKENS.includes(word)) continue;
      words.push(word);
      counts.push(count);
    }
    return Vocabulary.create(words, counts, threshold, 'built vocabulary');
  }

  /**
   * Makes a vocabulary from its word list (index = id), e.g. the list read from the book's
   * `vocabulary.pkl`. The first four words must be `<pad>`, `<start>`, `<end>`, `<unk>`.
   */
  static fromWords(words: readonly string[], counts?: readonly number[], threshold: number | null = null): Vocabulary {
    return Vocabulary.create(words, counts, threshold, 'word list');
  }

  /** Makes a vocabulary from its JSON form (a torchcap vocabulary object or a plain array of words). */
  static fromJSON(json: unknown, source = 'vocabulary JSON'): Vocabulary {
    if (Array.isArray(json)) return Vocabulary.create(json, undefined, null, source);
    if (json === null || typeof json !== 'object') {
      throw new VocabularyError(`${source}: expected a torchcap vocabulary object or an array of words, got ${describe(json)}`);
    }
    const o = json as Record<string, unknown>;
    if (o.format === undefined) {
      const coco = Array.isArray(o.annotations) ? ' (it looks like a COCO captions file)' : '';
      throw new VocabularyError(`${source}: not a torchcap vocabulary${coco}: it has no "format" field (expected {"format": "${VOCABULARY_FORMAT}", ...} or an array of words)`);
    }
    if (o.format !== VOCABULARY_FORMAT) {
      throw new VocabularyError(`${source}: "format" is ${describe(o.format)}, expected "${VOCABULARY_FORMAT}"`);
    }
    if (o.version !== VOCABULARY_VERSION) {
      throw new VocabularyError(`${source}: unsupported version ${describe(o.version)} (this torchcap reads version ${VOCABULARY_VERSION})`);
    }
    if (!Array.isArray(o.words)) throw new VocabularyError(`${source}: "words" is ${describe(o.words)}, expected an array of strings`);
    if (o.counts !== undefined && !Array.isArray(o.counts)) {
      throw new VocabularyError(`${source}: "counts" is ${describe(o.counts)}, expected an array of non-negative integers`);
    }
    const threshold = o.threshold ?? null;
    if (threshold !== null && !(Number.isInteger(threshold) && (threshold as number) >= 1)) {
      throw new VocabularyError(`${source}: "threshold" is ${describe(threshold)}, expected a positive integer or null`);
    }
    return Vocabulary.create(o.words, o.counts as unknown[] | undefined, threshold as number | null, source);
  }

  /** Reads a vocabulary file: torchcap vocabulary JSON, or a JSON array of words. */
  static load(file: string): Vocabulary {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code === 'ENOENT') throw new VocabularyError(`Vocabulary file not found: ${file}`);
      if (err.code === 'EISDIR') throw new VocabularyError(`Vocabulary path is a directory, not a file: ${file}`);
      throw new VocabularyError(`Cannot read vocabulary file ${file}: ${err.message}`);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new VocabularyError(`Vocabulary file ${file} is not valid JSON: ${(e as Error).message}`);
    }
    return Vocabulary.fromJSON(json, `Vocabulary file ${file}`);
  }

  private static create(words: readonly unknown[], counts: readonly unknown[] | undefined, threshold: number | null, source: string): Vocabulary {
    if (words.length < SPECIAL_TOKENS.length) {
      throw new VocabularyError(`${source}: has ${words.length} words; a vocabulary starts with ${SPECIAL_TOKENS.join(', ')}`);
    }
    const ids = new Map<string, number>();
    const list: string[] = new Array<string>(words.length);
    for (let i = 0; i < words.length; i++) {
      const w = words[i];
      if (typeof w !== 'string') throw new VocabularyError(`${source}: word ${i} is ${describe(w)}, not a string`);
      if (w === '') throw new VocabularyError(`${source}: word ${i} is empty`);
      if (i < SPECIAL_TOKENS.length && w !== SPECIAL_TOKENS[i]) {
        throw new VocabularyError(`${source}: word ${i} is ${JSON.stringify(w)}, expected ${JSON.stringify(SPECIAL_TOKENS[i])} (the first four must be ${SPECIAL_TOKENS.join(', ')})`);
      }
      const seen = ids.get(w);
      if (seen !== undefined) throw new VocabularyError(`${source}: word ${JSON.stringify(w)} appears twice, at ids ${seen} and ${i}`);
      ids.set(w, i);
      list[i] = w;
    }
    let countList: number[];
    if (counts === undefined) {
      countList = new Array<number>(words.length).fill(0);
    } else {
      if (counts.length !== words.length) {
        throw new VocabularyError(`${source}: ${counts.length} counts for ${words.length} words`);
      }
      countList = counts.map((c, i) => {
        if (typeof c !== 'number' || !Number.isInteger(c) || c < 0) {
          throw new VocabularyError(`${source}: count ${i} (${JSON.stringify(list[i])}) is ${describe(c)}, not a non-negative integer`);
        }
        return c;
      });
    }
    return new Vocabulary(list, countList, threshold, ids);
  }

  /** Number of words, specials included. */
  get size(): number {
    return this.words.length;
  }

  /** Whether the word has an id of its own. */
  has(word: string): boolean {
    return this.ids.has(word);
  }

  /** The word's id, or `UNK` (3) for a word not in the vocabulary. */
  id(word: string): number {
    return this.ids.get(word) ?? UNK;
  }

  /** The word with this id. Throws a RangeError for an id outside 0..size-1. */
  word(id: number | bigint): string {
    const i = Number(id);
    if (!Number.isInteger(i) || i < 0 || i >= this.words.length) {
      throw new RangeError(`Vocabulary id ${String(id)} is out of range 0..${this.words.length - 1}`);
    }
    return this.words[i];
  }

  /** Occurrences of the word when the vocabulary was built (0 when not in the vocabulary). */
  count(word: string): number {
    const i = this.ids.get(word);
    return i === undefined ? 0 : this.counts[i];
  }

  /** Ids of tokens, unknown ones as `UNK`, without `<start>`/`<end>`. */
  encodeTokens(tokens: Iterable<string>): number[] {
    const out: number[] = [];
    for (const t of tokens) out.push(this.id(t));
    return out;
  }

  /** The book's caption encoding: `[<start>, ids of word_tokenize(caption.lower()), <end>]`. */
  encode(caption: string): number[] {
    return [START, ...this.encodeTokens(tokenizeCaption(caption)), END];
  }

  /**
   * Words of a sequence of ids, as the book prints a sampled caption: stops at the first `<end>`
   * and leaves out `<start>` and `<pad>` (`<unk>` stays).
   */
  decode(ids: Iterable<number | bigint>): string[] {
    const out: string[] = [];
    for (const id of ids) {
      const w = this.word(id);
      const i = Number(id);
      if (i === END) break;
      if (i === START || i === PAD) continue;
      out.push(w);
    }
    return out;
  }

  toJSON(): VocabularyJSON {
    return {
      format: VOCABULARY_FORMAT,
      version: VOCABULARY_VERSION,
      threshold: this.threshold,
      words: [...this.words],
      counts: [...this.counts],
    };
  }

  /** Writes the vocabulary as JSON, atomically (a temporary file in the same folder, then a rename). */
  save(file: string): void {
    if (file.endsWith('.pkl')) {
      throw new VocabularyError(`torchcap writes vocabularies as JSON, not as the book's pickle: name the file .json, not ${path.basename(file)}`);
    }
    const dir = path.dirname(path.resolve(file));
    try {
      fs.mkdirSync(dir, { recursive: true });
    } catch (e) {
      throw new VocabularyError(`Cannot create folder ${dir} for vocabulary file ${file}: ${(e as Error).message}`);
    }
    try {
      writeFileAtomicSync(file, `${JSON.stringify(this.toJSON())}\n`);
    } catch (e) {
      throw new VocabularyError(`Cannot write vocabulary file ${file}: ${(e as Error).message}`);
    }
  }
}
