/**
 * Caption tokenization as coco-caption does it.
 *
 * coco-caption writes every caption on its own line (newlines inside a caption become spaces), runs
 * Stanford CoreNLP 3.4.1's `PTBTokenizer -preserveLines -lowerCase` over the file, and drops the
 * punctuation tokens in {@link DROPPED_PUNCTUATION} from each output line. This module reproduces
 * that in TypeScript: {@link ptbTokens} is the lexer (Penn Treebank rules with the tokenizer's
 * default options of that release: PTB escaping, americanized spelling, `\/` and `\*` escapes,
 * `-LRB-`-style brackets, LaTeX quotes, `...` ellipses and `--` dashes), and
 * {@link tokenizeCaption} adds the lowercasing and filtering.
 *
 * How the lexer works (its rules are in ptb-rules.ts). The Java tokenizer is a JFlex scanner: at
 * each position every rule is tried, the one matching the most characters (counting any trailing
 * context `r1/r2`) wins, ties go to the rule listed first, and the rule's action decides the token
 * text (and may give back characters to be read again). {@link ptbTokens} does the same with one sticky regular expression per rule
 * alternative. Where a rule has alternatives that a backtracking regex would not try longest-first,
 * they are listed separately and the longest is taken.
 *
 * The rules are those of the PTBLexer grammar of that generation of CoreNLP (before the emoticon,
 * "gonna" splitting and hyphen splitting rules of later releases). The test fixtures compare this
 * lexer with a scanner that JFlex generates from that grammar, on every COCO 2017 validation
 * caption and on several hundred adversarial strings: the tokens are identical.
 *
 * Like the Java tokenizer of that release, the lexer reads UTF-16 code units: characters outside
 * the Basic Multilingual Plane (emoji and the like) match no rule and are deleted.
 *
 * Known approximations (none of them occurs in the COCO 2017 validation captions):
 * - `[:letter:]` and `[:digit:]` come from this JavaScript engine's Unicode tables, which are newer
 *   than the Java 7 tables JFlex used; letters added to Unicode since then differ.
 * - Rules that later CoreNLP releases added or changed are not reproduced; if the 3.4.1 release
 *   already had one of them, captions using that construct (for example emoticons) could differ.
 * - A regex alternative is matched by backtracking, which takes the first success rather than the
 *   longest string its JFlex counterpart could match. The alternatives are ordered so the two agree
 *   on every input shape the rule is written for; contrived inputs could still differ.
 * - Line breaks other than `\n` inside a caption (`\r`, U+000B, U+000C, U+2028, U+2029) are read as
 *   spaces. The Java tokenizer would end the line there and shift every later caption onto the
 *   wrong image; reproducing that would make the scores meaningless.
 */
import { americanize } from './americanize';
import { pyRstrip } from '../util/python';

/** Tokens coco-caption removes after tokenizing (compared after lowercasing, so `-LRB-` etc. never match). */
export const DROPPED_PUNCTUATION: ReadonlySet<string> = new Set([
  "''", "'", '``', '`', '-LRB-', '-RRB-', '-LCB-', '-RCB-', '.', '?', '!', ',', ':', '-', '--', '...', ';',
]);

import { buildRules, NEWLINE_TOKEN, type Rule } from './ptb-rules';


let rules: Rule[] | undefined;

/** A rule alternative that can start with a given character. */
interface Candidate { re: RegExp; rule: Rule }

const candidatesByChar = new Map<number, Candidate[]>();

/** The rule alternatives, in rule order, whose match can start with character code `c`. */
function candidatesFor(c: number): Candidate[] {
  let list = candidatesByChar.get(c);
  if (list === undefined) {
    const ch = String.fromCharCode(c);
    list = [];
    for (const r of rules!) {
      r.alts.forEach((re, k) => {
        if (r.firsts[k].test(ch)) list!.push({ re, rule: r });
      });
    }
    candidatesByChar.set(c, list);
  }
  return list;
}

function isAsciiLetter(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90);
}

function isSpace(c: number): boolean {
  return c === 32 || c === 9 || c === 0xa0 || (c >= 0x2000 && c <= 0x200a) || c === 0x3000;
}

/**
 * Runs the lexer over `s` and returns its tokens line by line (a line ends at each line-break
 * token). Characters no rule accepts are deleted, as the Stanford tokenizer does by default.
 */
function lexLines(s: string): string[][] {
  rules ??= buildRules();
  const lines: string[][] = [];
  let out: string[] = [];
  const n = s.length;
  let pos = 0;
  while (pos < n) {
    const c = s.charCodeAt(pos);
    if (isSpace(c)) {
      // A run of spaces is one (skipped) match: a rule may not start inside it.
      pos++;
      while (pos < n && isSpace(s.charCodeAt(pos))) pos++;
      continue;
    }
    if (isAsciiLetter(c)) {
      // Fast path: an ASCII word followed by a space, tab, line end or end of input can only be
      // matched by rules that give the word itself (`WORD`, `THING`, or an abbreviation followed
      // by a space), except `cannot`, which the tokenizer splits.
      let j = pos + 1;
      while (j < n && isAsciiLetter(s.charCodeAt(j))) j++;
      const d = j < n ? s.charCodeAt(j) : -1;
      if (d === 32 || d === 9 || d === 10 || d === -1) {
        const w = s.slice(pos, j);
        if (j - pos === 6 && w.toLowerCase() === 'cannot') {
          out.push(w.slice(0, 3));
          pos += 3;
        } else {
          out.push(americanize(w));
          pos = j;
        }
        continue;
      }
    }
    let best: Rule | undefined;
    let bestText = '';
    let bestTotal = 0;
    for (const { re, rule } of candidatesFor(c)) {
      re.lastIndex = pos;
      const m = re.exec(s);
      if (m === null) continue;
      const total = m[0].length + (m[1] === undefined ? 0 : m[1].length);
      if (total > bestTotal) {
        best = rule;
        bestText = m[0];
        bestTotal = total;
      }
    }
    if (best === undefined || bestText.length === 0) {
      pos++; // untokenizable character: deleted
      continue;
    }
    const e = best.act(bestText);
    if (e.token === NEWLINE_TOKEN) {
      lines.push(out);
      out = [];
    } else if (e.token !== null) {
      out.push(e.token);
    }
    pos += e.consumed;
  }
  lines.push(out);
  return lines;
}

/** A caption as the toolkit writes it into the tokenizer's input: one line, whatever its line breaks. */
function asLine(caption: string): string {
  return caption.replace(/[\n\r\u000b\u000c\u2028\u2029]/g, ' ');
}

/**
 * The Penn Treebank tokens of one caption as Stanford's tokenizer writes them (before coco-caption
 * lowercases them and drops punctuation).
 *
 * A few rules look past the end of the line: after an abbreviation such as `Blvd.` or `T.V.`, what
 * starts the next line decides whether the period is also written as a token of its own, and an
 * acronym like `U.S.A` at the very end of the input is read as `U.S.` and `A`. `next` is the caption
 * on the following line, or `null` when this caption ends the input. The default, an empty next
 * line, suits a caption tokenized on its own. After {@link tokenizeCaption}'s filtering only the end
 * of the input can change the result.
 */
export function ptbTokens(caption: string, next: string | null = ''): string[] {
  return lexLines(next === null ? asLine(caption) : `${asLine(caption)}\n${asLine(next)}`)[0];
}

/**
 * One caption tokenized as coco-caption does it: PTB tokens, lowercased, the punctuation in
 * {@link DROPPED_PUNCTUATION} removed, joined by single spaces. An empty or all-punctuation
 * caption gives the empty string. `next` is as for {@link ptbTokens}.
 */
export function tokenizeCaption(caption: string, next: string | null = ''): string {
  return filterTokens(ptbTokens(caption, next));
}

/**
 * What coco-caption makes of one line of tokenizer output: the tokens (lowercased by the tokenizer)
 * joined by spaces, trailing whitespace stripped (Python's `rstrip`, which also strips a no-break
 * space ending the last token), split on spaces, dropped punctuation removed, joined again.
 */
function filterTokens(tokens: readonly string[]): string {
  // Tokens never contain a plain space and are never all whitespace, so splitting the joined line
  // gives the tokens back, and stripping the line only touches the last token.
  const kept: string[] = [];
  for (let i = 0; i < tokens.length; i++) {
    let w = tokens[i].toLowerCase();
    if (i === tokens.length - 1) w = pyRstrip(w);
    if (w !== '' && !DROPPED_PUNCTUATION.has(w)) kept.push(w);
  }
  return kept.join(' ');
}

/**
 * Tokenizes a batch of captions the way coco-caption does one tokenizer run: the captions are the
 * lines of one input, in order, lexed in one pass (so rules that look past a line end see the next
 * caption), and the last one ends the input.
 */
export function tokenizeCaptions(captions: readonly string[]): string[] {
  return ptbTokenLines(captions).map(filterTokens);
}

/**
 * The raw PTB tokens of a batch of captions, one array per caption, from one pass over the
 * captions written one per line (what `PTBTokenizer -preserveLines` prints, before lowercasing).
 */
export function ptbTokenLines(captions: readonly string[]): string[][] {
  if (captions.length === 0) return [];
  const lines = lexLines(captions.map(asLine).join('\n'));
  if (lines.length !== captions.length) {
    throw new Error(`tokenizer: ${captions.length} captions gave ${lines.length} lines`);
  }
  return lines;
}
