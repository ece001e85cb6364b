/**
 * Native memory stays flat when tensors are dropped without dispose(): the GC frees them in
 * place. Measured in a child process so the figure is not the test runner's.
 */
import { execFileSync } from 'child_process';
import * as path from 'path';

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

describe('the CPU tensor cache', () => {
  // Imported here so that the churn tests above measure a fresh child process only.
  const { Tensor, cpuCache, emptyCpuCache } = require('../lib') as typeof import('../lib');
  const cached = () => cpuCache().cachedBytes ?? 0;
  const MB = 1 << 20;

  test('a freed block serves a later request up to twice smaller, and emptyCpuCache returns it', () => {
    if (!cpuCache().installed) {
      console.log('skipped: TORCHCAP_CPU_CACHE_MB=0 turns the cache off');
      return;
    }
    emptyCpuCache();
    expect(cached()).toBe(0);
    Tensor.zeros([MB / 4]).dispose(); // 1 MiB of float32
    expect(cached()).toBe(MB);
    const hits = cpuCache().hits ?? 0;
    const smaller = Tensor.zeros([(MB * 3) / 16]); // 768 KiB: reuses the 1 MiB block
    expect(cpuCache().hits).toBe(hits + 1);
    expect(cached()).toBe(0);
    smaller.dispose();
    const tooSmall = Tensor.zeros([MB / 16]); // 256 KiB: under half of 1 MiB, a fresh block
    expect(cached()).toBe(MB);
    tooSmall.dispose();
    emptyCpuCache();
    expect(cached()).toBe(0);
  });
});
