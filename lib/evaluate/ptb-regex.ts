/**
 * Regular-expression helpers for the PTB lexer (ptb-tokenizer.ts): JFlex's character classes over
 * UTF-16 code units, its `%caseless`, and the set of characters a rule's match can start with.
 */

// ---------------------------------------------------------------------------------------------
// Character classes over UTF-16 code units, as the JFlex scanner sees its input.


function hex4(c: number): string {
  return '\\u' + c.toString(16).padStart(4, '0');
}

/** Ranges (in regex class syntax) of the BMP code units, surrogates excluded, that satisfy `test`. */
export function bmpRanges(test: RegExp): string {
  let out = '';
  let start = -1;
  for (let c = 0; c <= 0x10000; c++) {
    const inside = c < 0x10000 && (c < 0xd800 || c > 0xdfff) && test.test(String.fromCharCode(c));
    if (inside && start < 0) start = c;
    else if (!inside && start >= 0) {
      out += c - 1 > start ? `${hex4(start)}-${hex4(c - 1)}` : hex4(start);
      start = -1;
    }
  }
  return out;
}

/**
 * Makes the literal letters of a regex source match either case, as JFlex's `%caseless` does.
 * Character classes are left alone: `%caseless` does not reach inside them.
 */
export function caseless(src: string): string {
  let out = '';
  let inClass = false;
  for (let i = 0; i < src.length; i++) {
    const ch = src[i];
    if (ch === '\\') {
      const next = src[i + 1];
      const len = next === 'u' ? 6 : 2;
      out += src.slice(i, i + len);
      i += len - 1;
      continue;
    }
    if (inClass) {
      if (ch === ']') inClass = false;
      out += ch;
      continue;
    }
    if (ch === '[') {
      inClass = true;
      out += ch;
      if (src[i + 1] === '^') { out += '^'; i++; }
      if (src[i + 1] === ']') { out += ']'; i++; }
      continue;
    }
    const lo = ch.toLowerCase();
    const up = ch.toUpperCase();
    out += lo !== up && /[a-zA-Z]/.test(ch) ? `[${lo}${up}]` : ch;
  }
  return out;
}


// ---------------------------------------------------------------------------------------------
// First characters of a rule: which rules can match at a position depends only on the character
// there, so the lexer tries only those. The sets are computed from the regex sources, and always
// include every character a match can start with.

export interface FirstSet { atoms: string[]; nullable: boolean }

/** The characters a match of regex source `src` can start with, as regex atoms, and whether it can be empty. */
export function firstChars(src: string): FirstSet {
  let i = 0;
  const alternation = (): FirstSet => {
    const out: FirstSet = { atoms: [], nullable: false };
    for (;;) {
      const seq = sequence();
      out.atoms.push(...seq.atoms);
      out.nullable ||= seq.nullable;
      if (src[i] !== '|') return out;
      i++;
    }
  };
  const sequence = (): FirstSet => {
    const out: FirstSet = { atoms: [], nullable: true };
    while (i < src.length && src[i] !== '|' && src[i] !== ')') {
      const el = element();
      if (out.nullable) out.atoms.push(...el.atoms);
      out.nullable &&= el.nullable;
    }
    return out;
  };
  const element = (): FirstSet => {
    let el: FirstSet;
    const ch = src[i];
    if (ch === '(') {
      if (src.startsWith('(?=', i) || src.startsWith('(?!', i)) {
        i += 3;
        alternation();
        el = { atoms: [], nullable: true };
      } else {
        i += src.startsWith('(?:', i) ? 3 : 1;
        el = alternation();
      }
      if (src[i] !== ')') throw new Error(`tokenizer rule: unbalanced group in ${src}`);
      i++;
    } else if (ch === '[') {
      const start = i;
      i++;
      if (src[i] === '^') i++;
      while (src[i] !== ']') {
        if (i >= src.length) throw new Error(`tokenizer rule: unterminated class in ${src}`);
        i += src[i] === '\\' ? (src[i + 1] === 'u' ? 6 : src[i + 1] === 'x' ? 4 : 2) : 1;
      }
      i++;
      el = { atoms: [src.slice(start, i)], nullable: false };
    } else if (ch === '\\') {
      const len = src[i + 1] === 'u' ? 6 : src[i + 1] === 'x' ? 4 : 2;
      el = { atoms: [src.slice(i, i + len)], nullable: false };
      i += len;
    } else if (ch === '^' || ch === '$') {
      i++;
      el = { atoms: [], nullable: true };
    } else if (ch === '.') {
      i++;
      el = { atoms: ['[^\\n]'], nullable: false };
    } else {
      i++;
      el = { atoms: [/[\w ]/.test(ch) ? ch : `\\${ch}`], nullable: false };
    }
    // Quantifier
    const q = src[i];
    if (q === '?' || q === '*') {
      i++;
      el.nullable = true;
    } else if (q === '+') {
      i++;
    } else if (q === '{') {
      const m = /^\{(\d+)(?:,(\d*))?\}/.exec(src.slice(i));
      if (m) {
        i += m[0].length;
        if (Number(m[1]) === 0) el.nullable = true;
      }
    }
    return el;
  };
  const out = alternation();
  if (i !== src.length) throw new Error(`tokenizer rule: could not read ${src} at ${i}`);
  return out;
}

