/**
 * Native memory stays flat when tensors are dropped without dispose(): the GC frees them in
 * place. Measured in a child process so the figure is not the test runner's.
 */
import { execFileSync } from 'child_process';
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
