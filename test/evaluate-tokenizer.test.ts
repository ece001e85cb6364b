/**
 * The caption tokenizer: Stanford PTBTokenizer rules as coco-caption runs them
 * (`-preserveLines -lowerCase`), then the toolkit's punctuation filter.
 */
import * as fs from 'fs';
import * as path from 'path';
import {
  DROPPED_PUNCTUATION, americanize, ptbTokenLines, ptbTokens, tokenizeCaption, tokenizeCaptions,
} from '../lib/evaluate';

const fixture = (name: string): any => JSON.parse(fs.readFileSync(path.join(__dirname, 'fixtures/evaluate', name), 'utf8'));

describe('PTB lexer, rule by rule', () => {
  test.each([
    // Contractions: the clitic is its own token; n't splits before the n.
    ["It's a dog's life, isn't it?", ['It', "'s", 'a', 'dog', "'s", 'life', ',', 'is', "n't", 'it', '?']],
    ["Don't, can't, won't, I'm, you're, they've, we'll, he'd", ['Do', "n't", ',', 'ca', "n't", ',', 'wo', "n't", ',', 'I', "'m", ',', 'you', "'re", ',', 'they', "'ve", ',', 'we', "'ll", ',', 'he', "'d"]],
    // "cannot" is split into can + not.
    ['He cannot swim', ['He', 'can', 'not', 'swim']],
    // Double quotes become LaTeX quotes: `` before a word, '' otherwise; single quotes likewise.
    ['a "Run for Rights" sign', ['a', '``', 'Run', 'for', 'Rights', "''", 'sign']],
    ["the 'best' pie", ['the', '`', 'best', "'", 'pie']],
    ['\u201ccurly\u201d \u2018single\u2019', ['``', 'curly', "''", '`', 'single', "'"]],
    // Brackets are escaped.
    ['(a) [b] {c} < d >', ['-LRB-', 'a', '-RRB-', '-LRB-', 'b', '-RRB-', '-LCB-', 'c', '-RCB-', '-LRB-', 'd', '-RRB-']],
    // Something that looks like an SGML tag is one token.
    ['a <b>bold</b> word', ['a', '<b>', 'bold', '</b>', 'word']],
    // Hyphenated words stay whole; a free-standing hyphen is a token; 3-4 hyphens are "--".
    ['a close-up of a black-and-white T-shirt', ['a', 'close-up', 'of', 'a', 'black-and-white', 'T-shirt']],
    ['old- fashioned - yes -- no --- maybe ----- end', ['old', '-', 'fashioned', '-', 'yes', '--', 'no', '--', 'maybe', '-----', 'end']],
    ['an em\u2014dash and en\u2013dash', ['an', 'em', '--', 'dash', 'and', 'en', '--', 'dash']],
    // Slashes and asterisks are escaped with a backslash; a/b words stay one token.
    ['tub/shower and/or 50/50 * end/', ['tub\\/shower', 'and\\/or', '50\\/50', '\\*', 'end', '\\/']],
    // Numbers: decimals, times, dates stay whole; a whole number and a fraction join with a no-break space.
    ['At 5:54pm on 11.01.2009 for 3.5 or 22 3/4 and 1,000', ['At', '5:54', 'pm', 'on', '11.01.2009', 'for', '3.5', 'or', '22\u00a03\\/4', 'and', '1,000']],
    ['the 1950s, 8th ave, B-25 and P-51', ['the', '1950s', ',', '8th', 'ave', ',', 'B-25', 'and', 'P-51']],
    ['\u00bd cup, \u00bc and \u2154', ['1\\/2', 'cup', ',', '1\\/4', 'and', '\u2154']],
    // Ellipses become "...", two dots are two periods.
    ['wait... what.. ok \u2026 . . .', ['wait', '...', 'what', '.', '.', 'ok', '...', '...']],
    // Abbreviations keep their period; a sentence-final one also yields a period token.
    ['Mr. Smith saw a T.V. on 8th ave. and a.k.a. Ph.D. students', ['Mr.', 'Smith', 'saw', 'a', 'T.V.', 'on', '8th', 'ave.', 'and', 'a.k.a.', 'Ph.D.', 'students']],
    // Longest match counts trailing context: at a line end, `Ph.` followed by any two characters
    // (rule ABBREV1/[^][^], 5 characters) ties with `Ph.D.` (5) and wins by coming first.
    ['a Ph.D.', ['a', 'Ph.', 'D.']],
    ['near Fort York Blvd.', ['near', 'Fort', 'York', 'Blvd.', '.']],
    // A period glued between words is split off.
    ['the ground.A man', ['the', 'ground', '.', 'A', 'man']],
    // British spellings are americanized, case-sensitively, only in plain words.
    ['grey Grey colourful centre travelling grey-haired', ['gray', 'Grey', 'colorful', 'center', 'traveling', 'grey-haired']],
    // Currency and symbols.
    ['$5 \u00a33 \u20ac4 10% a & b #41', ['$', '5', '#', '3', '$', '4', '10', '%', 'a', '&', 'b', '#', '41']],
    // Entities.
    ['AT&amp;T &quot;hi&quot; &nbsp;x', ['AT&T', '``', 'hi', "''", 'x']],
    // Letters outside ASCII are word characters; a lone combining mark stays in its word.
    ['caf\u00e9 na\u00efve cafe\u0301 \u30c6\u30b9\u30c8 \u0395\u03bb\u03bb\u03ac\u03b4\u03b1', ['caf\u00e9', 'na\u00efve', 'cafe\u0301', '\u30c6\u30b9\u30c8', '\u0395\u03bb\u03bb\u03ac\u03b4\u03b1']],
    // Characters outside the Basic Multilingual Plane (emoji) are untokenizable and deleted.
    ['a dog \u{1f600} smiling', ['a', 'dog', 'smiling']],
    // URLs and e-mail addresses are single tokens (slashes escaped).
    ['see www.google.com or http://x.org/a*b or foo@bar.com', ['see', 'www.google.com', 'or', 'http:\\/\\/x.org\\/a\\*b', 'or', 'foo@bar.com']],
  ])('%j', (caption, expected) => {
    expect(ptbTokens(caption)).toEqual(expected);
  });

  test('a line-final acronym is one token, but three at the very end of the input', () => {
    expect(ptbTokens('a U.S.A', 'next line')).toEqual(['a', 'U.S.A']);
    expect(ptbTokens('a U.S.A', null)).toEqual(['a', 'U.S.', 'A']);
  });

  test('an abbreviation before a line starting with a listed word also yields a period token', () => {
    expect(ptbTokens('a flat screen T.V. ', 'A dog sleeps')).toEqual(['a', 'flat', 'screen', 'T.V.', '.']);
    expect(ptbTokens('a flat screen T.V. ', 'dog sleeps')).toEqual(['a', 'flat', 'screen', 'T.V.']);
  });

  test('newlines and other line breaks inside a caption are spaces', () => {
    expect(ptbTokens('a dog\non a\r\nmat\u2028now')).toEqual(['a', 'dog', 'on', 'a', 'mat', 'now']);
  });
});

describe('coco-caption tokenization', () => {
  test('lowercases, then drops exactly the punctuation tokens the toolkit lists', () => {
    expect([...DROPPED_PUNCTUATION].sort()).toEqual(
      ["''", "'", '``', '`', '-LRB-', '-RRB-', '-LCB-', '-RCB-', '.', '?', '!', ',', ':', '-', '--', '...', ';'].sort(),
    );
    expect(tokenizeCaption('A Man, riding a Horse!')).toBe('a man riding a horse');
    // Brackets are lowercased to -lrb-/-rrb- before the filter compares them with -LRB-/-RRB-,
    // so they survive, as in the toolkit.
    expect(tokenizeCaption('2 people (a tall person) standing')).toBe('2 people -lrb- a tall person -rrb- standing');
    expect(tokenizeCaption("A man's dog isn't grey.")).toBe("a man 's dog is n't gray");
    expect(tokenizeCaption('Hmm... a dog -- on a mat; ok?')).toBe('hmm a dog on a mat ok');
    expect(tokenizeCaption('a ----- b')).toBe('a ----- b');
  });

  test('degenerate captions', () => {
    expect(tokenizeCaption('')).toBe('');
    expect(tokenizeCaption('   ')).toBe('');
    expect(tokenizeCaption('...')).toBe('');
    expect(tokenizeCaption(' . , ; : ! ? " \' ` -- - ')).toBe('');
    expect(tokenizeCaption('\u{1f600}\u{1f600}')).toBe('');
  });

  test('a batch is one tokenizer run: only the last caption ends the input', () => {
    expect(tokenizeCaptions(['a U.S.A', 'the U.S.A'])).toEqual(['a u.s.a', 'the u.s. a']);
    expect(tokenizeCaptions([])).toEqual([]);
    expect(ptbTokenLines(['', 'a', ''])).toEqual([[], ['a'], []]);
  });
});

describe('americanize', () => {
  test.each([
    ['grey', 'gray'], ['Grey', 'Grey'], ['colour', 'color'], ['colours', 'colors'], ['neighbour', 'neighbor'],
    ['detour', 'detour'], ['contours', 'contours'], ['glamour', 'glamour'], ['hour', 'hour'], ['flour', 'flour'],
    ['programme', 'program'], ['anaemia', 'anemia'], ['haematology', 'hematology'], ['haemoglobin', 'haemoglobin'],
    ['leukaemia', 'leukemia'], ['tea', 'tea'], ['august', 'August'], ['may', 'may'],
  ])('%s -> %s', (word, expected) => {
    expect(americanize(word)).toBe(expected);
  });
});

describe('agreement with a scanner generated from the Stanford grammar', () => {
  // Expected tokens come from a scanner generated by JFlex from the PTBLexer grammar of the
  // CoreNLP 3.x tokenizer, driven like `PTBTokenizer -preserveLines` (see the fixture files).
  test('synthetic batch of hard cases, raw tokens and tokenized', () => {
    const f = fixture('ptb-oracle-synthetic.json');
    const lines = ptbTokenLines(f.captions);
    const mismatches = f.captions.filter((_c: string, i: number) => lines[i].join(' ') !== f.raw[i].join(' '));
    expect(mismatches).toEqual([]);
    expect(tokenizeCaptions(f.captions)).toEqual(f.tokenized);
    expect(f.captions.length).toBeGreaterThan(800);
  });

  test('COCO val2017 captions that need more than lowercasing and splitting off periods', () => {
    const f = fixture('ptb-oracle-val2017.json');
    for (const l of f.lines) {
      expect([l.caption, ptbTokens(l.caption, l.next)]).toEqual([l.caption, l.raw]);
      expect([l.caption, tokenizeCaption(l.caption, l.next)]).toEqual([l.caption, l.tokenized]);
    }
    expect(f.lines.length).toBeGreaterThan(700);
  });
});
