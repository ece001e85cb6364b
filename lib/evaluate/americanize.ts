/**
 * British-to-American spelling conversion as Stanford's PTBTokenizer applies it to plain words
 * (the `americanize` option, on by default in the CoreNLP 3.4 tokenizer that coco-caption runs).
 *
 * The conversion is case-sensitive and runs on the token as written, before coco-caption lowercases
 * it: `grey` becomes `gray`, `Grey` stays `Grey` (and is then lowercased to `grey`).
 */

/** Words shorter than this are never changed. */
const MIN_LENGTH_CHANGED = 4;
/** Words shorter than this are never rewritten by the suffix patterns. */
const MIN_LENGTH_PATTERN = 6;

/** Exact-word conversions, British spelling to American spelling. */
const WORD_MAP: ReadonlyMap<string, string> = new Map<string, string>([
  ['anaesthetic', 'anesthetic'], ['analogue', 'analog'], ['analogues', 'analogs'],
  ['analyse', 'analyze'], ['analysed', 'analyzed'], ['analysing', 'analyzing'],
  ['armoured', 'armored'], ['cancelled', 'canceled'], ['cancelling', 'canceling'],
  ['candour', 'candor'], ['capitalise', 'capitalize'], ['capitalised', 'capitalized'],
  ['capitalisation', 'capitalization'], ['centre', 'center'], ['chimaeric', 'chimeric'],
  ['clamour', 'clamor'], ['coloured', 'colored'], ['colouring', 'coloring'], ['colourful', 'colorful'],
  ['defence', 'defense'], ['Defence', 'Defense'],
  ['discolour', 'discolor'], ['discolours', 'discolors'], ['discoloured', 'discolored'],
  ['discolouring', 'discoloring'], ['encyclopaedia', 'encyclopedia'],
  ['endeavour', 'endeavor'], ['endeavours', 'endeavors'], ['endeavoured', 'endeavored'],
  ['endeavouring', 'endeavoring'], ['fervour', 'fervor'],
  ['favour', 'favor'], ['favours', 'favors'], ['favoured', 'favored'], ['favouring', 'favoring'],
  ['favourite', 'favorite'], ['favourites', 'favorites'], ['fibre', 'fiber'], ['fibres', 'fibers'],
  ['finalise', 'finalize'], ['finalised', 'finalized'], ['finalising', 'finalizing'],
  ['flavour', 'flavor'], ['flavours', 'flavors'], ['flavoured', 'flavored'], ['flavouring', 'flavoring'],
  ['glamour', 'glamour'], ['grey', 'gray'], ['harbour', 'harbor'], ['harbours', 'harbors'],
  ['homologue', 'homolog'], ['homologues', 'homologs'],
  ['honour', 'honor'], ['honours', 'honors'], ['honoured', 'honored'], ['honouring', 'honoring'],
  ['honourable', 'honorable'],
  ['humour', 'humor'], ['humours', 'humors'], ['humoured', 'humored'], ['humouring', 'humoring'],
  ['kerb', 'curb'], ['labelled', 'labeled'], ['labelling', 'labeling'],
  ['labour', 'labor'], ['Labour', 'Labor'], ['labours', 'labors'], ['laboured', 'labored'],
  ['labouring', 'laboring'], ['leant', 'leaned'], ['learnt', 'learned'],
  ['localise', 'localize'], ['localised', 'localized'], ['manoeuvre', 'maneuver'],
  ['manoeuvres', 'maneuvers'], ['maximise', 'maximize'], ['maximised', 'maximized'],
  ['maximising', 'maximizing'], ['meagre', 'meager'], ['minimise', 'minimize'],
  ['minimised', 'minimized'], ['minimising', 'minimizing'], ['modernise', 'modernize'],
  ['modernised', 'modernized'], ['modernising', 'modernizing'],
  ['misdemeanour', 'misdemeanor'], ['misdemeanours', 'misdemeanors'],
  ['neighbour', 'neighbor'], ['neighbours', 'neighbors'], ['neighbourhood', 'neighborhood'],
  ['neighbourhoods', 'neighborhoods'], ['oestrogen', 'estrogen'], ['oestrogens', 'estrogens'],
  ['organisation', 'organization'], ['organisations', 'organizations'],
  ['penalise', 'penalize'], ['penalised', 'penalized'],
  ['popularise', 'popularize'], ['popularised', 'popularized'], ['popularises', 'popularizes'],
  ['popularising', 'popularizing'], ['practise', 'practice'], ['practised', 'practiced'],
  ['pressurise', 'pressurize'], ['pressurised', 'pressurized'], ['pressurises', 'pressurizes'],
  ['pressurising', 'pressurizing'],
  ['realise', 'realize'], ['realised', 'realized'], ['realising', 'realizing'], ['realises', 'realizes'],
  ['recognise', 'recognize'], ['recognised', 'recognized'], ['recognising', 'recognizing'],
  ['recognises', 'recognizes'], ['rumoured', 'rumored'], ['rumouring', 'rumoring'],
  ['savour', 'savor'], ['savours', 'savors'], ['savoured', 'savored'], ['savouring', 'savoring'],
  ['splendour', 'splendor'], ['splendours', 'splendors'],
  ['theatre', 'theater'], ['theatres', 'theaters'], ['titre', 'titer'], ['titres', 'titers'],
  ['travelled', 'traveled'], ['travelling', 'traveling'],
]);

/** Month and day names the tokenizer capitalizes (coco-caption lowercases them again). */
const TIMEX_MAP: ReadonlyMap<string, string> = new Map(
  ['january', 'february', 'april', 'june', 'july', 'august', 'september', 'october', 'november',
    'december', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday']
    .map((w) => [w, w[0].toUpperCase() + w.slice(1)] as [string, string]),
);

interface SuffixRule { find: RegExp; replace: string; unless?: RegExp }

/** Pattern rewrites, tried in order; the first that matches (and is not excepted) wins. */
const SUFFIX_RULES: readonly SuffixRule[] = [
  { find: /haem(at)?o/g, replace: 'hem$1o' },
  { find: /aemia$/g, replace: 'emia' },
  { find: /([lL])eukaem/g, replace: '$1eukem' },
  { find: /programme(s?)$/g, replace: 'program$1' },
  {
    find: /^([a-z]{3,})our(s?)$/g,
    replace: '$1or$2',
    unless: new RegExp([
      'abatjour', 'beflour', 'bonjour', 'calambour', 'carrefour', 'cornflour', 'contour', 'de[tv]our',
      'dortour', 'dyvour', 'downpour', 'giaour', 'glamour', 'holour', 'inpour', 'outpour', 'pandour',
      'paramour', 'pompadour', 'recontour', 'repour', 'ryeflour', 'sompnour', 'tambour', 'troubadour',
      'tregetour', 'velour',
    ].join('|')),
  },
];

/**
 * The Stanford code screens words with one regular expression built from the rules' patterns with
 * their parentheses deleted, and only tries the rules when it matches. Deleting the parentheses
 * turns `haem(at)?o` into `haemat?o`, so `haemo...` words are never rewritten; this reproduces that.
 */
const SCREEN = /(?:haemat?o)|(?:aemia$)|(?:[lL]eukaem)|(?:programmes?$)|(?:^[a-z]{3,}ours?$)/;

/** Returns the American spelling of `word` as Stanford's tokenizer would, or `word` unchanged. */
export function americanize(word: string): string {
  const length = word.length;
  if (length < MIN_LENGTH_CHANGED) return word;
  const timex = TIMEX_MAP.get(word);
  if (timex !== undefined) return timex;
  const mapped = WORD_MAP.get(word);
  if (mapped !== undefined) return mapped;
  if (length < MIN_LENGTH_PATTERN || !SCREEN.test(word)) return word;
  for (const rule of SUFFIX_RULES) {
    rule.find.lastIndex = 0;
    if (!rule.find.test(word)) continue;
    if (rule.unless && rule.unless.test(word)) continue;
    rule.find.lastIndex = 0;
    return word.replace(rule.find, rule.replace);
  }
  return word;
}
