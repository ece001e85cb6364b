'use strict';
// The CPU tensor cache's reuse rule, in a fresh process so that no tensor dropped elsewhere is
// freed into the cache in the middle: prints the cached bytes and hits at each point.
const { Tensor, cpuCache, emptyCpuCache } = require('../../dist');

const MB = 1 << 20;
const cached = () => cpuCache().cachedBytes ?? 0;
const out = { installed: cpuCache().installed };
emptyCpuCache();
out.start = cached();
Tensor.zeros([MB / 4]).dispose(); // 1 MiB of float32
out.afterFree = cached();
const hits = cpuCache().hits ?? 0;
const smaller = Tensor.zeros([(MB * 3) / 16]); // 768 KiB: reuses the 1 MiB block
out.reuseHits = (cpuCache().hits ?? 0) - hits;
out.whileReused = cached();
smaller.dispose();
const tooSmall = Tensor.zeros([MB / 16]); // 256 KiB: under half of 1 MiB, a fresh block
out.tooSmall = cached();
tooSmall.dispose();
emptyCpuCache();
out.emptied = cached();
process.stdout.write(JSON.stringify(out));
