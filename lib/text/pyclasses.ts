/**
 * Regular-expression fragments that reproduce the character classes of Python's `re` module on
 * `str` patterns, for porting NLTK's regular expressions to JavaScript.
 *
 * JavaScript's `\s`, `\w`, `\d` and `\b` differ from Python's even with the `u` flag:
 * - Python `\s` (and `str.split()`, `str.strip()`) is the set of `str.isspace()` characters: it has
 *   U+001C..U+001F and U+0085, which JavaScript's `\s` lacks, and lacks U+FEFF, which JavaScript has.
 * - Python `\w` is Unicode (letters, numbers, `_`); JavaScript's `\w` is ASCII only, and so is `\b`.
 * - Python `\d` is every decimal digit (category Nd); JavaScript's is `[0-9]`.
 *
 * Every fragment is meant for a RegExp compiled with the `u` flag. The classes follow Node's Unicode
 * tables, which are newer than the Python they are checked against; characters assigned after the
 * Python's Unicode version can classify differently (no caption text contains any).
 */

/** Body of a character class for Python's whitespace (`str.isspace()`, `re` `\s`). */
export const PY_SPACE = '\\t\\n\\v\\f\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';

/** Python `\s`. */
export const S = `[${PY_SPACE}]`;
/** Python `\S`. */
export const NS = `[^${PY_SPACE}]`;
/** Python `\w` (letters, numbers of every kind, underscore). */
export const W = '[\\p{L}\\p{N}_]';
/** Python `\d` (decimal digits of every script). */
export const D = '\\p{Nd}';
/** Python `[^\W\d]`: word characters that are not decimal digits. */
export const W_NOT_DIGIT = '[\\p{L}\\p{Nl}\\p{No}_]';
/** Python `\b` for `str` patterns (a boundary between a `\w` character and a non-`\w` one). */
export const B = `(?:(?<=${W})(?!${W})|(?<!${W})(?=${W}))`;
/** Python `$` without MULTILINE: the end of the string, or just before a newline that ends it. */
export const END = '(?=\\n?$)';

const SPACE_RE = new RegExp(S, 'u');
const SPLIT_RE = new RegExp(`${S}+`, 'u');
const LEADING_RE = new RegExp(`^${S}+`, 'u');
const TRAILING_RE = new RegExp(`${S}+$`, 'u');
const UPPER_RE = /^\p{Uppercase}$/u;
const LOWER_RE = /^\p{Lowercase}$/u;

/** Python `s.split()` with no argument: split on runs of whitespace, dropping empty ends. */
export function pySplit(s: string): string[] {
  const parts = s.split(SPLIT_RE);
  let start = 0;
  let end = parts.length;
  if (end > 0 && parts[0] === '') start = 1;
  if (end > start && parts[end - 1] === '') end -= 1;
  return start === 0 && end === parts.length ? parts : parts.slice(start, end);
}

/** Python `s.rstrip()`. */
export function pyRstrip(s: string): string {
  return s.replace(TRAILING_RE, '');
}

/** Python `s.strip()`. */
export function pyStrip(s: string): string {
  return s.replace(LEADING_RE, '').replace(TRAILING_RE, '');
}

/** Python `c.isspace()` for one character. */
export function pyIsSpace(c: string): boolean {
  return SPACE_RE.test(c);
}

/** The first code point of `s` (Python `s[0]`), or '' for an empty string. */
function firstCodePoint(s: string): string {
  const cp = s.codePointAt(0);
  return cp === undefined ? '' : String.fromCodePoint(cp);
}

/** Python `s[0].isupper()`. */
export function firstIsUpper(s: string): boolean {
  return UPPER_RE.test(firstCodePoint(s));
}

/** Python `s[0].islower()`. */
export function firstIsLower(s: string): boolean {
  return LOWER_RE.test(firstCodePoint(s));
}
