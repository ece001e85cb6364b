'use strict';
// `npm run bench`: torchcap against the book's Python code on the same libtorch, side by side, from
// one entry. Each task runs in fresh processes, torchcap and Python interleaved, REPEATS times
// (default 3); medians are compared, every figure as a ratio with its inputs, against the book's
// Python as users run it ("plain") and with jemalloc tuned ("tuned", bench/common.js). Besides its
// own tasks it runs bench/train-step.js at batch 16 and at the book's 128, bench/bf16.js,
// bench/bf16-convolutions.js, bench/caption-phases.js, bench/resize.js, bench/cold-start.js, bench/openblas-idle.js and
// bench/openblas-kernels.js, and writes all of it into BENCHMARKS.md.
//
//   npm run bench                      (needs dist/: npx tsc -p .)
//   REPEATS=1 BIG_REPEATS=1 npm run bench    fewer rounds (BIG_REPEATS: batch 128, default 3;
//                                      the book's plain Python runs once there, about 90-100 s a step)
//   PARTS=core,step16,step128,bf16,convs,phases,resize,cold,openblas,kernels npm run bench    a subset (BENCHMARKS.md then keeps
//                                      the figures of the parts not run)
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');
const { PYTHON, median, pythonHasTorch, machine, onednnPeak, loadAverage } = require('./common');
const { coldStart } = require('./cold-start');

const REPEATS = Number(process.env.REPEATS || 3);
const BIG_REPEATS = Number(process.env.BIG_REPEATS || 3);
const PARTS = (process.env.PARTS || 'core,step16,step128,bf16,convs,phases,resize,cold,openblas,kernels').split(',');
const VOCAB = 9948; // the book's vocabulary on train2014
const COCO = { captions: 414113, images: 82783 }; // train2014
const here = __dirname;

function py(task, data, opts) {
  return JSON.parse(execFileSync(PYTHON, [path.join(here, 'book_reference.py'), task, data, JSON.stringify(opts)], { encoding: 'utf8', maxBuffer: 1 << 26 }));
}

function tc(task, data, opts, env = {}) {
  return JSON.parse(
    execFileSync(process.execPath, [path.join(here, 'torchcap_tasks.js'), task, data, JSON.stringify(opts)], { encoding: 'utf8', maxBuffer: 1 << 26, env: { ...process.env, ...env } })
      .trim()
      .split('\n')
      .pop(),
  );
}

/** Runs each of `runs` REPEATS times, interleaved; returns each one's results. */
function interleave(runs, repeats = REPEATS) {
  const out = Object.fromEntries(Object.keys(runs).map((k) => [k, []]));
  for (let r = 0; r < repeats; r++) {
    for (const [k, fn] of Object.entries(runs)) {
      process.stderr.write(`  ${k} (${r + 1}/${repeats})\n`);
      out[k].push(fn());
    }
  }
  return out;
}

/** Runs another bench script; echoes and returns its printed lines (progress goes to stderr). */
function script(name, env) {
  process.stderr.write(`bench/${name} ${Object.entries(env).map(([k, v]) => `${k}=${v}`).join(' ')}\n`);
  let out;
  try {
    out = execFileSync(process.execPath, [path.join(here, name)], { env: { ...process.env, ...env }, encoding: 'utf8', maxBuffer: 1 << 26, stdio: ['ignore', 'pipe', 'inherit'] });
  } catch (e) {
    process.stdout.write(e.stdout || ''); // what the script printed before it failed
    throw e;
  }
  const lines = out.trim().split('\n').filter(Boolean);
  for (const l of lines) console.log(`  ${l}`);
  return lines;
}

const med = (rs, key) => median(rs.map((r) => r[key]));
const fmt = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : String(x));
const s2 = (x) => `${fmt(x)} s`;

function main() {
  if (!pythonHasTorch()) {
    console.log(`SKIP npm run bench: ${PYTHON} has no torch/torchvision (apt-get install python3-torch python3-torchvision); the benchmarks compare against it`);
    return;
  }
  const data = execFileSync(process.execPath, ['-e', "require('./bench/data').benchData().then((d) => console.log(JSON.stringify(d)))"], { cwd: path.resolve(here, '..'), encoding: 'utf8' });
  const { dir, kind } = JSON.parse(data.trim().split('\n').pop());
  const rows = [];
  const sections = {};
  let part = '';
  // `unit`: what the figure is printed with (a ratio, or ' s' for a row in seconds)
  const line = (name, ratio, target, detail, ok, unit = 'x') => {
    const text = `${name}: ${fmt(ratio)}${unit}${target ? ` (target ${target}) ${ok ? 'met' : 'NOT met'}` : ''} — ${detail}`;
    console.log(text);
    rows.push({ part, name, ratio, target, detail, ok });
  };
  const started = new Date();
  console.log(`torchcap vs the book's Python code on the same libtorch; ${machine()}; load average ${loadAverage()}; median of ${REPEATS} interleaved runs (batch 128: ${BIG_REPEATS}); data: ${kind}`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torchcap-bench-'));

  // 1. the training step at batch 16 (bench/train-step.js: book mode, the fast path, float32 and bf16, both Pythons)
  if (PARTS.includes('step16')) {
    part = 'step16';
    const file = path.join(tmp, 'step16.json');
    sections.step16 = script('train-step.js', { BATCH: 16, STEPS: 3, REPEATS, PLAIN_PYTHON_REPEATS: REPEATS, SUMMARY: file });
    stepRows(JSON.parse(fs.readFileSync(file, 'utf8')), line, { book: [1.0, 1.5], fast: [1.5, null] });
  }

  if (PARTS.includes('core')) {
    part = 'core';
    // 2. an epoch on cached features vs the book's epoch (160 captions, batch 16), first and later epochs apart
    const ep = interleave({
      python: () => py('epoch', dir, { batch: 16, samples: 160, vocab: VOCAB }),
      torchcap: () => tc('epoch', dir, { batch: 16, samples: 160, vocab: VOCAB }),
    });
    const pyEpoch = med(ep.python, 'seconds');
    const later = med(ep.torchcap, 'seconds');
    const first = med(ep.torchcap, 'first_seconds');
    const cache = med(ep.torchcap, 'cache_seconds');
    const { samples, images } = ep.torchcap[0];
    line('2a. training epoch on cached features, later epochs vs the book', pyEpoch / later, '>= 30', `Python ${s2(pyEpoch)}, torchcap ${fmt(later, 3)} s for ${samples} captions`, pyEpoch / later >= 30);
    line('2b. the first epoch (building the cache of its images) vs the book', pyEpoch / first, '', `Python ${s2(pyEpoch)}, torchcap ${s2(first)} (cache of ${images} images ${s2(cache)}, then ${fmt(first - cache, 3)} s of steps)`);
    const perImage = cache / images;
    const perCaption = later / samples;
    const pyPerCaption = pyEpoch / samples;
    const hours = (x) => `${fmt(x / 3600, 1)} h`;
    const cocoFirst = COCO.images * perImage + COCO.captions * perCaption;
    const cocoLater = COCO.captions * perCaption;
    const cocoBook = COCO.captions * pyPerCaption;
    sections.coco = [
      `COCO train2014 (${COCO.captions.toLocaleString('en')} captions of ${COCO.images.toLocaleString('en')} images) at the costs measured here: ` +
        `the book's epoch ${COCO.captions.toLocaleString('en')} x ${fmt(pyPerCaption * 1000, 1)} ms = ${hours(cocoBook)}; ` +
        `torchcap's first epoch ${COCO.images.toLocaleString('en')} x ${fmt(perImage * 1000, 1)} ms (an image's features) + ${COCO.captions.toLocaleString('en')} x ${fmt(perCaption * 1000, 2)} ms (a caption's step) = ${hours(cocoFirst)}; ` +
        `each later epoch ${hours(cocoLater)} (${fmt(cocoLater / 60, 0)} min)`,
    ];
    console.log(sections.coco[0]);

    // 3. captioning: one image's latency, and 16 images as one batch against the book's model doing the same
    const cap = interleave({
      python: () => py('caption', dir, { images: 16, vocab: VOCAB }),
      torchcap: () => tc('caption', dir, { images: 16, vocab: VOCAB }),
    });
    const pyOne = med(cap.python, 'median_seconds');
    const tcOne = med(cap.torchcap, 'median_seconds');
    const py16 = med(cap.python, 'all_seconds');
    const pyBatch = med(cap.python, 'batch16_seconds');
    const tc16 = med(cap.torchcap, 'batch16_seconds');
    line('3a. caption one image, latency torchcap/Python', tcOne / pyOne, '<= 0.7', `Python ${fmt(pyOne, 3)} s, torchcap ${fmt(tcOne, 3)} s`, tcOne / pyOne <= 0.7);
    line('3b. caption 16 images as one batch, torchcap / the book\'s model on the same batch', tc16 / pyBatch, '', `Python ${s2(pyBatch)}, torchcap ${s2(tc16)}`);
    line('3c. caption 16 images, torchcap batch / 16 Python calls', tc16 / py16, '<= 0.5', `Python ${s2(py16)}, torchcap ${s2(tc16)}`, tc16 / py16 <= 0.5);

    // 4. data pipeline
    const dp = interleave({
      python: () => py('data', dir, { batch: 128, samples: 1280 }),
      torchcap: () => tc('data', dir, { batch: 128, samples: 1280 }),
    });
    const pyImgs = med(dp.python, 'images_per_second');
    const tcImgs = med(dp.torchcap, 'images_per_second');
    line('4. data pipeline images/s, torchcap / DataLoader(2 workers)', tcImgs / pyImgs, '>= 1.5', `Python ${fmt(pyImgs, 0)}, torchcap ${fmt(tcImgs, 0)} images/s`, tcImgs / pyImgs >= 1.5);

    // 5. the ResNet-152 forward at batch 16 against oneDNN's peak, measured in the same run
    const fw = interleave({
      peak: () => onednnPeak(),
      python: () => py('forward', dir, { batch: 16, reps: 2 }),
      torchcap: () => tc('forward', dir, { batch: 16, reps: 2 }),
      direct: () => tc('forward', dir, { batch: 16, reps: 2 }, { TORCHCAP_WINOGRAD: '0' }),
    });
    const flops = 2 * fw.torchcap[0].multiply_adds;
    const peak32 = median(fw.peak.map((p) => p.float32));
    const tcPlain = flops / med(fw.torchcap, 'plain_seconds') / 1e9;
    const tcFast = flops / med(fw.torchcap, 'fast_seconds') / 1e9;
    const pyPlain = flops / med(fw.python, 'forward_seconds') / 1e9;
    // GFLOP/s count a direct convolution's multiply-adds; the fast path's Winograd convolutions do
    // fewer, so its figure is a speed in the direct convolution's units (TORCHCAP_WINOGRAD=0: all direct).
    const tcDirect = flops / med(fw.direct, 'fast_seconds') / 1e9;
    line(
      '5a. ResNet-152 forward at batch 16, fast path GFLOP/s / oneDNN float32 peak',
      tcFast / peak32,
      '>= 0.8',
      `peak ${fmt(peak32, 0)} GFLOP/s (1x1 convolution); torchcap fast ${fmt(tcFast, 0)} (GFLOP/s of direct convolutions; all convolutions direct: ${fmt(tcDirect, 0)} = ${fmt(tcDirect / peak32)}), plain ${fmt(tcPlain, 0)} (${fmt(tcPlain / peak32)}); Python ${fmt(pyPlain, 0)} (${fmt(pyPlain / peak32)})`,
      tcFast / peak32 >= 0.8,
    );
    if (fw.torchcap[0].fast_bf16_seconds !== null && fw.peak[0].bfloat16) {
      const peak16 = median(fw.peak.map((p) => p.bfloat16));
      const tcBf16 = flops / med(fw.torchcap, 'fast_bf16_seconds') / 1e9;
      line('5b. the same in bf16: GFLOP/s / oneDNN bfloat16 peak', tcBf16 / peak16, '', `peak ${fmt(peak16, 0)} GFLOP/s; torchcap fast bf16 ${fmt(tcBf16, 0)} (${fmt(tcBf16 / tcFast)}x float32)`);
    } else console.log('SKIP 5b. bf16 forward: this CPU has no bfloat16 (see cpuBf16Support)');
  }

  // 7. the book's batch size, 128 (bench/train-step.js)
  if (PARTS.includes('step128')) {
    part = 'step128';
    const file = path.join(tmp, 'step128.json');
    sections.step128 = script('train-step.js', { BATCH: 128, STEPS: 2, REPEATS: BIG_REPEATS, PLAIN_PYTHON_REPEATS: 1, SUMMARY: file });
    stepRows(JSON.parse(fs.readFileSync(file, 'utf8')), line, { book: [null, 1.5], fast: [null, 1.7], bf16: [null, 2.5] });
  }
  if (PARTS.includes('bf16')) sections.bf16 = script('bf16.js', { REPEATS });
  if (PARTS.includes('convs')) sections.convs = script('bf16-convolutions.js', { REPEATS });
  if (PARTS.includes('phases')) sections.phases = script('caption-phases.js', { REPEATS });
  if (PARTS.includes('resize')) sections.resize = script('resize.js', { REPEATS });
  if (PARTS.includes('openblas')) sections.openblas = script('openblas-idle.js', { REPEATS });
  if (PARTS.includes('kernels')) sections.kernels = script('openblas-kernels.js', { REPEATS });

  // 8. cold start: a fresh process to the first caption with ResNet-152 book checkpoints
  if (PARTS.includes('cold')) {
    part = 'cold';
    const c = coldStart(REPEATS);
    const p = c.python;
    const t = c.torchcap;
    line(
      '8a. cold start to one caption (ResNet-152 checkpoints), whole process torchcap / Python',
      t.whole / p.whole,
      '<= 0.35',
      `Python ${s2(p.whole)} (imports ${s2(p.import)}, models ${s2(p.model)}, torch.load ${s2(p.torchLoad)}, load_state_dict ${s2(p.loadStateDict)}, caption ${s2(p.caption)}), torchcap ${s2(t.whole)} (node ${s2(t.beforeScript)}, require ${s2(t.require)}, Captioner.load ${s2(t.load)}, caption ${s2(t.caption)})`,
      t.whole / p.whole <= 0.35,
    );
    line(
      '8b. Captioner.load, seconds (not a ratio)',
      t.load,
      '<= 1.0',
      `load libtorch (a fresh process's first native call alone: ${s2(c.libtorch)}), read ${fmt(c.checkpointMB, 0)} MB of checkpoints and the vocabulary, build, load, fold and prepack the backbone; ${c.pages.default} pages (${c.pages.why}); with ${c.pages.other} ${s2(c.otherPages.load)}`,
      t.load <= 1.0,
      ' s',
    );
  }
  fs.rmSync(tmp, { recursive: true, force: true });
  console.log(`load average at end: ${loadAverage()}`);
  writeReport(rows, sections, { kind, started });
}

/** Table rows from a bench/train-step.js summary; targets [against plain, against tuned] per configuration. */
function stepRows(sum, line, targets) {
  const b = sum.batch;
  const against = (s) => `Python plain ${s2(sum.plain)}, tuned ${s2(sum.tuned)}; torchcap ${s2(s)} a step`;
  const both = (name, cfg, t) => {
    if (!cfg) return;
    const [tp, tt] = t || [];
    const okP = tp === null || tp === undefined || sum.plain / cfg.seconds >= tp;
    const okT = tt === null || tt === undefined || sum.tuned / cfg.seconds >= tt;
    line(`${name} at batch ${b}, vs Python plain`, sum.plain / cfg.seconds, tp ? `>= ${tp}` : '', against(cfg.seconds), okP);
    line(`${name} at batch ${b}, vs Python tuned`, sum.tuned / cfg.seconds, tt ? `>= ${tt}` : '', `${against(cfg.seconds)}; backbone ${fmt(cfg.gflops, 0)} GFLOP/s (as direct convolutions) = ${fmt(cfg.peakFraction)} of oneDNN's peak`, okT);
  };
  both('1a. training step, book mode', sum.configs.book, targets.book);
  both('1b. training step, frozen backbone on the fast path', sum.configs['fast float32'], targets.fast);
  both('1c. training step, fast path in bf16', sum.configs['fast bf16'], targets.bf16);
  if (sum.configs['fast bf16']) {
    const r = sum.configs['fast float32'].seconds / sum.configs['fast bf16'].seconds;
    line(`1d. fast-path step at batch ${b}, bf16 / float32 speed`, r, '>= 1.6', `float32 ${s2(sum.configs['fast float32'].seconds)}, bf16 ${s2(sum.configs['fast bf16'].seconds)}`, r >= 1.6);
  }
  const rss = sum.configs.book.peakRssMb;
  line(`6. peak RSS training at batch ${b}, torchcap book mode / Python plain`, rss / sum.plainRss, '<= 1.0', `Python plain ${fmt(sum.plainRss, 0)} MB, tuned ${fmt(sum.tunedRss, 0)} MB, torchcap ${fmt(rss, 0)} MB`, rss / sum.plainRss <= 1.0);
}

const TITLES = {
  step16: 'The training step at batch 16 (`bench/train-step.js`, BATCH=16)',
  core: 'Epochs, captioning, data pipeline, the forward against the peak (`bench/run.js`)',
  step128: "The training step at the book's batch size, 128 (`bench/train-step.js`)",
  bf16: "bf16 on the CPU (`bench/bf16.js`)",
  convs: 'bf16 against float32, convolution by convolution (`bench/bf16-convolutions.js`)',
  phases: "One caption's phases (`bench/caption-phases.js`)",
  resize: 'Resizing and the training loader (`bench/resize.js`)',
  cold: 'Cold start (`bench/cold-start.js`)',
  openblas: "OpenBLAS's idle threads (`bench/openblas-idle.js`)",
  kernels: "OpenBLAS's kernels (`bench/openblas-kernels.js`)",
};

/** Rewrites, in BENCHMARKS.md, the block of every part that ran (the others keep their figures). */
function writeReport(rows, sections, extra) {
  const file = path.resolve(here, '..', 'BENCHMARKS.md');
  let text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '# Benchmarks\n';
  const stamp = `${extra.started.toISOString().slice(0, 16).replace('T', ' ')} UTC, ${machine()}; load average at the end ${loadAverage()}; median of ${REPEATS} interleaved runs (batch 128: ${BIG_REPEATS}); data: ${extra.kind}.`;
  for (const p of Object.keys(TITLES)) {
    if (!PARTS.includes(p)) continue;
    const start = `<!-- npm run bench: ${p} start -->`;
    const end = `<!-- npm run bench: ${p} end -->`;
    const mine = rows.filter((r) => r.part === p);
    const lines = [start, `#### ${TITLES[p]}`, '', `Last run: ${stamp}`, ''];
    if (mine.length) {
      lines.push('| measure | ratio | target | met | figures |', '|---|---|---|---|---|');
      for (const r of mine) lines.push(`| ${r.name} | ${fmt(r.ratio)} | ${r.target || '—'} | ${r.target ? (r.ok ? 'yes' : '**no**') : ''} | ${r.detail} |`);
      lines.push('');
    }
    const printed = [...(sections[p] || []), ...(p === 'core' ? sections.coco || [] : [])];
    if (printed.length) lines.push('```', ...printed, '```', '');
    lines.push(end);
    const block = lines.join('\n');
    if (text.includes(start)) text = text.slice(0, text.indexOf(start)) + block + text.slice(text.indexOf(end) + end.length);
    else {
      const anchor = '<!-- npm run bench: parts end -->';
      if (text.includes(anchor)) text = text.replace(anchor, `${block}\n\n${anchor}`);
      else text = `${text.trimEnd()}\n\n${block}\n`;
    }
  }
  fs.writeFileSync(file, text);
}

main();
