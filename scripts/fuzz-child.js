#!/usr/bin/env node
// One fuzz process (scripts/fuzz.js starts many): calls torchcap's public API, as loaded from the
// package entry, with seeded random and mostly wrong arguments. Every call must end as a result
// or as a thrown / rejected Error with a message: anything else thrown is a violation, and a crash
// kills the process (the parent reports it). Before each call a line `call <n> <description>`
// goes to stdout, so that the parent can show the last calls of a process that died.
//
// Usage: node scripts/fuzz-child.js --seed N [--calls 2000]
// The last line is a JSON summary; the exit status is 0, or 2 when a violation was seen.
'use strict';
const path = require('path');
const { types } = require('util');
const api = require(path.join(__dirname, '..'));

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
};
const SEED = arg('seed', 1);
const CALLS = arg('calls', 2000);
const MAX_KEPT = 1e5; // elements: bigger results are dropped, so no call on kept tensors is slow

// mulberry32: a small seeded generator, so a seed replays the same calls.
let state = SEED >>> 0;
function rand() {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const chance = (p) => rand() < p;
const int = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1));
const pick = (xs) => xs[Math.floor(rand() * xs.length)];

// ---------- what the calls work on ----------

const tensors = []; // kept results, each { t, name }
const disposed = [];
const modules = [];
const names = new WeakMap();
let counter = 0;
const label = (v, kind) => {
  if (!names.has(v)) names.set(v, `${kind}#${++counter}`);
  return names.get(v);
};

function keep(v) {
  if (v instanceof api.Tensor) {
    let n = Infinity;
    try {
      n = v.numel;
    } catch {
      return;
    }
    if (n > MAX_KEPT) {
      if (chance(0.5)) v.dispose(); // else the GC frees it
      return;
    }
    label(v, 'T');
    tensors.push(v);
    if (tensors.length > 24) {
      const old = tensors.splice(int(0, tensors.length - 1), 1)[0];
      if (chance(0.5)) old.dispose(); // else dropped for the GC
    }
  } else if (v instanceof api.Module) {
    label(v, 'M');
    modules.push(v);
    if (modules.length > 6) modules.splice(int(0, modules.length - 1), 1);
  } else if (Array.isArray(v)) {
    v.slice(0, 4).forEach(keep);
  } else if (v && typeof v === 'object' && v.output instanceof api.Tensor) {
    keep(v.output); // LSTM results
  }
}

const hostile = () => {
  const o = {};
  Object.defineProperty(o, 'length', { get: () => { throw new Error('getter trap'); } });
  return o;
};
const GARBAGE = [
  () => undefined, () => null, () => NaN, () => Infinity, () => -Infinity, () => -0, () => 2.5, () => -1, () => 0, () => 1,
  () => 1e9, () => 2 ** 53, () => -(2 ** 31), () => 1e300, () => '', () => 'abc', () => 'float32', () => true, () => ({}), () => [],
  () => [[]], () => Symbol('s'), () => 5n, () => () => 1, () => hostile(), () => new Proxy([], { get: () => { throw new Error('proxy trap'); } }),
  () => Buffer.alloc(3), () => new Float32Array(4), () => new Uint8Array(0), () => api.Tensor, () => (disposed.length ? pick(disposed) : null),
  () => (modules.length ? pick(modules) : {}),
];
const garbage = () => pick(GARBAGE)();
const smallInt = () => (chance(0.85) ? int(-3, 5) : garbage());
const size = () => (chance(0.8) ? int(0, 5) : pick([-1, 1e6, 2 ** 31, 2 ** 40, 2 ** 62, 2.5, NaN, 'x']));
function shape() {
  if (chance(0.07)) return pick([[1e6, 1e6], [2 ** 40, 2 ** 40], [2 ** 62, 4], [0, 2 ** 62, 2 ** 62], [3e9], [1e5, 1e5], [-1, 3]]);
  if (chance(0.05)) return garbage();
  return Array.from({ length: int(0, 4) }, size);
}
const DTYPES = ['float32', 'float64', 'float16', 'bfloat16', 'int64', 'int32', 'uint8', 'bool'];
const dtype = () => (chance(0.85) ? pick(DTYPES) : garbage());
const device = () => pick(['cpu', 'cpu', 'cuda', 'cuda:7', 'tpu', 5, undefined]);
function tensor() {
  const r = rand();
  if (r < 0.75 && tensors.length) return pick(tensors);
  if (r < 0.85 && disposed.length) return pick(disposed);
  if (r < 0.95) return api.Tensor.randn([int(1, 4), int(1, 4)]);
  return garbage();
}
function nested(depth = 0) {
  if (depth > 2 || chance(0.3)) return chance(0.9) ? rand() * 10 - 5 : garbage();
  return Array.from({ length: int(0, 3) }, () => nested(depth + 1));
}
function anyArg() {
  const r = rand();
  if (r < 0.3) return smallInt();
  if (r < 0.55) return tensor();
  if (r < 0.7) return shape();
  if (r < 0.8) return dtype();
  if (r < 0.9) return { train: chance(0.5), keepdim: chance(0.5), dtype: dtype(), lr: pick([0.1, -1, NaN]) };
  return garbage();
}
const args = (max) => Array.from({ length: int(0, max) }, anyArg);

function show(v) {
  try {
    if (v === undefined || v === null || typeof v === 'boolean') return String(v);
    if (typeof v === 'number') return Object.is(v, -0) ? '-0' : String(v);
    if (typeof v === 'string') return JSON.stringify(v);
    if (typeof v === 'bigint') return `${v}n`;
    if (typeof v === 'symbol' || typeof v === 'function') return typeof v;
    if (names.has(v)) return names.get(v) + (v instanceof api.Tensor && v.isDisposed ? '(disposed)' : '');
    if (types.isProxy(v)) return 'Proxy';
    if (Array.isArray(v)) return v.length > 6 ? `[${v.length} items]` : `[${v.map(show).join(', ')}]`;
    if (ArrayBuffer.isView(v)) return `${v.constructor.name}(${v.length})`;
    const keys = Object.keys(v);
    return keys.length > 6 ? 'object' : `{${keys.map((k) => `${k}: ${show(v[k])}`).join(', ')}}`;
  } catch {
    return 'object';
  }
}

// ---------- the calls ----------

const TENSOR_METHODS = Object.entries(Object.getOwnPropertyDescriptors(api.Tensor.prototype))
  .filter(([k, d]) => typeof d.value === 'function' && k !== 'constructor')
  .map(([k]) => k);
const GETTERS = Object.entries(Object.getOwnPropertyDescriptors(api.Tensor.prototype))
  .filter(([, d]) => d.get)
  .map(([k]) => k);
const CREATORS = ['from', 'fromBytes', 'zeros', 'ones', 'full', 'randn', 'rand', 'randint', 'randperm', 'arange', 'cat', 'stack', 'where'].filter(
  (k) => typeof api.Tensor[k] === 'function',
);

function creatorArgs(k) {
  switch (k) {
    case 'from':
      return [chance(0.6) ? nested() : pick([new Float32Array(int(0, 6)), Buffer.from([1, 2, 3]), garbage()]), chance(0.5) ? { dtype: dtype(), shape: shape() } : undefined];
    case 'fromBytes':
      return [chance(0.8) ? new Uint8Array(int(0, 16)) : garbage(), dtype(), shape()];
    case 'full':
      return [shape(), chance(0.8) ? rand() : garbage(), { dtype: dtype(), device: device() }];
    case 'randint':
      return [smallInt(), smallInt(), shape()];
    case 'randperm':
      return [chance(0.8) ? int(0, 50) : size(), chance(0.5) ? smallInt() : undefined];
    case 'arange':
      return [pick([0, 1, -3, 1e15, NaN]), chance(0.7) ? int(-5, 20) : garbage(), chance(0.7) ? pick([1, 2, 0.5, -1, 0]) : garbage()];
    case 'cat':
    case 'stack':
      return [chance(0.8) ? Array.from({ length: int(0, 3) }, tensor) : garbage(), smallInt()];
    case 'where':
      return [tensor(), tensor(), tensor()];
    default:
      return [shape(), chance(0.7) ? { dtype: dtype(), device: device(), requiresGrad: chance(0.2) } : garbage()];
  }
}

function newModule() {
  // A ResNet-18 now and then: its book-mode forward (frozen, no gradient, train mode) runs torchcap's
  // batch norm on oneDNN's layout, its fast path the fused convolutions.
  const k = chance(0.1) ? 'ResNet' : pick(['Linear', 'Embedding', 'BatchNorm1d', 'LSTM']);
  const n = () => (chance(0.85) ? int(1, 8) : size());
  switch (k) {
    case 'Linear':
      return [`new Linear`, () => new api.Linear(n(), n(), chance(0.3) ? { bias: chance(0.5) } : undefined)];
    case 'Embedding':
      return [`new Embedding`, () => new api.Embedding(n(), n())];
    case 'BatchNorm1d':
      return [`new BatchNorm1d`, () => new api.BatchNorm1d(n(), chance(0.3) ? { momentum: rand(), eps: pick([1e-5, -1, NaN]) } : undefined)];
    case 'ResNet': {
      const frozen = chance(0.7);
      const blocked = chance(0.9) ? true : garbage();
      return [
        `new ResNet(18)${frozen ? ', frozen' : ''}, blockedTrain = ${show(blocked)}`,
        () => {
          const r = new api.ResNet(18);
          if (frozen) r.requiresGrad(false);
          r.blockedTrain = blocked;
          return r;
        },
      ];
    }
    default: {
      // Layer counts are small or impossible: a legal million layers would only be slow to build.
      const layers = chance(0.9) ? int(1, 3) : pick([0, -1, 2.5, 2 ** 40, 2 ** 62, NaN, 'x']);
      const opts = chance(0.5) ? { numLayers: layers, batchFirst: chance(0.5), dropout: pick([0, 0.5, 2, NaN]) } : undefined;
      return [`new LSTM(${show(opts)})`, () => new api.LSTM(n(), n(), opts)];
    }
  }
}

const mode = () => (chance(0.85) ? { train: chance(0.3) } : garbage());
// The sampling step's row-by-row option (Linear's second argument, LSTM's fourth), with a state
// that may have any shape, reaches the native no-grad path when the call runs under noGrad.
const rowsOpt = () => (chance(0.8) ? { rows: chance(0.8) } : garbage());
const lstmState = () => (chance(0.5) ? { h: tensor(), c: tensor() } : anyArg());
// An image batch for a ResNet: mostly [N, 3, H, W] of any small size (down to sizes whose last
// stage has one value per channel), else anything.
const images = () =>
  chance(0.8) ? api.Tensor.randn([int(1, 3), chance(0.9) ? 3 : int(1, 4), int(1, 48), int(1, 48)]) : tensor();
const resnetMode = () => pick([{ train: true }, { train: false }, { train: false, fast: true }, { train: true, fast: true }, garbage()]);
function forward(m, async) {
  if (m instanceof api.ResNet) {
    const a = [images(), resnetMode()];
    const noGrad = !async && chance(0.7);
    const call = () => (async ? m.forwardAsync(...a) : m.forward(...a));
    return [`${noGrad ? 'noGrad: ' : ''}${show(m)}.${async ? 'forwardAsync' : 'forward'}(${a.map(show).join(', ')})`, noGrad ? () => api.noGrad(call) : call];
  }
  const x = chance(0.6) ? api.Tensor.randn(Array.from({ length: int(1, 3) }, () => int(1, 8))) : tensor();
  const a = m instanceof api.Linear && chance(0.4) ? [x, rowsOpt()] : [x, mode(), chance(0.3) ? lstmState() : undefined, chance(0.4) ? rowsOpt() : undefined];
  const noGrad = !async && chance(0.5);
  const call = () => (async ? m.forwardAsync(...a) : m.forward(...a));
  return [`${noGrad ? 'noGrad: ' : ''}${show(m)}.${async ? 'forwardAsync' : 'forward'}(${a.map(show).join(', ')})`, noGrad ? () => api.noGrad(call) : call];
}

// Sizes and corners whose products and sums pass int64 (native code must refuse them, not wrap).
const huge = () => pick([2 ** 31, 2 ** 53, 2 ** 62, 2 ** 63 - 1024, Number.MAX_SAFE_INTEGER]);
function rawImage() {
  const w = int(0, 4), h = int(0, 4);
  if (chance(0.1)) return { data: new Uint8Array(int(0, 20)), width: huge(), height: chance(0.5) ? huge() : h };
  return { data: new Uint8Array(chance(0.7) ? w * h * 3 : int(0, 20)), width: chance(0.9) ? w : garbage(), height: h };
}
const crops = (n) => Array.from({ length: n }, () => (chance(0.5) ? [int(0, 3), int(0, 3)] : [chance(0.5) ? huge() : int(-1, 3), chance(0.5) ? huge() : int(-1, 3)]));
// A hand-made packed sequence: batch sizes that may grow, go negative or miss the data's rows.
function packed() {
  const steps = int(0, 4);
  const sizes = Array.from({ length: steps }, () => (chance(0.8) ? int(1, 4) : pick([0, -1, -100000, 2 ** 40])));
  const indices = () => (chance(0.7) ? null : chance(0.5) ? api.Tensor.from(Array.from({ length: int(0, 4) }, () => int(-1, 4)), { dtype: 'int64' }) : tensor());
  return {
    data: chance(0.8) ? api.Tensor.randn([int(0, 8), 3]) : tensor(),
    batchSizes: chance(0.8) ? api.Tensor.from(sizes, { dtype: 'int64' }) : tensor(),
    sortedIndices: indices(),
    unsortedIndices: indices(),
  };
}
const imageBytes = () =>
  pick([
    () => Buffer.from(Array.from({ length: int(0, 64) }, () => int(0, 255))),
    () => Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]), // a PNG cut short
    () => Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 16, 0x4a, 0x46]), // a JPEG cut short
    () => '/nonexistent/image.png',
    () => '/dev/null',
    () => rawImage(),
    () => garbage(),
  ])();

let captioner = null;
async function makeCaptioner() {
  api.manualSeed(SEED % 1000);
  const vocab = api.Vocabulary.build(['a dog runs', 'a cat sits'], { threshold: 1 });
  const encoder = new api.CaptionEncoder({ backbone: 18, embedSize: 8 });
  const decoder = new api.CaptionDecoder({ vocabSize: vocab.size, embedSize: 8, hiddenSize: 8, maxSeqLen: 4 });
  captioner = await api.Captioner.load({ encoder, decoder, vocab, imageSize: 32, batchSize: 2 });
}

// One random call: [description, function].
function nextCall() {
  const r = rand();
  if (r < 0.3) {
    const t = tensor();
    const k = pick(TENSOR_METHODS);
    const a = args(3);
    return [`${show(t)}.${k}(${a.map(show).join(', ')})`, () => t[k](...a)];
  }
  if (r < 0.38) {
    const t = tensor();
    const k = pick(GETTERS);
    return [`${show(t)}.${k}`, () => t[k]];
  }
  if (r < 0.55) {
    const k = pick(CREATORS);
    const a = creatorArgs(k);
    return [`Tensor.${k}(${a.map(show).join(', ')})`, () => api.Tensor[k](...a)];
  }
  if (r < 0.6) return newModule();
  if (r < 0.72 && modules.length) return forward(pick(modules), chance(0.4));
  if (r < 0.75 && modules.length) {
    const m = pick(modules);
    const k = pick(['parameters', 'namedParameters', 'stateDict', 'to', 'trainableParameters']);
    const a = k === 'to' ? [device()] : [];
    return [`${show(m)}.${k}(${a.map(show).join(', ')})`, () => m[k](...a)];
  }
  if (r < 0.77) {
    const p = packed();
    const lstm = modules.find((m) => m instanceof api.LSTM);
    if (lstm && chance(0.5)) return [`${show(lstm)}.forwardPacked(${show(p)})`, () => lstm.forwardPacked(p, { train: chance(0.3) })];
    const o = chance(0.8) ? { batchFirst: chance(0.5), totalLength: chance(0.8) ? undefined : pick([0, 3, 2 ** 40, -1]) } : garbage();
    return [`padPackedSequence(${show(p)}, ${show(o)})`, () => api.padPackedSequence(p, o)];
  }
  if (r < 0.79) {
    const lengths = pick([() => [int(0, 4), int(0, 4)], () => [3, 1], () => [-1], () => [], () => [2.5, 1], () => tensor(), () => garbage()])();
    const a = [tensor(), lengths, chance(0.7) ? { batchFirst: chance(0.5), enforceSorted: chance(0.5) } : garbage()];
    return [`packPaddedSequence(${a.map(show).join(', ')})`, () => api.packPaddedSequence(...a)];
  }
  if (r < 0.83) {
    const async = chance(0.5);
    const a = [tensor(), tensor(), chance(0.7) ? { reduction: pick(['mean', 'sum', 'none', 'max']), ignoreIndex: smallInt() } : garbage()];
    return [`crossEntropy${async ? 'Async' : ''}(${a.map(show).join(', ')})`, () => (async ? api.crossEntropyAsync(...a) : api.crossEntropy(...a))];
  }
  if (r < 0.86) {
    const t = tensor();
    const async = chance(0.5);
    return [`${async ? 'backwardAsync' : 'backward'}(${show(t)})`, () => (async ? api.backwardAsync(t) : t.backward())];
  }
  if (r < 0.89) {
    const [d, fn] = nextCall();
    return [`noGrad(() => ${d})`, () => api.noGrad(fn)];
  }
  if (r < 0.92) {
    const imgs = chance(0.8) ? Array.from({ length: int(0, 3) }, rawImage) : garbage();
    const layout = chance(0.8) ? { crop: chance(0.8) ? int(0, 4) : size(), crops: chance(0.3) && Array.isArray(imgs) && !types.isProxy(imgs) ? crops(imgs.length) : undefined } : garbage();
    const async = chance(0.6);
    return [`toBatch${async ? 'Async' : ''}(${show(imgs)}, ${show(layout)})`, () => (async ? api.toBatchAsync(imgs, layout) : api.toBatch(imgs, layout))];
  }
  if (r < 0.95 && captioner) {
    const input = chance(0.7) ? imageBytes() : Array.from({ length: int(0, 3) }, imageBytes);
    const each = chance(0.3);
    return [`captioner.${each ? 'captionEach' : 'caption'}(${show(input)})`, () => (each ? captioner.captionEach(input) : captioner.caption(input))];
  }
  if (r < 0.98 && tensors.length) {
    const t = pick(tensors);
    return [`${show(t)}.dispose()`, () => {
      t.dispose();
      tensors.splice(tensors.indexOf(t), 1);
      disposed.push(t);
      if (disposed.length > 8) disposed.shift();
    }];
  }
  if (typeof global.gc === 'function') return ['gc()', () => global.gc()];
  return ['memory()', () => api.memory()];
}

// ---------- running them ----------

const violations = [];
const thrown = {};
const pending = [];

function check(e, n, desc) {
  const ok = (types.isNativeError(e) || e instanceof Error) && typeof e.message === 'string' && e.message.length > 0;
  if (ok) {
    thrown[e.name] = (thrown[e.name] || 0) + 1;
    return;
  }
  let value;
  try {
    value = typeof e === 'object' && e !== null ? `${Object.prototype.toString.call(e)} ${JSON.stringify(e)}` : String(e);
  } catch {
    value = typeof e;
  }
  violations.push({ call: n, desc, thrown: value });
  process.stdout.write(`violation ${n} ${desc}: threw ${value}\n`);
}

async function main() {
  if (chance(0.5)) {
    try {
      await makeCaptioner();
    } catch (e) {
      check(e, 0, 'making the captioner');
    }
  }
  for (let n = 1; n <= CALLS; n++) {
    const [desc, fn] = nextCall();
    process.stdout.write(`call ${n} ${desc}\n`);
    let result;
    try {
      result = fn();
    } catch (e) {
      check(e, n, desc);
      continue;
    }
    if (result && typeof result.then === 'function') {
      if (chance(0.75)) {
        try {
          keep(await result);
        } catch (e) {
          check(e, n, desc);
        }
      } else {
        // Left running while the next calls go on; its result is not kept (the order in which
        // it lands would change what later calls work on, and a seed must replay the same calls).
        pending.push(result.then(() => undefined, (e) => check(e, n, desc)));
      }
    } else {
      keep(result);
    }
  }
  await Promise.all(pending);
  const summary = { seed: SEED, calls: CALLS, captioner: captioner !== null, thrown, violations: violations.length };
  process.stdout.write(JSON.stringify(summary) + '\n');
  process.exitCode = violations.length ? 2 : 0;
}

main().catch((e) => {
  process.stdout.write(`fuzz harness failed: ${e && e.stack}\n`);
  process.exitCode = 3;
});
