'use strict';
// The CPU tensor cache's huge-page chunks for blocks under 2 MiB, in a fresh process (see
// native/allocator.cc): prints the cache's counts and the process's anonymous huge pages at each point.
const fs = require('fs');
const { Tensor, cpuCache, emptyCpuCache } = require('../../dist');

const MB = 1 << 20;
const state = () => {
  const c = cpuCache();
  return { cached: c.cachedBytes ?? 0, chunks: c.hugeChunks ?? 0 };
};
const hugeKB = () => Number(/AnonHugePages:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/smaps_rollup', 'utf8'))?.[1] ?? 0);
const out = {};
emptyCpuCache();
out.start = state();
const huge0 = hugeKB();
const a = Tensor.full([MB / 4], 1); // 1 MiB of float32, written: its chunk is faulted in
out.hugeKBGrowth = hugeKB() - huge0;
const b = Tensor.full([MB / 4], 2); // the same chunk's second half
out.twoBlocks = state();
const c = Tensor.full([MB / 8], 3); // 512 KiB: no room left in that chunk, a second one
out.threeBlocks = state();
a.dispose();
emptyCpuCache(); // b still lives in a's chunk: a's block stays cached
out.afterFreeingOne = state();
out.sums = [b.sum().item(), c.sum().item()]; // the live blocks' values, untouched by the trim
b.dispose();
c.dispose();
emptyCpuCache(); // every block free: both chunks go back
out.emptied = state();
process.stdout.write(JSON.stringify(out));
