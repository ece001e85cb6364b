/**
 * How right a caption of a demo scene is, in the terms a person would judge it: whether it is
 * exactly the scene's canonical caption, and which attributes of the objects it gets right.
 *
 * A caption is read back into objects with the grammar of the canonical caption ("a SIZE COLOUR
 * SHAPE on the left, ... and a SIZE COLOUR SHAPE on the right"); a caption that does not follow it
 * names no object and so gets every attribute wrong. Objects are compared place by place, in
 * caption order (left to right): the first named object with the leftmost drawn one, and so on.
 *
 * - exact: the share of scenes whose caption equals the canonical caption (lower case, surrounding
 *   space and a final period ignored);
 * - count: the share of scenes whose caption names as many objects as are drawn;
 * - color, shape, size, position: the share of drawn objects whose counterpart in the caption has
 *   the right value (a drawn object without a counterpart counts as wrong).
 */
import { COLORS, SHAPES, SIZES, type ObjectKind, type Position, type SceneObject } from './scene-layout';

export const ATTRIBUTES = ['count', 'color', 'shape', 'size', 'position'] as const;
export type Attribute = (typeof ATTRIBUTES)[number];

/** An object as a caption names it. */
export interface NamedObject extends ObjectKind {
  /** Absent when the caption names no position. */
  position?: Position;
}

const PHRASE_POSITION: Readonly<Record<string, Position>> = { 'on the left': 'left', 'in the middle': 'middle', 'on the right': 'right' };
const OBJECT = new RegExp(
  `^an? (${SIZES.join('|')}) (${COLORS.join('|')}) (${SHAPES.join('|')})(?: (${Object.keys(PHRASE_POSITION).join('|')}))?$`,
);

function normalize(caption: string): string {
  return caption.trim().toLowerCase().replace(/\s*\.$/, '').replace(/\s+/g, ' ');
}

/**
 * The objects a caption names, in order, or null when it does not follow the canonical grammar.
 * `parseSceneCaption('a large red circle on the left and a small blue square on the right')` gives
 * two objects.
 */
export function parseSceneCaption(caption: string): NamedObject[] | null {
  const text = normalize(caption);
  const last = text.lastIndexOf(' and ');
  const parts = last < 0 ? [text] : [...text.slice(0, last).split(', '), text.slice(last + 5)];
  const objects: NamedObject[] = [];
  for (const part of parts) {
    const m = OBJECT.exec(part);
    if (!m) return null;
    const o: NamedObject = { size: m[1] as NamedObject['size'], color: m[2] as NamedObject['color'], shape: m[3] as NamedObject['shape'] };
    if (m[4]) o.position = PHRASE_POSITION[m[4]];
    objects.push(o);
  }
  return objects;
}

/** A scene as scoring needs it: its canonical caption and what it shows. */
export interface ScoredScene {
  caption: string;
  objects: readonly Pick<SceneObject, 'size' | 'color' | 'shape' | 'position'>[];
  unseen?: boolean;
}

export interface SceneScores {
  /** Scenes scored. */
  scenes: number;
  /** Share of captions equal to the canonical caption. */
  exact: number;
  /** Share of scenes or objects right, per attribute (see the module comment). */
  attributes: Record<Attribute, number>;
}

export interface SceneScoreReport {
  all: SceneScores;
  /** Scenes drawn as the training ones. */
  seen: SceneScores;
  /** Scenes that show a withheld kind. */
  unseen: SceneScores;
}

/** Whether `caption` is the scene's canonical caption (case, surrounding space and a final period aside). */
export function isExactCaption(caption: string, canonical: string): boolean {
  return normalize(caption) === normalize(canonical);
}

function score(scenes: readonly ScoredScene[], captions: readonly string[]): SceneScores {
  let exact = 0;
  let counts = 0;
  let objects = 0;
  const right: Record<Exclude<Attribute, 'count'>, number> = { color: 0, shape: 0, size: 0, position: 0 };
  scenes.forEach((scene, i) => {
    const named = parseSceneCaption(captions[i]) ?? [];
    if (isExactCaption(captions[i], scene.caption)) exact++;
    if (named.length === scene.objects.length) counts++;
    scene.objects.forEach((o, j) => {
      objects++;
      const n = named[j];
      if (!n) return;
      for (const a of ['color', 'shape', 'size', 'position'] as const) if (n[a] === o[a]) right[a]++;
    });
  });
  const share = (k: number, n: number): number => (n ? k / n : NaN);
  return {
    scenes: scenes.length,
    exact: share(exact, scenes.length),
    attributes: {
      count: share(counts, scenes.length),
      color: share(right.color, objects),
      shape: share(right.shape, objects),
      size: share(right.size, objects),
      position: share(right.position, objects),
    },
  };
}

/** Scores `captions[i]` against `scenes[i]`, over all scenes and over the seen and unseen ones apart. */
export function scoreSceneCaptions(scenes: readonly ScoredScene[], captions: readonly string[]): SceneScoreReport {
  if (scenes.length !== captions.length) throw new RangeError(`scoreSceneCaptions: ${scenes.length} scenes but ${captions.length} captions`);
  const pick = (unseen: boolean) => {
    const idx = scenes.map((s, i) => (Boolean(s.unseen) === unseen ? i : -1)).filter((i) => i >= 0);
    return score(idx.map((i) => scenes[i]), idx.map((i) => captions[i]));
  };
  return { all: score(scenes, captions), seen: pick(false), unseen: pick(true) };
}
