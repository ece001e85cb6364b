'use strict';
// torchcap's side of the benchmarks: the same tasks as book_reference.py, through torchcap's API.
// Usage: node bench/torchcap_tasks.js TASK DATA_DIR [options as JSON]; prints one JSON object.
const fs = require('fs');
const os = require('os');
const path = require('path');
const { Tensor, manualSeed, noGrad } = require('../dist');
const { CaptionEncoder, CaptionDecoder } = require('../dist/model');
const { crossEntropyAsync, backwardAsync } = require('../dist/nn/functional');
const { packPaddedSequence } = require('../dist/nn/rnn');
const { Adam } = require('../dist/nn/optim');
const { Captioner } = require('../dist/captioner');
const { reportWorker } = require('./common');
const { CaptionLoader } = require('../dist/data/loader');
const { Trainer } = require('../dist/train');
const { Vocabulary } = require('../dist/vocabulary');
const { ResNet, cpuBf16Support } = require('../dist/nn/resnet');

manualSeed(0);

const peakRssMb = () => process.resourceUsage().maxRSS / 1024;
const now = () => Number(process.hrtime.bigint()) / 1e9;

function loadSamples(data) {
  const j = JSON.parse(fs.readFileSync(path.join(data, 'samples.json'), 'utf8'));
  return j.samples.map((s) => ({ image: path.join(data, 'images', s.image), ids: s.ids }));
}

/** Random captions of 8-21 tokens, longest first, as the loader hands them out. */
function randomCaptions(batch, vocab) {
  const lengths = Array.from(Tensor.randint(8, 22, [batch]).toTypedArray(), Number).sort((a, b) => b - a);
  const captions = Tensor.randint(4, vocab, [batch, lengths[0]]);
  return { captions, lengths };
}

function randomBatch(batch, vocab) {
  return { images: Tensor.randn([batch, 3, 224, 224]), ...randomCaptions(batch, vocab) };
}

/** Runs `fn` on a new random batch, then frees the batch (one alive at a time, as a loader hands them out). */
async function withBatch(batch, vocab, fn) {
  const b = randomBatch(batch, vocab);
  try {
    return await fn(b);
  } finally {
    b.images.dispose();
    b.captions.dispose();
  }
}

/** The training step as lib/train.ts runs it, with time spent per phase. */
async function step(m, b, times) {
  const mode = { train: true };
  let t = now();
  const lap = (k) => {
    const n = now();
    times[k] = (times[k] ?? 0) + n - t;
    t = n;
  };
  const features = await m.encoder.forwardAsync(b.images, mode);
  lap('encoder');
  const logits = await m.decoder.forwardAsync(features, b.captions, b.lengths, mode);
  lap('decoder');
  let targets = packPaddedSequence(b.captions, b.lengths, { batchFirst: true }).data;
  if (targets.device !== logits.device) targets = targets.to(logits.device); // the model on a GPU
  const loss = await crossEntropyAsync(logits, targets);
  lap('loss');
  m.optimizer.zeroGrad();
  await backwardAsync(loss);
  lap('backward');
  await m.optimizer.stepAsync();
  lap('optimizer');
  return loss.item();
}

/**
 * The training step after the encoder (the LSTM decoder of the book's sizes, loss, backward, Adam)
 * with random features given in place of the encoder's: a function timing one such step on a new
 * batch, in seconds.
 */
function stepAfterEncoder(batch, vocab) {
  const decoder = new CaptionDecoder({ vocabSize: vocab });
  const m = { encoder: { forwardAsync: async (features) => features }, decoder, optimizer: new Adam(decoder.parameters(), { lr: 0.001 }) };
  return async () => {
    const b = { images: Tensor.randn([batch, decoder.embedSize]), ...randomCaptions(batch, vocab) };
    const t = now();
    await step(m, b, {});
    const seconds = now() - t;
    b.images.dispose();
    b.captions.dispose();
    return seconds;
  };
}

/**
 * The training step on ResNet-152 (o.mode, o.batch, o.vocab): o.steps timed after o.warmup (1);
 * o.device and o.autocast for the GPU bench. Seconds a step (the mean, and each), by phase.
 */
async function trainStep(data, o) {
  const encoder = new CaptionEncoder({ backbone: 152, backboneMode: o.mode, autocast: o.autocast, device: o.device });
  const decoder = new CaptionDecoder({ vocabSize: o.vocab, device: o.device });
  const optimizer = new Adam([...decoder.parameters(), ...encoder.trainableParameters()], { lr: 0.001 });
  await encoder.prepareAsync();
  const m = { encoder, decoder, optimizer };
  for (let i = 0; i < (o.warmup ?? 1); i++) await withBatch(o.batch, o.vocab, (b) => step(m, b, {}));
  const times = {};
  const seconds = [];
  for (let i = 0; i < o.steps; i++) {
    await withBatch(o.batch, o.vocab, async (b) => {
      const t = now();
      await step(m, b, times); // ends with loss.item(): on a GPU, waits for it
      seconds.push(now() - t);
    });
  }
  for (const k of Object.keys(times)) times[k] /= o.steps;
  const total = seconds.reduce((a, b) => a + b, 0);
  return { seconds_per_step: total / o.steps, step_seconds: seconds, phases: times, peak_rss_mb: peakRssMb() };
}

async function firstEpoch(opts) {
  const first = await Trainer.create(opts);
  let cacheSeconds = NaN;
  let firstTrain = NaN;
  const started = now();
  first.on('epoch', (e) => {
    cacheSeconds = now() - started - e.seconds;
    firstTrain = e.trainSeconds;
  });
  await first.run();
  return { cacheSeconds, firstTrain };
}

async function epoch(data, o) {
  const samples = loadSamples(data).slice(0, o.samples);
  // A captions file for the Trainer, from the bench samples.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torchcap-bench-epoch-'));
  const images = [...new Set(samples.map((s) => s.image))];
  const idOf = new Map(images.map((p, i) => [p, i]));
  // the bench captions' words, then filler words up to the book's vocabulary size (as Python's models)
  const own = JSON.parse(fs.readFileSync(path.join(data, 'samples.json'), 'utf8')).words;
  const words = [...own, ...Array.from({ length: Math.max(0, o.vocab - own.length) }, (_, i) => `filler${i}`)];
  fs.writeFileSync(
    path.join(dir, 'captions.json'),
    JSON.stringify({
      images: images.map((p, i) => ({ id: i, file_name: path.basename(p) })),
      annotations: samples.map((s, k) => ({ id: k, image_id: idOf.get(s.image), caption: s.ids.slice(1, -1).map((i) => words[i]).join(' ') })),
    }),
  );
  const opts = {
    images: path.join(data, 'images'),
    captions: path.join(dir, 'captions.json'),
    vocab: Vocabulary.fromWords(words),
    out: path.join(dir, 'out'),
    epochs: 1,
    batchSize: o.batch,
    backbone: 152,
    cacheFeatures: true,
    quiet: true,
    logEvery: 1000,
  };
  // The first run builds the feature cache, then trains an epoch on it; the second finds the cache
  // and trains another. Checkpoint writing is left out of both (the epoch event's trainSeconds).
  // The first run lives in a function of its own: once it returns, its models are garbage and their
  // memory serves the second run, as the book's later epochs reuse the first one's.
  const { cacheSeconds, firstTrain } = await firstEpoch(opts);
  const t = await Trainer.create(opts);
  let seconds = NaN;
  t.on('epoch', (e) => (seconds = e.trainSeconds));
  await t.run();
  fs.rmSync(dir, { recursive: true, force: true });
  return { seconds, first_seconds: cacheSeconds + firstTrain, cache_seconds: cacheSeconds, samples: samples.length, images: images.length };
}

async function caption(data, o) {
  const files = loadSamples(data)
    .map((s) => s.image)
    .filter((f, i, a) => a.indexOf(f) === i)
    .slice(0, o.images);
  const vocab = Vocabulary.fromWords(['<pad>', '<start>', '<end>', '<unk>', ...Array.from({ length: o.vocab - 4 }, (_, i) => `w${i}`)]);
  const c = await Captioner.load({ encoder: new CaptionEncoder({ backbone: 152, backboneMode: 'fast' }), decoder: new CaptionDecoder({ vocabSize: o.vocab }), vocab });
  await c.caption(files[0]);
  const times = [];
  for (const f of files) {
    const t = now();
    await c.caption(f);
    times.push(now() - t);
  }
  times.sort((a, b) => a - b);
  // a batch of 16: once to warm (first use of that batch shape), then the median of three
  await c.caption(files.slice(0, 16));
  const batches = [];
  for (let r = 0; r < 3; r++) {
    const t = now();
    await c.caption(files.slice(0, 16));
    batches.push(now() - t);
  }
  const batch16 = batches.sort((a, b) => a - b)[1];
  await c.dispose();
  return { median_seconds: times[times.length >> 1], batch16_seconds: batch16, images: files.length };
}

async function dataPipeline(data, o) {
  const samples = loadSamples(data).slice(0, o.samples);
  const loader = new CaptionLoader(samples, { batchSize: o.batch, seed: 0, prefetch: 2 });
  const it = loader.epoch(0);
  await it.next(); // warm: allocator, decoder
  const t = now();
  let n = 0;
  for await (const b of it) n += b.lengths.length;
  return { images_per_second: n / (now() - t), images: n };
}

async function forward(data, o) {
  const r = new ResNet(152);
  const x = Tensor.randn([o.batch, 3, 224, 224]);
  const time = (fn) => {
    fn();
    const t = now();
    for (let i = 0; i < o.reps; i++) fn();
    return (now() - t) / o.reps;
  };
  const plain = time(() => noGrad(() => r.forward(x, { train: false })));
  r.prepareFast();
  const fast = time(() => noGrad(() => r.forward(x, { train: false, fast: true })));
  let bf16 = null;
  if (cpuBf16Support().supported) {
    r.prepareFast({ autocast: 'bf16' });
    bf16 = time(() => noGrad(() => r.forward(x, { train: false, fast: true, autocast: 'bf16' })));
  }
  return { plain_seconds: plain, fast_seconds: fast, fast_bf16_seconds: bf16, multiply_adds: r.multiplyAdds(224, 224) * o.batch };
}

const tasks = { 'train-step': trainStep, epoch, caption, data: dataPipeline, forward };

module.exports = { step, withBatch, stepAfterEncoder, trainStep };

if (require.main === module) {
  const [task, data, json] = process.argv.slice(2);
  reportWorker(tasks[task](data, JSON.parse(json || '{}')));
}
