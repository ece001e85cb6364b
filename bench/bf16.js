'use strict';
// What autocast 'bf16' on the CPU changes, on this machine:
//  1. the demo: its model trained (float32, as `npm run demo` does), then its 200 held-out scenes
//     captioned on the fast path in float32 and in bf16: BLEU-4 of each, captions identical;
//  2. the 50 shared COCO photos: a ResNet-152 model of the book trained on their 250 captions
//     (cached features; random backbone weights, as nothing pretrained can be had offline), the 50
//     photos captioned greedily in float32 and in bf16: captions identical;
//  3. one caption's latency: the book's Python (float32) against torchcap in float32 and in bf16,
//     ResNet-152, V = 9,948, random weights (20 words a caption), 16 photos one at a time, medians of
//     REPEATS (default 3) interleaved runs.
// The fast-mode training step in bf16 against float32 is in bench/train-step.js.
//
// Usage: node bench/bf16.js            (needs dist/: npx tsc -p .; BF16_PARTS=demo,coco,latency picks)
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');
const { PYTHON, median, pythonHasTorch, machine } = require('./common');

const REPEATS = Number(process.env.REPEATS || 3);
const PARTS = (process.env.BF16_PARTS || 'demo,coco,latency').split(','); // not PARTS: npm run bench's own PARTS reaches this process too
const SHARED = process.env.TORCHCAP_SHARED_DATA || path.resolve(__dirname, '../../shared/data');
const VOCAB = 9948;

const dist = (name) => require(path.join(__dirname, '..', 'dist', name));

/** Captions `images` with the checkpoint files in float32 and in bf16 (the fast path, as `torchcap caption`). */
async function captionBoth(files, images, opts = {}) {
  const { Captioner } = dist('captioner');
  const out = {};
  for (const autocast of [undefined, 'bf16']) {
    const c = await Captioner.load({ ...files, autocast, batchSize: 50, ...opts });
    out[autocast ?? 'float32'] = await c.caption(images);
    await c.dispose();
  }
  const same = out.float32.filter((s, i) => s === out.bf16[i]).length;
  return { ...out, same };
}

async function demoPart(tmp) {
  // the demo's run here is `npm run demo`'s: its time is printed too (seconds of each stage)
  const { runDemo, DEMO_DEFAULTS } = dist('demo/run');
  const { generateScenes } = dist('demo/scenes');
  const { readCaptions } = dist('data/datasets');
  const { evaluateCaptionsSync } = dist('evaluate');
  const out = path.join(tmp, 'demo');
  const demo = await runDemo({ out, quiet: true, log: () => undefined });
  const sec = demo.summary.seconds;
  console.log(`the demo's run: ${sec.total.toFixed(0)} s (data ${sec.data.toFixed(0)}, pretraining ${sec.pretrain.toFixed(0)}, training ${sec.train.toFixed(0)}, captioning ${sec.caption.toFixed(0)}); targets ${demo.summary.met ? 'met' : 'NOT met'}`);
  const data = await generateScenes({ outDir: path.join(out, 'data'), count: DEMO_DEFAULTS.images, heldOut: DEMO_DEFAULTS.heldOut, size: DEMO_DEFAULTS.size, seed: DEMO_DEFAULTS.seed });
  const test = readCaptions(data.test, data.images);
  const paths = test.images.map((i) => test.imagePath(i.id));
  const r = await captionBoth({ encoder: demo.encoder, decoder: demo.decoder, vocab: demo.vocab }, paths, { imageSize: DEMO_DEFAULTS.size });
  const bleu = (captions) => evaluateCaptionsSync(test.toCoco(), test.images.map((img, k) => ({ image_id: img.id, caption: captions[k] }))).metrics.Bleu_4;
  console.log(
    `1. the demo (ResNet-18 at 64x64, trained in float32): ${paths.length} held-out scenes on the fast path: BLEU-4 float32 ${bleu(r.float32).toFixed(4)}, bf16 ${bleu(r.bf16).toFixed(4)} ` +
      `(the demo's own run, eval mode: ${demo.summary.metrics.Bleu_4.toFixed(4)}); identical captions ${r.same}/${paths.length}`,
  );
}

async function cocoPart(tmp) {
  const { Trainer } = dist('train');
  const mini = path.join(SHARED, 'coco-val2017-mini');
  if (!fs.existsSync(mini)) {
    console.log(`SKIP 2. the COCO photos: ${mini} is missing`);
    return;
  }
  const out = path.join(tmp, 'coco');
  const trainer = await Trainer.create({
    images: path.join(mini, 'images'),
    captions: path.join(mini, 'captions.json'),
    out,
    threshold: 1,
    epochs: 40,
    batchSize: 25,
    lr: 0.003,
    backbone: 152,
    backboneMode: 'fast',
    cacheFeatures: true,
    saveEvery: 1_000_000,
    logEvery: 1_000_000,
    quiet: true,
  });
  const summary = await trainer.run();
  const last = summary.checkpoints[summary.checkpoints.length - 1];
  const images = fs
    .readdirSync(path.join(mini, 'images'))
    .filter((f) => f.endsWith('.jpg'))
    .sort()
    .map((f) => path.join(mini, 'images', f));
  const r = await captionBoth({ encoder: path.join(out, last.encoder), decoder: path.join(out, last.decoder), vocab: path.join(out, 'vocab.json') }, images);
  console.log(
    `2. the ${images.length} COCO photos, ResNet-152 model trained on their captions (40 epochs, final loss ${summary.lastLoss.toFixed(3)}): identical greedy captions float32 vs bf16 ${r.same}/${images.length}`,
  );
  const differ = r.float32.map((s, i) => [s, r.bf16[i]]).filter(([a, b]) => a !== b);
  for (const [a, b] of differ.slice(0, 3)) console.log(`   float32: ${a}\n   bf16:    ${b}`);
}

function latencyPart() {
  if (!pythonHasTorch()) {
    console.log(`SKIP 3. latency against the book's Python: ${PYTHON} has no torch/torchvision`);
    return;
  }
  const data = JSON.parse(execFileSync(process.execPath, ['-e', "require('./bench/data').benchData().then((d) => console.log(JSON.stringify(d)))"], { cwd: path.resolve(__dirname, '..'), encoding: 'utf8' }).trim().split('\n').pop());
  const runs = { python: [], float32: [], bf16: [] };
  for (let r = 0; r < REPEATS; r++) {
    process.stderr.write(`  latency (${r + 1}/${REPEATS})\n`);
    runs.python.push(JSON.parse(execFileSync(PYTHON, [path.join(__dirname, 'book_reference.py'), 'caption', data.dir, JSON.stringify({ images: 16, vocab: VOCAB })], { encoding: 'utf8' }).trim().split('\n').pop()).median_seconds);
    for (const autocast of ['float32', 'bf16']) {
      const o = JSON.stringify({ dir: data.dir, autocast: autocast === 'bf16' ? 'bf16' : undefined });
      runs[autocast].push(JSON.parse(execFileSync(process.execPath, [__filename, '--latency', o], { encoding: 'utf8' }).trim().split('\n').pop()).median_seconds);
    }
  }
  const py = median(runs.python);
  const f32 = median(runs.float32);
  const b16 = median(runs.bf16);
  console.log(
    `3. one caption (ResNet-152, 224x224, V = ${VOCAB}, 20 words), median of 16 photos, ${REPEATS} runs: book's Python float32 ${(py * 1000).toFixed(0)} ms, ` +
      `torchcap float32 ${(f32 * 1000).toFixed(0)} ms (${(f32 / py).toFixed(2)}x), bf16 ${(b16 * 1000).toFixed(0)} ms (${(b16 / py).toFixed(2)}x; target <= 0.5: ${b16 / py <= 0.5 ? 'met' : 'NOT met'})`,
  );
}

/** One process: 16 photos captioned one at a time with random weights (no early <end>). */
async function latencyWorker({ dir, autocast }) {
  const { Captioner } = dist('captioner');
  const { CaptionEncoder, CaptionDecoder } = dist('model');
  const { Vocabulary } = dist('vocabulary');
  const { manualSeed } = dist('index');
  manualSeed(0);
  const files = [...new Set(JSON.parse(fs.readFileSync(path.join(dir, 'samples.json'), 'utf8')).samples.map((s) => path.join(dir, 'images', s.image)))].slice(0, 16);
  const vocab = Vocabulary.fromWords(['<pad>', '<start>', '<end>', '<unk>', ...Array.from({ length: VOCAB - 4 }, (_, i) => `w${i}`)]);
  // autocast is the encoder's own, fixed when it is built (Captioner.load's option is for files)
  const c = await Captioner.load({ encoder: new CaptionEncoder({ backbone: 152, backboneMode: 'fast', autocast }), decoder: new CaptionDecoder({ vocabSize: VOCAB }), vocab });
  await c.caption(files[0]);
  const times = [];
  for (const f of files) {
    const t = process.hrtime.bigint();
    await c.caption(f);
    times.push(Number(process.hrtime.bigint() - t) / 1e9);
  }
  await c.dispose();
  return { median_seconds: median(times) };
}

async function main() {
  const { cpuBf16Support } = dist('nn/resnet');
  const bf16 = cpuBf16Support();
  if (!bf16.supported) {
    console.log(`SKIP bench/bf16.js: ${bf16.reason}`);
    return;
  }
  console.log(`autocast 'bf16' on the CPU; ${machine()}; load average ${os.loadavg().map((x) => x.toFixed(2)).join(', ')}`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torchcap-bf16-'));
  try {
    if (PARTS.includes('demo')) await demoPart(tmp);
    if (PARTS.includes('coco')) await cocoPart(tmp);
    if (PARTS.includes('latency')) latencyPart();
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  console.log(`load average at end: ${os.loadavg().map((x) => x.toFixed(2)).join(', ')} (the machine is shared)`);
}

const run = process.argv[2] === '--latency' ? latencyWorker(JSON.parse(process.argv[3])).then((r) => console.log(JSON.stringify(r))) : main();
run.catch((e) => {
  process.stderr.write(`${e.stack}\n`);
  process.exit(1);
});
