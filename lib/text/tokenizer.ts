/**
 * Word tokenization as the book does it: `nltk.tokenize.word_tokenize(text)` (NLTK 3.8), which
 * splits `text` into sentences with Punkt (English) and then tokenizes every sentence with
 * `NLTKWordTokenizer`, NLTK's improved Penn Treebank tokenizer.
 *
 * `treebankTokenize` is a rule-for-rule port of `NLTKWordTokenizer.tokenize` (default options:
 * parentheses kept as they are). Each rule is one regular-expression substitution, applied in
 * NLTK's order; the JavaScript expressions use Python-compatible classes for `\s`, `\w`, `\d`,
 * `\b` and `$` (see `pyclasses.ts`). What the rules do:
 * - opening quotes: `"` at the start or after a space or opening bracket becomes two backquotes,
 *   and typographic opening quotes are split off;
 * - punctuation: a sentence's final period, `,` and `:` (not inside numbers such as 3,000 or 10:30),
 *   `;@#$%&?!*`, runs of periods and brackets are split off;
 * - closing quotes: `"` becomes two apostrophes; clitics `'s 'm 'd 'll 're 've n't` are split off;
 * - contractions: cannot, gimme, gonna, gotta, lemme, more'n, wanna, 'tis, 'twas are split in two.
 * Only the final period of a sentence is split off, so "dog. a cat" keeps "dog." unless sentence
 * splitting cuts the text after it: that is why `wordTokenize` splits sentences first.
 */
import { B, D, END, S, W } from './pyclasses';
import { sentenceSplit } from './sentences';
import { pySplit } from '../util/python';

export { sentenceSplit } from './sentences';

type Rule = readonly [RegExp, string];

const rule = (pattern: string, replacement: string, flags = 'gu'): Rule => [new RegExp(pattern, flags), replacement];

/** A group of rules, skipped as a whole when `guard` finds nothing any of its rules could match. */
interface Group {
  readonly guard: RegExp;
  readonly rules: readonly Rule[];
}

const STARTING_QUOTES: Group = {
  guard: /["'`«“‘„]/,
  rules: [
    rule('([«“‘„]|`+)', ' $1 '),
    rule('^"', '``', 'u'),
    rule('(``)', ' $1 '),
    rule('([ (\\[{<])("|\'{2})', '$1 `` '),
    rule(`(')(?!re|ve|ll|m|t|s|d|n)(${W})${B}`, '$1 $2', 'giu'),
  ],
};

/**
 * The final-period rules. A match must end the string with only closing brackets, quotes and
 * whitespace after its period, so its period is the last one in the string: these expressions are
 * sticky and tried at that one place (same result as a search through the whole string, faster).
 */
const FINAL_PERIOD = new RegExp(`([^.])(\\.)([\\])}>"'»”’ ]*)${S}*${END}`, 'uy');
const FINAL_PERIOD_2 = new RegExp(`([^.])(\\.)([\\])}>"']*)${S}*${END}`, 'uy');

function finalPeriod(text: string, re: RegExp, spaceAfterPeriod: boolean): string {
  const at = text.lastIndexOf('.') - 1;
  if (at < 0) return text;
  re.lastIndex = at;
  const m = re.exec(text);
  if (!m) return text;
  const replaced = spaceAfterPeriod ? `${m[1]} ${m[2]} ${m[3]} ` : `${m[1]} ${m[2]}${m[3]} `;
  return text.slice(0, at) + replaced + text.slice(at + m[0].length);
}

const PUNCTUATION_A: readonly Rule[] = [
  rule(`([:,])([^${D}])`, ' $1 $2'),
  rule(`([:,])${END}`, ' $1 '),
  rule('\\.{2,}', ' $& '),
  rule('[;@#$%&]', ' $& '),
];

const PUNCTUATION_B: readonly Rule[] = [
  rule('[?!]', ' $& '),
  rule("([^'])' ", "$1 ' "),
  rule('[*]', ' $& '),
];

const PARENS_BRACKETS: Rule = rule('[\\][(){}<>]', ' $& ');

const DOUBLE_DASHES: Rule = rule('--', ' -- ');

const ENDING_QUOTES: Group = {
  guard: /['"»”’]/,
  rules: [
    rule('([»”’])', ' $1 '),
    rule("''", " '' "),
    rule('"', " '' "),
    rule("([^' ])('[sS]|'[mM]|'[dD]|') ", '$1 $2 '),
    rule("([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) ", '$1 $2 '),
  ],
};

/** Robert MacIntyre's contractions, as NLTK lists them (the third group stays unused, as in NLTK). */
const CONTRACTIONS: Group = {
  guard: /cannot|d'ye|gimme|gonna|gotta|lemme|more'n|wanna|'tis|'twas/iu,
  rules: [
    rule(`${B}(can)(not)${B}`, ' $1 $2 ', 'giu'),
    rule(`${B}(d)('ye)${B}`, ' $1 $2 ', 'giu'),
    rule(`${B}(gim)(me)${B}`, ' $1 $2 ', 'giu'),
    rule(`${B}(gon)(na)${B}`, ' $1 $2 ', 'giu'),
    rule(`${B}(got)(ta)${B}`, ' $1 $2 ', 'giu'),
    rule(`${B}(lem)(me)${B}`, ' $1 $2 ', 'giu'),
    rule(`${B}(more)('n)${B}`, ' $1 $2 ', 'giu'),
    rule(`${B}(wan)(na)(?=${S})`, ' $1 $2 ', 'giu'),
    rule(` ('t)(is)${B}`, ' $1 $2 ', 'giu'),
    rule(` ('t)(was)${B}`, ' $1 $2 ', 'giu'),
  ],
};

function apply(text: string, rules: readonly Rule[]): string {
  for (const [re, replacement] of rules) text = text.replace(re, replacement);
  return text;
}

function applyGroup(text: string, group: Group): string {
  return group.guard.test(text) ? apply(text, group.rules) : text;
}

/**
 * Tokenizes one sentence exactly as `nltk.tokenize.NLTKWordTokenizer().tokenize(text)` does.
 * The text is not split into sentences: only its final period is split off.
 */
export function treebankTokenize(text: string): string[] {
  text = applyGroup(text, STARTING_QUOTES);
  text = finalPeriod(text, FINAL_PERIOD, true);
  text = apply(text, PUNCTUATION_A);
  text = finalPeriod(text, FINAL_PERIOD_2, false);
  text = apply(text, PUNCTUATION_B);
  text = text.replace(PARENS_BRACKETS[0], PARENS_BRACKETS[1]);
  text = text.replace(DOUBLE_DASHES[0], DOUBLE_DASHES[1]);
  text = ` ${text} `;
  text = applyGroup(text, ENDING_QUOTES);
  text = applyGroup(text, CONTRACTIONS);
  return pySplit(text);
}

/**
 * Tokenizes `text` as `nltk.tokenize.word_tokenize(text)` (English) does: Punkt sentence split
 * (`sentenceSplit`), then `treebankTokenize` on every sentence. The book applies it to
 * `caption.lower()`; this function does not change case.
 */
export function wordTokenize(text: string): string[] {
  const sentences = sentenceSplit(text);
  if (sentences.length === 1) return treebankTokenize(sentences[0]);
  const out: string[] = [];
  for (const s of sentences) for (const tok of treebankTokenize(s)) out.push(tok);
  return out;
}
