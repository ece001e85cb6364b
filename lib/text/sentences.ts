/**
 * Sentence splitting as NLTK's Punkt sentence tokenizer does it (`nltk.sent_tokenize`, NLTK 3.8),
 * with the parameters of NLTK's pretrained English model (see `punkt-english.ts`).
 *
 * Punkt decides, for every '.', '?' or '!' that is followed by whitespace and more text or by one of
 * `)";}]*:@'({[?!`, whether it ends a sentence:
 * 1. First pass, per word: a bare '.', '?' or '!' is a break; a run of periods is an ellipsis; a word
 *    ending in '.' is an abbreviation when the word before the period (or its last hyphenated part)
 *    is a known abbreviation type, and a break otherwise.
 * 2. Second pass, per word pair: a known collocation removes the break; an abbreviation or ellipsis
 *    becomes a break when the orthographic heuristic or the sentence-starter list says the next word
 *    starts a sentence (both need a capitalised next word); a single letter or a number followed by
 *    a word that the orthographic heuristic says does not start a sentence loses its break.
 * 3. Closing quotes and brackets right after a break move back into the sentence they close.
 *
 * This module follows NLTK's implementation step by step, including how it picks the text around
 * each candidate period, so that its output equals NLTK's `PunktSentenceTokenizer` given the same
 * parameters. With the English parameters it gives the pretrained model's result on every text
 * without upper-case letters except in the rare case described in `punkt-english.ts`; on cased text
 * the missing orthographic table makes it keep more periods inside sentences after abbreviations
 * and initials than the model would.
 */
import { PUNKT_ENGLISH, PunktParameters } from './punkt-english';
import { D, NS, S, W_NOT_DIGIT } from './pyclasses';
import { firstIsLower, firstIsUpper, pyRstrip, pyStrip } from '../util/python';

// Orthographic context flags, as in Punkt.
const ORTHO_BEG_UC = 1 << 1;
const ORTHO_MID_UC = 1 << 2;
const ORTHO_UNK_UC = 1 << 3;
const ORTHO_BEG_LC = 1 << 4;
const ORTHO_MID_LC = 1 << 5;
const ORTHO_UNK_LC = 1 << 6;
const ORTHO_UC = ORTHO_BEG_UC + ORTHO_MID_UC + ORTHO_UNK_UC;
const ORTHO_LC = ORTHO_BEG_LC + ORTHO_MID_LC + ORTHO_UNK_LC;

/** Characters that cannot be inside a word: `)";}]*:@'({[` plus '?' and '!'. */
const NON_WORD = `[)";}\\]*:@'({\\[?!]`;
/** Dashes and ellipses are single tokens. */
const MULTI_CHAR = `(?:-{2,}|\\.{2,}|(?:\\.${S}){2,}\\.)`;
/** Characters that cannot start a word. */
const WORD_START = `[^("\`{\\[:;&#*@)}\\]\\-,]`;

/** Punkt's own word tokenizer (it splits off punctuation other than periods). */
const PUNKT_WORD_RE = new RegExp(
  `${MULTI_CHAR}` +
    `|(?=${WORD_START})${NS}+?(?=${S}|$|${NON_WORD}|${MULTI_CHAR}|,(?=$|${S}|${NON_WORD}|${MULTI_CHAR}))` +
    `|${NS}`,
  'gu',
);

/** A candidate sentence end: group 1 is what follows it, group 2 the next word when whitespace follows. */
const PERIOD_CONTEXT_RE = new RegExp(`[.?!](?=(${NON_WORD}|${S}+(${NS}+)))`, 'gu');

/** Closing punctuation that belongs to the sentence before a break. */
const BOUNDARY_REALIGNMENT_RE = new RegExp(`^["')\\]}]+?(?:${S}+|(?=--)|$)`, 'u');

const ELLIPSIS_RE = /^\.\.+$/;
const NUMERIC_RE = new RegExp(`^-?[.,]?${D}[${D},.\\-]*\\.?$`, 'u');
const INITIAL_RE = new RegExp(`^${W_NOT_DIGIT}\\.$`, 'u');
const SENT_END_CHARS = new Set(['.', '?', '!']);
const PUNCTUATION = new Set([';', ':', ',', '.', '!', '?']);
/** Python's `string.whitespace` (ASCII only), which Punkt uses to find the word before a period. */
const ASCII_WHITESPACE = new Set([' ', '\t', '\n', '\r', '\v', '\f']);

/** One word with Punkt's annotations. */
class PunktToken {
  readonly tok: string;
  readonly type: string;
  readonly periodFinal: boolean;
  sentbreak = false;
  abbr = false;
  ellipsis = false;

  constructor(tok: string) {
    this.tok = tok;
    const lower = tok.toLowerCase();
    this.type = NUMERIC_RE.test(lower) ? '##number##' : lower;
    this.periodFinal = tok.endsWith('.');
  }

  get typeNoPeriod(): string {
    return this.type.length > 1 && this.type.endsWith('.') ? this.type.slice(0, -1) : this.type;
  }

  get typeNoSentPeriod(): string {
    return this.sentbreak ? this.typeNoPeriod : this.type;
  }

  get isInitial(): boolean {
    return INITIAL_RE.test(this.tok);
  }
}

/** A compiled parameter set (sets and maps for fast lookup). */
class Model {
  readonly abbrevs: Set<string>;
  readonly collocations: Set<string>;
  readonly sentStarters: Set<string>;
  readonly ortho: Map<string, number>;

  constructor(p: PunktParameters) {
    this.abbrevs = new Set(p.abbrevTypes);
    this.collocations = new Set(p.collocations.map(([a, b]) => `${a}\u0000${b}`));
    this.sentStarters = new Set(p.sentStarters);
    this.ortho = new Map(Object.entries(p.orthoContext));
  }

  orthoOf(type: string): number {
    return this.ortho.get(type) ?? 0;
  }
}

const ENGLISH = new Model(PUNKT_ENGLISH);

/** Punkt's word tokenization of a text: line by line, skipping blank lines. */
function punktWords(text: string): PunktToken[] {
  const out: PunktToken[] = [];
  for (const line of text.split('\n')) {
    if (pyStrip(line) === '') continue;
    for (const m of line.matchAll(PUNKT_WORD_RE)) out.push(new PunktToken(m[0]));
  }
  return out;
}

function firstPass(t: PunktToken, model: Model): void {
  const tok = t.tok;
  if (SENT_END_CHARS.has(tok)) {
    t.sentbreak = true;
  } else if (ELLIPSIS_RE.test(tok)) {
    t.ellipsis = true;
  } else if (t.periodFinal && !tok.endsWith('..')) {
    const base = tok.slice(0, -1).toLowerCase();
    const parts = base.split('-');
    if (model.abbrevs.has(base) || model.abbrevs.has(parts[parts.length - 1])) {
      t.abbr = true;
    } else {
      t.sentbreak = true;
    }
  }
}

/** Whether the token starts a sentence: true, false, or 'unknown'. */
function orthoHeuristic(t: PunktToken, model: Model): boolean | 'unknown' {
  if (PUNCTUATION.has(t.tok)) return false;
  const ctx = model.orthoOf(t.typeNoSentPeriod);
  if (firstIsUpper(t.tok) && ctx & ORTHO_LC && !(ctx & ORTHO_MID_UC)) return true;
  if (firstIsLower(t.tok) && (ctx & ORTHO_UC || !(ctx & ORTHO_BEG_LC))) return false;
  return 'unknown';
}

/** Punkt's second pass for one pair of neighbouring tokens (updates `t1`). */
function secondPass(t1: PunktToken, t2: PunktToken, model: Model): void {
  if (!t1.periodFinal) return;
  const typ = t1.typeNoPeriod;
  const nextTyp = t2.typeNoSentPeriod;
  const isInitial = t1.isInitial;

  if (model.collocations.has(`${typ}\u0000${nextTyp}`)) {
    t1.sentbreak = false;
    t1.abbr = true;
    return;
  }
  if ((t1.abbr || t1.ellipsis) && !isInitial) {
    if (orthoHeuristic(t2, model) === true) {
      t1.sentbreak = true;
      return;
    }
    if (firstIsUpper(t2.tok) && model.sentStarters.has(nextTyp)) {
      t1.sentbreak = true;
      return;
    }
  }
  if (isInitial || typ === '##number##') {
    const starter = orthoHeuristic(t2, model);
    if (starter === false) {
      t1.sentbreak = false;
      t1.abbr = true;
      return;
    }
    if (starter === 'unknown' && isInitial && firstIsUpper(t2.tok) && !(model.orthoOf(nextTyp) & ORTHO_LC)) {
      t1.sentbreak = false;
      t1.abbr = true;
    }
  }
}

/** Whether a token other than the last of `text` ends a sentence. */
function containsSentBreak(text: string, model: Model): boolean {
  const toks = punktWords(text);
  for (const t of toks) firstPass(t, model);
  // The second pass of token i sees token i+1 as the first pass left it, as in Punkt's generators.
  for (let i = 0; i < toks.length - 1; i++) {
    secondPass(toks[i], toks[i + 1], model);
    if (toks[i].sentbreak) return true;
  }
  return false;
}

interface Candidate {
  /** Index of the '.', '?' or '!'. */
  readonly index: number;
  /** What follows it: one punctuation character, or whitespace and the next word. */
  readonly after: string;
  /** Start of the next word, or -1 when punctuation follows. */
  readonly nextStart: number;
}

/** Candidate sentence ends with the text Punkt examines for each (the word before, the end, what follows). */
function* candidates(text: string): Generator<[Candidate, string]> {
  let prevStart = 0;
  let prevStop = 0;
  let prev: Candidate | null = null;
  for (const m of text.matchAll(PERIOD_CONTEXT_RE)) {
    const index = m.index ?? 0;
    const after = m[1];
    const next = m[2];
    const cand: Candidate = {
      index,
      after,
      nextStart: next === undefined ? -1 : index + 1 + after.length - next.length,
    };
    // The word before the candidate starts after the last ASCII whitespace since the previous word
    // began; Punkt treats "none found" and "found at offset 0" alike and then reuses the previous start.
    let ws = 0;
    for (let i = index - 1; i >= prevStop; i--) {
      if (ASCII_WHITESPACE.has(text[i])) {
        ws = i - prevStop;
        break;
      }
    }
    const start = ws ? ws + prevStop + 1 : prevStart;
    if (prev && prevStop <= start) {
      yield [prev, text.slice(prevStart, prevStop) + text[prev.index] + prev.after];
    }
    prev = cand;
    prevStart = start;
    prevStop = index;
  }
  if (prev) yield [prev, text.slice(prevStart, prevStop) + text[prev.index] + prev.after];
}

/**
 * Splits `text` into sentences as `nltk.sent_tokenize(text)` (English) does: the sentences are
 * slices of `text`, whitespace between them dropped, empty ones omitted.
 */
export function sentenceSplit(text: string, params?: PunktParameters): string[] {
  const model = params ? new Model(params) : ENGLISH;
  // Raw slices, before closing punctuation is moved back.
  const slices: [number, number][] = [];
  let lastBreak = 0;
  for (const [cand, context] of candidates(text)) {
    if (containsSentBreak(context, model)) {
      slices.push([lastBreak, cand.index + 1]);
      lastBreak = cand.nextStart >= 0 ? cand.nextStart : cand.index + 1;
    }
  }
  slices.push([lastBreak, pyRstrip(text).length]);

  // Move closing quotes and brackets that follow a break into the sentence they close.
  const out: string[] = [];
  let realign = 0;
  for (let i = 0; i < slices.length; i++) {
    const start = slices[i][0] + realign;
    const stop = slices[i][1];
    const own = text.slice(start, stop);
    if (i === slices.length - 1) {
      if (own) out.push(own);
      continue;
    }
    const [nextStart, nextStop] = slices[i + 1];
    const m = BOUNDARY_REALIGNMENT_RE.exec(text.slice(nextStart, nextStop));
    if (m) {
      out.push(text.slice(start, nextStart + pyRstrip(m[0]).length));
      realign = m[0].length;
    } else {
      realign = 0;
      if (own) out.push(own);
    }
  }
  return out;
}
