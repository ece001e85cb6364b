'use strict';
// The benchmarks' data: 256x256 JPEGs (the book's pre-resized images) with caption ids.
// From the 50 real COCO photos of the shared data when present (each written 10 times under other
// names, 500 files), else from generated scenes. Made once in a cache folder.
const fs = require('fs');
const os = require('os');
const path = require('path');
const { resizeImages } = require('../dist/prepare/resize');
const { generateScenes } = require('../dist/demo/scenes');
const { readCoco } = require('../dist/data/datasets');
const { Vocabulary } = require('../dist/vocabulary');

const SHARED = process.env.TORCHCAP_SHARED_DATA || path.resolve(__dirname, '../../shared/data');

async function benchData(dir = path.join(os.tmpdir(), 'torchcap-bench-data')) {
  const done = path.join(dir, 'samples.json');
  if (fs.existsSync(done)) return { dir, ...JSON.parse(fs.readFileSync(done, 'utf8')).source };
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, 'images'), { recursive: true });
  let corpus;
  let source;
  const mini = path.join(SHARED, 'coco-val2017-mini');
  if (fs.existsSync(mini)) {
    await resizeImages({ input: path.join(mini, 'images'), output: path.join(dir, 'resized') });
    corpus = readCoco(path.join(mini, 'captions.json'), path.join(dir, 'resized'));
    source = { kind: 'coco-val2017-mini photos, resized to 256x256, each 10 times' };
  } else {
    const g = await generateScenes({ outDir: path.join(dir, 'scenes'), count: 50, heldOut: 0, size: 256 });
    corpus = readCoco(g.train, g.images);
    source = { kind: 'generated scenes at 256x256 (no shared COCO photos here), each 10 times' };
  }
  const vocab = Vocabulary.build(corpus.annotations.map((a) => a.caption), { threshold: 1 });
  const samples = [];
  for (let copy = 0; copy < 10; copy++) {
    for (const img of corpus.images) {
      const name = `${copy}-${path.basename(img.file)}`;
      fs.copyFileSync(corpus.imagePath(img.id), path.join(dir, 'images', name));
      for (const c of corpus.captionsByImage.get(img.id)) samples.push({ image: name, ids: vocab.encode(c) });
    }
  }
  // a fixed shuffle, so that a prefix of the samples covers many images
  let seed = 7;
  for (let i = samples.length - 1; i > 0; i--) {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    const j = seed % (i + 1);
    [samples[i], samples[j]] = [samples[j], samples[i]];
  }
  fs.writeFileSync(done, JSON.stringify({ source, words: vocab.words, samples }));
  return { dir, ...source };
}

module.exports = { benchData };
