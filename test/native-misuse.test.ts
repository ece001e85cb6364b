/**
 * Misuse of the native binding from JavaScript that ended the process (a segfault, an abort, V8's
 * fatal error) or stalled it, kept as tests. Each misuse runs in a child process, which must exit
 * normally with the error the misuse now gets: the objects of the native classes are known by a
 * type tag (never by instanceof) and made by native code only; a destroyed process group refuses
 * use; image and byte arguments are read before their bytes are taken, with overflow-checked
 * sizes; broadcast views count the bytes they hold; packed sequences are checked before libtorch
 * reads them; an optimizer refuses what would race with its running stepAsync; a worker's
 * teardown drops its queued calls; the thread count has a ceiling.
 */
import { spawnSync } from 'child_process';
import * as path from 'path';
import { Tensor } from '../lib';
import { native } from '../lib/core/native';
import { thrown } from './support/errors';
import { testIf } from './support/skip';

const DIST = path.join(__dirname, '..', 'dist');

interface Outcome {
  status: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  out: unknown;
}

/** Runs `code` in a fresh node (TORCHCAP_DIST: the built package); its last stdout line is JSON. */
function runChild(code: string, opts: { flags?: string[]; env?: NodeJS.ProcessEnv; timeout?: number } = {}): Outcome & { stdout: string } {
  const r = spawnSync(process.execPath, [...(opts.flags ?? []), '-e', code], {
    encoding: 'utf8',
    timeout: opts.timeout ?? 60000,
    env: { ...process.env, TORCHCAP_DIST: DIST, ...opts.env },
  });
  const lines = r.stdout.trim().split('\n');
  let out: unknown = null;
  try {
    out = JSON.parse(lines[lines.length - 1]);
  } catch {
    out = r.stdout;
  }
  return { status: r.status, signal: r.signal, stderr: r.stderr.trim().slice(0, 2000), out, stdout: r.stdout };
}

/** The child ended normally (exit 0, no signal, nothing on stderr); its JSON result. */
function cleanExit(r: Outcome): unknown {
  expect({ status: r.status, signal: r.signal, stderr: r.stderr }).toEqual({ status: 0, signal: null, stderr: '' });
  return r.out;
}

// What each child script starts with: the package, its native module, and `outcome(fn)` giving
// 'ok' or "Name: message".
const PRELUDE = `
  const api = require(process.env.TORCHCAP_DIST);
  const { native } = require(process.env.TORCHCAP_DIST + '/core/native');
  const outcome = (fn) => { try { const r = fn(); return r === undefined ? 'ok' : r; } catch (e) { return e.name + ': ' + e.message; } };
  const settled = (fn) => Promise.resolve().then(fn).then((r) => (r === undefined ? 'ok' : r), (e) => e.name + ': ' + e.message);
`;

test('an object of another native class is never taken for a Tensor, whatever Symbol.hasInstance says (it was: SIGSEGV)', () => {
  const r = runChild(`${PRELUDE}
    const t = api.Tensor.ones([2]);
    const yes = { value: () => true };
    for (const o of [t.handle, new api.Linear(2, 2).native, new api.Executor().native]) Object.defineProperty(o.constructor, Symbol.hasInstance, yes);
    const others = { module: new api.Linear(2, 2).native, executor: new api.Executor().native, optimizer: new api.SGD([api.Tensor.ones([1])], { lr: 1 }).native, plain: {} };
    const out = {};
    for (const [k, o] of Object.entries(others)) {
      out[k] = [outcome(() => t.add(new api.Tensor(o)).shape), outcome(() => native.setExecutor(o))];
      native.setExecutor(null);
    }
    out.tensorAsExecutor = outcome(() => native.setExecutor(t.handle));
    console.log(JSON.stringify(out));
  `);
  const refused = ['TypeError: Expected a Tensor for other', 'TypeError: Expected an Executor for executor'];
  expect(cleanExit(r)).toEqual({
    module: refused,
    executor: ['TypeError: Expected a Tensor for other', 'ok'], // an Executor is one
    optimizer: refused,
    plain: refused,
    tensorAsExecutor: 'TypeError: Expected an Executor for executor',
  });
});

test('`new` on the native classes from JavaScript is refused (it made objects without native state: SIGSEGV)', () => {
  const r = runChild(`${PRELUDE}
    const lin = new api.Linear(2, 2);
    const classes = {
      Tensor: [api.Tensor.ones([1]).handle.constructor, (o) => o.shape()],
      Module: [lin.native.constructor, (o) => o.namedParameters().length],
      Optimizer: [new api.SGD(lin.parameters(), { lr: 0.1 }).native.constructor, (o) => o.lr()],
      Executor: [new api.Executor().native.constructor, (o) => o.pending()],
    };
    if (native.ProcessGroup) classes.ProcessGroup = [native.ProcessGroup, (o) => o.storeSet('k', 'v')];
    const out = {};
    for (const [name, [C, use]] of Object.entries(classes)) {
      out[name] = [
        outcome(() => use(new C())),
        outcome(() => use(Reflect.construct(C, []))),
        outcome(() => { class Sub extends C {} return use(new Sub()); }),
      ];
    }
    // the library's own objects still work
    out.after = [lin.forward(api.Tensor.ones([1, 2]), { train: false }).shape, new api.Executor().pending];
    console.log(JSON.stringify(out));
  `);
  const out = cleanExit(r) as Record<string, unknown>;
  const names = ['Tensor', 'Module', 'Optimizer', 'Executor', ...(native.distributedBackends.length ? ['ProcessGroup'] : [])];
  for (const name of names) {
    const msg = `TypeError: Illegal constructor: torchcap makes ${name} objects itself; \`new\` from JavaScript is not supported`;
    expect(out[name]).toEqual([msg, msg, msg]);
  }
  expect(out.after).toEqual([[1, 2], 0]);
});

testIf(native.distributedBackends.includes('gloo'), 'this build has no c10d Gloo (libgloo-dev missing at build time)', 'a destroyed process group refuses every use, natively and in lib (it was: SIGSEGV)', () => {
  const r = runChild(`${PRELUDE}
    const { freePort } = require(process.env.TORCHCAP_DIST + '/distributed/launch');
    (async () => {
      const g = await api.ProcessGroup.init({ rank: 0, worldSize: 1, host: '127.0.0.1', port: await freePort(), timeoutMs: 10000 });
      const t = api.Tensor.ones([2]);
      g.destroy();
      const n = g.native;
      const out = {
        native: [
          outcome(() => n.allreduce([t.handle], 'sum')),
          outcome(() => n.broadcast([t.handle], 0)),
          outcome(() => n.barrier()),
          outcome(() => n.storeSet('k', 'v')),
          outcome(() => n.storeGet('k', 0)),
          outcome(() => native.allreduceSumDifferentiable(n, t.handle)),
          outcome(() => native.destroyProcessGroup(n)),
          [n.rank(), n.size(), n.backend()],
        ],
        lib: [await settled(() => g.allreduce([t])), await settled(() => g.barrier()), outcome(() => g.setKey('a', 'b')), await settled(() => g.waitForKey('a')), outcome(() => g.destroy())],
      };
      console.log(JSON.stringify(out));
    })();
  `);
  const gone = 'Error: process group destroyed: it cannot be used after destroy()';
  const libGone = 'Error: process group destroyed: rank 0 of 1 cannot be used after destroy()';
  expect(cleanExit(r)).toEqual({ native: [gone, gone, gone, gone, gone, gone, 'ok', [0, 1, 'gloo']], lib: [libGone, libGone, libGone, libGone, 'ok'] });
});

test('image sizes and crop corners whose arithmetic passes int64 are refused (it was: out-of-bounds reads, SIGSEGV)', () => {
  const r = runChild(`${PRELUDE}
    const near = 2 ** 63 - 1024;
    (async () => {
      const out = [
        outcome(() => api.toBatch([{ data: new Uint8Array(0), width: 2 ** 62, height: 4 }], { crop: 1 }).shape),
        outcome(() => api.toBatch([{ data: new Uint8Array(6), width: 2, height: 1 }], { crop: 1024, crops: [[near, near]] }).shape),
        outcome(() => api.toBatch([{ data: new Uint8Array(3), width: 1, height: 1 }], { crop: 1024, crops: [[near, 0]] }).shape),
        await settled(() => api.toBatchAsync([{ data: new Uint8Array(6), width: 2, height: 1 }], { crop: 1024, crops: [[near, near]] }).then((t) => t.shape)),
        await settled(() => native.pillowImage({ data: new Uint8Array(0), width: 2 ** 62, height: 4, mode: 'RGB' }, { width: 2, height: 2 })),
        await settled(() => native.pillowImage({ data: new Uint8Array(0), width: 2 ** 62, height: 4, mode: 'RGB' }, { orientation: 6 })),
        await settled(() => native.pillowImage({ data: new Uint8Array(0), width: 2 ** 31, height: 2 ** 31, mode: 'RGBA' }, {})),
        await settled(() => native.pillowImage({ data: new Uint8Array(3), width: 1, height: 1, mode: 'RGB' }, { width: 1e9, height: 1e9 })),
        // what fits still converts
        api.toBatch([{ data: new Uint8Array(12).fill(255), width: 2, height: 2 }], { crop: 1, crops: [[1, 1]] }).shape,
      ];
      console.log(JSON.stringify(out));
    })();
  `);
  const out = cleanExit(r) as string[];
  expect(out.slice(0, 4)).toEqual([
    'RangeError: images[0] is 4611686018427387904x4: its RGB bytes would pass int64 (width and height too large)',
    'RangeError: crop of 1024x1024 at (9223372036854774784, 9223372036854774784) does not fit image 0 of 2x1',
    'RangeError: crop of 1024x1024 at (9223372036854774784, 0) does not fit image 0 of 1x1',
    'RangeError: crop of 1024x1024 at (9223372036854774784, 9223372036854774784) does not fit image 0 of 2x1',
  ]);
  expect(out[4]).toBe('RangeError: image is 4611686018427387904x4: more pixels than an int64 can count');
  expect(out[5]).toBe(out[4]);
  expect(out[6]).toBe('RangeError: image holds 0 bytes but 2147483648x2147483648 RGBA needs more than an int64 can count');
  expect(out[7]).toMatch(/^RangeError: pillowImage: a resize to 1000000000x1000000000: shape \[1000000000, 1000000000, 4\] of uint8 needs 3\.5 EiB, more than /);
  expect(out[8]).toEqual([1, 3, 1, 1]);
});

test('a getter that detaches or shrinks a buffer after it was checked leaves nothing to read (it was: reads of freed memory, SIGSEGV)', () => {
  const r = runChild(
    `${PRELUDE}
    const n = 64 << 20;
    // a getter on shape[1] (lib reads shape[0..], then native code does) detaches or shrinks the bytes
    const trapShape = (onSecondRead) => {
      const shape = [n];
      let calls = 0;
      Object.defineProperty(shape, 0, { enumerable: true, get() { if (++calls === 2) onSecondRead(); return n; } });
      return shape;
    };
    const detachBytes = new Uint8Array(n).fill(7);
    const detached = outcome(() => api.Tensor.fromBytes(detachBytes, 'uint8', trapShape(() => { structuredClone(detachBytes.buffer, { transfer: [detachBytes.buffer] }); global.gc(); })).shape);
    const ab = new ArrayBuffer(n, { maxByteLength: n });
    const resized = outcome(() => api.Tensor.fromBytes(new Uint8Array(ab, 0, n), 'uint8', trapShape(() => ab.resize(0))).shape);
    const lengthTracking = new ArrayBuffer(n, { maxByteLength: n });
    const tracked = outcome(() => api.Tensor.fromBytes(new Uint8Array(lengthTracking), 'uint8', trapShape(() => lengthTracking.resize(16))).shape);
    // toBatch: reading crops[0] detaches the image's pixels
    const batch = (async) => {
      const data = new Uint8Array(64 * 64 * 3).fill(100);
      const crops = [];
      Object.defineProperty(crops, 0, { enumerable: true, get() { structuredClone(data.buffer, { transfer: [data.buffer] }); global.gc(); return [0, 0]; } });
      return async ? api.toBatchAsync([{ data, width: 64, height: 64 }], { crop: 64, crops }) : api.toBatch([{ data, width: 64, height: 64 }], { crop: 64, crops });
    };
    // pillowImage: reading mode detaches the pixels
    const pillow = () => {
      const img = { data: new Uint8Array(12).fill(1), width: 2, height: 2 };
      Object.defineProperty(img, 'mode', { get() { structuredClone(img.data.buffer, { transfer: [img.data.buffer] }); return 'RGB'; } });
      return native.pillowImage(img, {});
    };
    (async () => {
      const out = [detached, resized, tracked, outcome(() => batch(false).shape), await settled(() => batch(true).then((t) => t.shape)), await settled(() => pillow())];
      console.log(JSON.stringify(out));
    })();
  `,
    { flags: ['--expose-gc'] },
  );
  const none = 'RangeError: Data holds 0 bytes but shape and dtype uint8 need 67108864';
  const pixels = 'RangeError: images[0] holds 0 bytes but 64x64 RGB needs 12288';
  expect(cleanExit(r)).toEqual([none, none, 'RangeError: Data holds 16 bytes but shape and dtype uint8 need 67108864', pixels, pixels, 'RangeError: image holds 0 bytes but 2x2 RGB needs 12']);
});

test('a broadcast view counts the bytes its storage holds, not its elements (it was: V8 fatal error, exit 133)', () => {
  const r = runChild(`${PRELUDE}
    const base = api.Tensor.ones([1]);
    const start = api.memory().bytes;
    const a = base.expand([2 ** 30, 2 ** 30]);
    const b = base.asStrided([2 ** 29, 2 ** 29], [0, 0], 0);
    const views = Array.from({ length: 300 }, () => base.expand([2 ** 28, 2 ** 28]));
    const many = api.memory().bytes - start;
    const whole = api.Tensor.zeros([10, 10]);
    const slice = whole.slice(0, 0, 2); // a slice still counts its own elements
    const sliced = api.memory().bytes - start - many - 400;
    console.log(JSON.stringify({ shapes: [a.shape, b.shape, slice.shape, whole.shape], many, slice: sliced, views: views.length }));
  `);
  expect(cleanExit(r)).toEqual({ shapes: [[2 ** 30, 2 ** 30], [2 ** 29, 2 ** 29], [2, 10], [10, 10]], many: 302 * 4, slice: 80, views: 300 });
});

test('packed sequences whose batch sizes do not describe their data are refused (it was: heap corruption, abort or SIGSEGV)', () => {
  const r = runChild(`${PRELUDE}
    const data = api.Tensor.ones([4, 3]);
    const sizes = (v) => api.Tensor.from(v, { dtype: 'int64' });
    const cases = { neg: [2, -100], huge: [2, -100000], grow: [1, 3], zero: [2, 0, 2], sumless: [1, 1], empty: [] };
    const lstm = new api.LSTM(3, 4);
    const out = {};
    for (const [k, bs] of Object.entries(cases)) {
      out[k] = [
        outcome(() => api.padPackedSequence({ data, batchSizes: sizes(bs), sortedIndices: null, unsortedIndices: null }).padded.shape),
        outcome(() => lstm.forwardPacked({ data, batchSizes: sizes(bs), sortedIndices: null, unsortedIndices: null }, { train: false }).output.data.shape),
      ];
    }
    out.float = outcome(() => native.padPackedSequence({ data: data.handle, batchSizes: api.Tensor.from([2, 2]).handle }, false, 0, null));
    out.indices = outcome(() => native.padPackedSequence({ data: data.handle, batchSizes: sizes([2, 2]).handle, sortedIndices: sizes([0, 1, 2]).handle }, false, 0, null));
    out.scalar = outcome(() => native.padPackedSequence({ data: api.Tensor.ones([]).handle, batchSizes: sizes([1]).handle }, false, 0, null));
    out.total = outcome(() => native.padPackedSequence({ data: data.handle, batchSizes: sizes([2, 2]).handle }, false, 0, 2 ** 60));
    for (let i = 0; i < 200; i++) api.Tensor.randn([8, 8]).dispose(); // a corrupted heap shows here
    // a consistent one still works
    const packed = api.packPaddedSequence(api.Tensor.ones([2, 3, 3]), [3, 2], { batchFirst: true });
    out.good = [api.padPackedSequence(packed, { batchFirst: true }).padded.shape, lstm.forwardPacked(packed, { train: false }).output.data.shape];
    console.log(JSON.stringify(out));
  `);
  const out = cleanExit(r) as Record<string, unknown>;
  const both = (msg: string) => [msg, msg];
  expect(out).toEqual({
    neg: both('RangeError: packed sequence: batchSizes[1] is -100; every batch size must be at least 1'),
    huge: both('RangeError: packed sequence: batchSizes[1] is -100000; every batch size must be at least 1'),
    grow: both('RangeError: packed sequence: batchSizes must not increase, but batchSizes[1] = 3 follows 1'),
    zero: both('RangeError: packed sequence: batchSizes[1] is 0; every batch size must be at least 1'),
    sumless: both('RangeError: packed sequence: batchSizes add up to 2 rows but data has 4'),
    empty: both('RangeError: packed sequence: batchSizes is empty (a packed sequence has at least one step)'),
    float: 'TypeError: packed sequence: batchSizes must be a 1-D int64 tensor on the CPU, got [2] float32 on cpu',
    indices: 'RangeError: packed sequence: sortedIndices must be a 1-D int64 tensor of one entry per sequence (2), got [3] int64',
    scalar: 'RangeError: packed sequence: data must have a row dimension, got a 0-d tensor',
    total: expect.stringMatching(/^RangeError: padPackedSequence output: shape \[1152921504606846976, 2, 3\] /),
    good: [[2, 3, 3], [5, 4]],
  });
});

test('an optimizer refuses what would race with its running stepAsync (it was: SIGSEGV freeing state the step used)', () => {
  const r = runChild(`${PRELUDE}
    api.setNumThreads(1);
    const params = Array.from({ length: 3000 }, () => { const p = api.Tensor.randn([64]); p.requiresGrad = true; return p; });
    params.reduce((a, p) => a.add(p.sum()), api.Tensor.zeros([])).backward();
    const opt = new api.Adam(params, { lr: 1e-3 });
    opt.step();
    const saved = opt.state();
    (async () => {
      // each sync method while a step runs
      const running = opt.stepAsync();
      const during = {
        step: outcome(() => opt.step()),
        stepAsync: await settled(() => opt.stepAsync()),
        zeroGrad: outcome(() => opt.zeroGrad()),
        state: outcome(() => opt.state().length),
        loadState: outcome(() => opt.loadState(saved)),
        lr: outcome(() => { opt.lr = 0.5; }),
        hyperparameters: outcome(() => { opt.hyperparameters = { eps: 1e-6 }; }),
        reads: [opt.lr, opt.hyperparameters.beta1, opt.native.params().length],
      };
      await running;
      // the reviewer's loop: loadState as fast as the event loop turns, while steps run
      const seen = new Set();
      for (let round = 0; round < 20; round++) {
        let done = false;
        const p = opt.stepAsync().then(() => (done = true));
        while (!done) { seen.add(outcome(() => opt.loadState(saved))); await new Promise((r) => setImmediate(r)); }
        await p;
      }
      const after = [outcome(() => opt.zeroGrad()), outcome(() => opt.loadState(saved)), opt.state().length, await settled(() => opt.stepAsync())];
      console.log(JSON.stringify({ during, seen: [...seen], after }));
    })();
  `);
  const busy = (m: string) => `Error: optimizer.${m}(): a stepAsync() of this optimizer is still running; await it first`;
  expect(cleanExit(r)).toEqual({
    during: {
      step: busy('step'),
      stepAsync: busy('stepAsync'),
      zeroGrad: busy('zeroGrad'),
      state: busy('state'),
      loadState: busy('loadState'),
      lr: busy('setLr'),
      hyperparameters: busy('setAdamOptions'),
      reads: [0.001, 0.9, 3000],
    },
    seen: [busy('loadState')],
    after: ['ok', 'ok', 3000, 'ok'],
  });
});

// A worker queues 40 forwards of about 0.3 to 1 s each, then the main thread ends it.
const WORKER_MAIN = `
  const { Worker } = require('worker_threads');
  const api = require(process.env.TORCHCAP_DIST);
  api.Tensor.ones([1]); // the main thread has the addon (and its exit hook) too
  const w = new Worker(process.env.WORKER_CODE, { eval: true });
  w.on('message', async () => {
    const t0 = Date.now();
    if (process.argv[1] === 'terminate') {
      await w.terminate();
      console.log(JSON.stringify({ terminateMs: Date.now() - t0 }));
    } else {
      console.log(JSON.stringify({ exitAt: Date.now() }));
      process.exit(5);
    }
  });
`;
const WORKER_CODE = `
  const { parentPort } = require('worker_threads');
  const api = require(process.env.TORCHCAP_DIST);
  api.setNumThreads(1);
  const lin = new api.Linear(2048, 2048);
  const x = api.Tensor.randn([4096, 2048]);
  for (let i = 0; i < 40; i++) lin.forwardAsync(x, { train: false }).then(() => {}, () => {});
  setTimeout(() => parentPort.postMessage('queued'), 100);
`;

function runWorkerQueue(how: 'terminate' | 'exit') {
  const r = spawnSync(process.execPath, ['-e', WORKER_MAIN, how], {
    encoding: 'utf8',
    timeout: 60000,
    env: { ...process.env, TORCHCAP_DIST: DIST, WORKER_CODE, TORCHCAP_EXIT_GRACE_MS: '100' },
  });
  const ended = Date.now();
  const last = r.stdout.trim().split('\n').pop() || 'null';
  return { status: r.status, signal: r.signal, stderr: r.stderr.trim(), out: JSON.parse(last) as { terminateMs?: number; exitAt?: number } | null, ended };
}

test("terminating a worker drops its queued calls and waits for the running one only (it ran all 40, many seconds)", () => {
  const r = runWorkerQueue('terminate');
  expect({ status: r.status, signal: r.signal, stderr: r.stderr }).toEqual({ status: 0, signal: null, stderr: '' });
  expect(r.out?.terminateMs).toBeLessThan(5000); // one forward at most, on a busy machine too; all 40 take 15 s and more
});

test("the main thread's exit holds a worker's executor: no queued call starts, the running one gets the grace period (it ran all 40)", () => {
  const r = runWorkerQueue('exit');
  expect({ status: r.status, signal: r.signal, stderr: r.stderr }).toEqual({ status: 5, signal: null, stderr: '' });
  expect(r.ended - (r.out?.exitAt ?? 0)).toBeLessThan(4000); // TORCHCAP_EXIT_GRACE_MS=100, then the exit
});

test('an executor set as current, then closed and collected, refuses posts with its own error', () => {
  const r = runChild(
    `${PRELUDE}
    api.Tensor.ones([1]);
    (async () => {
      let e = native.createExecutor();
      native.setExecutor(e);
      e.close();
      e = null;
      for (let i = 0; i < 5; i++) { global.gc(); await new Promise((r) => setImmediate(r)); }
      // the first drops the finished executors (their memory is freed), the next ones may reuse it
      const keep = [native.createExecutor(), native.createExecutor(), native.createExecutor()];
      const posted = await settled(() => native.crossEntropyAsync(api.Tensor.randn([2, 3]).handle, api.Tensor.from([0, 1], { dtype: 'int64' }).handle, {}).then((x) => x.length));
      native.setExecutor(null);
      const after = await settled(() => api.crossEntropyAsync(api.Tensor.randn([2, 3]), api.Tensor.from([0, 1], { dtype: 'int64' })).then((x) => x.shape));
      console.log(JSON.stringify([posted, after]));
    })();
  `,
    { flags: ['--expose-gc'] },
  );
  expect(cleanExit(r)).toEqual(['Error: this executor has been closed', []]);
});

test('setNumThreads has a ceiling: 4 per hardware thread (2,000 threads took 30 s to start)', () => {
  const r = runChild(
    `${PRELUDE}
    const t0 = Date.now();
    const out = [outcome(() => api.setNumThreads(2000)), outcome(() => native.setNumThreads(2 ** 32 + 1)), Date.now() - t0 < 5000, outcome(() => api.setNumThreads(1)), api.getNumThreads()];
    console.log(JSON.stringify(out));
  `,
    { timeout: 20000 },
  );
  expect(cleanExit(r)).toEqual([
    expect.stringMatching(/^RangeError: Thread count must be at most \d+ \(4 per hardware thread of this machine\), got 2000$/),
    expect.stringMatching(/^RangeError: Thread count must be at most \d+ \(4 per hardware thread of this machine\), got 4294967297$/),
    true,
    'ok',
    1,
  ]);
  // the count asked for at load names where it came from
  const atLoad = runChild(`${PRELUDE} console.log(JSON.stringify([outcome(() => api.Tensor.ones([1]).shape), api.Tensor.ones([2]).shape]));`, {
    env: { TORCHCAP_NUM_THREADS: '100000' },
    timeout: 20000,
  });
  expect(cleanExit(atLoad)).toEqual([expect.stringMatching(/^RangeError: TORCHCAP_NUM_THREADS=100000 is refused: Thread count must be at most \d+ /), [2]]);
});

test('a BatchNorm1d size is read once: a getter cannot change it between the size check and the allocation', () => {
  let calls = 0;
  const options = {
    get numFeatures() {
      return ++calls === 1 ? 4 : 2 ** 40;
    },
  };
  const m = native.createModule('batchnorm1d', options as unknown as Record<string, number>);
  expect(m.namedParameters().map(([name, t]) => [name, t.shape()])).toEqual([
    ['weight', [4]],
    ['bias', [4]],
  ]);
  expect(calls).toBe(1);
});

test('a refused size names the public function: zeros, ones or full', () => {
  expect(thrown(() => Tensor.zeros([-1, 2])).message).toBe('zeros: shape [-1, 2] has a negative size');
  expect(thrown(() => Tensor.ones([-1, 2])).message).toBe('ones: shape [-1, 2] has a negative size');
  expect(thrown(() => Tensor.full([-1, 2], 3)).message).toBe('full: shape [-1, 2] has a negative size');
  expect(thrown(() => native.full([-1], 0, 'float32', null, 'nonsense' as 'full')).message).toBe('full: shape [-1] has a negative size');
});
