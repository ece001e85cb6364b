'use strict';
// Where autocast 'bf16' gains on the CPU, convolution by convolution. ResNet-152's forward on the
// fast path (the frozen backbone of fast-mode training, captioning and the feature cache) runs in
// float32 and in bfloat16 with every oneDNN primitive timed by oneDNN itself (ONEDNN_VERBOSE=1),
// summed by kind of convolution; then the part of the training step outside the backbone (the LSTM
// decoder on given features, loss, backward, Adam: the same work in both precisions) is timed on
// its own, and what the two give for the step's bf16 / float32 speed is printed (the target of
// 1.6x). Each precision runs in its own process, interleaved, REPEATS times (default 2), each
// timing FORWARDS forwards after 2 untimed (default 3); medians over all of them.
//
//   node bench/bf16-convolutions.js            (needs dist/: npx tsc -p .; BATCH, default 16)
const fs = require('fs');
const { execFileSync } = require('child_process');
const { median, machine, loadAverage, reportWorker } = require('./common');

const REPEATS = Number(process.env.REPEATS || 2);
const BATCH = Number(process.env.BATCH || 16);
const FORWARDS = Number(process.env.FORWARDS || 3);
const WARMUP = 2;
const VOCAB = 9948;
const MARK = 'torchcap-bench-forward';

/** One process, ONEDNN_VERBOSE=1: a line `MARK <ms>` after each forward, between oneDNN's own lines. */
async function forwardWorker(autocast) {
  const { Tensor, manualSeed } = require('../dist');
  const { ResNet } = require('../dist/nn/resnet');
  manualSeed(0);
  const resnet = new ResNet(152);
  resnet.setRequiresGrad(false);
  await resnet.prepareFastAsync({ autocast });
  const images = Tensor.randn([BATCH, 3, 224, 224]);
  for (let i = 0; i < WARMUP + FORWARDS; i++) {
    const t = process.hrtime.bigint();
    const features = await resnet.forwardAsync(images, { train: false, fast: true, autocast });
    const ms = Number(process.hrtime.bigint() - t) / 1e6;
    features.dispose();
    fs.writeSync(1, `${MARK} ${ms}\n`); // oneDNN writes (and flushes) its lines on the same descriptor
  }
}

/** One process: the training step after the encoder (torchcap_tasks.js' stepAfterEncoder, as bench/openblas-kernels.js times it), at BATCH. */
async function stepWorker() {
  const { stepAfterEncoder } = require('./torchcap_tasks');
  const timed = stepAfterEncoder(BATCH, VOCAB);
  const times = [];
  for (let i = 0; i < WARMUP + FORWARDS; i++) {
    const seconds = await timed();
    if (i >= WARMUP) times.push(seconds * 1e3);
  }
  return { ms: median(times) };
}

/** A oneDNN primitive's kind: convolutions by kernel and stride, everything else together. */
function kindOf(primitive, problem) {
  if (primitive !== 'convolution') return { kind: 'everything else (reorders, pooling)' };
  const m = /mb(\d+)_ic(\d+)oc(\d+)_ih\d+oh(\d+)kh(\d+)sh(\d+).*?ow(\d+)kw(\d+)/.exec(problem);
  if (!m) return { kind: `convolution ${problem}` };
  const [mb, ic, oc, oh, kh, sh, ow, kw] = m.slice(1).map(Number);
  return { kind: `convolutions ${kh}x${kw} stride ${sh}${kh === 7 ? ' (the stem)' : ''}`, flop: 2 * mb * ic * oc * oh * ow * kh * kw };
}

/** Per timed forward: its wall time and, per kind, oneDNN's milliseconds, work and kernels. */
function parseForwards(stdout) {
  const forwards = [];
  let current = {};
  for (const line of stdout.split('\n')) {
    if (line.startsWith(`${MARK} `)) {
      forwards.push({ wall: Number(line.slice(MARK.length + 1)), kinds: current });
      current = {};
      continue;
    }
    if (!line.startsWith('onednn_verbose,')) continue;
    // onednn_verbose,exec,cpu,<primitive>,<kernel>,... (oneDNN 2.x; 3.x adds fields before exec),
    // the problem's sizes and the milliseconds last
    const f = line.split(',');
    const at = f.indexOf('exec');
    if (at < 0 || f[at + 1] !== 'cpu') continue;
    const { kind, flop = 0 } = kindOf(f[at + 2], f[f.length - 2]);
    const k = (current[kind] ??= { ms: 0, flop: 0, kernels: new Set() });
    k.ms += Number(f[f.length - 1]);
    k.flop += flop;
    k.kernels.add(f[at + 3]);
  }
  return forwards.slice(WARMUP);
}

function run(args, env) {
  return execFileSync(process.execPath, [__filename, ...args], { env: { ...process.env, ...env }, encoding: 'utf8', maxBuffer: 1 << 28 });
}

function main() {
  const { cpuBf16Support } = require('../dist/nn/resnet');
  const bf16 = cpuBf16Support();
  if (!bf16.supported) {
    console.log(`SKIP bench/bf16-convolutions.js: ${bf16.reason}`);
    return;
  }
  console.log(`autocast 'bf16' against float32 by convolution: ResNet-152's fast-path forward at batch ${BATCH}, 224x224; ${machine()}`);
  console.log(`oneDNN's own time of each primitive (ONEDNN_VERBOSE=1); ${FORWARDS} forwards after ${WARMUP} in each of ${REPEATS} interleaved processes a precision, medians; load average at start: ${loadAverage()}`);
  const precisions = ['float32', 'bfloat16'];
  const forwards = { float32: [], bfloat16: [] };
  const steps = [];
  for (let r = 0; r < REPEATS; r++) {
    for (const p of precisions) forwards[p].push(...parseForwards(run(['--forward', p], { ONEDNN_VERBOSE: '1' })));
    steps.push(JSON.parse(run(['--step'], {}).trim().split('\n').pop()).ms);
  }
  if (precisions.some((p) => !forwards[p].length || !Object.keys(forwards[p][0].kinds).length)) {
    console.log("SKIP the table: oneDNN printed no primitive timings with ONEDNN_VERBOSE=1 (libtorch's oneDNN built without verbose mode?)");
    return;
  }
  const kinds = [...new Set(precisions.flatMap((p) => forwards[p].flatMap((f) => Object.keys(f.kinds))))].sort((a, b) => (a.startsWith('everything') ? 1 : b.startsWith('everything') ? -1 : a.localeCompare(b)));
  const ms = (p, kind) => median(forwards[p].map((f) => (f.kinds[kind] ? f.kinds[kind].ms : 0)));
  const kernels = (p, kind) => [...new Set(forwards[p].flatMap((f) => (f.kinds[kind] ? [...f.kinds[kind].kernels] : [])))].join(' ');
  const total = (p) => median(forwards[p].map((f) => Object.values(f.kinds).reduce((s, k) => s + k.ms, 0)));
  const flop = (kind) => (forwards.float32[0].kinds[kind] ? forwards.float32[0].kinds[kind].flop : 0);
  const allFlop = kinds.reduce((s, k) => s + flop(k), 0);
  console.log('| primitives | share of the work (as direct convolutions) | float32 ms (oneDNN kernel) | bfloat16 ms (oneDNN kernel) | bfloat16 speed / float32 |');
  console.log('|---|---|---|---|---|');
  for (const kind of kinds) {
    const [a, b] = [ms('float32', kind), ms('bfloat16', kind)];
    const share = flop(kind) ? `${((100 * flop(kind)) / allFlop).toFixed(1)}%` : '—';
    console.log(`| ${kind} | ${share} | ${a.toFixed(1)} (${kernels('float32', kind)}) | ${b.toFixed(1)} (${kernels('bfloat16', kind)}) | ${(a / b).toFixed(2)}x |`);
  }
  const [a, b] = [total('float32'), total('bfloat16')];
  console.log(`| the forward, oneDNN's primitives | 100% | ${a.toFixed(1)} | ${b.toFixed(1)} | ${(a / b).toFixed(2)}x |`);
  const [wa, wb] = ['float32', 'bfloat16'].map((p) => median(forwards[p].map((f) => f.wall)));
  const step = median(steps);
  console.log(`the forward's wall time: float32 ${wa.toFixed(0)} ms, bfloat16 ${wb.toFixed(0)} ms: ${(wa / wb).toFixed(2)}x (runs: float32 ${forwards.float32.map((f) => f.wall.toFixed(0)).join(', ')}; bfloat16 ${forwards.bfloat16.map((f) => f.wall.toFixed(0)).join(', ')})`);
  console.log(`the training step's work after the encoder at batch ${BATCH} (LSTM decoder, loss, backward, Adam; float32 in both): ${step.toFixed(0)} ms (runs: ${steps.map((s) => s.toFixed(0)).join(', ')})`);
  const ratio = (wa + step) / (wb + step);
  console.log(`so the fast-mode step's bf16 / float32 speed these give: (${wa.toFixed(0)} + ${step.toFixed(0)}) / (${wb.toFixed(0)} + ${step.toFixed(0)}) = ${ratio.toFixed(2)}x (target >= 1.6: ${ratio >= 1.6 ? 'met' : 'NOT met'}); with that work free it would be the forward's own ${(wa / wb).toFixed(2)}x`);
  const needed = (wa + step) / 1.6 - step;
  console.log(`1.6x with that work as it is needs the bfloat16 forward at ${needed.toFixed(0)} ms or less (${wb.toFixed(0)} ms here${needed < wb ? `: ${(wb - needed).toFixed(0)} ms, ${((100 * (wb - needed)) / wb).toFixed(0)}%, less` : ''})`);
  console.log(`load average at end: ${loadAverage()}`);
}

if (process.argv[2] === '--forward') reportWorker(forwardWorker(process.argv[3] === 'bfloat16' ? 'bf16' : undefined).then(() => ({})));
else if (process.argv[2] === '--step') reportWorker(stepWorker());
else main();
