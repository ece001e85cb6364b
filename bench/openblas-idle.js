'use strict';
// What torchcap's OpenBLAS setting changes: OPENBLAS_THREAD_TIMEOUT=4 (torchcap's default, set
// before libtorch loads; lib/core/addon-loader.ts) against OpenBLAS's own 28, on the demo's
// captioner step: cached ResNet-18 features [128, 512] -> the linear and batch-norm head (64) ->
// the LSTM decoder (hidden 256, 37 words) over captions of 8-16 tokens -> cross-entropy ->
// backward -> Adam. Its many small matrix products run on OpenBLAS, whose idle threads spin on
// sched_yield for 2^timeout cycles before they sleep. Each setting runs in its own process,
// interleaved, REPEATS times (default 5); medians.
//
//   node bench/openblas-idle.js            (needs dist/: npx tsc -p .)
const path = require('path');
const { execFileSync } = require('child_process');
const { median, machine, loadAverage, reportWorker } = require('./common');

const REPEATS = Number(process.env.REPEATS || 5);
const STEPS = Number(process.env.STEPS || 120);

async function worker() {
  const { Tensor, manualSeed } = require('../dist');
  const { CaptionEncoder, CaptionDecoder } = require('../dist/model');
  const { Adam } = require('../dist/nn/optim');
  const { trainStep } = require('../dist/train/step');
  manualSeed(0);
  const encoder = new CaptionEncoder({ backbone: 18, embedSize: 64 });
  const decoder = new CaptionDecoder({ vocabSize: 37, embedSize: 64, hiddenSize: 256 });
  const optimizer = new Adam([...decoder.parameters(), ...encoder.trainableParameters()], { lr: 0.006 });
  const models = { encoder, decoder, optimizer };
  const batch = () => {
    const lengths = Array.from(Tensor.randint(8, 17, [128]).toTypedArray(), Number).sort((a, b) => b - a);
    return { features: Tensor.randn([128, 512]), captions: Tensor.randint(4, 37, [128, lengths[0]]), lengths };
  };
  const batches = Array.from({ length: 20 }, batch);
  for (let i = 0; i < 10; i++) await trainStep(models, batches[i % batches.length]); // warm-up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < STEPS; i++) await trainStep(models, batches[i % batches.length]);
  return { msPerStep: Number(process.hrtime.bigint() - t0) / 1e6 / STEPS, timeout: process.env.OPENBLAS_THREAD_TIMEOUT };
}

function run(timeout) {
  const out = execFileSync(process.execPath, [__filename, '--worker'], { env: { ...process.env, OPENBLAS_THREAD_TIMEOUT: timeout }, encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop());
}

function main() {
  console.log(`The demo's captioner step (features cached, batch 128), OPENBLAS_THREAD_TIMEOUT 4 (torchcap's default) against 28 (OpenBLAS's); ${machine()}`);
  console.log(`${STEPS} steps after 10, median of ${REPEATS} interleaved runs; load average at start: ${loadAverage()}`);
  const ms = { 4: [], 28: [] };
  for (let r = 0; r < REPEATS; r++) {
    for (const t of ['28', '4']) {
      const res = run(t);
      if (res.timeout !== t) throw new Error(`the worker saw OPENBLAS_THREAD_TIMEOUT=${res.timeout}, not ${t}`);
      ms[t].push(res.msPerStep);
    }
  }
  const m4 = median(ms[4]);
  const m28 = median(ms[28]);
  console.log(`  timeout 28 (OpenBLAS's default): ${m28.toFixed(1)} ms a step  (runs: ${ms[28].map((x) => x.toFixed(1)).join(', ')})`);
  console.log(`  timeout 4 (torchcap's default):  ${m4.toFixed(1)} ms a step  (runs: ${ms[4].map((x) => x.toFixed(1)).join(', ')})`);
  console.log(`  speed-up: ${(m28 / m4).toFixed(2)}x`);
}

if (process.argv[2] === '--worker') {
  reportWorker(worker());
} else {
  main();
}
