/**
 * A tensor dropped without dispose() is freed after the GC collects it, never by code that runs
 * inside the collection itself. Node rethrows a native error after the native call has returned,
 * with the error still recorded as pending; a collection triggered by that rethrow used to run
 * tensor finalizers right there, and Node then took the error for the finalizer's and tried to
 * run JavaScript inside the GC (V8 fatal error, exit 133). The child process below makes that
 * collection happen on demand: a 1 MB young generation collects every few hundred calls, and
 * --predictable makes the allocation sequence, and so the outcome, the same on every run.
 */
import { spawnSync } from 'child_process';
import * as path from 'path';
import { testIf } from './support/skip';

const SCRIPT = path.join(__dirname, 'scripts', 'throw-while-collecting.js');
const V8_FLAGS = ['--predictable', '--max-semi-space-size=1', '--min-semi-space-size=1'];

function run(iterations: number) {
  const r = spawnSync(process.execPath, [...V8_FLAGS, SCRIPT, String(iterations)], { encoding: 'utf8', timeout: 110000 });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

test('native errors thrown while the GC collects dropped tensors end as JS errors, never as a crash', () => {
  const n = 50000;
  const r = run(n);
  // On failure, show how the child ended (V8's fatal error names the finalizer that ran in the GC).
  expect({ status: r.status, signal: r.signal, stderr: r.stderr.slice(0, 1500) }).toEqual({ status: 0, signal: null, stderr: '' });
  const out = JSON.parse(r.stdout);
  // Every call was a JS error of the expected class: n disposed-tensor errors plus, every 100
  // calls, libtorch's shape error and its index error.
  expect(out.errors).toEqual({ Error: n + n / 100, RangeError: n / 100 });
  // Dropped tensors were really collected during the loop (so collections ran between throws):
  // far fewer of them were alive at any check than were created.
  expect(out.peakLiveTensors).toBeLessThan(n / 10);
});

testIf(process.env.TORCHCAP_CPU_CACHE_MB !== '0', "TORCHCAP_CPU_CACHE_MB=0 turns torchcap's CPU allocator off, and its counts with it", 'a dropped tensor is freed at the first tensor created after its collection, or when the event loop turns', () => {
  const r = spawnSync(process.execPath, ['--expose-gc', path.join(__dirname, 'scripts', 'dropped-tensors.js')], { encoding: 'utf8', timeout: 60000 });
  expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
  const mb = JSON.parse(r.stdout); // MB handed out by the CPU allocator at each point
  expect(mb).toEqual({ installed: true, start: 0, dropped: 64, collected: 64, nextTensor: 0, collectedAgain: 64, eventLoopTurned: 0 });
});
