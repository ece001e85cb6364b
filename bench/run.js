'use strict';
// `npm run bench`: torchcap against the book's Python code on the same libtorch, side by side.
// Each task runs in fresh processes, torchcap and Python interleaved, REPEATS times (default 3);
// medians are compared. Prints one ratio a line and writes them to BENCHMARKS.md.
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');
const { PYTHON, median, pythonHasTorch, machine } = require('./common');
const { benchData } = require('./data');

const REPEATS = Number(process.env.REPEATS || 3);
const VOCAB = 9948; // the book's vocabulary on train2014
const here = __dirname;

function py(task, data, opts) {
  return JSON.parse(execFileSync(PYTHON, [path.join(here, 'book_reference.py'), task, data, JSON.stringify(opts)], { encoding: 'utf8', maxBuffer: 1 << 26 }));
}

function tc(task, data, opts) {
  return JSON.parse(execFileSync(process.execPath, [path.join(here, 'torchcap_tasks.js'), task, data, JSON.stringify(opts)], { encoding: 'utf8', maxBuffer: 1 << 26 }).trim().split('\n').pop());
}

/** Runs each of `runs` REPEATS times, interleaved; returns each one's results. */
function interleave(runs) {
  const out = Object.fromEntries(Object.keys(runs).map((k) => [k, []]));
  for (let r = 0; r < REPEATS; r++) {
    for (const [k, fn] of Object.entries(runs)) {
      process.stderr.write(`  ${k} (${r + 1}/${REPEATS})\n`);
      out[k].push(fn());
    }
  }
  return out;
}

const med = (rs, key) => median(rs.map((r) => r[key]));
const fmt = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : String(x));

function main() {
  if (!pythonHasTorch()) {
    console.log(`SKIP npm run bench: ${PYTHON} has no torch/torchvision (apt-get install python3-torch python3-torchvision); the benchmarks compare against it`);
    return;
  }
  const data = require('child_process').execFileSync(process.execPath, ['-e', "require('./bench/data').benchData().then((d) => console.log(JSON.stringify(d)))"], { cwd: path.resolve(here, '..'), encoding: 'utf8' });
  const { dir, kind } = JSON.parse(data.trim().split('\n').pop());
  const rows = [];
  const line = (name, ratio, target, detail, ok) => {
    const text = `${name}: ${fmt(ratio)}x (target ${target}) ${ok ? 'met' : 'NOT met'} — ${detail}`;
    console.log(text);
    rows.push({ name, ratio, target, detail, ok });
  };
  console.log(`torchcap vs the book's Python code on the same libtorch; ${machine()}; median of ${REPEATS} interleaved runs; data: ${kind}`);

  // 1. training step, ResNet-152 at 224, batch 16
  const ts = interleave({
    python: () => py('train-step', dir, { batch: 16, steps: 3, vocab: VOCAB }),
    book: () => tc('train-step', dir, { batch: 16, steps: 3, vocab: VOCAB, mode: 'book' }),
    fast: () => tc('train-step', dir, { batch: 16, steps: 3, vocab: VOCAB, mode: 'fast' }),
  });
  const pyStep = med(ts.python, 'seconds_per_step');
  const bookStep = med(ts.book, 'seconds_per_step');
  const fastStep = med(ts.fast, 'seconds_per_step');
  line('1a. training step, book mode (throughput)', pyStep / bookStep, '>= 1.0', `Python ${fmt(pyStep)} s, torchcap ${fmt(bookStep)} s a step`, pyStep / bookStep >= 1.0);
  line('1b. training step, frozen backbone on the fast path', pyStep / fastStep, '>= 1.5', `Python (book mode) ${fmt(pyStep)} s, torchcap ${fmt(fastStep)} s a step`, pyStep / fastStep >= 1.5);
  const phases = ts.book[ts.book.length - 1].phases;

  // 2. an epoch on cached features vs the book's epoch (160 captions, batch 16)
  const ep = interleave({
    python: () => py('epoch', dir, { batch: 16, samples: 160, vocab: VOCAB }),
    torchcap: () => tc('epoch', dir, { batch: 16, samples: 160, vocab: VOCAB }),
  });
  const pyEpoch = med(ep.python, 'seconds');
  const tcEpoch = med(ep.torchcap, 'seconds');
  line('2. training epoch, cached features vs the book', pyEpoch / tcEpoch, '>= 30', `Python ${fmt(pyEpoch)} s, torchcap ${fmt(tcEpoch, 3)} s for 160 captions`, pyEpoch / tcEpoch >= 30);

  // 3. captioning latency
  const cap = interleave({
    python: () => py('caption', dir, { images: 16, vocab: VOCAB }),
    torchcap: () => tc('caption', dir, { images: 16, vocab: VOCAB }),
  });
  const pyOne = med(cap.python, 'median_seconds');
  const tcOne = med(cap.torchcap, 'median_seconds');
  const py16 = med(cap.python, 'all_seconds');
  const tc16 = med(cap.torchcap, 'batch16_seconds');
  line('3a. caption one image, latency torchcap/Python', tcOne / pyOne, '<= 0.7', `Python ${fmt(pyOne, 3)} s, torchcap ${fmt(tcOne, 3)} s`, tcOne / pyOne <= 0.7);
  line('3b. caption 16 images, torchcap batch / 16 Python calls', tc16 / py16, '<= 0.5', `Python ${fmt(py16)} s, torchcap ${fmt(tc16)} s`, tc16 / py16 <= 0.5);

  // 4. data pipeline
  const dp = interleave({
    python: () => py('data', dir, { batch: 128, samples: 1280 }),
    torchcap: () => tc('data', dir, { batch: 128, samples: 1280 }),
  });
  const pyImgs = med(dp.python, 'images_per_second');
  const tcImgs = med(dp.torchcap, 'images_per_second');
  line('4. data pipeline images/s, torchcap / DataLoader(2 workers)', tcImgs / pyImgs, '>= 1.5', `Python ${fmt(pyImgs, 0)}, torchcap ${fmt(tcImgs, 0)} images/s`, tcImgs / pyImgs >= 1.5);

  // 5. ResNet-152 forward against the matmul
  const fw = interleave({
    python: () => py('forward', dir, { batch: 16, reps: 2 }),
    torchcap: () => tc('forward', dir, { batch: 16, reps: 2 }),
  });
  const flops = 2 * fw.torchcap[0].multiply_adds; // 2 FLOPs per multiply-add, as for the matmul
  const mm = med(fw.torchcap, 'matmul_gflops');
  const tcPlain = flops / med(fw.torchcap, 'plain_seconds') / 1e9;
  const tcFast = flops / med(fw.torchcap, 'fast_seconds') / 1e9;
  const pyPlain = flops / med(fw.python, 'forward_seconds') / 1e9;
  const pyMm = med(fw.python, 'matmul_gflops');
  line('5. ResNet-152 forward GFLOP/s / matmul GFLOP/s (fast path)', tcFast / mm, '>= 0.6', `matmul ${fmt(mm, 0)} GFLOP/s; torchcap fast ${fmt(tcFast, 0)}, plain ${fmt(tcPlain, 0)}; Python plain ${fmt(pyPlain, 0)} (${fmt(pyPlain / pyMm)} of its matmul ${fmt(pyMm, 0)})`, tcFast / mm >= 0.6);

  // 6. peak RSS in training (the book mode runs of item 1)
  const pyRss = med(ts.python, 'peak_rss_mb');
  const tcRss = med(ts.book, 'peak_rss_mb');
  line('6. peak RSS training batch 16, torchcap / Python', tcRss / pyRss, '<= 1.0', `Python ${fmt(pyRss, 0)} MB, torchcap ${fmt(tcRss, 0)} MB`, tcRss / pyRss <= 1.0);

  const phaseText = Object.entries(phases)
    .map(([k, v]) => `${k} ${fmt(v * 1000, 0)} ms`)
    .join(', ');
  console.log(`training step (book mode) by phase: ${phaseText}`);
  writeReport(rows, { kind, phaseText });
}

function writeReport(rows, extra) {
  const file = path.resolve(here, '..', 'BENCHMARKS.md');
  const start = '<!-- npm run bench: start -->';
  const end = '<!-- npm run bench: end -->';
  const table = [
    start,
    `Last run: ${new Date().toISOString().slice(0, 10)}, ${machine()}; median of ${REPEATS} interleaved runs each; data: ${extra.kind}.`,
    '',
    '| measure | ratio | target | met | figures |',
    '|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.name} | ${fmt(r.ratio)} | ${r.target} | ${r.ok ? 'yes' : '**no**'} | ${r.detail} |`),
    '',
    `Training step (book mode) by phase, torchcap: ${extra.phaseText}.`,
    end,
  ].join('\n');
  let text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '# Benchmarks\n';
  if (text.includes(start)) text = text.slice(0, text.indexOf(start)) + table + text.slice(text.indexOf(end) + end.length);
  else text = `${text.trimEnd()}\n\n## torchcap vs the book's Python code (\`npm run bench\`)\n\n${table}\n`;
  fs.writeFileSync(file, text);
}

main();
