'use strict';
// What emptyCpuCache gives back to the system, in a fresh process: the resident memory (VmRSS) with
// 200 MB of large tensors written, after dropping them into the cache, and after emptying it.
const fs = require('fs');
const { Tensor, cpuCache, emptyCpuCache } = require('../../dist');

const MB = 1 << 20;
const rssMB = () => Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]) / 1024;
const tensors = [];
for (let i = 0; i < 25; i++) tensors.push(Tensor.full([(8 * MB) / 4], i)); // 8 MiB of float32 each
const small = Tensor.full([MB / 4], 1); // a live block allocated after them
const out = { written: rssMB() };
for (const t of tensors) t.dispose();
out.cachedMB = (cpuCache().cachedBytes ?? 0) / MB;
out.dropped = rssMB();
emptyCpuCache();
out.emptied = rssMB();
out.smallSum = small.sum().item();
process.stdout.write(JSON.stringify(out));
