/**
 * Which images an evaluation captions (evaluate/set.ts): those the references name, found in a
 * folder by file name, restricted to a split (ids or file names, text or JSON), sorted by image
 * id, the first N; its scores are those of the references in their own order. And the HTML report
 * of an evaluation: the best and worst captions by CIDEr-D, the images not scored.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { evaluateCaptions, evaluationSet, readEvaluationSet, readSplitFile, compareImageIds, imageResolver, resultsToJson, resultsFromJson, writeEvaluationReport } from '../lib/evaluate';

let tmp: string;
let images: string;
let refsFile: string;

/** Five images listed out of id order; image 7 has two captions, 3 has one. */
const REFS = {
  images: [
    { id: 42, file_name: 'COCO_val2014_000000000042.jpg' },
    { id: 7, file_name: 'COCO_val2014_000000000007.jpg' },
    { id: 300, file_name: 'sub/COCO_val2014_000000000300.jpg' },
    { id: 3, file_name: 'COCO_val2014_000000000003.jpg' },
    { id: 19, file_name: 'COCO_val2014_000000000019.jpg' },
  ],
  annotations: [
    { image_id: 7, id: 1, caption: 'A dog runs on the grass.' },
    { image_id: 42, id: 2, caption: 'Two cats sleep on a red sofa.' },
    { image_id: 7, id: 3, caption: 'A brown dog running in a field.' },
    { image_id: 3, id: 4, caption: 'A man rides a bike down the street.' },
    { image_id: 300, id: 5, caption: 'A plate of food on a table.' },
    { image_id: 19, id: 6, caption: 'A red bus parked by the road.' },
  ],
};

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torchcap-evaluate-set-'));
  images = path.join(tmp, 'images');
  fs.mkdirSync(images);
  refsFile = path.join(tmp, 'refs.json');
  fs.writeFileSync(refsFile, JSON.stringify(REFS));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const write = (name: string, text: string): string => {
  const f = path.join(tmp, name);
  fs.writeFileSync(f, text);
  return f;
};

test('every image the references name, sorted by id, each looked for in the folder by its file_name', () => {
  const set = readEvaluationSet(refsFile, { images });
  expect(set.images.map((i) => i.id)).toEqual([3, 7, 19, 42, 300]);
  expect(set.images[4]).toEqual({ id: 300, file: 'sub/COCO_val2014_000000000300.jpg', path: path.join(images, 'sub', 'COCO_val2014_000000000300.jpg') });
  expect(set.available).toBe(5);
  expect(set.referencesOf(7)).toEqual(['A dog runs on the grass.', 'A brown dog running in a field.']);
  // The references keep their file's order (the order `evaluate --results` scores in).
  expect([...set.references.keys()]).toEqual([42, 7, 300, 3, 19]);
});

test('--limit keeps the first N by id, the same on every machine', () => {
  const set = readEvaluationSet(refsFile, { images, limit: 3 });
  expect(set.images.map((i) => i.id)).toEqual([3, 7, 19]);
  expect([...set.references.keys()]).toEqual([7, 3, 19]);
  expect(readEvaluationSet(refsFile, { images, limit: 99 }).images).toHaveLength(5);
  expect(() => readEvaluationSet(refsFile, { images, limit: 0 })).toThrow('Expected an integer >= 1 for limit but received 0');
});

test('--split: ids or file names, one a line or a JSON array, then sorted by id and limited', () => {
  const lines = write('split.txt', '300\nCOCO_val2014_000000000042.jpg\n\n  val2014/COCO_val2014_000000000003.jpg 3  \n');
  expect(readSplitFile(lines)).toEqual(['300', 'COCO_val2014_000000000042.jpg', 'val2014/COCO_val2014_000000000003.jpg 3']);
  expect(readEvaluationSet(refsFile, { images, split: lines }).images.map((i) => i.id)).toEqual([3, 42, 300]);
  expect(readEvaluationSet(refsFile, { images, split: lines, limit: 2 }).images.map((i) => i.id)).toEqual([3, 42]);
  const json = write('split.json', '[19, "sub/COCO_val2014_000000000300.jpg", "7"]');
  expect(readEvaluationSet(refsFile, { images, split: json }).images.map((i) => i.id)).toEqual([7, 19, 300]);
  expect(evaluationSet(REFS, { images, split: [42, 42, 3] }).images.map((i) => i.id)).toEqual([3, 42]);
});

test('a split entry that names no image is an error listing it; so is an empty or unreadable split file', () => {
  const bad = write('bad-split.txt', '3\n999\nnope.jpg\n');
  expect(() => readEvaluationSet(refsFile, { images, split: bad })).toThrow(/split file .*bad-split\.txt: 2 of its 3 entries name no image of .*refs\.json \(by id or file name\): "999", "nope\.jpg"/);
  expect(() => readSplitFile(write('empty.txt', '\n\n'))).toThrow(/lists no images/);
  expect(() => readSplitFile(path.join(tmp, 'absent.txt'))).toThrow(/split file not found: .*absent\.txt/);
  expect(() => readSplitFile(write('obj.json', '[{"id": 1}]'))).toThrow(/entry 0 is not an image id or file name/);
});

test('unusable references and folders are errors that name the problem', () => {
  expect(() => readEvaluationSet(refsFile, { images: path.join(tmp, 'no-such-folder') })).toThrow(/images folder not found: .*no-such-folder/);
  expect(() => readEvaluationSet(refsFile, { images: refsFile })).toThrow(/the images folder .*refs\.json is a file, not a folder/);
  expect(() => evaluationSet({ images: [{ id: 1 }], annotations: [] }, { images })).toThrow(/images\[0\] \(id 1\) has no "file_name"/);
  expect(() => evaluationSet({ images: [], annotations: [] }, { images })).toThrow(/"images" array is empty/);
  expect(() => evaluationSet({ annotations: [] }, { images })).toThrow(/missing the "images" array/);
  expect(() => readEvaluationSet(refsFile, { images })).not.toThrow();
  expect(() => evaluationSet({ ...REFS, images: [...REFS.images, { id: 500, file_name: 'x.jpg' }] }, { images })).toThrow(/no captions for 1 image to evaluate: 500/);
  expect(() => readEvaluationSet(path.join(tmp, 'missing.json'), { images })).toThrow(/references file not found/);
});

test('ids sort numbers first, then strings; a file path finds its image by base name unless two share it', () => {
  expect([10, 'b', 2, 'a', 1].sort(compareImageIds)).toEqual([1, 2, 10, 'a', 'b']);
  const resolve = imageResolver([{ id: 1, file: 'a/x.jpg' }, { id: 2, file: 'b/x.jpg' }, { id: 3, file: 'y.jpg' }, { id: 4, file: '3' }], { byId: false });
  expect(resolve('/data/val/y.jpg')).toBe(3);
  expect(resolve('a/x.jpg')).toBe(1);
  expect(resolve('x.jpg')).toBeUndefined();
  expect(resolve('3')).toBe(4); // a file name, not id 3, when ids are not looked up
  expect(imageResolver([{ id: 3, file: 'y.jpg' }, { id: 4, file: '3' }])('3')).toBe(3);
});

test('the set scores exactly as `evaluate --results` does on the same captions, with or without METEOR', async () => {
  const set = readEvaluationSet(refsFile, { images, limit: 4 });
  const results = resultsFromJson(JSON.parse(resultsToJson([
    { image_id: 19, caption: 'a red bus on the road' },
    { image_id: 3, caption: 'a man riding a bike' },
    { image_id: 7, caption: 'a dog running on grass' },
  ])));
  const direct = await evaluateCaptions(REFS, results, { meteor: false });
  const scored = await set.score(results, { jar: path.join(tmp, 'no-meteor.jar') });
  expect(scored.metrics).toEqual(direct.metrics);
  expect(scored.perImage).toEqual(direct.perImage);
  expect(scored.unavailable.METEOR).toMatch(/METEOR jar not found/);
  const again = await set.score(results, { meteor: false });
  expect(again.metrics).toEqual(direct.metrics);
  expect(again.perImage).toEqual(direct.perImage);
  await expect(set.score([{ image_id: 300, caption: 'x' }])).rejects.toThrow(/not in the references: 300/); // left out by the limit
  expect(resultsToJson([])).toBe('[]\n');
});

describe('the evaluation report', () => {
  test('the scores, the best and the worst captions by CIDEr-D with images and references, and the images not scored', async () => {
    const dir = path.join(tmp, 'report-images');
    const ids = Array.from({ length: 30 }, (_, i) => i + 1);
    const coco = {
      images: ids.map((id) => ({ id, file_name: `${id}.png` })),
      annotations: ids.flatMap((id) => [{ image_id: id, caption: `a photo number ${id} of a red bus` }, { image_id: id, caption: 'a bus on a road' }]),
    };
    fs.mkdirSync(dir);
    for (const id of ids) fs.writeFileSync(path.join(dir, `${id}.png`), await sharp({ create: { width: 4, height: 4, channels: 3, background: { r: id * 8, g: 0, b: 0 } } }).png().toBuffer());
    const set = evaluationSet(coco, { images: dir });
    // Images 1..28 captioned, better the higher the id; 29 and 30 not read.
    const results = ids.slice(0, 28).map((id) => ({ image_id: id, caption: id > 14 ? `a photo number ${id} of a red bus` : `a cat <b>${id}</b>` }));
    const evaluation = await evaluateCaptions(set.references, results, { meteor: false });
    const failed = [29, 30].map((id) => ({ id, path: path.join(dir, `${id}.png`), reason: `${path.join(dir, `${id}.png`)}: file not found` }));
    const file = path.join(tmp, 'report', 'report.html');
    const r = await writeEvaluationReport({ file: path.join(tmp, 'report', 'report.html'), set, evaluation, results, failed, notes: ['greedy decoding'] });
    expect(r.missingImages).toEqual([]);
    const html = fs.readFileSync(file, 'utf8');
    expect(html).toContain('<h2>The 20 best captions by CIDEr-D</h2>');
    expect(html).toContain('<h2>The 20 worst captions by CIDEr-D</h2>');
    expect(html).toContain('<h2>2 images not scored</h2>');
    expect(html).toContain('28 of 30 images scored (2 not read, listed at the end)');
    expect(html).toContain(`<tr><td>CIDEr</td><td class="value">${evaluation.metrics.CIDEr.toFixed(4)}</td></tr>`);
    expect(html).toContain(`<tr><td>29</td><td>${path.join(dir, '29.png')}</td><td>file not found</td></tr>`);
    // Captions are escaped; every picture is embedded, nothing is fetched.
    expect(html).toContain('a cat &lt;b&gt;3&lt;/b&gt;');
    expect(html).not.toMatch(/src="(?!data:)/);
    expect(html.match(/<img src="data:image\/png;base64,/g)).toHaveLength(40);
    const [best, worst] = html.split('<h2>The 20 worst').map((part) => [...part.matchAll(/<p class="label">image (\d+) /g)].map((m) => Number(m[1])));
    const cider = new Map(evaluation.perImage.map((p) => [p.image_id, p.CIDEr]));
    const scores = (list: number[]) => list.map((id) => cider.get(id)!);
    expect(best).toHaveLength(20);
    expect(scores(best)).toEqual([...scores(best)].sort((a, b) => b - a));
    expect(Math.min(...scores(best))).toBeGreaterThanOrEqual(Math.max(...[...cider.values()].filter((_, i) => !best.includes(i + 1))));
    expect(worst).toHaveLength(20);
    expect(scores(worst)).toEqual([...scores(worst)].sort((a, b) => a - b));
    expect(worst.slice(0, 14).sort((a, b) => a - b)).toEqual(ids.slice(0, 14));
  });
});
