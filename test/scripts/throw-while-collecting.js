// Throws native errors in a tight loop while dropped tensors wait for the GC, with V8's young
// generation pinned to 1 MB so that collections come often and at allocations inside the throw
// (the error message object Node allocates when it rethrows a native error). Prints a JSON line
// when every call ended as a JS error; a finalizer that meets the error in flight kills the
// process instead (V8 fatal error, exit 133).
// Usage: node --predictable --max-semi-space-size=1 --min-semi-space-size=1 \
//          test/scripts/throw-while-collecting.js [ITERATIONS]
const { Tensor, memory } = require('../../dist');

const n = Number(process.argv[2] || 50000);
const disposed = Tensor.randn([1]);
disposed.dispose();
const a = Tensor.randn([2, 3]);
const b = Tensor.randn([4, 5]);
const kinds = new Map();
const count = (e) => {
  const key = e instanceof Error && e.message ? e.name : `non-Error ${String(e)}`;
  kinds.set(key, (kinds.get(key) || 0) + 1);
};
const before = memory().tensors;
let peak = 0;
for (let i = 0; i < n; i++) {
  Tensor.randn([1]); // dropped at once: its finalizer waits for the next collection
  try {
    disposed.add(1); // native Error: the tensor has been disposed
  } catch (e) {
    count(e);
  }
  if (i % 100 === 0) {
    try {
      a.matmul(b); // libtorch's error (c10::Error)
    } catch (e) {
      count(e);
    }
    try {
      a.select(0, 9); // libtorch's index error, a RangeError
    } catch (e) {
      count(e);
    }
    peak = Math.max(peak, memory().tensors - before);
  }
}
process.stdout.write(JSON.stringify({ n, errors: Object.fromEntries(kinds), peakLiveTensors: peak }) + '\n');
