/**
 * The vocabulary: the book's construction (threshold, special ids, first-appearance order) checked
 * against vocabularies that the book's algorithm built in Python with NLTK
 * (scripts/fixtures/make-tokenizer-fixtures.py), encoding and decoding, and the JSON file format.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { END, PAD, SPECIAL_TOKENS, START, UNK, Vocabulary, VocabularyError, tokenizeCaption } from '../lib/vocabulary/vocabulary';
import { NO_SHARED_DATA, sharedData, sharedDataPresent } from './support/data';
import { describeIf } from './support/skip';

const FIXTURES = path.join(__dirname, 'fixtures', 'tokenizer');

interface VocabFixture {
  threshold: number;
  captions: number;
  distinctTokens: number;
  words: string[];
  counts: number[];
}

const readJSON = <T>(name: string): T => JSON.parse(fs.readFileSync(path.join(FIXTURES, name), 'utf8')) as T;

function readCoco(file: string): string[] {
  const json = JSON.parse(fs.readFileSync(file, 'utf8')) as { annotations: { caption: unknown }[] };
  return json.annotations.map((a) => String(a.caption));
}

let tmp = '';
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torchcap-vocab-'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('Vocabulary.build (the book\'s algorithm)', () => {
  test('specials take ids 0..3, then words in order of first appearance', () => {
    expect([PAD, START, END, UNK]).toEqual([0, 1, 2, 3]);
    const v = Vocabulary.build(['A dog runs.', 'The dog sleeps.', 'a cat runs'], { threshold: 1 });
    expect(v.words).toEqual(['<pad>', '<start>', '<end>', '<unk>', 'a', 'dog', 'runs', '.', 'the', 'sleeps', 'cat']);
    expect(v.counts).toEqual([0, 0, 0, 0, 2, 2, 2, 2, 1, 1, 1]);
    expect(v.size).toBe(11);
    expect(v.threshold).toBe(1);
  });

  test('keeps exactly the words seen at least `threshold` times, in first-appearance order', () => {
    const caps = ['x y z', 'y z w', 'z w', 'w q'];
    // counts: x 1, y 2, z 3, w 3, q 1 ; first appearance: x y z w q
    expect(Vocabulary.build(caps, { threshold: 2 }).words.slice(4)).toEqual(['y', 'z', 'w']);
    expect(Vocabulary.build(caps, { threshold: 3 }).words.slice(4)).toEqual(['z', 'w']);
    expect(Vocabulary.build(caps, { threshold: 4 }).words.slice(4)).toEqual([]);
    expect(Vocabulary.build(caps).threshold).toBe(4);
  });

  test('lower-cases and tokenizes with word_tokenize before counting', () => {
    expect(tokenizeCaption('A Dog. The CAT\'s bowl.')).toEqual(['a', 'dog', '.', 'the', 'cat', "'s", 'bowl', '.']);
    const v = Vocabulary.build(['Dog.', 'dog', 'DOG .'], { threshold: 3 });
    expect(v.words.slice(4)).toEqual(['dog']);
    expect(v.count('dog')).toBe(3);
    expect(v.count('.')).toBe(0);
  });

  test('rejects a threshold that is not a positive integer, and non-string captions', () => {
    expect(() => Vocabulary.build(['a'], { threshold: 0 })).toThrow(/threshold must be a positive integer, got number 0/);
    expect(() => Vocabulary.build(['a'], { threshold: 2.5 })).toThrow(VocabularyError);
    expect(() => Vocabulary.build(['a', 5 as unknown as string])).toThrow(/Caption 1 is number 5, not a string/);
  });

  test('equals the vocabulary that NLTK and the book\'s Counter build from the committed sample', () => {
    const fx = readJSON<VocabFixture>('vocab-sample-t4.json');
    const rows = readJSON<{ rows: [string, number, string][] }>('captions-sample.json').rows;
    expect(rows.length).toBe(fx.captions);
    const v = Vocabulary.build(rows.map((r) => r[2]), { threshold: fx.threshold });
    expect(v.words).toEqual(fx.words);
    expect(v.counts).toEqual(fx.counts);
    expect(v.size).toBeGreaterThan(100);
  });
});

describeIf(sharedDataPresent, NO_SHARED_DATA, 'Vocabulary.build on the real COCO captions files', () => {
  test.each([
    ['coco-val2017-mini/captions.json', 'vocab-mini-t4.json'],
    ['coco-val2017-mini/captions.json', 'vocab-mini-t1.json'],
    ['coco-captions-val2017.json', 'vocab-val2017-t4.json'],
  ])('%s -> %s: same words, ids and counts as the book\'s algorithm in NLTK', (file, fixture) => {
    const fx = readJSON<VocabFixture>(fixture);
    const captions = readCoco(sharedData(file));
    expect(captions.length).toBe(fx.captions);
    const t0 = process.hrtime.bigint();
    const v = Vocabulary.build(captions, { threshold: fx.threshold });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    expect(v.words).toEqual(fx.words);
    expect(v.counts).toEqual(fx.counts);
    // eslint-disable-next-line no-console
    console.log(`${file} at threshold ${fx.threshold}: ${v.size} words (${fx.distinctTokens} distinct tokens), built in ${ms.toFixed(0)} ms`);
  });
});

describe('encode and decode', () => {
  const v = Vocabulary.fromWords(['<pad>', '<start>', '<end>', '<unk>', 'a', 'dog', 'on', 'the', 'bench', '.']);

  test('encode is [<start>, ids of the lower-cased tokens, <end>]; unknown words are <unk>', () => {
    expect(v.encode('A dog on the bench.')).toEqual([START, 4, 5, 6, 7, 8, 9, END]);
    expect(v.encode('A cat on the sofa.')).toEqual([START, 4, UNK, 6, 7, UNK, 9, END]);
    expect(v.encode('')).toEqual([START, END]);
    expect(v.encodeTokens(['dog', 'zebra'])).toEqual([5, UNK]);
    expect(v.id('zebra')).toBe(UNK);
    expect(v.has('zebra')).toBe(false);
    expect(v.id('<end>')).toBe(END);
  });

  test('decode stops at <end>, drops <start> and <pad>, keeps <unk>', () => {
    expect(v.decode([START, 4, 5, UNK, 9, END, 7, 8])).toEqual(['a', 'dog', '<unk>', '.']);
    expect(v.decode([START, 4, PAD, 5])).toEqual(['a', 'dog']);
    expect(v.decode([4n, 5n, 2n, 6n])).toEqual(['a', 'dog']);
    expect(v.decode(new Int32Array([1, 8, 2]))).toEqual(['bench']);
    expect(v.decode([])).toEqual([]);
  });

  test('decode(encode(c)) gives the caption\'s tokens when every word is known', () => {
    const caption = 'The dog on a bench.';
    expect(v.decode(v.encode(caption))).toEqual(tokenizeCaption(caption));
  });

  test('word(id) names bad ids', () => {
    expect(v.word(5)).toBe('dog');
    expect(() => v.word(10)).toThrow(/id 10 is out of range 0..9/);
    expect(() => v.word(-1)).toThrow(RangeError);
    expect(() => v.word(1.5)).toThrow(RangeError);
    expect(() => v.decode([1, 99])).toThrow(/id 99 is out of range/);
  });
});

describe('fromWords validation', () => {
  test('accepts a word list whose first four are the specials; counts default to 0', () => {
    const v = Vocabulary.fromWords([...SPECIAL_TOKENS, 'a', 'b']);
    expect(v.counts).toEqual([0, 0, 0, 0, 0, 0]);
    expect(v.threshold).toBeNull();
    expect(Vocabulary.fromWords([...SPECIAL_TOKENS, 'a'], [0, 0, 0, 0, 7]).count('a')).toBe(7);
  });

  test('rejects lists that cannot be the book\'s vocabulary', () => {
    expect(() => Vocabulary.fromWords(['<pad>', '<start>'])).toThrow(/has 2 words; a vocabulary starts with <pad>, <start>, <end>, <unk>/);
    expect(() => Vocabulary.fromWords(['<pad>', '<start>', '<unk>', '<end>', 'a'])).toThrow(/word 2 is "<unk>", expected "<end>"/);
    expect(() => Vocabulary.fromWords([...SPECIAL_TOKENS, 'a', 'b', 'a'])).toThrow(/word "a" appears twice, at ids 4 and 6/);
    expect(() => Vocabulary.fromWords([...SPECIAL_TOKENS, 'a', ''])).toThrow(/word 5 is empty/);
    expect(() => Vocabulary.fromWords([...SPECIAL_TOKENS, 'a'], [0, 0, 0, 0])).toThrow(/4 counts for 5 words/);
    expect(() => Vocabulary.fromWords([...SPECIAL_TOKENS, 'a'], [0, 0, 0, 0, -1])).toThrow(/count 4 \("a"\) is number -1/);
  });
});

describe('save and load', () => {
  test('round trip keeps words, counts and threshold; the file is torchcap vocabulary JSON', () => {
    const v = Vocabulary.build(['a dog on a bench', 'a cat on a mat', 'the dog'], { threshold: 2 });
    const file = path.join(tmp, 'nested', 'vocab.json');
    v.save(file);
    const json = JSON.parse(fs.readFileSync(file, 'utf8'));
    expect(json).toEqual({ format: 'torchcap-vocabulary', version: 1, threshold: 2, words: [...v.words], counts: [...v.counts] });
    const back = Vocabulary.load(file);
    expect(back.words).toEqual(v.words);
    expect(back.counts).toEqual(v.counts);
    expect(back.threshold).toBe(2);
    expect(back.encode('a dog on a mat')).toEqual(v.encode('a dog on a mat'));
    // Nothing but the file is left in the folder (the temporary file was renamed).
    expect(fs.readdirSync(path.dirname(file))).toEqual(['vocab.json']);
  });

  test('save replaces an existing file', () => {
    const file = path.join(tmp, 'replace.json');
    fs.writeFileSync(file, 'old');
    Vocabulary.fromWords([...SPECIAL_TOKENS, 'x']).save(file);
    expect(Vocabulary.load(file).words).toEqual([...SPECIAL_TOKENS, 'x']);
  });

  test('load accepts a plain JSON array of words', () => {
    const file = path.join(tmp, 'plain.json');
    fs.writeFileSync(file, JSON.stringify([...SPECIAL_TOKENS, 'a', 'dog']));
    const v = Vocabulary.load(file);
    expect(v.id('dog')).toBe(5);
    expect(v.threshold).toBeNull();
  });

  const bad = (name: string, content: string): string => {
    const file = path.join(tmp, name);
    fs.writeFileSync(file, content);
    return file;
  };

  test('load names the file and the problem', () => {
    const missing = path.join(tmp, 'missing.json');
    expect(() => Vocabulary.load(missing)).toThrow(`Vocabulary file not found: ${missing}`);
    expect(() => Vocabulary.load(tmp)).toThrow(`Vocabulary path is a directory, not a file: ${tmp}`);
    let f = bad('broken.json', '{"format": ');
    expect(() => Vocabulary.load(f)).toThrow(new RegExp(`Vocabulary file ${f} is not valid JSON`));
    f = bad('number.json', '42');
    expect(() => Vocabulary.load(f)).toThrow(`Vocabulary file ${f}: expected a torchcap vocabulary object or an array of words, got number 42`);
    f = bad('format.json', JSON.stringify({ format: 'other', version: 1, words: [] }));
    expect(() => Vocabulary.load(f)).toThrow(`Vocabulary file ${f}: "format" is the string "other", expected "torchcap-vocabulary"`);
    f = bad('version.json', JSON.stringify({ format: 'torchcap-vocabulary', version: 2, words: [] }));
    expect(() => Vocabulary.load(f)).toThrow(/unsupported version number 2/);
    f = bad('words.json', JSON.stringify({ format: 'torchcap-vocabulary', version: 1, words: 'a b' }));
    expect(() => Vocabulary.load(f)).toThrow(`Vocabulary file ${f}: "words" is the string "a b", expected an array of strings`);
    f = bad('counts.json', JSON.stringify({ format: 'torchcap-vocabulary', version: 1, words: [...SPECIAL_TOKENS], counts: {} }));
    expect(() => Vocabulary.load(f)).toThrow(/"counts" is an object, expected an array/);
    f = bad('threshold.json', JSON.stringify({ format: 'torchcap-vocabulary', version: 1, threshold: 0, words: [...SPECIAL_TOKENS] }));
    expect(() => Vocabulary.load(f)).toThrow(/"threshold" is number 0, expected a positive integer or null/);
    f = bad('specials.json', JSON.stringify(['a', '<start>', '<end>', '<unk>']));
    expect(() => Vocabulary.load(f)).toThrow(`Vocabulary file ${f}: word 0 is "a", expected "<pad>" (the first four must be <pad>, <start>, <end>, <unk>)`);
    f = bad('nonstring.json', JSON.stringify([...SPECIAL_TOKENS, 7]));
    expect(() => Vocabulary.load(f)).toThrow(`Vocabulary file ${f}: word 4 is number 7, not a string`);
    f = bad('dup.json', JSON.stringify([...SPECIAL_TOKENS, 'a', '<pad>']));
    expect(() => Vocabulary.load(f)).toThrow(/word "<pad>" appears twice, at ids 0 and 5/);
  });

  test('save names the file when it cannot write', () => {
    const blocker = bad('blocker', 'x');
    const file = path.join(blocker, 'vocab.json');
    expect(() => Vocabulary.fromWords([...SPECIAL_TOKENS]).save(file)).toThrow(new RegExp(`vocabulary file ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  });
});
