/**
 * Data-parallel training on c10d Gloo over loopback: N ranks compute what one process computes on
 * the union of their batches, all ranks hold identical weights, and a lost rank stops the others
 * with an error naming it.
 */
import { spawn, execFile } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { promisify } from 'util';
import { readSafetensors } from '../lib/serialization';
import { withoutNproc, freePort } from '../lib/distributed/launch';
import type { Tensor } from '../lib';
import { describeIf } from './support/skip';
import { sharedDataPresent } from './support/data';
import { native } from '../lib/core/native';
import { distributedEnv, threadsPerRank } from '../lib/distributed/env';

const run = promisify(execFile);
const script = path.join(__dirname, 'scripts', 'dist-train.js');
const hasGloo = native.distributedBackends.includes('gloo');
const canRun = hasGloo && sharedDataPresent;
const why = !hasGloo ? 'this build has no c10d Gloo (libgloo-dev missing at build time)' : 'the shared COCO mini data is absent';

async function trainRanks(world: number, batch: number, steps: number, out: string, extra: string[] = []): Promise<Map<string, Tensor>[]> {
  const port = await freePort();
  await Promise.all(Array.from({ length: world }, (_, r) => run(process.execPath, [script, String(r), String(world), String(port), out, String(batch), String(steps), ...extra], { env: { ...process.env, TORCHCAP_NUM_THREADS: '1' } })));
  return Promise.all(Array.from({ length: world }, async (_, r) => (await readSafetensors(path.join(out, `rank${r}-of-${world}.safetensors`))).tensors));
}

function maxDiff(a: Tensor, b: Tensor): number {
  return a.to('float64').sub(b.to('float64')).abs().max().item();
}

describeIf(canRun, why, 'data-parallel training (Gloo, loopback)', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torchcap-dist-'));

  test('2 ranks of batch 8 with --sync-bn equal 1 process of batch 16: gradients, then weights after 5 steps', async () => {
    // One step: the all-reduced gradients of every trainable parameter equal one process's, within
    // 1e-5 of the largest gradient (the encoder's linear bias has a gradient of zero up to rounding).
    const [single1] = await trainRanks(1, 16, 1, path.join(tmp, 'a'));
    const pair1 = await trainRanks(2, 8, 1, path.join(tmp, 'b'), ['syncbn']);
    const gradKeys = [...single1.keys()].filter((k) => k.startsWith('grad.'));
    expect(gradKeys.length).toBe(11); // decoder 7 + encoder linear 2 + batch norm 2
    const largest = Math.max(...gradKeys.map((k) => single1.get(k)!.abs().max().item()));
    for (const k of gradKeys) {
      expect({ k, close: maxDiff(pair1[0].get(k)!, single1.get(k)!) <= 1e-5 * largest }).toEqual({ k, close: true });
      expect(pair1[1].get(k)!.equal(pair1[0].get(k)!)).toBe(true);
    }

    // Five steps of Adam: both ranks hold identical weights, equal to one process's within 1e-5.
    // The encoder's linear bias feeds a batch norm, which cancels it: its gradient is zero up to
    // rounding, and Adam turns that rounding into steps of about lr (1e-3) whose sign differs
    // between any two implementations. So the bias, the weight rows it touches, and the batch
    // norm's running mean (which tracks the bias) are checked against that bound instead.
    const [single] = await trainRanks(1, 16, 5, path.join(tmp, 'c'));
    const pair = await trainRanks(2, 8, 5, path.join(tmp, 'd'), ['syncbn']);
    const chaotic = new Set(['encoder.linear_layer.bias', 'encoder.linear_layer.weight', 'encoder.batch_norm.running_mean']);
    for (const [k, v] of single) {
      if (k.startsWith('grad.')) continue;
      expect(pair[1].get(k)!.equal(pair[0].get(k)!)).toBe(true);
      const d = maxDiff(pair[0].get(k)!, v);
      if (chaotic.has(k)) expect(d).toBeLessThan(2 * 1e-3 * 5);
      else expect({ k, d: d < 1e-5 }).toEqual({ k, d: true });
    }
  }, 300_000);

  test('killing one rank mid-run stops the other with an error naming the lost rank', async () => {
    const port = await freePort();
    const out = path.join(tmp, 'kill');
    const start = (r: number) => spawn(process.execPath, [script, String(r), '2', String(port), out, '8', '200'], { env: { ...process.env, TORCHCAP_NUM_THREADS: '1', EPOCHS: '5' } });
    const r0 = start(0);
    const r1 = start(1);
    let log0 = '';
    r0.stdout.on('data', (d) => (log0 += d));
    r0.stderr.on('data', (d) => (log0 += d));
    const exit0 = new Promise<number | null>((resolve) => r0.on('exit', resolve));
    await new Promise<void>((resolve, reject) => {
      const t = setInterval(() => {
        if (/Step \[2\//.test(log0)) {
          clearInterval(t);
          resolve();
        }
      }, 100);
      r0.on('exit', () => reject(new Error(`rank 0 ended before training: ${log0}`)));
    });
    const killedAt = Date.now();
    r1.kill('SIGKILL');
    const code = await exit0;
    const seconds = (Date.now() - killedAt) / 1000;
    expect(code).not.toBe(0);
    expect(log0).toMatch(/DistributedError: allreduce failed on rank 0 of 2 \(lost rank 1\)/);
    expect(seconds).toBeLessThan(30); // the collective timeout of the run is 20 s
  }, 120_000);
});

test('torchrun environment: parsed, and refused when inconsistent', () => {
  expect(distributedEnv({})).toBeNull();
  expect(distributedEnv({ WORLD_SIZE: '1' })).toBeNull();
  expect(distributedEnv({ WORLD_SIZE: '4', RANK: '2', LOCAL_RANK: '0', MASTER_ADDR: '10.0.0.1', MASTER_PORT: '29500' })).toEqual({
    rank: 2,
    worldSize: 4,
    localRank: 0,
    masterAddr: '10.0.0.1',
    masterPort: 29500,
  });
  expect(() => distributedEnv({ WORLD_SIZE: '2', RANK: '2', MASTER_ADDR: 'a', MASTER_PORT: '1' })).toThrow(/RANK 2 is not below WORLD_SIZE 2/);
  expect(() => distributedEnv({ WORLD_SIZE: '2', RANK: '0', MASTER_PORT: '1' })).toThrow(/MASTER_ADDR/);
  expect(() => distributedEnv({ WORLD_SIZE: '2', RANK: 'x', MASTER_ADDR: 'a', MASTER_PORT: '1' })).toThrow(/RANK must be an integer/);
});

test('the launcher drops --nproc from the ranks\' arguments and shares the cores', () => {
  expect(withoutNproc(['train', '--nproc', '2', '--epochs', '1'])).toEqual(['train', '--epochs', '1']);
  expect(withoutNproc(['train', '--nproc=4', '--sync-bn'])).toEqual(['train', '--sync-bn']);
  expect(threadsPerRank(2, 2)).toBe(1);
  expect(threadsPerRank(2, 16)).toBe(8);
  expect(threadsPerRank(4, 2)).toBe(1);
});
