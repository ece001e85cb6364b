'use strict';
// A small captioner with random weights for the embedding benchmarks (caption-memory.js,
// serve-load.js): ResNet-18 encoder, LSTM decoder, a vocabulary of a few captions, saved as
// checkpoints in a temp folder. The decoder's output bias pushes <end> and <pad> down, so every
// greedy caption has maxLen words. Uses the compiled library (dist/, built by `npx tsc -p .`).
const fs = require('fs');
const os = require('os');
const path = require('path');

const DIST = path.join(__dirname, '..', 'dist');

function requireDist(name) {
  const file = path.join(DIST, name);
  if (!fs.existsSync(`${file}.js`)) throw new Error(`${file}.js is missing: build the library first (npx tsc -p .)`);
  return require(file);
}

const CAPTIONS = ['a dog runs on the grass', 'a cat sits on a red mat', 'the blue ball is on the table', 'two birds fly over the water'];

/** Writes encoder.ckpt, decoder.ckpt and vocab.json into a new temp folder; returns their paths. */
async function writeTinyModels({ backbone = 18, embedSize = 32, hiddenSize = 64, seed = 0 } = {}) {
  const { CaptionEncoder, CaptionDecoder } = requireDist('model/index');
  const { saveWeights } = requireDist('model/checkpoint');
  const { Vocabulary, END, PAD } = requireDist('vocabulary/index');
  const { Tensor, noGrad, manualSeed } = requireDist('core/tensor/index');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torchcap-bench-'));
  manualSeed(seed);
  const vocab = Vocabulary.build(CAPTIONS, { threshold: 1 });
  const encoder = new CaptionEncoder({ backbone, embedSize });
  const decoder = new CaptionDecoder({ vocabSize: vocab.size, embedSize, hiddenSize });
  const bias = decoder.stateDict().get('linear_layer.bias');
  const values = Float32Array.from(bias.toTypedArray());
  values[END] = -1e4;
  values[PAD] = -1e4;
  noGrad(() => bias.copyFrom(Tensor.from(values)));
  const files = { dir, encoder: path.join(dir, 'encoder.ckpt'), decoder: path.join(dir, 'decoder.ckpt'), vocab: path.join(dir, 'vocab.json') };
  await saveWeights(encoder, files.encoder);
  await saveWeights(decoder, files.decoder);
  vocab.save(files.vocab);
  return files;
}

/** A noisy RGB image encoded as PNG (or JPEG). */
function noiseImage(width, height, seed, format = 'png') {
  const sharp = require(require.resolve('sharp', { paths: [path.join(__dirname, '..')] }));
  const data = Buffer.alloc(width * height * 3);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < data.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    data[i] = x >>> 24;
  }
  const img = sharp(data, { raw: { width, height, channels: 3 } });
  return (format === 'png' ? img.png() : img.jpeg()).toBuffer();
}

/** Resident set size in MB. */
const rssMB = () => process.memoryUsage().rss / 1048576;

module.exports = { DIST, requireDist, writeTinyModels, noiseImage, rssMB };
