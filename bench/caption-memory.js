'use strict';
// Memory of a long-lived captioner: N captions in one process (default 10,000) through the async
// API, mixing every input kind (Buffer, path, raw pixels, arrays with an unreadable image, greedy
// and beam search) from two concurrent callers. Prints RSS after warm-up, at the end and at its
// peak, and the live tensor count, as one JSON line.
//
//   node bench/caption-memory.js [--count 10000] [--warmup 500] [--image-size 64] [--max-len 20]
//
// test/captioner-memory.test.ts runs it with a smaller count; BENCHMARKS.md has the full figure.
const fs = require('fs');
const path = require('path');
const sharp = require(require.resolve('sharp', { paths: [path.join(__dirname, '..')] }));
const { requireDist, writeTinyModels, noiseImage, rssMB } = require('./tiny-models');

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

async function main() {
  const count = arg('count', 10000);
  const warmup = arg('warmup', 500);
  const imageSize = arg('image-size', 64);
  const maxLen = arg('max-len', 20);
  const { Captioner } = requireDist('captioner');
  const { memory } = requireDist('core/system');
  const models = await writeTinyModels();
  try {
    const captioner = await Captioner.load({ encoder: models.encoder, decoder: models.decoder, vocab: models.vocab, imageSize, maxLen });
    const png = await noiseImage(96, 72, 1);
    const jpegFile = path.join(models.dir, 'photo.jpg');
    fs.writeFileSync(jpegFile, await noiseImage(80, 80, 2, 'jpeg'));
    const { data, info } = await sharp(await noiseImage(70, 50, 3)).raw().toBuffer({ resolveWithObject: true });
    const raw = { data, width: info.width, height: info.height };
    const bad = Buffer.from('not an image');

    let done = 0;
    let calls = 0;
    let errors = 0;
    let peak = 0;
    let start = 0;
    let goal = warmup;
    const samples = [];
    /** One call of the kind chosen by k; returns the captions it made. */
    async function call(k) {
      switch (k % 4) {
        case 0:
          return [await captioner.caption(png)];
        case 1:
          return [await captioner.caption(jpegFile)];
        case 2:
          return [await captioner.caption(raw, { beam: 2 })];
        default: {
          const out = await captioner.captionEach([png, jpegFile, raw, bad]);
          errors += out.filter((o) => 'error' in o).length;
          return out.filter((o) => 'caption' in o).map((o) => o.caption);
        }
      }
    }
    async function caller() {
      while (done < goal) {
        const captions = await call(calls++);
        if (captions.some((c) => c.split(' ').length !== maxLen)) throw new Error(`unexpected caption: ${captions}`);
        const before = done;
        done += captions.length;
        if (goal > warmup && Math.floor(before / 250) !== Math.floor(done / 250)) {
          const r = rssMB();
          peak = Math.max(peak, r);
          samples.push(Math.round(r));
        }
      }
    }
    const t0 = Date.now();
    await Promise.all([caller(), caller()]);
    const warmupSeconds = (Date.now() - t0) / 1000;
    start = rssMB();
    peak = start;
    done = 0;
    goal = count;
    const t1 = Date.now();
    await Promise.all([caller(), caller()]);
    const seconds = (Date.now() - t1) / 1000;
    const end = rssMB();
    peak = Math.max(peak, end);
    await captioner.dispose();
    const result = {
      captions: done,
      calls,
      unreadable: errors,
      imageSize,
      maxLen,
      warmupCaptions: warmup,
      warmupSeconds: +warmupSeconds.toFixed(1),
      seconds: +seconds.toFixed(1),
      captionsPerSecond: +(done / seconds).toFixed(1),
      rssStartMB: +start.toFixed(1),
      rssEndMB: +end.toFixed(1),
      rssPeakMB: +peak.toFixed(1),
      growthMB: +(end - start).toFixed(1),
      peakGrowthMB: +(peak - start).toFixed(1),
      liveTensors: memory().tensors,
      rssSamplesMB: samples,
    };
    process.stdout.write(JSON.stringify(result) + '\n');
  } finally {
    fs.rmSync(models.dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(`${e.stack || e}\n`);
  process.exit(1);
});
