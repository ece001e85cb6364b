/** The captions of a demo scene: the canonical description and its paraphrased references. */
import { CAPTIONS_PER_IMAGE, DEFAULT_CANONICAL_REFERENCES, SceneOptionsError, type ObjectKind, type Position, type SceneObject, type SizeName } from './scene-layout';

// ---------------------------------------------------------------------------------------------
// Captions

const SIZE_SYNONYM: Readonly<Record<SizeName, string>> = { large: 'big', small: 'little' };
const POSITION_PHRASE: Readonly<Record<Position, string>> = { left: 'on the left', middle: 'in the middle', right: 'on the right' };
const POSITION_PARAPHRASE: Readonly<Record<Position, string>> = { left: 'on the left side', middle: 'in the center', right: 'on the right side' };

/** "a", or "an" before a vowel sound (none of the default words needs it). */
function article(word: string): string {
  return /^[aeiou]/.test(word) ? 'an' : 'a';
}

/** "large red cross": an object kind in words. */
export function describeObjectKind(kind: ObjectKind): string {
  return `${kind.size} ${kind.color} ${kind.shape}`;
}

function nounPhrase(o: SceneObject, synonyms = false): string {
  const size = synonyms ? SIZE_SYNONYM[o.size] : o.size;
  return `${article(size)} ${size} ${o.color} ${o.shape}`;
}

function joinList(parts: readonly string[]): string {
  if (parts.length <= 1) return parts.join('');
  return `${parts.slice(0, -1).join(', ')} and ${parts[parts.length - 1]}`;
}

function withPlaces(objects: readonly SceneObject[], opts: { synonyms?: boolean; paraphrase?: boolean } = {}): string {
  const table = opts.paraphrase ? POSITION_PARAPHRASE : POSITION_PHRASE;
  return joinList(objects.map((o) => `${nounPhrase(o, opts.synonyms)} ${table[o.position]}`));
}

/**
 * The canonical caption of a scene (lower case, no final period): each object as "a SIZE COLOUR
 * SHAPE", followed by where it is unless `positions` is false, joined with commas and "and".
 */
export function describeScene(objects: readonly SceneObject[], opts: { positions?: boolean } = {}): string {
  if (objects.length === 0) throw new SceneOptionsError('a scene has at least one object');
  if (opts.positions ?? true) return withPlaces(objects);
  return joinList(objects.map((o) => nounPhrase(o)));
}

type Paraphrase = (objects: readonly SceneObject[]) => string;

/** Paraphrases of scenes with positions; each keeps the objects in caption order. */
const PLACED_PARAPHRASES: readonly Paraphrase[] = [
  (s) => `there is ${withPlaces(s)}`,
  (s) => withPlaces(s, { synonyms: true }),
  (s) => withPlaces(s, { paraphrase: true }),
  (s) => `a gray background with ${withPlaces(s)}`,
  (s) => {
    if (s.length === 1) return `a single ${withPlaces(s).replace(/^an? /, '')}`;
    if (s.length === 2) return `${nounPhrase(s[0])} to the left of ${nounPhrase(s[1])}`;
    return `${joinList(s.map((o) => nounPhrase(o)))} from left to right`;
  },
];

/** Paraphrases of scenes without positions. */
const UNPLACED_PARAPHRASES: readonly Paraphrase[] = [
  (s) => `there is ${describeScene(s, { positions: false })}`,
  (s) => joinList(s.map((o) => nounPhrase(o, true))),
  (s) => `a picture of ${describeScene(s, { positions: false })}`,
  (s) => `a gray background with ${describeScene(s, { positions: false })}`,
  (s) => (s.length === 1 ? `a single ${describeScene(s, { positions: false }).replace(/^an? /, '')}` : `${describeScene(s, { positions: false })} side by side`),
];

/** COCO-like surface: mostly sentence case, sometimes a final period. */
function surface(rng: () => number, caption: string): string {
  const cased = rng() < 0.8 ? caption.charAt(0).toUpperCase() + caption.slice(1) : caption;
  return rng() < 0.5 ? `${cased}.` : cased;
}

/**
 * The five references of a scene: `canonical` copies of the canonical caption and paraphrases
 * (distinct, chosen with `rng`) for the rest, each with COCO-like capitals and periods, shuffled.
 */
export function sceneReferences(objects: readonly SceneObject[], rng: () => number, opts: { positions?: boolean; canonical?: number } = {}): string[] {
  const positions = opts.positions ?? true;
  const canonical = opts.canonical ?? DEFAULT_CANONICAL_REFERENCES;
  if (!Number.isInteger(canonical) || canonical < 1 || canonical > CAPTIONS_PER_IMAGE) {
    throw new SceneOptionsError(`canonicalReferences must be an integer from 1 to ${CAPTIONS_PER_IMAGE}, got ${String(canonical)}`);
  }
  const base = describeScene(objects, { positions });
  const pool = [...(positions ? PLACED_PARAPHRASES : UNPLACED_PARAPHRASES)];
  const captions: string[] = [];
  for (let i = 0; i < canonical; i++) captions.push(base);
  while (captions.length < CAPTIONS_PER_IMAGE) {
    const [f] = pool.splice(Math.floor(rng() * pool.length), 1);
    captions.push(f(objects));
  }
  for (let i = captions.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [captions[i], captions[j]] = [captions[j], captions[i]];
  }
  return captions.map((c) => surface(rng, c));
}

