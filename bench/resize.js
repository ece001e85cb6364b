'use strict';
// `torchcap resize` images/s and the training loader's images/s, for this checkout and, with
// --against DIR, another built checkout (e.g. an earlier commit: `git archive <commit> | tar -x
// -C DIR`, link node_modules, `node scripts/install.js --build-from-source && npx tsc -p .`).
// Every run is a fresh process; the checkouts alternate, REPEATS rounds (default 5); medians and
// their ratios are printed. The machine may be shared: compare ratios from one run, not figures
// from different runs.
//
//   node bench/resize.js [--against DIR] [--repeats N] [--copies N]
//
// resize: the 50 COCO photos (shared data), each --copies times (default 4), to 256 x 256 with the
// checkout's defaults, on all cores. loader: CaptionLoader epochs over 256 x 256 JPEGs (the same
// files for both checkouts, written by this checkout's resize: the book's files), batch 128,
// 1,280 samples, random crop and flip, as `npm run bench` item 4 measures it. The resize is also
// compared with the book's own (its reshape_images: Pillow's LANCZOS, one process) on the same photos.
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');
const { PYTHON, median, machine, pythonHasTorch } = require('./common');

const args = process.argv.slice(2);
const flag = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const REPEATS = Number(flag('--repeats', process.env.REPEATS || 5));
const COPIES = Number(flag('--copies', 4));
const AGAINST = flag('--against');
const HERE = path.resolve(__dirname, '..');
const SHARED = process.env.TORCHCAP_SHARED_DATA || path.resolve(HERE, '../shared/data');
const PHOTOS = path.join(SHARED, 'coco-val2017-mini', 'images');

// Runs in a child process: `node -e TASK checkout task json`.
const TASK = `
const path = require('path');
const [dir, task, json] = process.argv.slice(1);
const o = JSON.parse(json);
const now = () => Number(process.hrtime.bigint()) / 1e9;
(async () => {
  if (task === 'resize') {
    const { resizeImages } = require(path.join(dir, 'dist/prepare/resize'));
    const t = now();
    const r = await resizeImages({ input: o.input, output: o.output });
    if (r.failed.length) throw new Error(JSON.stringify(r.failed));
    console.log(JSON.stringify({ images_per_second: r.done / (now() - t) }));
  } else {
    const { CaptionLoader } = require(path.join(dir, 'dist/data/loader'));
    const loader = new CaptionLoader(o.samples, { batchSize: 128, seed: 0, prefetch: 2 });
    const it = loader.epoch(0);
    await it.next(); // warm: allocator, decoder
    const t = now();
    let n = 0;
    for await (const b of it) n += b.lengths.length;
    console.log(JSON.stringify({ images_per_second: n / (now() - t) }));
  }
})().catch((e) => { console.error(e); process.exit(1); });
`;

// The book's resize (its reshape_images: Pillow, LANCZOS, one process), over the same photos.
const BOOK_RESIZE_PY = `
import os, sys, time, json
from PIL import Image
src, dst = sys.argv[1], sys.argv[2]
os.makedirs(dst, exist_ok=True)
t = time.perf_counter()
images = os.listdir(src)
for im in images:
    with open(os.path.join(src, im), 'r+b') as f:
        with Image.open(f) as image:
            image = image.resize([256, 256], Image.LANCZOS)
            image.save(os.path.join(dst, im), image.format)
print(json.dumps({'images_per_second': len(images) / (time.perf_counter() - t)}))
`;

function runBookResize(input, output) {
  const out = execFileSync(PYTHON, ['-c', BOOK_RESIZE_PY, input, output], { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop()).images_per_second;
}

function run(dir, task, o) {
  const out = execFileSync(process.execPath, ['-e', TASK, dir, task, JSON.stringify(o)], { encoding: 'utf8', maxBuffer: 1 << 26 });
  return JSON.parse(out.trim().split('\n').pop()).images_per_second;
}

function main() {
  if (!fs.existsSync(PHOTOS)) {
    console.log(`SKIP bench/resize.js: no COCO photos in ${PHOTOS}`);
    return;
  }
  const checkouts = { this: HERE };
  if (AGAINST) {
    const dir = path.resolve(AGAINST);
    if (!fs.existsSync(path.join(dir, 'dist', 'data', 'resize.js'))) throw new Error(`${dir} is not a built torchcap checkout (no dist/data/resize.js)`);
    checkouts.against = dir;
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torchcap-bench-resize-'));
  try {
    const input = path.join(tmp, 'in');
    fs.mkdirSync(input);
    const photos = fs.readdirSync(PHOTOS).filter((f) => f.endsWith('.jpg'));
    for (let k = 0; k < COPIES; k++) for (const f of photos) fs.copyFileSync(path.join(PHOTOS, f), path.join(input, `${k}-${f}`));
    // the loader's files: the book's 256 x 256 JPEGs, the same for every checkout
    const resized = path.join(tmp, 'resized');
    run(HERE, 'resize', { input, output: resized });
    const files = fs.readdirSync(resized).map((f) => path.join(resized, f));
    const samples = Array.from({ length: 1280 }, (_, i) => ({ image: files[i % files.length], ids: [1, 4 + (i % 7), 5, 6 + (i % 3), 2] }));

    const results = {};
    for (const name of Object.keys(checkouts)) results[name] = { resize: [], loader: [] };
    const book = [];
    const withPython = pythonHasTorch();
    if (!withPython) console.log(`SKIP the book's resize: ${PYTHON} has no Pillow/torch`);
    for (let r = 0; r < REPEATS; r++) {
      if (withPython) {
        const output = path.join(tmp, `out-book-${r}`);
        book.push(runBookResize(input, output));
        fs.rmSync(output, { recursive: true, force: true });
      }
      for (const [name, dir] of Object.entries(checkouts)) {
        const output = path.join(tmp, `out-${name}-${r}`);
        results[name].resize.push(run(dir, 'resize', { input, output }));
        fs.rmSync(output, { recursive: true, force: true });
        results[name].loader.push(run(dir, 'loader', { samples }));
        process.stderr.write(`  round ${r + 1}/${REPEATS} ${name}: resize ${results[name].resize[r].toFixed(1)}, loader ${results[name].loader[r].toFixed(0)} images/s\n`);
      }
    }
    console.log(`${machine()}; median of ${REPEATS} interleaved runs; ${photos.length * COPIES} photos to resize, 1280 loader samples`);
    for (const task of ['resize', 'loader']) {
      const mine = median(results.this[task]);
      let line = `${task === 'resize' ? 'torchcap resize' : 'training loader'}: ${mine.toFixed(1)} images/s`;
      if (task === 'resize' && book.length) line += `; the book's resize (Pillow, one process): ${median(book).toFixed(1)} images/s; ratio ${(mine / median(book)).toFixed(2)}x`;
      if (task === 'loader') line += " (against the book's DataLoader: item 4 of npm run bench)";
      if (AGAINST) {
        const theirs = median(results.against[task]);
        line += `; ${path.basename(checkouts.against)}: ${theirs.toFixed(1)} images/s; ratio ${(mine / theirs).toFixed(2)}x`;
      }
      console.log(line);
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main();
