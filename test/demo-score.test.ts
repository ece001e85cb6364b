/**
 * How the demo judges a caption of a scene: read back into objects with the canonical grammar,
 * exact or not, and which attributes are right, over all scenes and the seen and unseen ones apart.
 */
import { describeScene, makeScene, WITHHELD_KINDS } from '../lib/demo/scenes';
import { isExactCaption, parseSceneCaption, scoreSceneCaptions, type ScoredScene } from '../lib/demo/scene-score';

const scene = (caption: string, unseen = false): ScoredScene => ({ caption, objects: parseSceneCaption(caption)! as ScoredScene['objects'], unseen });

describe('parseSceneCaption', () => {
  test('reads every canonical caption back into the objects it was made from', () => {
    for (let i = 0; i < 300; i++) {
      const s = makeScene(3, i, { objectsPerScene: [1, 3], withheld: WITHHELD_KINDS, show: i % 3 ? 'seen' : 'unseen' });
      const named = parseSceneCaption(s.caption);
      expect(named).toEqual(s.objects.map((o) => ({ size: o.size, color: o.color, shape: o.shape, position: o.position })));
      expect(describeScene(s.objects)).toBe(s.caption);
    }
  });

  test('takes the surface forms of the references (capitals, a final period) and captions without positions', () => {
    expect(parseSceneCaption('A large red circle on the left and a small blue square on the right.')).toEqual([
      { size: 'large', color: 'red', shape: 'circle', position: 'left' },
      { size: 'small', color: 'blue', shape: 'square', position: 'right' },
    ]);
    expect(parseSceneCaption('a small white cross, a large black triangle and a small green circle')).toEqual([
      { size: 'small', color: 'white', shape: 'cross' },
      { size: 'large', color: 'black', shape: 'triangle' },
      { size: 'small', color: 'green', shape: 'circle' },
    ]);
  });

  test('names nothing for a caption off the grammar', () => {
    for (const c of ['', 'a large red circle on the', 'there is a large red circle on the left', 'a large purple circle', 'a red circle on the left', 'a large red circle on the left and']) {
      expect(parseSceneCaption(c)).toBeNull();
    }
  });
});

describe('scoreSceneCaptions', () => {
  const truth = [
    scene('a large red circle on the left and a small blue square on the right'),
    scene('a small black cross in the middle'),
    scene('a large red cross on the left and a small green circle on the right', true),
    scene('a small yellow square on the right', true),
  ];

  test('all right: every share is 1', () => {
    const r = scoreSceneCaptions(truth, truth.map((s) => s.caption.toUpperCase() + '.'));
    for (const part of [r.all, r.seen, r.unseen]) {
      expect(part.exact).toBe(1);
      expect(Object.values(part.attributes)).toEqual([1, 1, 1, 1, 1]);
    }
    expect([r.all.scenes, r.seen.scenes, r.unseen.scenes]).toEqual([4, 2, 2]);
  });

  test('one wrong word costs exactness and that attribute only; a missing object costs all of its attributes and the count', () => {
    const captions = [
      'a large red circle on the left and a small blue circle on the right', // shape of the second object wrong
      'a small black cross in the middle', // right
      'a large red cross on the left', // the second object missing
      'a small yellow square on the left', // position wrong
    ];
    const r = scoreSceneCaptions(truth, captions);
    expect(r.all.exact).toBe(0.25);
    expect(r.seen.exact).toBe(0.5);
    expect(r.unseen.exact).toBe(0);
    // 6 objects drawn in all.
    expect(r.all.attributes).toEqual({ count: 0.75, color: 5 / 6, shape: 4 / 6, size: 5 / 6, position: 4 / 6 });
    expect(r.seen.attributes).toEqual({ count: 1, color: 1, shape: 2 / 3, size: 1, position: 1 });
    expect(r.unseen.attributes).toEqual({ count: 0.5, color: 2 / 3, shape: 2 / 3, size: 2 / 3, position: 1 / 3 });
  });

  test('a caption off the grammar gets nothing right; no unseen scenes give NaN, not a made-up share', () => {
    const r = scoreSceneCaptions(truth.slice(0, 2), ['a picture of things', 'a small black cross in the middle']);
    expect(r.all.exact).toBe(0.5);
    expect(r.all.attributes.shape).toBe(1 / 3);
    expect(r.unseen.scenes).toBe(0);
    expect(r.unseen.exact).toBeNaN();
  });

  test('refuses captions that do not pair with the scenes', () => {
    expect(() => scoreSceneCaptions(truth, ['a small black cross in the middle'])).toThrow(/4 scenes but 1 captions/);
  });

  test('isExactCaption ignores case, surrounding space and a final period only', () => {
    expect(isExactCaption(' A small black cross in the middle. ', 'a small black cross in the middle')).toBe(true);
    expect(isExactCaption('a small black cross in the middle ,', 'a small black cross in the middle')).toBe(false);
    expect(isExactCaption('a little black cross in the middle', 'a small black cross in the middle')).toBe(false);
  });
});
