/**
 * Native memory stays flat when tensors are dropped without dispose(): the GC frees them in
 * place. Measured in a child process so the figure is not the test runner's.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { testIf } from './support/skip';

const script = path.join(__dirname, 'scripts', 'tensor-churn.js');

function churn(n: number, elements: number): { peakGrowth: number; live: { tensors: number } } {
  return JSON.parse(execFileSync(process.execPath, [script, String(n), String(elements)], { encoding: 'utf8' }));
}

test('creating and dropping 100,000 tensors in a loop keeps RSS within 50 MB of its start', () => {
  const r = churn(100000, 1024); // 400 MB allocated in all
  expect(r.peakGrowth).toBeLessThan(50);
  expect(r.live.tensors).toBeLessThan(100000);
});

test('large tensors dropped in a synchronous loop are freed by the GC as it goes', () => {
  const r = churn(20000, 65536); // 5 GB allocated in all, far more than could stay resident
  expect(r.peakGrowth).toBeLessThan(50);
});

const cacheOn = process.env.TORCHCAP_CPU_CACHE_MB !== '0';

testIf(cacheOn, 'TORCHCAP_CPU_CACHE_MB=0 turns the CPU tensor cache off', 'a freed block of the CPU tensor cache serves a later request up to twice smaller, and emptyCpuCache returns it', () => {
  const r = JSON.parse(execFileSync(process.execPath, [path.join(__dirname, 'scripts', 'cache-reuse.js')], { encoding: 'utf8' }));
  const MB = 1 << 20;
  expect(r).toEqual({ installed: true, start: 0, afterFree: MB, reuseHits: 1, whileReused: 0, tooSmall: MB, emptied: 0 });
});

const thpMode = (() => {
  try {
    return /\[(\w+)\]/.exec(fs.readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8'))?.[1] ?? 'unknown';
  } catch {
    return 'unavailable';
  }
})();
const hugeOn = cacheOn && (thpMode === 'madvise' || thpMode === 'always');

/** Whether a virtio balloon bound to its driver negotiated free page reporting (feature bit 5), read here independently of the addon. */
function balloonReports(): boolean {
  const dir = '/sys/bus/virtio/drivers/virtio_balloon';
  try {
    return fs.readdirSync(dir).filter((d) => d.startsWith('virtio')).some((d) => fs.readFileSync(path.join(dir, d, 'features'), 'utf8')[5] === '1');
  } catch {
    return false;
  }
}

testIf(cacheOn, 'TORCHCAP_CPU_CACHE_MB=0 turns the CPU tensor cache off', "huge pages by default, not where the virtual machine's balloon reports free memory to the host; TORCHCAP_HUGE_PAGES=0 and =1 decide either way", () => {
  const policy = (value: string | undefined) => {
    const env = { ...process.env };
    if (value === undefined) delete env.TORCHCAP_HUGE_PAGES;
    else env.TORCHCAP_HUGE_PAGES = value;
    const c = JSON.parse(execFileSync(process.execPath, ['-e', `const t = require(${JSON.stringify(path.join(__dirname, '..', 'dist'))}); console.log(JSON.stringify(t.cpuCache()))`], { encoding: 'utf8', env }));
    return [c.hugePages, c.hugePagesWhy];
  };
  const reports = balloonReports();
  expect(policy(undefined)).toEqual(reports ? [false, "this virtual machine's balloon reports free memory to its host (TORCHCAP_HUGE_PAGES=1 uses them anyway)"] : [true, 'the default']);
  // eslint-disable-next-line no-console
  console.log(`this machine: ${reports ? 'a balloon reports free memory, so 4 KiB pages by default' : 'no balloon reports free memory, so huge pages by default'}`);
  expect(policy('2')).toEqual(policy(undefined)); // anything else is the default
  expect(policy('0')).toEqual([false, 'TORCHCAP_HUGE_PAGES=0']);
  expect(policy('1')).toEqual([true, 'TORCHCAP_HUGE_PAGES=1']);
});

testIf(hugeOn, `the CPU tensor cache is off, or the kernel's transparent huge pages are "${thpMode}"`, 'blocks under 2 MiB are carved from 2 MiB huge pages, and a chunk goes back to the system once all its blocks are free', () => {
  const run = (env: NodeJS.ProcessEnv) => JSON.parse(execFileSync(process.execPath, [path.join(__dirname, 'scripts', 'cache-chunks.js')], { encoding: 'utf8', env: { ...process.env, ...env } }));
  const MB = 1 << 20;
  const r = run({ TORCHCAP_HUGE_PAGES: '1' });
  // one 1 MiB tensor written: its chunk is a fresh 2 MiB mapping advised to use huge pages, and a
  // huge page (2048 kB) backs it instead of 512 small ones, unless the kernel had none to give
  expect(r.advisedKBGrowth).toBe(2048);
  if (r.kernelFellBack) {
    // eslint-disable-next-line no-console
    console.log('not checked that a huge page backs the chunk: the kernel had no free huge page (thp_fault_fallback grew in /proc/vmstat)');
  } else {
    expect(r.hugeKBGrowth).toBeGreaterThanOrEqual(2048);
  }
  expect(r.twoBlocks).toEqual({ cached: 0, chunks: 1 }); // two 1 MiB blocks share a chunk
  expect(r.threeBlocks).toEqual({ cached: 0, chunks: 2 });
  // a free block stays cached while its chunk holds a live one; the live tensors keep their values
  expect(r.afterFreeingOne).toEqual({ cached: MB, chunks: 2 });
  expect(r.sums).toEqual([MB / 4 * 2, (MB / 8) * 3]);
  expect(r.emptied).toEqual({ cached: 0, chunks: 0 });
  expect([r.advisedKBAfterEmptying, r.hugeKBAfterEmptying]).toEqual([0, 0]); // unmapped, not kept by malloc
  // TORCHCAP_HUGE_PAGES=0: small pages, nothing carved
  const small = run({ TORCHCAP_HUGE_PAGES: '0' });
  expect([small.hugeKBGrowth, small.advisedKBGrowth]).toEqual([0, 0]);
  expect([small.twoBlocks.chunks, small.threeBlocks.chunks]).toEqual([0, 0]);
});

testIf(cacheOn, 'TORCHCAP_CPU_CACHE_MB=0 turns the CPU tensor cache off', 'emptyCpuCache gives the memory of large blocks back to the system, with huge pages and without', () => {
  for (const hugePages of ['1', '0']) {
    const r = JSON.parse(execFileSync(process.execPath, [path.join(__dirname, 'scripts', 'cache-return.js')], { encoding: 'utf8', env: { ...process.env, TORCHCAP_HUGE_PAGES: hugePages } }));
    // 25 dropped tensors of 8 MiB sit in the cache, still resident, until it is emptied
    expect(r.cachedMB).toBe(200);
    expect(r.written - r.dropped).toBeLessThan(5);
    expect(r.dropped - r.emptied).toBeGreaterThan(190);
    expect(r.smallSum).toBe((1 << 20) / 4); // a live block allocated after them is untouched
  }
});
