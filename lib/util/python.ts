/**
 * Python's string methods on `str`, for code ported from Python (NLTK's tokenizers, coco-caption's
 * scorers) that must split and strip exactly as Python does.
 *
 * Python's whitespace (`str.isspace()`, `str.split()`, `str.strip()`, `re`'s `\s`) has U+001C..U+001F
 * and U+0085, which JavaScript's `\s` lacks, and lacks U+FEFF, which JavaScript has.
 */

/** Body of a character class for Python's whitespace. */
export const PY_SPACE = '\\t\\n\\v\\f\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';

const SPACE_RE = new RegExp(`[${PY_SPACE}]`, 'u');
const SPLIT_RE = new RegExp(`[${PY_SPACE}]+`, 'u');
const LEADING_RE = new RegExp(`^[${PY_SPACE}]+`, 'u');
const TRAILING_RE = new RegExp(`[${PY_SPACE}]+$`, 'u');
/** Python whitespace other than the plain space. */
const SPACE_NOT_BLANK_RE = /[\t\n\u000b\u000c\r\u001c-\u001f\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/;
const UPPER_RE = /^\p{Uppercase}$/u;
const LOWER_RE = /^\p{Lowercase}$/u;

/** Python `s.split()` with no argument: split on runs of whitespace, dropping empty ends. */
export function pySplit(s: string): string[] {
  if (s.length === 0) return [];
  if (!SPACE_NOT_BLANK_RE.test(s)) {
    // Only plain spaces: the common case of a tokenized caption.
    const parts = s.split(' ');
    return parts.indexOf('') < 0 ? parts : parts.filter((p) => p !== '');
  }
  const parts = s.split(SPLIT_RE);
  if (parts[0] === '') parts.shift();
  if (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
  return parts;
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
