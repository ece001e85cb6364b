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
// kB of the process's mappings that carry the huge-page advice (VmFlags "hg"): what the cache asks for
const advisedKB = () => {
  let kb = 0;
  let size = 0;
  for (const line of fs.readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    if (line.startsWith('Size:')) size = Number(/(\d+)/.exec(line)[1]);
    else if (line.startsWith('VmFlags:') && line.split(/\s+/).includes('hg')) kb += size;
  }
  return kb;
};
// faults where the kernel had no free huge page (or the cgroup's charge failed) and mapped small ones
const fallbacks = () => {
  const v = fs.readFileSync('/proc/vmstat', 'utf8');
  return ['thp_fault_fallback', 'thp_fault_fallback_charge'].reduce((n, k) => n + Number(new RegExp(`^${k} (\\d+)`, 'm').exec(v)?.[1] ?? 0), 0);
};
const out = {};
emptyCpuCache();
out.start = state();
const huge0 = hugeKB();
const advised0 = advisedKB();
const fallbacks0 = fallbacks();
const a = Tensor.full([MB / 4], 1); // 1 MiB of float32, written: its chunk is faulted in
out.hugeKBGrowth = hugeKB() - huge0;
out.advisedKBGrowth = advisedKB() - advised0;
out.kernelFellBack = fallbacks() > fallbacks0; // system-wide: another process's fallback counts too
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
out.advisedKBAfterEmptying = advisedKB() - advised0; // their mappings are gone
out.hugeKBAfterEmptying = hugeKB() - huge0;
process.stdout.write(JSON.stringify(out));
