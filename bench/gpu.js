'use strict';
// The book's models on a CUDA GPU (run on a CUDA machine; see scripts/gpu-check.sh):
// - the training step at the book's batch size (128, ResNet-152 at 224, V = 9,948): book mode in
//   float32, as the book trains, against the book's Python on the same GPU; the frozen fast path in
//   float32 and with bf16 autocast on the backbone. Each step as the bench's CPU step runs it
//   (bench/torchcap_tasks.js): a new random batch from host memory, moved to the GPU inside the
//   step, as the book's loop does; the book's Python likewise.
// - the projected time of the book's 5 epochs on COCO train2014 (414,113 captions) from it;
// - one caption's latency (one image, encoder and greedy decoding up to 20 words) and captioning
//   throughput at batch 64, float32 and bf16.
// Both sides run with libtorch's defaults (cuDNN may use TF32 in float32 convolutions, as PyTorch
// allows by default). Env: BATCH (128), STEPS (10), GPU_BENCH_JSON (a file for the figures),
// PYTHON (python3: a Python whose torch sees the GPU; SKIP_PYTHON=1 leaves it out), BENCH_DEVICE.
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const { Tensor, versions, noGrad } = require('../dist');
const { CaptionEncoder, CaptionDecoder } = require('../dist/model');
const { greedy } = require('../dist/sample');
const { trainStep } = require('./torchcap_tasks');
const { median } = require('./common');

const v = versions();
// BENCH_DEVICE=cpu rehearses the script where there is no GPU (with a small BATCH)
const device = process.env.BENCH_DEVICE || 'cuda';
if (device === 'cuda' && !v.cuda) {
  console.log(`SKIP GPU benchmark: no CUDA (${v.cudaBuild ? 'no device visible' : 'CPU-only libtorch'})`);
  process.exit(0);
}
const V = 9948; // the book's vocabulary size
const BATCH = Number(process.env.BATCH || 128);
const STEPS = Number(process.env.STEPS || 10);
const COCO_CAPTIONS = 414113;
const EPOCHS = 5;
const now = () => Number(process.hrtime.bigint()) / 1e9;

async function trainStepSeconds(mode, autocast) {
  // two warm-up steps: cuDNN's plans, the caching allocator
  const r = await trainStep(null, { mode, autocast, device, batch: BATCH, vocab: V, steps: STEPS, warmup: 2 });
  return median(r.step_seconds);
}

function pythonStep() {
  if (process.env.SKIP_PYTHON) return null;
  const python = process.env.PYTHON || 'python3';
  const opts = JSON.stringify({ vocab: V, batch: BATCH, steps: STEPS, device });
  const r = spawnSync(python, [path.join(__dirname, 'book_reference.py'), 'train-step', '.', opts], { encoding: 'utf8' });
  if (r.status !== 0) {
    console.log(`the book's Python did not run: ${(r.stderr || '').trim().split('\n').slice(-3).join(' ')}`);
    return null;
  }
  return JSON.parse(r.stdout.trim().split('\n').pop()).seconds_per_step;
}

async function captioning(autocast, batch, reps) {
  const encoder = new CaptionEncoder({ backbone: 152, backboneMode: 'fast', autocast, device });
  const decoder = new CaptionDecoder({ vocabSize: V, device });
  await encoder.prepareAsync();
  const x = Tensor.randn([batch, 3, 224, 224]);
  const run = async () => greedy(decoder, noGrad(() => encoder.forward(x, { train: false })), { maxLen: 20 });
  for (let i = 0; i < 3; i++) await run();
  const seconds = [];
  for (let i = 0; i < reps; i++) {
    const t = now();
    await run(); // greedy returns word ids on the host: the GPU's work is done
    seconds.push(now() - t);
  }
  return median(seconds);
}

(async () => {
  const gpu = (device === 'cuda' && spawnSync('nvidia-smi', ['--query-gpu=name', '--format=csv,noheader'], { encoding: 'utf8' }).stdout?.trim()) || device;
  console.log(`GPU benchmark: ${gpu}, libtorch ${v.libtorch}, batch ${BATCH}, median of ${STEPS} steps after 2`);
  const stepsPerEpoch = Math.ceil(COCO_CAPTIONS / BATCH);
  const out = { date: new Date().toISOString(), gpu, libtorch: v.libtorch, batch: BATCH, steps: STEPS, train: {}, caption: {} };
  const python = pythonStep();
  if (python !== null) out.train.python_book = python;
  for (const [name, mode, autocast] of [
    ['book', 'book', undefined],
    ['fast', 'fast', undefined],
    ['fast_bf16', 'fast', 'bf16'],
  ]) {
    out.train[name] = await trainStepSeconds(mode, autocast);
  }
  out.projected_hours = Object.fromEntries(Object.entries(out.train).map(([k, s]) => [k, (EPOCHS * stepsPerEpoch * s) / 3600]));
  const vsPython = (name) => (python !== null && name !== 'python_book' ? `${(python / out.train[name]).toFixed(2)}x` : '');
  for (const [name, s] of Object.entries(out.train)) {
    console.log(
      `train step ${name.padEnd(11)} ${(s * 1000).toFixed(0).padStart(5)} ms, ${(BATCH / s).toFixed(0).padStart(5)} images/s` +
        `${vsPython(name) && `, ${vsPython(name)} the book's Python`}; ${EPOCHS} epochs of COCO train2014 (${stepsPerEpoch} steps each): ${out.projected_hours[name].toFixed(2)} h`,
    );
  }
  for (const [name, autocast] of [['fp32', undefined], ['bf16', 'bf16']]) {
    const one = await captioning(autocast, 1, 20);
    const batch = await captioning(autocast, 64, 5);
    out.caption[name] = { one_image_ms: one * 1000, batch64_images_per_s: 64 / batch };
    console.log(`caption ${name}: one image ${(one * 1000).toFixed(1)} ms; batch 64: ${(64 / batch).toFixed(0)} images/s`);
  }
  if (process.env.GPU_BENCH_JSON) fs.writeFileSync(process.env.GPU_BENCH_JSON, JSON.stringify(out, null, 2));
  console.log(`\nFor BENCHMARKS.md (${out.date.slice(0, 16).replace('T', ' ')} UTC, ${gpu}, ${require('os').availableParallelism()} CPU cores, libtorch ${v.libtorch}):\n`);
  const names = { python_book: "the book's Python, book mode", book: 'torchcap, book mode', fast: 'torchcap, fast path', fast_bf16: 'torchcap, fast path, bf16' };
  console.log(`| training step, batch ${BATCH}, float32 unless said | ms a step | images/s | against the book's Python | ${EPOCHS} epochs of COCO train2014 |`);
  console.log('|---|---|---|---|---|');
  for (const [name, s] of Object.entries(out.train)) {
    console.log(`| ${names[name]} | ${(s * 1000).toFixed(0)} | ${(BATCH / s).toFixed(0)} | ${vsPython(name)} | ${out.projected_hours[name].toFixed(2)} h |`);
  }
  console.log('\n| captioning (ResNet-152, greedy, up to 20 words) | one image | batch 64 |');
  console.log('|---|---|---|');
  for (const [name, c] of Object.entries(out.caption)) console.log(`| ${name} | ${c.one_image_ms.toFixed(1)} ms | ${c.batch64_images_per_s.toFixed(0)} images/s |`);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
