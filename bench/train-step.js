'use strict';
// The book's training step at the book's batch size (128; BATCH overrides), ResNet-152 at 224x224,
// V = 9,948, random batches: the book's Python as users run it and with jemalloc tuned, torchcap in
// book mode (the default: activations in oneDNN's blocked layout where blockedTrainSupport() says
// so; the same on PyTorch's kernels; bf16 under CPU autocast), and the fast path in float32 and
// bfloat16. Each configuration runs in its own process, interleaved, REPEATS times (default 2;
// PLAIN_PYTHON_REPEATS for the slow plain Python, default 1, 0 leaves it out); medians compared.
// Prints seconds a step, every ratio against both Pythons, the backbone's GFLOP/s against oneDNN's
// peak measured in the same run (a large 1x1 convolution in float32 and bfloat16, through the
// same libtorch; GFLOP/s count a direct convolution's multiply-adds, which the fast path's Winograd
// convolutions undercut), peak RSS, and whether book mode's two paths give the same numbers (the first
// step's loss, every running statistic after the steps, bit for bit).
//
// Usage: node bench/train-step.js            (needs dist/: npx tsc -p .)
//        BATCH=16 STEPS=3 REPEATS=3 node bench/train-step.js
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');
const { PYTHON, median, pythonHasTorch, machine, tunedPythonEnv, onednnPeak, loadAverage, reportWorker } = require('./common');

const BATCH = Number(process.env.BATCH || 128);
const STEPS = Number(process.env.STEPS || 2); // timed steps after one untimed
const REPEATS = Number(process.env.REPEATS || 2);
const PLAIN_PYTHON_REPEATS = Number(process.env.PLAIN_PYTHON_REPEATS ?? 1);
const VOCAB = 9948;
const TODAY_PEAK_RSS_MB = 2870; // book mode at batch 128 before the oneDNN path (the figure to stay under)

// ---------- one torchcap configuration, in its own process ----------

async function worker(o) {
  const { manualSeed } = require('../dist');
  const { CaptionEncoder, CaptionDecoder } = require('../dist/model');
  const { Adam } = require('../dist/nn/optim');
  const { step, withBatch } = require('./torchcap_tasks');
  manualSeed(0);
  const encoder = new CaptionEncoder({ backbone: 152, backboneMode: o.mode, autocast: o.autocast });
  if (o.blockedTrain !== undefined) encoder.resnet.blockedTrain = o.blockedTrain;
  const decoder = new CaptionDecoder({ vocabSize: VOCAB });
  const optimizer = new Adam([...decoder.parameters(), ...encoder.trainableParameters()], { lr: 0.001 });
  await encoder.prepareAsync();
  const m = { encoder, decoder, optimizer };
  const now = () => Number(process.hrtime.bigint()) / 1e9;
  // one batch alive at a time, made outside the clock, as book_reference.py does
  const firstLoss = await withBatch(o.batch, VOCAB, (b) => step(m, b, {}));
  const times = {};
  let seconds = 0;
  for (let i = 0; i < o.steps; i++) {
    await withBatch(o.batch, VOCAB, async (b) => {
      const t0 = now();
      await step(m, b, times);
      seconds += now() - t0;
    });
  }
  seconds /= o.steps;
  const per = (...ks) => ks.reduce((a, k) => a + (times[k] ?? 0), 0) / o.steps;
  const phases = { encoder: per('encoder'), decoder: per('decoder', 'loss'), backward: per('backward', 'optimizer') };
  if (o.statsFile) {
    // every running statistic of the backbone, for the comparison of book mode's two kernels
    const parts = [...encoder.resnet.stateDict()].filter(([k]) => /running_(mean|var)$/.test(k)).map(([, t]) => t.toTypedArray());
    fs.writeFileSync(o.statsFile, Buffer.concat(parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength))));
  }
  return { seconds, phases, firstLoss, peakRssMb: process.resourceUsage().maxRSS / 1024, multiplyAdds: encoder.resnet.multiplyAdds(224, 224) * o.batch };
}

// ---------- the parent: every configuration, interleaved ----------

function runTorchcap(cfg, statsFile) {
  const env = { ...process.env, ...(cfg.env || {}) };
  const o = { mode: cfg.mode, autocast: cfg.autocast, blockedTrain: cfg.blockedTrain, batch: BATCH, steps: STEPS, statsFile };
  const out = execFileSync(process.execPath, [__filename, '--worker', JSON.stringify(o)], { env, encoding: 'utf8', maxBuffer: 1 << 26 });
  return JSON.parse(out.trim().split('\n').pop());
}

function runPython(env) {
  const out = execFileSync(PYTHON, [path.join(__dirname, 'book_reference.py'), 'train-step', os.tmpdir(), JSON.stringify({ batch: BATCH, steps: STEPS, vocab: VOCAB })], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
    maxBuffer: 1 << 26,
  });
  const r = JSON.parse(out.trim().split('\n').pop());
  return { seconds: r.seconds_per_step, peakRssMb: r.peak_rss_mb };
}

const fmt = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : String(x));

function compareStats(fileA, fileB) {
  const floats = (file) => {
    const buf = fs.readFileSync(file);
    return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
  };
  const a = floats(fileA);
  const b = floats(fileB);
  let worst = 0;
  let differing = 0;
  for (let i = 0; i < b.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d === 0 || (Number.isNaN(a[i]) && Number.isNaN(b[i])))) differing++;
    worst = Math.max(worst, d / (1e-5 * Math.abs(b[i]) + 1e-6));
  }
  return { ratioToTolerance: worst, differing, count: b.length };
}

function main() {
  if (!pythonHasTorch()) {
    console.log(`SKIP bench/train-step.js: ${PYTHON} has no torch/torchvision (apt-get install python3-torch python3-torchvision); the benchmark compares against it`);
    return;
  }
  const tuned = tunedPythonEnv();
  const { cpuBf16Support, blockedTrainSupport } = require('../dist/nn/resnet');
  const bf16 = cpuBf16Support();
  if (!bf16.supported) console.log(`SKIP bfloat16: ${bf16.reason}`);
  const blocked = blockedTrainSupport();
  console.log(`book mode: ${blocked.supported ? "activations in oneDNN's blocked layout" : `PyTorch's kernels (${blocked.reason})`}`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torchcap-train-step-'));
  const configs = {
    book: { mode: 'book', statsFile: path.join(tmp, 'book.f32') },
    "book, PyTorch's kernels": { mode: 'book', blockedTrain: false, statsFile: path.join(tmp, 'book-pytorch.f32') },
    'fast float32': { mode: 'fast' },
    ...(bf16.supported ? { 'fast bf16': { mode: 'fast', autocast: 'bf16' }, 'book bf16': { mode: 'book', autocast: 'bf16' } } : {}),
  };
  console.log(`The book's training step at batch ${BATCH}, ResNet-152 at 224x224, V = ${VOCAB}; ${machine()}`);
  console.log(`${STEPS} timed steps after one untimed, median of ${REPEATS} interleaved runs (plain Python: ${PLAIN_PYTHON_REPEATS}); load average at start: ${loadAverage()}`);
  const runs = Object.fromEntries([...Object.keys(configs), 'python tuned', 'python plain', 'peak'].map((k) => [k, []]));
  for (let r = 0; r < REPEATS; r++) {
    runs.peak.push(onednnPeak());
    for (const [name, cfg] of Object.entries(configs)) {
      process.stderr.write(`  ${name} (${r + 1}/${REPEATS})\n`);
      runs[name].push(runTorchcap(cfg, r === 0 ? cfg.statsFile : undefined));
    }
    if (tuned) {
      process.stderr.write(`  python tuned (${r + 1}/${REPEATS})\n`);
      runs['python tuned'].push(runPython(tuned));
    }
    if (r < PLAIN_PYTHON_REPEATS) {
      process.stderr.write(`  python plain (${r + 1}/${PLAIN_PYTHON_REPEATS})\n`);
      runs['python plain'].push(runPython({}));
    }
  }
  const med = (k, f) => (runs[k].length ? median(runs[k].map(f)) : NaN);
  const peak32 = med('peak', (p) => p.float32);
  const peak16 = med('peak', (p) => p.bfloat16);
  const plain = med('python plain', (x) => x.seconds);
  const tunedS = med('python tuned', (x) => x.seconds);
  console.log(`oneDNN peak (1x1 convolution 1024->1024, 32x14x14): float32 ${fmt(peak32, 0)} GFLOP/s, bfloat16 ${fmt(peak16, 0)} GFLOP/s`);
  if (runs['python plain'].length) console.log(`Python plain: ${fmt(plain)} s a step, peak RSS ${fmt(med('python plain', (x) => x.peakRssMb), 0)} MB`);
  else console.log('Python plain: not run (PLAIN_PYTHON_REPEATS=0)');
  console.log(`Python with jemalloc tuned: ${fmt(tunedS)} s a step, peak RSS ${fmt(med('python tuned', (x) => x.peakRssMb), 0)} MB`);
  const targets = { book: 1.5, 'fast float32': 1.7, 'fast bf16': 2.5 };
  // What `npm run bench` (bench/run.js) puts in its table, written where SUMMARY says.
  const summary = { batch: BATCH, steps: STEPS, repeats: REPEATS, plain, tuned: tunedS, peak32, peak16, plainRss: med('python plain', (x) => x.peakRssMb), tunedRss: med('python tuned', (x) => x.peakRssMb), configs: {} };
  for (const name of Object.keys(configs)) {
    const s = med(name, (x) => x.seconds);
    const enc = med(name, (x) => x.phases.encoder);
    const flops = 2 * runs[name][0].multiplyAdds;
    const peak = configs[name].autocast === 'bf16' ? peak16 : peak32;
    const gflops = flops / enc / 1e9;
    // each round's own ratio, the tuned Python run beside it in that round: the spread behind the median
    const rounds = REPEATS > 1 && runs['python tuned'].length ? `; each round ${runs[name].map((x, r) => fmt(runs['python tuned'][r].seconds / x.seconds)).join(', ')}` : '';
    const target = targets[name] ? ` (target >= ${targets[name]}: ${tunedS / s >= targets[name] ? 'met' : 'NOT met'}${rounds})` : '';
    summary.configs[name] = { seconds: s, encoder: enc, gflops, peakFraction: gflops / peak, peakRssMb: med(name, (x) => x.peakRssMb) };
    console.log(
      `torchcap ${name}: ${fmt(s)} s a step (encoder ${fmt(enc)}, decoder ${fmt(med(name, (x) => x.phases.decoder))}, backward+Adam ${fmt(med(name, (x) => x.phases.backward))}); ` +
        `${fmt(tunedS / s)}x the tuned Python${target}${Number.isFinite(plain) ? `, ${fmt(plain / s)}x the plain` : ''}; backbone ${fmt(gflops, 0)} GFLOP/s (as direct convolutions) = ${fmt(gflops / peak)} of the ${configs[name].autocast === 'bf16' ? 'bfloat16' : 'float32'} peak; ` +
        `peak RSS ${fmt(med(name, (x) => x.peakRssMb), 0)} MB`,
    );
  }
  // What the peak probe allows book mode: its convolutions (PyTorch's direct kernels, the only ones
  // that give its numbers) all at the probe's float32 rate, the rest of the encoder (batch norms, the
  // pooling, the head) free, the decoder and backward as measured. Not a hard bound (a shape can run
  // above the probe's), but what a target beyond it would ask of this machine.
  {
    const s = 2 * runs.book[0].multiplyAdds / (peak32 * 1e9) + med('book', (x) => x.phases.decoder) + med('book', (x) => x.phases.backward);
    console.log(`book mode at the float32 peak (its convolutions at ${fmt(peak32, 0)} GFLOP/s, the rest of the encoder free): ${fmt(s)} s a step, ${fmt(tunedS / s)}x the tuned Python`);
  }
  const bookRss = med('book', (x) => x.peakRssMb);
  const kernelsRss = med("book, PyTorch's kernels", (x) => x.peakRssMb);
  const before = BATCH === 128 ? ` (${bookRss <= TODAY_PEAK_RSS_MB ? 'not above' : 'ABOVE'} the ${TODAY_PEAK_RSS_MB} MB of book mode at batch 128 before)` : '';
  console.log(`peak RSS in book mode: ${fmt(bookRss, 0)} MB${before}; on PyTorch's kernels ${fmt(kernelsRss, 0)} MB`);
  if (configs['fast bf16']) {
    const f32 = med('fast float32', (x) => x.seconds);
    const b16 = med('fast bf16', (x) => x.seconds);
    console.log(`fast-mode step, bf16 vs float32: ${fmt(f32 / b16)}x (target >= 1.6: ${f32 / b16 >= 1.6 ? 'met' : 'NOT met'})`);
  }
  const lossA = runs.book[0].firstLoss;
  const lossB = runs["book, PyTorch's kernels"][0].firstLoss;
  const stats = compareStats(configs.book.statsFile, configs["book, PyTorch's kernels"].statsFile);
  console.log(
    `book mode vs the same on PyTorch's kernels: first step's loss ${lossA.toFixed(7)} vs ${lossB.toFixed(7)} (${lossA === lossB ? 'equal' : 'DIFFERENT'}); ` +
      `${stats.count} running statistics after ${STEPS + 1} steps: ${stats.differing} differ bit for bit, largest |difference| / (1e-5 |value| + 1e-6) ${fmt(stats.ratioToTolerance)}`,
  );
  console.log(`load average at end: ${loadAverage()} (the machine is shared: ratios within one run, not absolute times, are the figures)`);
  if (process.env.SUMMARY) fs.writeFileSync(process.env.SUMMARY, JSON.stringify(summary));
  fs.rmSync(tmp, { recursive: true, force: true });
}

if (process.argv[2] === '--worker') {
  reportWorker(worker(JSON.parse(process.argv[3])));
} else {
  main();
}
