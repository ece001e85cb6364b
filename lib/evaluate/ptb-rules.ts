/**
 * The rules of the PTB lexer (ptb-tokenizer.ts): those of the PTBLexer grammar of CoreNLP 3.4.1,
 * each a list of sticky regular expressions (one per alternative) and an action that makes the
 * token text, plus the text transformations the actions use.
 */
import { americanize } from './americanize';
import { bmpRanges, caseless, firstChars } from './ptb-regex';

let letterRanges: string | undefined;
let digitRanges: string | undefined;

// ---------------------------------------------------------------------------------------------
// Token text transformations used by the rule actions.

/** Puts a backslash before each `c` not already preceded by one (the PTB escape for `/` and `*`). */
function escapeChar(s: string, c: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    if (s[i] === c && (i === 0 || s[i - 1] !== '\\')) out += '\\';
    out += s[i];
  }
  return out;
}

function removeSoftHyphens(s: string): string {
  if (s.indexOf('\u00ad') < 0) return s;
  const r = s.replace(/\u00ad/g, '');
  return r.length === 0 ? '-' : r;
}

function normalizeAmp(s: string): string {
  return s.replace(/&amp;/gi, '&');
}

function latexQuotes(s: string, probablyLeft: boolean): string {
  let r = probablyLeft
    ? s.replace(/&apos;|'/g, '`').replace(/"|&quot;/g, '``')
    : s.replace(/&apos;|'/g, "'").replace(/"|&quot;/g, "''");
  r = r.replace(/[\u0091\u2018\u201b\u2039]/g, '`');
  r = r.replace(/[\u0092\u2019\u203a]/g, "'");
  r = r.replace(/[\u0093\u201c\u00ab]/g, '``');
  r = r.replace(/[\u0094\u201d\u00bb]/g, "''");
  return r;
}

function normalizeCurrency(s: string): string {
  return s.replace(/\u00a2/g, 'cents').replace(/\u00a3/g, '#').replace(/[\u0080\u00a4\u20a0\u20ac]/g, '$');
}

/**
 * Vulgar fractions to PTB text. The Stanford code maps U+2153 twice and never U+2154, so `⅔`
 * (and U+2155..U+215E) pass through unchanged; kept as is.
 */
function normalizeFractions(s: string): string {
  return s.replace(/\u00bc/g, '1\\/4').replace(/\u00bd/g, '1\\/2').replace(/\u00be/g, '3\\/4').replace(/\u2153/g, '1\\/3');
}


// ---------------------------------------------------------------------------------------------
// The rules.

/** What a rule's action does with its match: emit `token` (or nothing) and consume `consumed` code units. */
export interface Emit { token: string | null; consumed: number }

export interface Rule {
  /** Sticky regexes, one per alternative; group 1, when present, is the trailing context. */
  alts: RegExp[];
  /** For each alternative, a test of the characters its match can start with (see {@link firstChars}). */
  firsts: RegExp[];
  act: (text: string) => Emit;
}


export const NEWLINE_TOKEN = '\n';

function tok(token: string | null, text: string): Emit {
  return { token, consumed: text.length };
}

export function buildRules(): Rule[] {
  letterRanges ??= bmpRanges(/^\p{L}$/u);
  digitRanges ??= bmpRanges(/^\p{Nd}$/u);
  const LETTER = `[${letterRanges}]`;
  const LD = `[${letterRanges}${digitRanges}]`;
  const DIGIT = `[${digitRanges}\\u07c0-\\u07c9]`;

  const SGML = String.raw`<\/?[A-Za-z!?][^>\r\n]*>`;
  const SPACE = String.raw`[ \t\u00a0\u2000-\u200a\u3000]`;
  const NEWLINE = String.raw`(?:\r\n|[\r\n\u2028\u2029\u000b\u000c\u0085])`;
  const SPACENL = `(?:${SPACE}|${NEWLINE})`;
  const SPACENLS = `${SPACENL}+`;
  const SENTEND = `${SPACENL}(?:${SPACENL}|[A-Z]|${SGML})`;
  const DATE = `${DIGIT}{1,2}[\\-\\/]${DIGIT}{1,2}[\\-\\/]${DIGIT}{2,4}`;
  const NUMBER_ALTS = [
    `[\\-+]?${DIGIT}*(?:[.:,\\u00ad\\u066b\\u066c]${DIGIT}+)+`,
    `[\\-+]?${DIGIT}+`,
  ];
  const SUBSUPNUM = String.raw`[\u207a\u207b\u208a\u208b]?(?:[\u2070\u00b9\u00b2\u00b3\u2074-\u2079]+|[\u2080-\u2089]+)`;
  const FRAC = `(?:${DIGIT}{1,4}[- \\u00a0])?${DIGIT}{1,4}(?:\\\\?\\/|\\u2044)${DIGIT}{1,4}`;
  const FRAC2 = String.raw`[\u00bc\u00bd\u00be\u2153-\u215e]`;
  const DOLSIGN = String.raw`(?:[A-Z]*\$|#)`;
  const DOLSIGN2 = String.raw`[\u00a2\u00a3\u00a4\u00a5\u0080\u20a0\u20ac\u060b\u0e3f\u20a4\uffe0\uffe1\uffe5\uffe6]`;
  // Marks and letters JFlex's [:letter:] missed, which the Stanford grammar adds to words by hand.
  const WORD_EXTRA = String.raw`\u00ad\u0237-\u024f\u02c2-\u02c5\u02d2-\u02df\u02e5-\u02ff\u0300-\u036f\u0370-\u037d\u0384\u0385\u03cf\u03f6\u03fc-\u03ff\u0483-\u0487\u04cf\u04f6-\u04ff\u0510-\u0525\u055a-\u055f\u0591-\u05bd\u05bf\u05c1\u05c2\u05c4\u05c5\u05c7\u0615-\u061a\u063b-\u063f\u064b-\u065e\u0670\u06d6-\u06ef\u06fa-\u06ff\u070f\u0711\u0730-\u074f\u0750-\u077f\u07a6-\u07b1\u07ca-\u07f5\u07fa\u0900-\u0903\u093c\u093e-\u094e\u0951-\u0955\u0962-\u0963\u0981-\u0983\u09bc-\u09c4\u09c7\u09c8\u09cb-\u09cd\u09d7\u09e2\u09e3\u0a01-\u0a03\u0a3c\u0a3e-\u0a4f\u0a81-\u0a83\u0abc-\u0acf\u0b82\u0bbe-\u0bc2\u0bc6-\u0bc8\u0bca-\u0bcd\u0c01-\u0c03\u0c3e-\u0c56\u0d3e-\u0d44\u0d46-\u0d48\u0e30-\u0e3a\u0e47-\u0e4e\u0eb1-\u0ebc\u0ec8-\u0ecd`;
  const SPLET = caseless(String.raw`&[aeiouAEIOU](?:acute|grave|uml);`);
  const WORD = `(?:[${letterRanges}${WORD_EXTRA}]|${SPLET})+`;
  const APOS = `(?:['\\u0092\\u2019]|${caseless('&apos;')})`;
  const APOSETC = `(?:['\\u0092\\u2019\\u0091\\u2018\\u201b]|${caseless('&apos;')})`;
  const HYPHEN = String.raw`[\-_\u058a\u2010\u2011]`;
  const THING = `(?:[dDoOlL]${APOSETC}${LD})?${LD}+(?:${HYPHEN}(?:[dDoOlL]${APOSETC}${LD})?${LD}+)*`;
  const THINGA = `[A-Z]+(?:(?:[+&]|${caseless('&amp;')})[A-Z]+)+`;
  const THING3 = String.raw`[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}(?:\\?\/[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}){1,2}`;
  // Specific acronyms first: they are longer than the generic letter-dot pattern where both match.
  const ACRO = caseless(String.raw`(?:(?:Canada|Sino|Korean|EU|Japan|non)-U\.S|U\.S\.-(?:U\.K|U\.S\.S\.R)|[A-Za-z](?:\.[A-Za-z])+)`);
  const HTHING = `[A-Za-z0-9][A-Za-z0-9.,\\u00ad]*(?:-(?:${ACRO}\\.|[A-Za-z0-9\\u00ad]+))+`;
  const REDAUX = `${APOS}(?:[msdMSD]|${caseless('re|ve|ll')})`;
  const SWORD = String.raw`[A-Za-z\u00ad]*[A-MO-Za-mo-z]\u00ad*`;
  const SREDAUX = `${caseless('n')}${APOSETC}${caseless('t')}`;
  const APOWORD_ALTS = [
    `${APOS}${caseless('n')}${APOS}?`,
    `[lLdDjJ]${APOS}`,
    `${caseless('Dunkin')}${APOS}`,
    `${caseless('somethin')}${APOS}`,
    `${caseless('ol')}${APOS}`,
    `${APOS}${caseless('em')}`,
    `[A-HJ-XZn]${APOSETC}${LETTER}{2}${LETTER}*`,
    `${APOS}[2-9]0${caseless('s')}`,
    `${APOS}${caseless('til')}${caseless('l')}?`,
    `${LETTER}${LETTER}*[aeiouyAEIOUY]${APOSETC}[aeiouA-Z]${LETTER}*`,
    `${APOS}${caseless('cause')}`,
    caseless(String.raw`cont'd\.?|'twas|nor'easter|c'mon|e'er|s'mores|ev'ry|li'l|nat'l`),
  ];
  const URLPATH = String.raw`\/[^ \t\n\f\r"<>|()]+[^ \t\n\f\r"<>|.!?(){},\-]`;
  const FULLURL = caseless('https?') + String.raw`:\/\/[^ \t\n\f\r"<>|()]+[^ \t\n\f\r"<>|.!?(){},\-]`;
  const LIKELYURL_ALTS = [
    caseless('www') + String.raw`\.(?:[^ \t\n\f\r"<>|.!?(){},]+\.)+[a-zA-Z]{2,4}(?:${URLPATH})?`,
    // The Stanford class writes `,-_` here, which is the range U+002C..U+005F; kept as a range.
    String.raw`(?:[^ \t\n\f\r"\x60'<>|.!?(){}\u002c-\u005f$]+\.)+` + caseless('(?:com|net|org|edu)') + `(?:${URLPATH})?`,
  ];
  const EMAIL = String.raw`[a-zA-Z0-9][^ \t\n\f\r"<>|()\u00a0]*@(?:[^ \t\n\f\r"<>|().\u00a0]+\.)*[^ \t\n\f\r"<>|().\u00a0]+`;
  const TWITTER_ALTS = [String.raw`@[a-zA-Z_][a-zA-Z_0-9]*`, `#${WORD}`];

  const ABMONTH = 'Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept|Sep|Oct|Nov|Dec';
  const ABDAYS = 'Mon|Tues|Tue|Wed|Thurs|Thu|Fri';
  const ABSTATE = 'Ala|Ariz|[A]rk|Calif|Colo|Conn|Dak|Del|Fla|Ga|[I]ll|Ind|Kans?|Ky|La|[M]ass|Md|Mich|Minn|[M]iss|Mo|Mont|Neb|Nev|Okla|[O]re|Pa|Penn|Tenn|Tex|Va|Vt|[W]ash|Wisc?|Wyo';
  const ABCOMP = 'Inc|Cos?|Corp|Pp?tys?|Ltd|Plc|Bancorp|Dept|Bhd|Assn|Univ|Intl|Sys';
  const ABCOMP2 = 'Invt|Elec|Natl|M[ft]g';
  const ABNUM = 'Nos?|Prop|Ph|tel|est|ext|sq|ft';
  const ABPTIT = String.raw`(?:Ed|Ph)\.D|Jr|Sr|Bros|Blvd|Rd|Esq`;
  const ABTITLE = 'Mr|Mrs|Ms|[M]iss|Drs?|Profs?|Sens?|Reps?|Attys?|Lt|Col|Gen|Messrs|Govs?|Adm|Rev|Maj|Sgt|Cpl|Pvt|Mt|Capt|Ste?|Ave|Pres|Lieut|Hon|Brig|Co?mdr|Pfc|Spc|Supts?|Det';
  // Each word must be followed by the period, so only the exact word can match; `Ph.D` is put
  // before `Ph` so the longer of the two is tried first.
  const ABBREV1 = caseless(`(?:${ABPTIT}|${ABMONTH}|${ABDAYS}|${ABSTATE}|${ABCOMP}|${ABNUM}|etc|al|seq)`) + String.raw`\.`;
  const ABBREV4 = `(?:${caseless(String.raw`a\.k\.a`)}|${ACRO}|${caseless(`${ABTITLE}|vs|Alex|Wm|Jos|Cie|cf|TREAS|${ABCOMP2}`)}|[A-Za-z])`;
  const ABBREV2 = `${ABBREV4}\\.`;
  const ACRONYM = `${ACRO}\\.`;
  const ACRONYM_NEXT = caseless(String.raw`(?:[A]bout|[A]ccording|[A]dditionally|[A]fter|[A]n|[A]|[A]s|[A]t|[B]ut|[E]arlier|[H]e|[H]er|[H]ere|[H]owever|[I]f|[I]n|[I]t|[L]ast|[M]any|[M]ore|[M]r\.|[M]s\.|[N]ow|[O]nce|[O]ne|[O]ther|[O]ur|[S]he|[S]ince|[S]o|[S]ome|[S]uch|[T]hat|[T]he|[T]hen|[T]here|[T]hese|[T]hey|[T]his|[W]e|[W]hen|[W]hile|[W]hat|[Y]et|[Y]ou|SGML)`);
  const PHONE_ALTS = [
    String.raw`(?:\([0-9]{2,3}\)[ \u00a0]?|(?:\+\+?)?(?:[0-9]{2,4}[\- \u00a0])?[0-9]{2,4}[\- \u00a0])[0-9]{3,4}[\- \u00a0]?[0-9]{3,5}`,
    String.raw`(?:(?:\+\+?)?[0-9]{2,4}\.)?[0-9]{2,4}\.[0-9]{3,4}\.[0-9]{3,5}`,
  ];
  const OPBRAC = `(?:[<\\[]|${caseless('&lt;')})`;
  const CLBRAC = `(?:[>\\]]|${caseless('&gt;')})`;
  const LDOTS_ALTS = [String.raw`\.{3,5}`, String.raw`(?:\.[ \u00a0]){2,4}\.`, String.raw`[\u0085\u2026]`];
  const ASTS_ALTS = [String.raw`\*+`, String.raw`(?:\\\*){1,3}`];
  const INSENTP = String.raw`[,;:\u3001]`;
  const QUOTES_ALTS = [
    "''",
    String.raw`[\x60\u2018\u2019\u201a\u201b\u201c\u201d\u0091\u0092\u0093\u0094\u201e\u201f\u2039\u203a\u00ab\u00bb]{1,2}`,
    APOS,
  ];
  const DBLQUOT = `(?:"|${caseless('&quot;')})`;
  const TBSPEC_ALTS = [
    caseless(String.raw`-(?:RRB|LRB|RCB|LCB|RSB|LSB)-`),
    caseless(String.raw`C\.D\.s`),
    caseless('pro-'),
    caseless('anti-'),
    caseless('S') + `(?:&|${caseless('&amp;')})` + caseless('P-500'),
    caseless('S') + `(?:&|${caseless('&amp;')})` + caseless('Ls'),
    `${caseless('Cap')}${APOS}${caseless('n')}`,
    `${caseless('c')}${APOS}${caseless('est')}`,
  ];
  const TBSPEC2 = `${APOS}[0-9][0-9]`;
  const MISCSYMBOL = String.raw`[+%&~\^|\\\u00a6\u00a7\u00a8\u00a9\u00ac\u00ae\u00af\u00b0-\u00b3\u00b4-\u00ba\u00d7\u00f7\u0387\u05be\u05c0\u05c3\u05c6\u05f3\u05f4\u0600-\u0603\u0606-\u060a\u060c\u0614\u061b\u061e\u066a\u066d\u0703-\u070d\u07f6\u07f7\u07f8\u0964\u0965\u0e4f\u1fbd\u2016\u2017\u2020-\u2023\u2030-\u2038\u203b\u203e-\u2042\u2044\u207a-\u207f\u208a-\u208e\u2100-\u214f\u2190-\u21ff\u2200-\u2bff\u3012\u30fb\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65]`;

  const rule = (alts: string | string[], act: (text: string) => Emit, trail?: string): Rule => {
    const list = Array.isArray(alts) ? alts : [alts];
    return {
      alts: list.map((a) => new RegExp(trail === undefined ? `(?:${a})` : `(?:${a})(?=(${trail}))`, 'y')),
      firsts: list.map((a) => {
        const f = firstChars(a);
        // A rule whose match could be empty could start anywhere.
        return f.nullable ? /[^]/ : new RegExp(`^(?:${f.atoms.join('|')})$`);
      }),
      act,
    };
  };
  const keep = (text: string): Emit => tok(text, text);
  const skip = (text: string): Emit => tok(null, text);
  const word = (text: string): Emit => tok(americanize(removeSoftHyphens(text)), text);
  const softHyphens = (text: string): Emit => tok(removeSoftHyphens(text), text);
  const rightQuote = (text: string): Emit => tok(latexQuotes(text, false), text);
  const leftQuote = (text: string): Emit => tok(latexQuotes(text, true), text);
  const url = (text: string): Emit => tok(escapeChar(escapeChar(text, '/'), '*'), text);
  const slashes = (text: string): Emit => tok(escapeChar(text, '/'), text);
  // Emits the whole abbreviation and gives its final period back, to be read again as a token.
  const periodTwice = (text: string): Emit => ({ token: text, consumed: text.length - 1 });
  const fixed = (value: string) => (text: string): Emit => tok(value, text);

  return [
    rule(caseless('cannot'), (text) => ({ token: text.slice(0, 3), consumed: 3 })),
    rule(SGML, (text) => tok(text.replace(/ /g, '\u00a0'), text)),
    rule([caseless('&(?:MD|mdash|ndash);'), String.raw`[\u0096\u0097\u2013\u2014\u2015]`], fixed('--')),
    rule(caseless('&amp;'), (text) => tok(normalizeAmp(text), text)),
    rule(caseless('&(?:HT|TL|UR|LR|QC|QL|QR|odq|cdq|#[0-9]+);'), keep),
    rule(WORD, word, REDAUX),
    rule(SWORD, softHyphens, SREDAUX),
    rule(WORD, word),
    rule(APOWORD_ALTS, keep),
    rule(`${caseless('y')}${APOS}`, keep, LETTER),
    rule(FULLURL, url),
    rule(LIKELYURL_ALTS, url),
    rule(EMAIL, keep),
    rule(TWITTER_ALTS, keep),
    rule(REDAUX, rightQuote, '[^A-Za-z]'),
    rule(SREDAUX, rightQuote),
    rule(DATE, slashes),
    rule(NUMBER_ALTS, softHyphens),
    rule(SUBSUPNUM, keep),
    rule(FRAC, (text) => tok(escapeChar(text, '/').replace(/ /g, '\u00a0'), text)),
    rule(FRAC2, (text) => tok(normalizeFractions(text), text)),
    rule(TBSPEC_ALTS, (text) => tok(normalizeAmp(text), text)),
    rule(THING3, slashes),
    rule(DOLSIGN, keep),
    rule(DOLSIGN2, (text) => tok(normalizeCurrency(text), text)),
    rule(ACRONYM, periodTwice, `${SPACENLS}${ACRONYM_NEXT}${SPACENL}`),
    rule(ABBREV1, periodTwice, SENTEND),
    rule(ABBREV1, keep, '[^]{2}'),
    rule(ABBREV1, periodTwice),
    rule(ABBREV2, keep),
    rule(ABBREV4, keep, SPACE),
    rule(ACRO, keep, SPACENL),
    rule(TBSPEC2, keep, SPACENL),
    rule(`${WORD}\\.`, softHyphens, INSENTP),
    rule(PHONE_ALTS, (text) => tok(text.replace(/ /g, '\u00a0').replace(/\(/g, '-LRB-').replace(/\)/g, '-RRB-'), text)),
    rule(DBLQUOT, leftQuote, '[A-Za-z0-9$]'),
    rule(DBLQUOT, rightQuote),
    // The Stanford grammar writes `0x7f` here, which JFlex reads as those four letters, not a character.
    rule(caseless('0x7f'), skip),
    rule(OPBRAC, fixed('-LRB-')),
    rule(CLBRAC, fixed('-RRB-')),
    rule(String.raw`\{`, fixed('-LCB-')),
    rule(String.raw`\}`, fixed('-RCB-')),
    rule(String.raw`\(`, fixed('-LRB-')),
    rule(String.raw`\)`, fixed('-RRB-')),
    rule(String.raw`\-+`, (text) => tok(text.length >= 3 && text.length <= 4 ? '--' : text, text)),
    rule(LDOTS_ALTS, fixed('...')),
    rule(['@+', '#+', '_+'], keep),
    rule(ASTS_ALTS, (text) => tok(escapeChar(text, '*'), text)),
    rule(INSENTP, keep),
    rule('[?!]+', keep),
    rule(String.raw`[.\u00a1\u00bf\u037e\u0589\u061f\u06d4\u0700-\u0702\u07fa\u3002]`, keep),
    rule('=', keep),
    rule(String.raw`\/`, slashes),
    rule(`${HTHING}\\.`, softHyphens, INSENTP),
    rule(HTHING, softHyphens),
    rule(`${THING}\\.`, keep, INSENTP),
    rule(THING, keep),
    rule(`${THINGA}\\.`, (text) => tok(normalizeAmp(text), text), INSENTP),
    rule(THINGA, (text) => tok(normalizeAmp(text), text)),
    rule("'", leftQuote, String.raw`[A-Za-z][^ \t\n\r\u00a0]`),
    rule(REDAUX, rightQuote),
    rule(QUOTES_ALTS, rightQuote),
    rule('<<|>>', keep),
    rule(MISCSYMBOL, keep),
    rule(String.raw`\u0000|${SPACE}+|[\u200b\u200e\u200f\ufeff]`, skip),
    rule(NEWLINE, fixed(NEWLINE_TOKEN)),
    rule(caseless('&nbsp;'), skip),
  ];
}
