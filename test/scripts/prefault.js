'use strict';
// Memory faulted in ahead for the CPU tensor cache (native/allocator.cc, Region), in a fresh
// process: prints what prefaultCpu returned, the bytes left to take, the process's anonymous huge
// pages at each point, and the values of the tensors made from the prefaulted memory.
const fs = require('fs');
const { Tensor, cpuCache, emptyCpuCache } = require('../../dist');
const { prefaultCpu } = require('../../dist/core/system');

const MB = 1 << 20;
const left = () => cpuCache().prefaultedBytes ?? 0;
const hugeMB = () => Number(/AnonHugePages:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/smaps_rollup', 'utf8'))?.[1] ?? 0) / 1024;
const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
const out = {};
emptyCpuCache();
const huge0 = hugeMB();
out.started = prefaultCpu(64 * MB);
out.left = left();
// the thread populates the region by itself: wait (at most 5 s) until most of it is resident
for (let i = 0; i < 100 && hugeMB() - huge0 < 60; i++) sleep(50);
out.populatedMB = Math.round(hugeMB() - huge0);
const big = Tensor.full([2 * MB], 3); // 8 MiB of float32 from the front of the region
out.leftAfterBig = left();
const small = Tensor.full([MB / 4], 5); // 1 MiB: carved from a 2 MiB chunk taken from the region
out.leftAfterSmall = left();
out.sums = [big.sum().item(), small.sum().item()];
out.stopped = prefaultCpu(0); // what was not taken goes back
out.leftAfterStop = left();
out.afterStopMB = Math.round(hugeMB() - huge0);
big.dispose();
small.dispose();
emptyCpuCache(); // the blocks taken from the region go back too
out.emptiedMB = Math.round(hugeMB() - huge0);
for (const bad of [-1, 'x']) {
  try {
    prefaultCpu(bad);
    out[`bad ${bad}`] = 'returned';
  } catch (e) {
    out[`bad ${bad}`] = e.name;
  }
}
process.stdout.write(JSON.stringify(out));
