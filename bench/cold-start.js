'use strict';
// Cold start: a fresh process that captions one photo with a ResNet-152 book checkpoint, torchcap
// against the book's Python doing the same (imports, models, torch.load, one caption), each process
// timed whole from its start by this one. The checkpoints (the book's formats, random weights) are
// made once by bench/cold_start.py in a cache folder. Both sides run once untimed first, so that the
// page cache is warm for both; then REPEATS interleaved rounds; medians.
//
//   node bench/cold-start.js [--repeats N]
//
// Also reports `Captioner.load` itself (read both checkpoints and the vocabulary, build the models,
// load, fold and prepack the backbone), timed inside the torchcap process.
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');
const { PYTHON, median, machine, defaultPages } = require('./common');

const HERE = path.resolve(__dirname, '..');
const SHARED = process.env.TORCHCAP_SHARED_DATA || path.resolve(HERE, '../shared/data');

// The torchcap side, in a child process: `node -e CHILD checkout models image`.
const CHILD = `
const t0 = performance.now(); // since this process started
const path = require('path');
const [dir, models, image] = process.argv.slice(1);
const { Captioner } = require(path.join(dir, 'dist'));
const tRequire = performance.now();
(async () => {
  const c = await Captioner.load({ encoder: path.join(models, 'encoder.ckpt'), decoder: path.join(models, 'decoder.ckpt'), vocab: path.join(models, 'vocabulary.pkl') });
  const tLoad = performance.now();
  const caption = await c.caption(image);
  const tEnd = performance.now();
  console.log(JSON.stringify({ caption, before_script_seconds: t0 / 1e3, require_seconds: (tRequire - t0) / 1e3, load_seconds: (tLoad - tRequire) / 1e3, caption_seconds: (tEnd - tLoad) / 1e3, in_process_seconds: tEnd / 1e3 }));
  process.exit(0);
})().catch((e) => { console.error(e); process.exit(1); });
`;

// Loading libtorch alone: a fresh process's first native call (Captioner.load pays it, as Python pays
// it inside `import torch`).
const LIBTORCH_CHILD = `
const path = require('path');
const { Tensor } = require(path.join(process.argv[1], 'dist'));
const t = performance.now();
Tensor.zeros([1]);
console.log(JSON.stringify({ libtorch_seconds: (performance.now() - t) / 1e3 }));
process.exit(0);
`;

/** The ResNet-152 book checkpoints, made once. */
function models(dir = path.join(os.tmpdir(), 'torchcap-bench-cold-start-152')) {
  if (!fs.existsSync(path.join(dir, 'vocabulary.pkl'))) {
    fs.rmSync(dir, { recursive: true, force: true });
    execFileSync(PYTHON, [path.join(__dirname, 'cold_start.py'), 'make', dir], { stdio: ['ignore', 'ignore', 'inherit'] });
  }
  return dir;
}

function photo() {
  const dir = path.join(SHARED, 'coco-val2017-mini', 'images');
  if (fs.existsSync(dir)) return path.join(dir, fs.readdirSync(dir).filter((f) => /\.jpe?g$/i.test(f)).sort()[0]);
  // No shared photos: a generated 640x480 JPEG.
  const file = path.join(os.tmpdir(), 'torchcap-bench-cold-start.jpg');
  if (!fs.existsSync(file)) execFileSync(PYTHON, ['-c', `from PIL import Image; import random; random.seed(0); im = Image.new('RGB', (640, 480)); im.putdata([tuple(random.randrange(256) for _ in range(3)) for _ in range(640 * 480)]); im.save('${file}', quality=90)`]);
  return file;
}

/** Runs a command; returns its last line parsed as JSON and the process's wall time. */
function timed(cmd, args, env = {}) {
  const t = process.hrtime.bigint();
  const out = execFileSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 24, env: { ...process.env, ...env } });
  const seconds = Number(process.hrtime.bigint() - t) / 1e9;
  return { ...JSON.parse(out.trim().split('\n').pop()), seconds };
}

/** The cold-start figures: medians of `repeats` interleaved rounds after one untimed run of each. */
function coldStart(repeats = 5, log = (s) => process.stderr.write(s)) {
  const dir = models();
  const image = photo();
  const pages = defaultPages();
  const runs = {
    python: () => timed(PYTHON, [path.join(__dirname, 'cold_start.py'), 'caption', dir, image]),
    torchcap: () => timed(process.execPath, ['-e', CHILD, HERE, dir, image]),
    // the same with the other page size than torchcap's default here (README, performance notes)
    otherPages: () => timed(process.execPath, ['-e', CHILD, HERE, dir, image], { TORCHCAP_HUGE_PAGES: pages.huge ? '0' : '1' }),
    libtorch: () => timed(process.execPath, ['-e', LIBTORCH_CHILD, HERE]),
  };
  const out = { python: [], torchcap: [], otherPages: [], libtorch: [] };
  for (let r = -1; r < repeats; r++) {
    for (const [k, fn] of Object.entries(runs)) {
      log(`  cold start ${k} (${r < 0 ? 'untimed, warms the page cache' : `${r + 1}/${repeats}`})\n`);
      const res = fn();
      if (r >= 0) out[k].push(res);
    }
  }
  const med = (side, key) => median(out[side].map((x) => x[key]));
  return {
    repeats,
    image: path.basename(image),
    checkpointMB: (fs.statSync(path.join(dir, 'encoder.ckpt')).size + fs.statSync(path.join(dir, 'decoder.ckpt')).size) / 1e6,
    python: { whole: med('python', 'seconds'), import: med('python', 'import_seconds'), model: med('python', 'model_seconds'), torchLoad: med('python', 'torch_load_seconds'), loadStateDict: med('python', 'load_state_dict_seconds'), caption: med('python', 'caption_seconds') },
    torchcap: { whole: med('torchcap', 'seconds'), beforeScript: med('torchcap', 'before_script_seconds'), require: med('torchcap', 'require_seconds'), load: med('torchcap', 'load_seconds'), caption: med('torchcap', 'caption_seconds') },
    pages: { default: pages.huge ? 'huge' : '4 KiB', why: pages.why, other: pages.huge ? '4 KiB pages only (TORCHCAP_HUGE_PAGES=0)' : 'huge pages (TORCHCAP_HUGE_PAGES=1)' },
    otherPages: { whole: med('otherPages', 'seconds'), load: med('otherPages', 'load_seconds') },
    libtorch: med('libtorch', 'libtorch_seconds'),
  };
}

module.exports = { coldStart };

if (require.main === module) {
  const i = process.argv.indexOf('--repeats');
  const r = coldStart(Number(i > 0 ? process.argv[i + 1] : process.env.REPEATS || 5));
  const f = (x) => x.toFixed(3);
  console.log(`cold start, one caption, ResNet-152 book checkpoints (${r.checkpointMB.toFixed(0)} MB), ${r.image}; ${machine()}; median of ${r.repeats} interleaved runs after one untimed run each`);
  console.log(`whole process torchcap / Python: ${(r.torchcap.whole / r.python.whole).toFixed(2)}x (target <= 0.35) — Python ${f(r.python.whole)} s (import ${f(r.python.import)}, models ${f(r.python.model)}, torch.load ${f(r.python.torchLoad)}, load_state_dict ${f(r.python.loadStateDict)}, caption ${f(r.python.caption)}), torchcap ${f(r.torchcap.whole)} s (node start ${f(r.torchcap.beforeScript)}, require ${f(r.torchcap.require)}, Captioner.load ${f(r.torchcap.load)}, caption ${f(r.torchcap.caption)})`);
  console.log(`Captioner.load: ${f(r.torchcap.load)} s (target <= 1.0) with ${r.pages.default} pages (${r.pages.why}), of which loading libtorch about ${f(r.libtorch)} s (a fresh process's first native call alone); with ${r.pages.other} ${f(r.otherPages.load)} s`);
}
