/**
 * Caption datasets: the COCO reader on the official val2017 captions, Flickr8k with its split
 * lists, JSONL custom data, and the errors for unusable files.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { readCoco, readFlickr8k, readJsonl, readCaptions, type CaptionCorpus } from '../lib/data/datasets';
import { sharedData, sharedDataPresent, SHARED_DATA } from './support/data';
import { describeIf } from './support/skip';
import { thrown } from './support/errors';

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torchcap-datasets-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, text);
  return file;
}

function expectDatasetError(fn: () => unknown, pattern: RegExp): void {
  const e = thrown(fn);
  expect(e.name).toBe('DatasetError');
  expect(e.message).toMatch(pattern);
}

describeIf(sharedDataPresent, `no shared data in ${SHARED_DATA}`, 'COCO captions', () => {
  const COCO = sharedData('coco-captions-val2017.json');
  let corpus: CaptionCorpus;
  let raw: { images: { id: number; file_name: string }[]; annotations: { id: number; image_id: number; caption: string }[] };
  beforeAll(() => {
    corpus = readCoco(COCO, '/data/val2017');
    raw = JSON.parse(fs.readFileSync(COCO, 'utf8'));
  });

  test('the official val2017 file: 5,000 images, 25,014 captions, annotations in file order', () => {
    expect(corpus.images).toHaveLength(5000);
    expect(corpus.annotations).toHaveLength(25014);
    // file order, as the book's dataset iterates and counts words
    expect(corpus.annotations.map((a) => a.id)).toEqual(raw.annotations.map((a) => a.id));
    expect(corpus.annotations.map((a) => a.caption)).toEqual(raw.annotations.map((a) => a.caption));
    expect(corpus.images.map((i) => i.file)).toEqual(raw.images.map((i) => i.file_name));
  });

  test('indexed by image as pycocotools does: every image its captions, in file order', () => {
    const expected = new Map<number, string[]>();
    for (const a of raw.annotations) expected.set(a.image_id, [...(expected.get(a.image_id) ?? []), a.caption]);
    expect(corpus.captionsByImage.size).toBe(5000);
    for (const img of raw.images) expect(corpus.captionsByImage.get(img.id)).toEqual(expected.get(img.id) ?? []);
    const counts = [...corpus.captionsByImage.values()].map((c) => c.length);
    expect(Math.min(...counts)).toBeGreaterThanOrEqual(5);
    const first = raw.images[0];
    expect(corpus.imageById.get(first.id)).toEqual({ id: first.id, file: first.file_name });
    expect(corpus.imagePath(first.id)).toBe(path.resolve('/data/val2017', first.file_name));
  });

  test('the 50-photo mini set: every listed image exists, 5 captions each', () => {
    const mini = readCaptions(sharedData('coco-val2017-mini', 'captions.json'), sharedData('coco-val2017-mini', 'images'));
    expect(mini.images).toHaveLength(50);
    expect(mini.annotations).toHaveLength(250);
    for (const img of mini.images) {
      expect(fs.existsSync(mini.imagePath(img.id))).toBe(true);
      expect(mini.captionsByImage.get(img.id)).toHaveLength(5);
    }
  });

  test('subset keeps file order and the COCO form round-trips', () => {
    const ids = [raw.images[3].id, raw.images[1].id];
    const sub = corpus.subset(ids);
    expect(sub.images.map((i) => i.id)).toEqual([raw.images[1].id, raw.images[3].id]);
    expect(sub.annotations.map((a) => a.id)).toEqual(raw.annotations.filter((a) => ids.includes(a.image_id)).map((a) => a.id));
    const coco = sub.toCoco();
    const back = readCoco(write('sub.json', JSON.stringify(coco)), '/x');
    expect(back.annotations).toEqual(sub.annotations);
  });
});

describe('COCO errors name the file and the problem', () => {
  test('missing file, not JSON, wrong shape, bad entries, unknown image', () => {
    expectDatasetError(() => readCoco(path.join(tmp, 'nope.json'), '.'), /captions file not found: .*nope\.json/);
    expectDatasetError(() => readCoco(write('bad.json', '{"images": ['), '.'), /bad\.json is not valid JSON/);
    expectDatasetError(() => readCoco(write('arr.json', '[1, 2]'), '.'), /arr\.json: expected a COCO captions object/);
    expectDatasetError(() => readCoco(write('noimg.json', '{"annotations": []}'), '.'), /noimg\.json: missing the "images" array/);
    expectDatasetError(() => readCoco(write('noann.json', '{"images": []}'), '.'), /noann\.json: missing the "annotations" array/);
    expectDatasetError(() => readCoco(write('noid.json', '{"images": [{"file_name": "a.jpg"}], "annotations": []}'), '.'), /images\[0\] has no valid "id"/);
    expectDatasetError(() => readCoco(write('nofile.json', '{"images": [{"id": 7}], "annotations": []}'), '.'), /images\[0\] \(id 7\) has no "file_name"/);
    expectDatasetError(
      () => readCoco(write('nocap.json', '{"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [{"id": 1, "image_id": 1}]}'), '.'),
      /annotations\[0\] has no "caption" string/,
    );
    expectDatasetError(
      () => readCoco(write('dup.json', '{"images": [{"id": 1, "file_name": "a.jpg"}, {"id": 1, "file_name": "b.jpg"}], "annotations": []}'), '.'),
      /dup\.json: image id 1 appears twice/,
    );
    expectDatasetError(
      () => readCoco(write('orphan.json', '{"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [{"id": 9, "image_id": 2, "caption": "x"}]}'), '.'),
      /orphan\.json: annotation 9 refers to image 2, which is not among the images/,
    );
  });

  test('asking for an image id that is not there', () => {
    const c = readCoco(write('one.json', '{"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [{"image_id": 1, "caption": "a cat"}]}'), '/imgs');
    expect(c.annotations[0].id).toBe(0); // no id in the file: its position
    expectDatasetError(() => c.imagePath(2), /one\.json: no image with id 2/);
    expectDatasetError(() => c.imagePath('1'), /no image with id "1"/);
  });
});

describeIf(sharedDataPresent, `no shared data in ${SHARED_DATA}`, 'Flickr8k', () => {
  const F = (name: string) => sharedData('flickr8k', name);

  test('the train split: 6,000 images and 30,000 captions, in token-file order', () => {
    const c = readFlickr8k(F('Flickr8k.token.txt'), '/flickr/images', F('Flickr_8k.trainImages.txt'));
    expect(c.images).toHaveLength(6000);
    expect(c.annotations).toHaveLength(30000);
    const split = new Set(fs.readFileSync(F('Flickr_8k.trainImages.txt'), 'utf8').split(/\r?\n/).filter(Boolean));
    expect(new Set(c.images.map((i) => i.id))).toEqual(split);
    for (const caps of c.captionsByImage.values()) expect(caps).toHaveLength(5);
    // ids are file names; captions as in the file (trimmed), in its order
    const lines = fs.readFileSync(F('Flickr8k.token.txt'), 'utf8').split('\n').filter((l) => split.has(l.split('#')[0]));
    expect(c.annotations.slice(0, 10).map((a) => `${a.imageId}\t${a.caption}`)).toEqual(lines.slice(0, 10).map((l) => l.replace(/#\d\s+/, '\t').trim()));
    expect(c.imagePath(c.images[0].id)).toBe(path.join('/flickr/images', c.images[0].id as string));
  });

  test('dev and test splits: 1,000 images each, disjoint from train', () => {
    const train = new Set(readFlickr8k(F('Flickr8k.token.txt'), '.', F('Flickr_8k.trainImages.txt')).images.map((i) => i.id));
    for (const s of ['dev', 'test']) {
      const c = readFlickr8k(F('Flickr8k.token.txt'), '.', F(`Flickr_8k.${s}Images.txt`));
      expect([s, c.images.length, c.annotations.length]).toEqual([s, 1000, 5000]);
      expect(c.images.filter((i) => train.has(i.id))).toEqual([]);
    }
  });

  test('readCaptions picks the Flickr8k reader for .txt; all 8,092 images without a split', () => {
    const c = readCaptions(F('Flickr8k.token.txt'), '.');
    expect(c.images).toHaveLength(8092);
    expect(c.annotations).toHaveLength(40460);
  });
});

describe('Flickr8k errors', () => {
  test('a malformed line, a missing file, a split naming images without captions', () => {
    const tokens = write('tokens.txt', 'a.jpg#0\tA dog .\na.jpg#1  A dog runs .\nb.jpg#0\tA cat .\n');
    const c = readFlickr8k(tokens, '.');
    expect(c.captionsByImage.get('a.jpg')).toEqual(['A dog .', 'A dog runs .']); // space-separated lines too
    expectDatasetError(() => readFlickr8k(write('broken.txt', 'a.jpg#0\tfine\nno caption here\n'), '.'), /broken\.txt:2: expected "IMAGE#N<TAB>caption"/);
    expectDatasetError(() => readFlickr8k(path.join(tmp, 'none.txt'), '.'), /Flickr8k captions file not found: .*none\.txt/);
    expectDatasetError(() => readFlickr8k(tokens, '.', path.join(tmp, 'nosplit.txt')), /Flickr8k split file not found/);
    expectDatasetError(() => readFlickr8k(tokens, '.', write('split.txt', 'a.jpg\nc.jpg\nd.jpg\n')), /split\.txt: 2 listed images have no captions .*\(first: c\.jpg\)/);
  });
});

describe('JSONL custom data', () => {
  test('caption and captions forms, image paths relative to the folder, file order', () => {
    const file = write(
      'custom.jsonl',
      ['{"image": "x/one.jpg", "caption": "A red car."}', '', '{"image": "two.png", "captions": ["Two birds.", "Birds on a wire."]}', '{"image": "x/one.jpg", "caption": "A car parked."}'].join('\n'),
    );
    const c = readJsonl(file);
    expect(c.images).toEqual([
      { id: 'x/one.jpg', file: 'x/one.jpg' },
      { id: 'two.png', file: 'two.png' },
    ]);
    expect(c.annotations.map((a) => [a.id, a.imageId, a.caption])).toEqual([
      [0, 'x/one.jpg', 'A red car.'],
      [1, 'two.png', 'Two birds.'],
      [2, 'two.png', 'Birds on a wire.'],
      [3, 'x/one.jpg', 'A car parked.'],
    ]);
    expect(c.imagePath('x/one.jpg')).toBe(path.join(tmp, 'x/one.jpg'));
    expect(readCaptions(file, '/elsewhere').imagePath('two.png')).toBe('/elsewhere/two.png');
  });

  test('errors name the line', () => {
    expectDatasetError(() => readJsonl(write('e1.jsonl', '{"image": "a.jpg", "caption": "ok"}\n{oops\n')), /e1\.jsonl:2: not valid JSON/);
    expectDatasetError(() => readJsonl(write('e2.jsonl', '{"caption": "no image"}\n')), /e2\.jsonl:1: needs an "image" path/);
    expectDatasetError(() => readJsonl(write('e3.jsonl', '{"image": "a.jpg", "captions": ["ok", 3]}\n')), /e3\.jsonl:1: needs a "caption" string or a "captions" array of strings/);
    expectDatasetError(() => readJsonl(write('e4.jsonl', '{"image": "a.jpg", "captions": []}\n')), /e4\.jsonl:1: needs a "caption"/);
    expectDatasetError(() => readJsonl(write('e5.jsonl', '\n\n')), /e5\.jsonl: no captions found/);
    expectDatasetError(() => readJsonl(path.join(tmp, 'gone.jsonl')), /captions JSONL file not found/);
    const c = readJsonl(write('ok.jsonl', '{"image": "a.jpg", "caption": "x"}\n'));
    expectDatasetError(() => c.imagePath('b.jpg'), /no image with id "b\.jpg"/);
  });
});
