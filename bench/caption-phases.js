'use strict';
// Where one caption's time goes (ResNet-152 at 224x224, V = 9,948, the book's decoder sizes,
// random weights so all 20 steps run): the backbone's forward at batch 1 on the fast path (float32,
// and bf16 where the CPU has it), and greedy sampling's 20 steps three ways: torchcap's sampling
// step (the LSTM's gates and the logits row by row, as matrix-vector products), the same loop on
// PyTorch's matrix products (the layers with `rows: false`), and the book's Python decoder.sample
// (bench/book_reference.py, as many threads as cores). Each runs in its own process, interleaved,
// REPEATS times (default 3); medians of 16 forwards and 30 samplings a process.
//
//   node bench/caption-phases.js            (needs dist/: npx tsc -p .)
const path = require('path');
const { execFileSync } = require('child_process');
const { PYTHON, median, pythonHasTorch, machine, loadAverage, reportWorker } = require('./common');

const REPEATS = Number(process.env.REPEATS || 3);
const VOCAB = 9948;
const SAMPLES = 30;

const time = async (n, fn) => {
  await fn();
  const ts = [];
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    await fn();
    ts.push(Number(process.hrtime.bigint() - t) / 1e9);
  }
  return median(ts);
};

async function forwardWorker(autocast) {
  const { Tensor, manualSeed } = require('../dist');
  const { CaptionEncoder } = require('../dist/model');
  const { dispatchWithGrad } = require('../dist/core/tensor');
  manualSeed(0);
  const encoder = new CaptionEncoder({ backbone: 152, backboneMode: 'fast', autocast });
  await encoder.prepareAsync();
  const x = Tensor.randn([1, 3, 224, 224]);
  return { seconds: await time(16, () => dispatchWithGrad(false, () => encoder.featuresAsync(x, { train: false }))) };
}

async function sampleWorker(rows) {
  const { Tensor, manualSeed } = require('../dist');
  const { CaptionDecoder } = require('../dist/model');
  const { greedy } = require('../dist/sample/greedy');
  const { dispatchWithGrad } = require('../dist/core/tensor');
  manualSeed(0);
  const decoder = new CaptionDecoder({ vocabSize: VOCAB });
  const features = Tensor.randn([1, 256]);
  if (rows) return { seconds: await time(SAMPLES, () => greedy(decoder, features)) };
  // greedy's loop, each step on PyTorch's own LSTM and linear layer (matrix products)
  const matrixProducts = () =>
    dispatchWithGrad(false, async () => {
      let inputs = features;
      let state;
      for (let t = 0; t < decoder.maxSeqLen; t++) {
        const r = await decoder.lstm.forwardAsync(inputs.unsqueeze(1), { train: false }, state);
        state = r.state;
        const ids = (await decoder.linear.forwardAsync(r.output.squeeze(1))).argmax(1);
        ids.toTypedArray();
        inputs = await decoder.embedAsync(ids);
      }
    });
  return { seconds: await time(SAMPLES, matrixProducts) };
}

function child(kind, arg) {
  const out = execFileSync(process.execPath, [__filename, '--worker', kind, JSON.stringify(arg ?? null)], { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop()).seconds;
}

function main() {
  const { cpuBf16Support } = require('../dist/nn/resnet');
  const bf16 = cpuBf16Support().supported;
  const python = pythonHasTorch();
  const runs = { forward32: [], forward16: [], rows: [], matrix: [], python: [] };
  for (let r = 0; r < REPEATS; r++) {
    process.stderr.write(`  caption phases (${r + 1}/${REPEATS})\n`);
    runs.forward32.push(child('forward', null));
    if (bf16) runs.forward16.push(child('forward', 'bf16'));
    runs.rows.push(child('sample', true));
    runs.matrix.push(child('sample', false));
    if (python) runs.python.push(JSON.parse(execFileSync(PYTHON, [path.join(__dirname, 'book_reference.py'), 'sample', '-', JSON.stringify({ vocab: VOCAB, reps: SAMPLES })], { encoding: 'utf8' }).trim().split('\n').pop()).sample_seconds);
  }
  const ms = (xs) => `${(median(xs) * 1000).toFixed(1)} ms`;
  console.log(`one caption's phases, ResNet-152 at 224x224, V = ${VOCAB}; ${machine()}; medians of ${REPEATS} processes`);
  console.log(`backbone forward at batch 1, fast path: float32 ${ms(runs.forward32)}${bf16 ? `, bf16 ${ms(runs.forward16)}` : ' (no bf16 on this CPU)'}`);
  console.log(
    `greedy sampling, 20 steps at batch 1: torchcap's row-by-row step ${ms(runs.rows)}, the same loop on PyTorch's matrix products ${ms(runs.matrix)} ` +
      `(${(median(runs.matrix) / median(runs.rows)).toFixed(2)}x the time)` +
      (python ? `, the book's Python decoder.sample ${ms(runs.python)} (${(median(runs.rows) / median(runs.python)).toFixed(2)}x its time)` : `; SKIP the book's Python: ${PYTHON} has no torch`),
  );
  console.log(`load average at end: ${loadAverage()}`);
}

if (process.argv[2] === '--worker') {
  const kind = process.argv[3];
  const arg = JSON.parse(process.argv[4]);
  reportWorker(kind === 'forward' ? forwardWorker(arg ?? undefined) : sampleWorker(arg));
} else {
  main();
}
