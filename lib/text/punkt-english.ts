/**
 * Parameters of NLTK's pretrained English Punkt sentence model (nltk_data `tokenizers/punkt`, the
 * `english.pickle` that `nltk.sent_tokenize` and `nltk.word_tokenize` load; NLTK data, Apache-2.0),
 * restated here so that torchcap can split sentences the way the book's `word_tokenize` does without
 * NLTK or its data.
 *
 * Included: the abbreviation types, the collocations and the frequent sentence starters, complete.
 * Not included: the model's orthographic-context table (tens of thousands of words recording whether
 * each was seen capitalised, lower case, sentence-initially or internally). torchcap uses an empty
 * table. On lower-cased text, which is all the book tokenizes, the table matters in one situation
 * only: a single letter or a number ending in a period ("u.", "3.") that is not itself an
 * abbreviation type, followed by a word that starts with a lower-case letter. Punkt then keeps the
 * period inside the sentence unless the trained model saw that next word sentence-initially in lower
 * case and never capitalised (a handful of rare words, such as "b-week"). With the empty table the
 * period always stays inside the sentence. `sentences.ts` describes the decision rules.
 *
 * The block between the two markers is plain JSON; `scripts/fixtures/make-tokenizer-fixtures.py`
 * reads it from this file to give NLTK's own Punkt code the same parameters.
 */

export interface PunktParameters {
  /** Lower-cased word types (without their final period) that are abbreviations. */
  readonly abbrevTypes: readonly string[];
  /** Pairs (type before the period, type after it) that are not sentence breaks. */
  readonly collocations: readonly (readonly [string, string])[];
  /** Lower-cased types that frequently start a sentence. */
  readonly sentStarters: readonly string[];
  /** Orthographic context flags per lower-cased type (Punkt's `_ORTHO_*` bits); absent = 0. */
  readonly orthoContext: Readonly<Record<string, number>>;
}

export const PUNKT_ENGLISH: PunktParameters = /* PUNKT-PARAMETERS-BEGIN */ {
  "abbrevTypes": [
    "a.a", "a.c", "a.d", "a.g", "a.h", "a.m", "a.m.e", "a.s", "a.t", "adm", "ala", "ariz", "aug",
    "ave", "b.f", "b.v", "bros", "c", "c.i.t", "c.o.m.b", "c.v", "calif", "chg", "cie", "co", "col",
    "colo", "conn", "corp", "cos", "ct", "d", "d.c", "d.h", "d.w", "dec", "dr", "e", "e.f", "e.h",
    "e.l", "e.m", "f", "f.g", "f.j", "feb", "fla", "fri", "ft", "g", "g.d", "g.f", "g.k", "ga",
    "gen", "h", "h.c", "h.f", "h.m", "i.m.s", "ill", "inc", "j.b", "j.c", "j.j", "j.k", "j.p", "j.r",
    "jan", "jr", "k", "kan", "ky", "l", "l.a", "l.f", "l.p", "lt", "ltd", "m", "m.b.a", "m.d.c",
    "m.j", "maj", "messrs", "mg", "mich", "minn", "mr", "mrs", "ms", "n", "n.c", "n.d", "n.h", "n.j",
    "n.m", "n.v", "n.y", "nev", "nov", "oct", "ok", "okla", "ore", "p", "p.a.m", "p.m", "pa", "ph.d",
    "prof", "r", "r.a", "r.h", "r.i", "r.j", "r.k", "r.t", "rep", "reps", "s", "s.a", "s.a.y", "s.c",
    "s.g", "s.p.a", "s.s", "sen", "sep", "sept", "sr", "st", "sw", "t", "t.j", "tenn", "tues", "u.k",
    "u.n", "u.s", "u.s.a", "u.s.s.r", "v", "va", "vs", "vt", "w", "w.c", "w.r", "w.va", "w.w",
    "wash", "wed", "wis", "yr", ". ."
  ],
  "collocations": [
    ["##number##", "abreast"], ["##number##", "aes"], ["##number##", "business"],
    ["##number##", "cbot"], ["##number##", "colgate"], ["##number##", "commodities"],
    ["##number##", "cooper"], ["##number##", "corrections"], ["##number##", "credit"],
    ["##number##", "dividend"], ["##number##", "financing"], ["##number##", "genentech"],
    ["##number##", "henley"], ["##number##", "insider"], ["##number##", "international"],
    ["##number##", "leisure"], ["##number##", "letters"], ["##number##", "notable"],
    ["##number##", "pay-fone"], ["##number##", "pegasus"], ["##number##", "pepper"],
    ["##number##", "review"], ["##number##", "rj"], ["##number##", "wedgestone"],
    ["##number##", "who"], ["##number##", "zimmer"], ["b", "edelman"], ["b", "levine"],
    ["b", "smith"], ["b", "stewart"], ["b", "wigton"], ["i", "magnin"], ["i", "toussie"],
    ["j", "aron"], ["j", "fialka"], ["j", "walter"], ["o", "ludcke"]
  ],
  "sentStarters": [
    "according", "although", "among", "both", "but", "despite", "even", "he", "however", "i", "if",
    "in", "indeed", "instead", "it", "many", "meanwhile", "moreover", "most", "nevertheless",
    "nonetheless", "nor", "separately", "similarly", "since", "so", "sales", "some", "the", "there",
    "these", "they", "this", "though", "thus", "under", "when", "while", "yet"
  ],
  "orthoContext": {}
} /* PUNKT-PARAMETERS-END */;
