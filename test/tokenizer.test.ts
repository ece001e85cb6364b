/**
 * The tokenizer against NLTK: always against the committed fixtures (made by NLTK with
 * scripts/fixtures/make-tokenizer-fixtures.py), and live against /usr/bin/python3's NLTK over every
 * caption of the shared data when both are present.
 *
 * About the live oracle for sentence splitting: nltk.word_tokenize needs nltk_data's pretrained
 * English Punkt model, which Debian's python3-nltk does not ship. The oracle script therefore runs
 * NLTK's own PunktSentenceTokenizer and nltk.word_tokenize with the English model's parameters as
 * lib/text/punkt-english.ts restates them (without the model's orthographic table). Equality below
 * shows that torchcap computes what NLTK computes with those parameters; the summary lists the places
 * in the data where the missing table could make the real model decide otherwise.
 */
import * as fs from 'fs';
import * as path from 'path';
import { sentenceSplit, treebankTokenize, wordTokenize } from '../lib/text/tokenizer';
import { PUNKT_ENGLISH } from '../lib/text/punkt-english';
import * as pc from '../lib/text/pyclasses';
import { NO_SHARED_DATA, sharedData, sharedDataPresent } from './support/data';
import { PYTHON, pythonHas, runPython } from './support/python';
import { describeIf, testIf } from './support/skip';
import { firstIsLower, firstIsUpper, pyRstrip, pySplit } from '../lib/util/python';

const FIXTURES = path.join(__dirname, 'fixtures', 'tokenizer');
const SCRIPT = path.resolve(__dirname, '..', 'scripts', 'fixtures', 'make-tokenizer-fixtures.py');

type SampleRow = [source: string, index: number, text: string, treebank: string, words: string, sentences?: string[]];
interface HardCase {
  text: string;
  treebank: string;
  sentences: string[];
  words: string;
}

const readJSON = <T>(name: string): T => JSON.parse(fs.readFileSync(path.join(FIXTURES, name), 'utf8')) as T;
const joined = (tokens: string[]): string => tokens.join(' ');

function readCoco(file: string): string[] {
  const json = JSON.parse(fs.readFileSync(file, 'utf8')) as { annotations: { caption: unknown }[] };
  return json.annotations.map((a) => String(a.caption));
}

function readFlickr(file: string): string[] {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line, i) => {
      const m = /^([^#\s]+)#(\d+)\s([\s\S]*)$/.exec(line);
      if (!m) throw new Error(`${file}:${i + 1}: not IMAGE#N<TAB>caption`);
      return m[3];
    });
}

describe('treebankTokenize (NLTKWordTokenizer)', () => {
  test('splits punctuation, clitics and quotes as the Treebank rules do', () => {
    expect(treebankTokenize('a dog. a cat.')).toEqual(['a', 'dog.', 'a', 'cat', '.']);
    expect(treebankTokenize('he said "hi" there')).toEqual(['he', 'said', '``', 'hi', "''", 'there']);
    expect(treebankTokenize('"start')).toEqual(['``', 'start']);
    expect(treebankTokenize("the man's dog isn't here, they're gone")).toEqual([
      'the', 'man', "'s", 'dog', 'is', "n't", 'here', ',', 'they', "'re", 'gone',
    ]);
    expect(treebankTokenize('cannot gonna wanna play')).toEqual(['can', 'not', 'gon', 'na', 'wan', 'na', 'play']);
    expect(treebankTokenize('3,000 people at 10:30, ok: fine')).toEqual(['3,000', 'people', 'at', '10:30', ',', 'ok', ':', 'fine']);
    expect(treebankTokenize('(a) [b] {c} <d>')).toEqual(['(', 'a', ')', '[', 'b', ']', '{', 'c', '}', '<', 'd', '>']);
    expect(treebankTokenize('wait... what?! a--b')).toEqual(['wait', '...', 'what', '?', '!', 'a', '--', 'b']);
    expect(treebankTokenize('the end."')).toEqual(['the', 'end', '.', "''"]);
    expect(treebankTokenize('')).toEqual([]);
  });

  test('splits on Python whitespace, not JavaScript whitespace', () => {
    // U+0085 and U+001C are whitespace to Python's str.split(); U+FEFF is not.
    expect(treebankTokenize('a\u0085b\u001cc\ufeffd')).toEqual(['a', 'b', 'c\ufeffd']);
    expect(pySplit('  a \t b\n')).toEqual(['a', 'b']);
    expect(pySplit('   ')).toEqual([]);
  });
});

describe('sentenceSplit (Punkt, English parameters)', () => {
  test('breaks after sentence-final periods and keeps known abbreviations', () => {
    expect(sentenceSplit('a dog. a cat.')).toEqual(['a dog.', 'a cat.']);
    expect(sentenceSplit('a bus on st. louis street. it is red.')).toEqual(['a bus on st. louis street.', 'it is red.']);
    expect(sentenceSplit('mr. smith and dr. jones')).toEqual(['mr. smith and dr. jones']);
    expect(sentenceSplit('a t.v. on a stand')).toEqual(['a t.v.', 'on a stand']);
    expect(sentenceSplit('is that a dog? yes! it is.')).toEqual(['is that a dog?', 'yes!', 'it is.']);
    expect(sentenceSplit('a sign that says "stop." next')).toEqual(['a sign that says "stop."', 'next']);
    expect(sentenceSplit('a man riding a horse.  ')).toEqual(['a man riding a horse.']);
    expect(sentenceSplit('')).toEqual([]);
    expect(sentenceSplit(' \n ')).toEqual([]);
  });

  test('an initial or a number before a lower-case word does not end a sentence', () => {
    expect(sentenceSplit('a man wearing an orange u. miami t-shirt')).toEqual(['a man wearing an orange u. miami t-shirt']);
    expect(sentenceSplit('aged 3. he plays')).toEqual(['aged 3. he plays']);
    expect(sentenceSplit('aged 3. "he plays"')).toEqual(['aged 3.', '"he plays"']);
  });

  test('uses the English parameters unless given others', () => {
    const none = { abbrevTypes: [], collocations: [], sentStarters: [], orthoContext: {} };
    expect(sentenceSplit('mr. smith went home. then')).toEqual(['mr. smith went home.', 'then']);
    expect(sentenceSplit('mr. smith went home. then', none)).toEqual(['mr.', 'smith went home.', 'then']);
    expect(PUNKT_ENGLISH.abbrevTypes).toContain('st');
  });
});

describe('wordTokenize (word_tokenize)', () => {
  test('splits sentences first, so every sentence loses its final period', () => {
    expect(wordTokenize('a dog. a cat.')).toEqual(['a', 'dog', '.', 'a', 'cat', '.']);
    expect(wordTokenize('mr. smith on st. louis street.')).toEqual(['mr.', 'smith', 'on', 'st.', 'louis', 'street', '.']);
    expect(wordTokenize('a t.v. on a stand')).toEqual(['a', 't.v', '.', 'on', 'a', 'stand']);
  });
});

describe('against the NLTK fixtures', () => {
  const sample = readJSON<{ rows: SampleRow[] }>('captions-sample.json');
  const hard = readJSON<{ cases: HardCase[] }>('hard-cases.json');

  test(`${sample.rows.length} real captions: treebank, sentences and word tokens equal NLTK's`, () => {
    const bad: string[] = [];
    let split = 0;
    for (const [source, index, text, treebank, words, sentences] of sample.rows) {
      const lower = text.toLowerCase();
      const expectedSentences = sentences ?? [pyRstrip(lower)];
      if (expectedSentences.length > 1) split++;
      if (joined(treebankTokenize(text)) !== treebank) bad.push(`${source}#${index} treebank: ${JSON.stringify(text)}`);
      if (joined(wordTokenize(lower)) !== words) bad.push(`${source}#${index} words: ${JSON.stringify(text)}`);
      if (JSON.stringify(sentenceSplit(lower)) !== JSON.stringify(expectedSentences)) {
        bad.push(`${source}#${index} sentences: ${JSON.stringify(text)}`);
      }
    }
    expect(bad).toEqual([]);
    expect(split).toBeGreaterThan(10); // the sample includes the captions that split
  });

  test(`${hard.cases.length} hand-picked hard cases equal NLTK's`, () => {
    for (const c of hard.cases) {
      expect({ text: c.text, treebank: joined(treebankTokenize(c.text)) }).toEqual({ text: c.text, treebank: c.treebank });
      expect({ text: c.text, sentences: sentenceSplit(c.text) }).toEqual({ text: c.text, sentences: c.sentences });
      expect({ text: c.text, words: joined(wordTokenize(c.text)) }).toEqual({ text: c.text, words: c.words });
    }
  });
});

const havePython = pythonHas('nltk');
const haveData = sharedDataPresent && fs.existsSync(sharedData('coco-captions-val2017.json')) && fs.existsSync(sharedData('flickr8k', 'Flickr8k.token.txt'));

interface OracleResult {
  treebank: string[];
  sentences: string[];
  words: string[];
}

/** NLTK's results for each text; `fields` limits the work to what a test compares. */
function oracle(texts: string[], fields = 'treebank,sentences,words'): OracleResult[] {
  const argv = JSON.stringify([SCRIPT, '--oracle', '--fields', fields]);
  const script = `import runpy, sys\nsys.argv = ${argv}\nrunpy.run_path(sys.argv[0], run_name='__main__')\n`;
  const out = JSON.parse(runPython(script, [], JSON.stringify(texts))) as OracleResult[];
  if (out.length !== texts.length) throw new Error(`oracle returned ${out.length} results for ${texts.length} texts`);
  return out;
}

const same = (a: string[], b: string[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

describeIf(havePython && haveData, !havePython ? `${PYTHON} cannot import nltk` : NO_SHARED_DATA, 'live: every real caption against NLTK', () => {
  let coco: string[] = [];
  let flickr: string[] = [];
  let all: string[] = [];
  let lower: string[] = [];
  let ref: OracleResult[] = [];
  let refLower: OracleResult[] = [];

  beforeAll(() => {
    coco = readCoco(sharedData('coco-captions-val2017.json'));
    flickr = readFlickr(sharedData('flickr8k', 'Flickr8k.token.txt'));
    all = [...coco, ...flickr];
    lower = all.map((c) => c.toLowerCase());
    ref = oracle(all, 'treebank');
    refLower = oracle(lower);
  }, 600000);

  test('the data has the documented sizes', () => {
    expect(coco.length).toBe(25014);
    expect(flickr.length).toBe(40460);
  });

  test('word_tokenize(caption.lower()): tokens equal NLTK on all 65,474 captions', () => {
    const t0 = process.hrtime.bigint();
    const mine = lower.map(wordTokenize);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;

    const differ: string[] = [];
    const splitChanges: string[] = [];
    mine.forEach((toks, i) => {
      if (!same(toks, refLower[i].words)) differ.push(JSON.stringify(all[i]));
      if (!same(refLower[i].words, refLower[i].treebank)) splitChanges.push(JSON.stringify(lower[i]));
    });

    // Where the real English model could decide otherwise: a single letter or a number that is
    // not an abbreviation, then a period, then a lower-case word (see lib/text/punkt-english.ts).
    const abbrevs = new Set(PUNKT_ENGLISH.abbrevTypes);
    const uncertain: string[] = [];
    for (const text of lower) {
      const toks = pySplit(text).map((t) => t.replace(/^[)";}\]*:@'({[?!]+/u, ''));
      for (let i = 0; i + 1 < toks.length; i++) {
        const m = /^(?:(\p{L})|-?[.,]?\d[\d,.-]*)\.$/u.exec(toks[i]);
        if (m && !(m[1] && abbrevs.has(m[1])) && /^\p{Ll}/u.test(toks[i + 1])) uncertain.push(`${toks[i]} ${toks[i + 1]}`);
      }
    }
    // eslint-disable-next-line no-console
    console.log(
      [
        `word_tokenize over ${all.length} lower-cased captions (${coco.length} COCO val2017 + ${flickr.length} Flickr8k):`,
        `  tokens differing from NLTK: ${differ.length}${differ.length ? `: ${differ.slice(0, 10).join(' | ')}` : ''}`,
        `  torchcap time: ${ms.toFixed(0)} ms for all captions (${((ms * 1000) / all.length).toFixed(1)} us each)`,
        `  captions whose tokens sentence splitting changes: ${splitChanges.length}; e.g. ${splitChanges.slice(0, 4).join(' | ')}`,
        `  contexts decided without the model's orthographic table: ${uncertain.length} (${uncertain.join(', ')})`,
        '  (sentence oracle: NLTK PunktSentenceTokenizer with the English parameters of lib/text/punkt-english.ts)',
      ].join('\n'),
    );
    expect(differ).toEqual([]);
    expect(splitChanges.length).toBeGreaterThan(0);
    expect(ms).toBeLessThan(10000);
  });

  test('NLTKWordTokenizer on the original captions: tokens equal on all of them', () => {
    const differ = all.filter((c, i) => !same(treebankTokenize(c), ref[i].treebank));
    expect(differ).toEqual([]);
  });

  test('Punkt sentences of the lower-cased captions equal on all of them', () => {
    const differ = all.filter((c, i) => !same(sentenceSplit(lower[i]), refLower[i].sentences));
    expect(differ).toEqual([]);
  });
});

/** Deterministic pseudo-random texts built from the pieces that the rules react to. */
function fuzzTexts(n: number, seed: number): string[] {
  let s = seed >>> 0;
  const rnd = (k: number): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return Math.floor((s / 2 ** 32) * k);
  };
  const pieces = [
    'a', 'dog', 'The', 'Mr', 'st', 'u', 'i', 'w', '3', '42', '1,000', '3.5', '.', '.', '..', '...', '?', '!', ',', ':', ';',
    '"', "'", "''", '``', '`', '(', ')', '[', ']', '{', '}', '<', '>', '-', '--', '*', '#', '@', '$', '%', '&',
    '«', '»', '“', '”', '‘', '’', '„', "n't", "N'T", "'s", "'S", "'re", "'ll", "'m", "'d", 'cannot', 'Gonna', 'wanna',
    'gimme', "'tis", "'Twas", 'lemme', "more'n", "d'ye", 'gotta', ' ', ' ', ' ', ' ', '  ', '\n', '\t', '\r', '\u00a0',
    '\u2028', '\u0085', '\u001c', '\ufeff', 'é', 'ß', 'ǅ', 'Ω', '\u0663', '\u00b2', '_', 'U.S.', 'p.m.', 'e.g.', 'No.',
    'Jr.', 'A.', 'b.', '—', '2.', 'business', 'However',
  ];
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    let t = '';
    for (let j = 1 + rnd(16); j > 0; j--) t += pieces[rnd(pieces.length)];
    out.push(t);
  }
  return out;
}

testIf(havePython, `${PYTHON} cannot import nltk`, 'live: 20,000 random texts of tricky pieces equal NLTK (treebank, sentences, words)', () => {
  const texts = fuzzTexts(20000, 2017);
  const ref = oracle(texts);
  const bad: string[] = [];
  texts.forEach((t, i) => {
    if (!same(treebankTokenize(t), ref[i].treebank)) bad.push(`treebank ${JSON.stringify(t)}`);
    if (!same(sentenceSplit(t), ref[i].sentences)) bad.push(`sentences ${JSON.stringify(t)}`);
    if (!same(wordTokenize(t), ref[i].words)) bad.push(`words ${JSON.stringify(t)}`);
  });
  expect(bad.slice(0, 20)).toEqual([]);
}, 600000);

testIf(havePython, `${PYTHON} cannot import nltk`, "live: Python-compatible character classes agree with Python's re on every assigned code point", () => {
  // Python reports, for each class, the code points it contains, plus the code points its Unicode
  // version leaves unassigned (JavaScript's newer tables may classify those differently).
  const script = [
    'import json, re, sys, unicodedata',
    'cls = {"s": [], "w": [], "d": [], "wnd": [], "upper": [], "lower": [], "unassigned": []}',
    'for c in range(0x110000):',
    '    ch = chr(c)',
    '    if unicodedata.category(ch) == "Cn": cls["unassigned"].append(c)',
    '    if re.match(r"\\s", ch): cls["s"].append(c)',
    '    if re.match(r"\\w", ch): cls["w"].append(c)',
    '    if re.match(r"\\d", ch): cls["d"].append(c)',
    '    if re.match(r"[^\\W\\d]", ch): cls["wnd"].append(c)',
    '    if ch.isupper(): cls["upper"].append(c)',
    '    if ch.islower(): cls["lower"].append(c)',
    'cls["unicode"] = unicodedata.unidata_version',
    'json.dump(cls, sys.stdout)',
  ].join('\n');
  const py = JSON.parse(runPython(script)) as Record<string, number[]> & { unicode: string };
  const unassigned = new Set(py.unassigned);
  const classes: [string, (ch: string) => boolean][] = [
    ['s', (ch) => new RegExp(`^${pc.S}$`, 'u').test(ch)],
    ['w', (ch) => new RegExp(`^${pc.W}$`, 'u').test(ch)],
    ['d', (ch) => new RegExp(`^${pc.D}$`, 'u').test(ch)],
    ['wnd', (ch) => new RegExp(`^${pc.W_NOT_DIGIT}$`, 'u').test(ch)],
    ['upper', (ch) => firstIsUpper(ch)],
    ['lower', (ch) => firstIsLower(ch)],
  ];
  // Characters whose case properties later Unicode versions changed: U+0295 stopped being
  // lower case; the modifier letters U+10FC, U+A7F2..U+A7F4 and U+AB69 became lower case.
  const changedSince = new Set([0x295, 0x10fc, 0xa7f2, 0xa7f3, 0xa7f4, 0xab69]);
  const report: string[] = [];
  for (const [name, test] of classes) {
    const expected = new Set(py[name]);
    const diff: string[] = [];
    for (let c = 0; c < 0x110000; c++) {
      if (c >= 0xd800 && c <= 0xdfff) continue; // lone surrogates are not text
      if (unassigned.has(c) || changedSince.has(c)) continue;
      if (test(String.fromCodePoint(c)) !== expected.has(c)) diff.push(c.toString(16));
    }
    if (diff.length) report.push(`${name}: ${diff.length} code points differ, e.g. ${diff.slice(0, 10).join(' ')}`);
  }
  expect(report).toEqual([]);
}, 600000);
