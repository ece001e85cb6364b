'use strict';
// What OpenBLAS's choice of kernels changes. OpenBLAS picks its kernels for the CPU when libtorch
// loads it, unless OPENBLAS_CORETYPE names them; torchcap leaves that variable as the environment
// sets it, so every comparison's two sides inherit the same kernels. This runs the part of the
// book's training step that runs on OpenBLAS, the LSTM decoder on given features (the book's sizes:
// embedding 256, hidden 512, V = 9,948, captions of 8-21 tokens), the loss, backward and Adam,
// on torchcap and on the tuned Python, each with the kernels the environment names and with
// OpenBLAS's own choice (the variable removed). Each configuration runs in its own process,
// interleaved, REPEATS times (default 3); medians. Where the environment names no kernels, both
// columns are OpenBLAS's own choice.
//
//   node bench/openblas-kernels.js            (needs dist/: npx tsc -p .)
const path = require('path');
const { execFileSync } = require('child_process');
const { PYTHON, median, machine, loadAverage, reportWorker, tunedPythonEnv } = require('./common');

const REPEATS = Number(process.env.REPEATS || 3);
const BATCH = Number(process.env.BATCH || 128);
const STEPS = Number(process.env.STEPS || 5);
const WARMUP = 2;
const VOCAB = 9948;

async function worker() {
  const { versions } = require('../dist');
  const { stepAfterEncoder } = require('./torchcap_tasks');
  const timed = stepAfterEncoder(BATCH, VOCAB);
  for (let i = 0; i < WARMUP; i++) await timed();
  let total = 0;
  for (let i = 0; i < STEPS; i++) total += await timed();
  return { seconds: total / STEPS, kernels: versions().blasKernels };
}

/** The environment without OPENBLAS_CORETYPE: OpenBLAS's own choice. */
function ownChoice(env) {
  const e = { ...env };
  delete e.OPENBLAS_CORETYPE;
  return e;
}

function torchcap(env) {
  const out = execFileSync(process.execPath, [__filename, '--worker'], { env, encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop());
}

function python(env) {
  const opts = JSON.stringify({ batch: BATCH, steps: STEPS, warmup: WARMUP, vocab: VOCAB });
  const out = execFileSync(PYTHON, [path.join(__dirname, 'book_reference.py'), 'decoder-step', __dirname, opts], { env, encoding: 'utf8' });
  return { seconds: JSON.parse(out.trim().split('\n').pop()).seconds_per_step };
}

function main() {
  const named = process.env.OPENBLAS_CORETYPE;
  const tuned = tunedPythonEnv();
  console.log(`The book's step after the encoder (LSTM decoder, loss, backward, Adam; batch ${BATCH}, V = ${VOCAB}) on OpenBLAS's kernels; ${machine()}`);
  console.log(`${STEPS} steps after ${WARMUP}, median of ${REPEATS} interleaved runs; load average at start: ${loadAverage()}`);
  const sides = { torchcap: (env) => torchcap(env), ...(tuned ? { 'Python tuned': (env) => python({ ...env, ...tuned }) } : {}) };
  const envs = { environment: { ...process.env }, own: ownChoice(process.env) };
  const runs = {};
  const kernels = {};
  for (let r = 0; r < REPEATS; r++) {
    for (const [side, run] of Object.entries(sides)) {
      for (const [which, env] of Object.entries(envs)) {
        const res = run(env);
        (runs[`${side} ${which}`] ??= []).push(res.seconds);
        if (res.kernels !== undefined) kernels[which] = res.kernels;
      }
    }
  }
  const ms = (k) => median(runs[k]) * 1e3;
  const label = { environment: named ? `${kernels.environment} (OPENBLAS_CORETYPE=${named} in the environment)` : `${kernels.environment} (none named in the environment)`, own: `${kernels.own} (OpenBLAS's own choice)` };
  for (const side of Object.keys(sides)) {
    for (const which of Object.keys(envs)) console.log(`  ${side}, ${label[which]}: ${ms(`${side} ${which}`).toFixed(0)} ms a step  (runs: ${runs[`${side} ${which}`].map((x) => (x * 1e3).toFixed(0)).join(', ')})`);
    console.log(`  ${side}: OpenBLAS's own choice ${(ms(`${side} environment`) / ms(`${side} own`)).toFixed(2)}x the speed of the environment's`);
  }
  if (tuned) {
    for (const which of Object.keys(envs)) console.log(`  torchcap / Python tuned on ${label[which]}: ${(ms(`Python tuned ${which}`) / ms(`torchcap ${which}`)).toFixed(2)}x the speed`);
  }
}

if (process.argv[2] === '--worker') {
  reportWorker(worker());
} else {
  main();
}
