'use strict';
// 2048x2048 float32 matmul through torchcap and through /usr/bin/python3 torch (the same
// libtorch), interleaved, several repeats; prints GFLOP/s of each and the ratio (target >= 0.95).
const { Tensor, setNumThreads } = require('../dist');
const { median, python, pythonHasTorch, machine, time } = require('./common');

const N = 2048;
const REPEATS = Number(process.env.REPEATS || 5);
const INNER = 5;
const flops = 2 * N ** 3;

const PY = `
import sys, time, json, torch
torch.set_num_threads(int(sys.argv[1]))
n, inner = 2048, int(sys.argv[2])
a, b = torch.randn(n, n), torch.randn(n, n)
a @ b
t = time.perf_counter()
for _ in range(inner): a @ b
print(json.dumps((time.perf_counter() - t) / inner))
`;

function torchcapOnce() {
  const a = Tensor.randn([N, N]);
  const b = Tensor.randn([N, N]);
  a.matmul(b).dispose();
  const s = time(() => {
    for (let i = 0; i < INNER; i++) a.matmul(b).dispose();
  });
  return s / INNER;
}

function main() {
  const threads = require('os').availableParallelism();
  setNumThreads(threads);
  if (!pythonHasTorch()) {
    console.log('SKIP python comparison: /usr/bin/python3 has no torch (apt-get install python3-torch)');
  }
  const ours = [];
  const theirs = [];
  for (let r = 0; r < REPEATS; r++) {
    ours.push(torchcapOnce());
    if (pythonHasTorch()) theirs.push(python(PY, [threads, INNER]));
  }
  const g = (s) => flops / s / 1e9;
  const result = { machine: machine(), threads, torchcapGflops: g(median(ours)), pythonGflops: theirs.length ? g(median(theirs)) : null };
  result.ratio = result.pythonGflops ? result.torchcapGflops / result.pythonGflops : null;
  console.log(`matmul ${N}x${N} float32, ${threads} threads, median of ${REPEATS} interleaved repeats x ${INNER}`);
  console.log(`torchcap ${result.torchcapGflops.toFixed(1)} GFLOP/s`);
  if (result.pythonGflops) console.log(`python   ${result.pythonGflops.toFixed(1)} GFLOP/s`);
  if (result.ratio) console.log(`ratio torchcap/python ${result.ratio.toFixed(3)} (target >= 0.95)`);
  return result;
}

module.exports = { main };
if (require.main === module) main();
