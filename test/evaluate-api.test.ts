/**
 * The evaluation API: inputs, pairing, errors, degenerate captions, and METEOR through the jar's
 * stdio protocol (driven against a stand-in script, since neither Java nor the jar is required).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  CaptionEvaluator, type CocoCaptions, EvaluationInputError, computeMeteor, evaluateCaptions, evaluateCaptionsSync, locateMeteor, meteorScoreLine,
  readReferencesFile, readResultsFile, referencesFromCoco, resultsFromJson,
} from '../lib/evaluate';

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torchcap-evaluate-'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

const write = (name: string, content: string): string => {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, content);
  return file;
};

const coco: CocoCaptions = {
  images: [{ id: 3 }, { id: 1 }, { id: 2 }],
  annotations: [
    { image_id: 1, id: 10, caption: 'A dog runs on the grass.' },
    { image_id: 1, id: 11, caption: 'A brown dog running in a field.' },
    { image_id: 2, id: 12, caption: 'Two cats sleep on a red sofa.' },
    { image_id: 2, id: 13, caption: 'A pair of cats asleep on a couch.' },
    { image_id: 3, id: 14, caption: 'A man rides a bike down the street.' },
    { image_id: 3, id: 15, caption: 'Someone cycling along a city road.' },
    { image_id: 99, id: 16, caption: 'An image not listed in "images".' },
  ],
};

describe('reading references and results', () => {
  test('COCO captions: every listed image, in file order, with its captions', () => {
    const refs = referencesFromCoco(coco);
    expect([...refs.keys()]).toEqual([3, 1, 2]);
    expect(refs.get(1)).toEqual(['A dog runs on the grass.', 'A brown dog running in a field.']);
    expect(refs.has(99)).toBe(false);
  });

  test('files: missing, not JSON, wrong shape, each with a message naming the problem', () => {
    expect(() => readReferencesFile(path.join(tmp, 'nope.json'))).toThrow(/references file not found: .*nope\.json/);
    expect(() => readResultsFile(tmp)).toThrow(/results path is a directory/);
    expect(() => readResultsFile(write('bad.json', '[{"image_id": 1,'))).toThrow(/results file .*bad\.json is not valid JSON/);
    expect(() => readReferencesFile(write('arr.json', '[]'))).toThrow(/expected a COCO captions object .* got an array/);
    expect(() => readReferencesFile(write('noimg.json', '{"annotations": []}'))).toThrow(/missing the "images" array/);
    expect(() => readReferencesFile(write('noann.json', '{"images": []}'))).toThrow(/missing the "annotations" array/);
    expect(() => referencesFromCoco({ images: [{ id: 1 }], annotations: [{ image_id: 1 }] })).toThrow(/annotations\[0\] \(image 1\) has no "caption" string/);
    expect(() => referencesFromCoco({ images: [{ name: 'x' }], annotations: [] })).toThrow(/images\[0\] has no valid "id"/);
    expect(() => resultsFromJson({ image_id: 1, caption: 'x' })).toThrow(/expected an array of \{"image_id", "caption"\} objects, got object/);
    expect(() => resultsFromJson([])).toThrow(/no results to evaluate/);
    expect(() => resultsFromJson([{ image_id: 1, caption: 'ok' }, { image_id: 2 }])).toThrow(/entry 1 \(image 2\) has no "caption" string/);
    expect(() => resultsFromJson([{ caption: 'x' }])).toThrow(/entry 0 has no valid "image_id"/);
    // A byte-order mark is accepted.
    expect(readResultsFile(write('bom.json', '\ufeff[{"image_id": 1, "caption": "x"}]'))).toEqual([{ image_id: 1, caption: 'x' }]);
  });

  test('errors are EvaluationInputError', () => {
    try {
      resultsFromJson('nope');
      throw new Error('expected a throw');
    } catch (e) {
      expect(e).toBeInstanceOf(EvaluationInputError);
    }
  });
});

describe('pairing results with references (as pycocotools loadRes and coco-caption do)', () => {
  test('an image id in the results that the references lack is an error naming it', () => {
    expect(() => evaluateCaptionsSync(coco, [{ image_id: 1, caption: 'a dog' }, { image_id: 42, caption: 'x' }]))
      .toThrow(/results name 1 image id that is not in the references: 42/);
    // Ids compare by value and type, as in Python: "1" is not 1.
    expect(() => evaluateCaptionsSync(coco, [{ image_id: '1', caption: 'a dog' }])).toThrow(/"1".*"42" is not 42/);
    // Annotations of images not in "images" are never evaluated.
    expect(() => evaluateCaptionsSync(coco, [{ image_id: 99, caption: 'x' }])).toThrow(/not in the references: 99/);
  });

  test('two captions for one image is an error (the toolkit scores exactly one)', () => {
    expect(() => evaluateCaptionsSync(coco, [
      { image_id: 1, caption: 'a dog' }, { image_id: 2, caption: 'cats' }, { image_id: 1, caption: 'another dog' },
    ])).toThrow(/more than one caption for 1 image: 1 \(coco-caption scores exactly one caption per image\)/);
  });

  test('an evaluated image without reference captions is an error', () => {
    const refs = new Map<number, string[]>([[1, ['a dog']], [2, []]]);
    expect(() => evaluateCaptionsSync(refs, [{ image_id: 1, caption: 'a dog' }, { image_id: 2, caption: 'x' }]))
      .toThrow(/references have no captions for 1 evaluated image: 2/);
  });

  test('only images with a result are evaluated, in the references\' order', () => {
    const ev = evaluateCaptionsSync(coco, [{ image_id: 2, caption: 'two cats on a sofa' }, { image_id: 3, caption: 'a man on a bike' }]);
    expect(ev.images).toBe(2);
    expect(ev.perImage.map((p) => p.image_id)).toEqual([3, 2]);
  });

  test('references may be a Map of captions; string ids work', () => {
    const refs = new Map([['img-a', ['a black cat']], ['img-b', ['a white dog']]]);
    const ev = evaluateCaptionsSync(refs, [{ image_id: 'img-b', caption: 'a white dog' }, { image_id: 'img-a', caption: 'a black cat' }]);
    expect(ev.perImage.map((p) => p.image_id)).toEqual(['img-a', 'img-b']);
    expect(ev.metrics.ROUGE_L).toBe(1);
  });
});

describe('evaluateCaptionsSync', () => {
  const results = [
    { image_id: 1, caption: 'A dog running on the grass.' },
    { image_id: 2, caption: 'Two cats sleeping on a sofa.' },
    { image_id: 3, caption: 'A man riding a bike on the street.' },
  ];

  test('reports the toolkit\'s metric names, BLEU statistics, and what was not computed', () => {
    const ev = evaluateCaptionsSync(coco, results, { keepTokenized: true });
    expect(Object.keys(ev.metrics).sort()).toEqual(['Bleu_1', 'Bleu_2', 'Bleu_3', 'Bleu_4', 'CIDEr', 'ROUGE_L']);
    expect(ev.metrics.METEOR).toBeUndefined();
    expect(ev.unavailable.METEOR).toMatch(/Java program/);
    expect(ev.unavailable.SPICE).toMatch(/SPICE 1\.0 jar/);
    expect(ev.tokenized!.candidates).toEqual(['a man riding a bike on the street', 'a dog running on the grass', 'two cats sleeping on a sofa']);
    expect(ev.bleuStats.testlen).toBe(8 + 6 + 6);
    for (const v of Object.values(ev.metrics)) expect(Number.isFinite(v)).toBe(true);
    expect(ev.metrics.Bleu_1).toBeGreaterThan(ev.metrics.Bleu_4);
  });

  test('tokenization decides what matches: case, punctuation and spelling are normalized as in the toolkit', () => {
    const refs = new Map([[1, ['A grey cat, sitting.']], [2, ['a dog']]]);
    const a = evaluateCaptionsSync(refs, [{ image_id: 1, caption: 'a gray cat sitting' }, { image_id: 2, caption: 'a dog' }]);
    expect(a.perImage[0].ROUGE_L).toBe(1);
    expect(a.perImage[0].Bleu_4).toBeCloseTo(1, 6);
  });

  test('degenerate: empty, punctuation-only and unicode captions score without NaN', () => {
    const refs = new Map<number, string[]>([
      [1, ['A dog on the grass.']], [2, ['Deux chats sur un canapé.']], [3, ['テスト の 画像']], [4, ['...']], [5, ['Really?']],
    ]);
    const ev = evaluateCaptionsSync(refs, [
      { image_id: 1, caption: '' },
      { image_id: 2, caption: 'Deux chats sur un canapé !' },
      { image_id: 3, caption: 'テスト の 画像' },
      { image_id: 4, caption: '?' },
      // "?!" is one token, and only "?" and "!" are on the toolkit's list, so it stays.
      { image_id: 5, caption: 'Really?!' },
    ], { keepTokenized: true });
    expect(ev.tokenized!.candidates).toEqual(['', 'deux chats sur un canapé', 'テスト の 画像', '', 'really ?!']);
    expect(ev.tokenized!.references[3]).toEqual(['']);
    expect(ev.perImage[0].ROUGE_L).toBe(0);
    expect(ev.perImage[0].CIDEr).toBe(0);
    expect(ev.perImage[1].ROUGE_L).toBe(1);
    expect(ev.perImage[2].ROUGE_L).toBe(1);
    // An empty candidate against an empty reference: ROUGE-L 1, as Python's split(" ") makes them equal.
    expect(ev.perImage[3].ROUGE_L).toBe(1);
    for (const p of ev.perImage) for (const [k, v] of Object.entries(p)) if (k !== 'image_id') expect(Number.isNaN(v)).toBe(false);
  });

  test('degenerate: one image (CIDEr-D is 0 since every idf is log 1 = 0)', () => {
    const ev = evaluateCaptionsSync(new Map([[7, ['a red bus', 'a bus that is red']]]), [{ image_id: 7, caption: 'a red bus' }]);
    expect(ev.images).toBe(1);
    expect(ev.metrics.CIDEr).toBe(0);
    expect(ev.metrics.ROUGE_L).toBe(1);
    expect(ev.metrics.Bleu_1).toBeCloseTo(1, 6);
  });
});

describe('METEOR through the jar protocol', () => {
  let java: string;
  let failingJava: string;
  let jar: string;
  let logFile: string;
  beforeAll(() => {
    // Stand-in "java" launchers that run the protocol fixture under Node (settings are passed in
    // the launcher: the test's environment changes do not reach child processes).
    const fake = path.join(__dirname, 'fixtures/evaluate/fake-meteor.js');
    logFile = path.join(tmp, 'meteor.log');
    java = path.join(tmp, 'java');
    fs.writeFileSync(java, `#!/bin/sh\nFAKE_METEOR_LOG='${logFile}' exec '${process.execPath}' '${fake}' "$@"\n`, { mode: 0o755 });
    failingJava = path.join(tmp, 'java-failing');
    fs.writeFileSync(failingJava, `#!/bin/sh\nFAKE_METEOR_FAIL=after-score exec '${process.execPath}' '${fake}' "$@"\n`, { mode: 0o755 });
    fs.mkdirSync(path.join(tmp, 'meteor'));
    jar = path.join(tmp, 'meteor', 'meteor-1.5.jar');
    fs.writeFileSync(jar, 'not a real jar');
  });
  beforeEach(() => {
    fs.rmSync(logFile, { force: true });
  });
  const logged = () => fs.readFileSync(logFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l));

  test('the SCORE line strips "|||" from the candidate and collapses double spaces, as the toolkit does', () => {
    // Python: 'a ||| b  c'.replace('|||', '') is 'a  b  c', then .replace('  ', ' ') gives 'a b c'.
    expect(meteorScoreLine('a ||| b  c', ['r one', 'r two'])).toBe('SCORE ||| r one ||| r two ||| a b c');
  });

  test('runs the jar as coco-caption does and reads one score per image, then the corpus score', async () => {
    const m = await computeMeteor([['a dog', 'the dog'], ['two cats']], ['a dog runs', 'cats'], { jar, java });
    expect(m).toEqual({ available: true, score: (0.03 + 0.01) / 2, perImage: [0.03, 0.01] });
    const log = logged();
    expect(log[0].args).toEqual(['-jar', '-Xmx2G', jar, '-', '-', '-stdio', '-l', 'en', '-norm']);
    expect(fs.realpathSync(log[0].cwd)).toBe(fs.realpathSync(path.dirname(jar)));
    expect(log.slice(1).map((e: { line: string }) => e.line)).toEqual([
      'SCORE ||| a dog ||| the dog ||| a dog runs',
      'SCORE ||| two cats ||| cats',
      'EVAL ||| stats: 2 3 ||| stats: 1 1',
    ]);
  });

  test('evaluateCaptions adds METEOR, on the tokenized captions', async () => {
    const ev = await evaluateCaptions(new Map([[1, ['A dog, running!']], [2, ['Two cats.']]]), [
      { image_id: 1, caption: 'A dog runs.' }, { image_id: 2, caption: 'Cats' },
    ], { jar, java });
    expect(ev.metrics.METEOR).toBeCloseTo(0.02, 12);
    expect(ev.perImage.map((p) => p.METEOR)).toEqual([0.03, 0.01]);
    expect(ev.unavailable.METEOR).toBeUndefined();
    expect(logged().slice(1, 3).map((e: { line: string }) => e.line)).toEqual(['SCORE ||| a dog running ||| a dog runs', 'SCORE ||| two cats ||| cats']);
  });

  test('without a jar, or Java, or when the jar fails, METEOR is unavailable with the reason and no number', async () => {
    const saved = process.env.TORCHCAP_METEOR_JAR;
    delete process.env.TORCHCAP_METEOR_JAR;
    try {
      expect(locateMeteor({})).toEqual({ available: false, reason: expect.stringMatching(/no METEOR 1\.5 jar configured/) });
      expect(locateMeteor({ jar: path.join(tmp, 'missing.jar'), java })).toEqual({ available: false, reason: expect.stringMatching(/METEOR jar not found: .*missing\.jar/) });
      expect(locateMeteor({ jar, java: path.join(tmp, 'no-such-java') })).toEqual({ available: false, reason: expect.stringMatching(/Java not found/) });
      const m = await computeMeteor([['a'], ['b']], ['a', 'b'], { jar, java: failingJava });
      expect(m).toEqual({ available: false, reason: expect.stringMatching(/METEOR run failed: the jar stopped after 1 of 2 SCORE lines/) });
      const ev = await evaluateCaptions(new Map([[1, ['a dog']]]), [{ image_id: 1, caption: 'a dog' }], { jar: path.join(tmp, 'missing.jar'), java });
      expect(ev.metrics.METEOR).toBeUndefined();
      expect(ev.unavailable.METEOR).toMatch(/METEOR jar not found/);
    } finally {
      if (saved !== undefined) process.env.TORCHCAP_METEOR_JAR = saved;
    }
  });

  test('the jar path can come from TORCHCAP_METEOR_JAR', () => {
    const saved = process.env.TORCHCAP_METEOR_JAR;
    process.env.TORCHCAP_METEOR_JAR = jar;
    try {
      expect(locateMeteor({ java })).toEqual({ available: true, jar, java });
    } finally {
      if (saved === undefined) delete process.env.TORCHCAP_METEOR_JAR;
      else process.env.TORCHCAP_METEOR_JAR = saved;
    }
  });
});

describe('CaptionEvaluator (references tokenized once)', () => {
  test('gives exactly what evaluateCaptionsSync gives, for the whole set and for subsets', () => {
    const refs = new Map<number, string[]>([
      [1, ['A dog runs on the grass.', 'A brown dog running in a U.S.A']],
      [2, ['Two cats sleep on a red sofa.', 'the U.S.A']],
      [3, ['A man rides a bike.', 'Someone cycling, in the U.S.A']],
    ]);
    const evaluator = new CaptionEvaluator(refs);
    const all = [
      { image_id: 3, caption: 'a man on a bike in the U.S.A' }, { image_id: 1, caption: 'a dog on grass' }, { image_id: 2, caption: 'cats on a sofa' },
    ];
    for (const results of [all, all.slice(0, 2), all.slice(1), [all[2]]]) {
      const expected = evaluateCaptionsSync(refs, results, { keepTokenized: true });
      const got = evaluator.evaluate(results, { keepTokenized: true });
      expect(got).toEqual(expected);
    }
    // The last reference of an evaluation ends the tokenizer's input: "U.S.A" is then read as "U.S." and "A".
    expect(evaluator.evaluate([all[1]], { keepTokenized: true }).tokenized!.references).toEqual([['a dog runs on the grass', 'a brown dog running in a u.s. a']]);
    expect(evaluator.evaluate(all.slice(0, 2), { keepTokenized: true }).tokenized!.references[0]).toEqual(['a dog runs on the grass', 'a brown dog running in a u.s.a']);
    expect(() => evaluator.evaluate([{ image_id: 9, caption: 'x' }])).toThrow(/not in the references: 9/);
  });
});
