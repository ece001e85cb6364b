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
 * Python's string methods (`split`, `strip`, `isupper` ...) are in util/python.ts.
 * Every fragment is meant for a RegExp compiled with the `u` flag. The classes follow Node's Unicode
 * tables, which are newer than the Python they are checked against; characters assigned after the
 * Python's Unicode version can classify differently (no caption text contains any).
 */
import { PY_SPACE } from '../util/python';

export { PY_SPACE };

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
