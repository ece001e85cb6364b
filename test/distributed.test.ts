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
import { native } from '../lib/core/native';
import { distributedEnv, threadsPerRank } from '../lib/distributed/env';

const run = promisify(execFile);
const script = path.join(__dirname, 'scripts', 'dist-train.js');
const hasGloo = native.distributedBackends.includes('gloo');
const NO_GLOO = 'this build has no c10d Gloo (libgloo-dev missing at build time)';
/** Adam's learning rate in dist-train.js (the book's default). */
const LR = 0.001;

async function trainRanks(world: number, batch: number, steps: number, out: string, extra: string[] = []): Promise<Map<string, Tensor>[]> {
  const port = await freePort();
  await Promise.all(Array.from({ length: world }, (_, r) => run(process.execPath, [script, String(r), String(world), String(port), out, String(batch), String(steps), ...extra], { env: { ...process.env, TORCHCAP_NUM_THREADS: '1' } })));
  return Promise.all(Array.from({ length: world }, async (_, r) => (await readSafetensors(path.join(out, `rank${r}-of-${world}.safetensors`))).tensors));
}

function values(t: Tensor): Float64Array {
  return Float64Array.from(t.to('float64').toTypedArray() as Float64Array);
}

function maxDiff(a: Tensor, b: Tensor): number {
  return a.to('float64').sub(b.to('float64')).abs().max().item();
}

/**
 * How far one weight may drift between two runs that differ only in rounding, after a few Adam
 * steps. Adam moves weight i by lr * m_hat / (sqrt(v_hat) + eps) a step, a direction of size about
 * 1 at most. A perturbation d of the gradients changes that direction, to first order, by about
 * d / (sqrt(v_hat) + eps), where sqrt(v_hat) is the weight's RMS gradient so far (Adam's
 * bias-corrected second moment), and by 2 at most (the direction flips): so the drift is at most
 * lr * d * S_i, with S_i the sum over the steps of 1 / (sqrt(v_hat) + eps) (dist-train.js
 * records it), and at most 2 * lr a step.
 *
 * The perturbation is rounding: the sums run in another order in one process than in two ranks
 * plus an all-reduce. Its size is measured, not assumed: `noise` is the largest difference between
 * the two runs' gradients of the same tensor at the first step, when the weights are still equal.
 * A factor of 10 covers the factor 2 of the first-order terms (through m_hat and v_hat), the
 * change of the noise over a few steps, and the second-order feedback of the tiny weight
 * differences. 1e-6 more covers the rounding of Adam's own arithmetic on weights of about 0.1.
 *
 * So a weight with a healthy gradient must agree to about 1e-6, while one whose RMS gradient is
 * comparable to the noise or to eps (1e-8) may drift further: the encoder's linear bias, which the
 * batch norm cancels (its gradient is zero up to rounding, and Adam turns rounding into steps of
 * lr whose signs differ between any two implementations), or a weight whose first gradient happens
 * to be about 1e-8 (the first step, lr * g / (|g| + eps), then depends on g's last digits).
 */
function driftBound(noise: number, sensitivity: Float64Array, steps: number): Float64Array {
  return sensitivity.map((s) => 1e-6 + Math.min(2.02 * LR * steps, 10 * LR * noise * s));
}

describeIf(hasGloo, NO_GLOO, 'data-parallel training (Gloo, loopback)', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torchcap-dist-'));
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  test('2 ranks of batch 6 with --sync-bn equal 1 process of batch 12: gradients, then weights after 5 steps', async () => {
    // One step: the all-reduced gradients of every trainable parameter equal one process's, within
    // 1e-5 of the largest gradient (the encoder's linear bias has a gradient of zero up to rounding).
    const [single1] = await trainRanks(1, 12, 1, path.join(tmp, 'a'));
    const pair1 = await trainRanks(2, 6, 1, path.join(tmp, 'b'), ['syncbn']);
    const gradKeys = [...single1.keys()].filter((k) => k.startsWith('grad.'));
    expect(gradKeys.length).toBe(11); // decoder 7 + encoder linear 2 + batch norm 2
    const largest = Math.max(...gradKeys.map((k) => single1.get(k)!.abs().max().item()));
    const noise = new Map<string, number>();
    for (const k of gradKeys) {
      noise.set(k.slice('grad.'.length), maxDiff(pair1[0].get(k)!, single1.get(k)!));
      expect({ k, close: noise.get(k.slice('grad.'.length))! <= 1e-5 * largest }).toEqual({ k, close: true });
      expect(pair1[1].get(k)!.equal(pair1[0].get(k)!)).toBe(true);
    }

    // Five steps of Adam: both ranks hold identical weights, and each weight equals one process's
    // within the drift that rounding allows it (driftBound). The frozen backbone does not move.
    const steps = 5;
    const [single] = await trainRanks(1, 12, steps, path.join(tmp, 'c'));
    const pair = await trainRanks(2, 6, steps, path.join(tmp, 'd'), ['syncbn']);
    let checked = 0;
    for (const [k, v] of single) {
      if (k.startsWith('grad.') || k.startsWith('adam_sensitivity.')) continue;
      expect(pair[1].get(k)!.equal(pair[0].get(k)!)).toBe(true);
      if (k.startsWith('encoder.resnet_module.')) {
        expect([k, pair[0].get(k)!.equal(v)]).toEqual([k, true]);
        continue;
      }
      const ours = values(v);
      const diff = values(pair[0].get(k)!).map((x, i) => Math.abs(x - ours[i]));
      const sensitivity = single.get(`adam_sensitivity.${k}`);
      let bound: Float64Array;
      if (sensitivity) bound = driftBound(noise.get(k)!, values(sensitivity), steps);
      // The batch norm's running mean averages the batch means of the linear layer's output, which
      // carry its bias: it drifts as far as the bias may.
      else if (k === 'encoder.batch_norm.running_mean') bound = new Float64Array(diff.length).fill(1e-6 + 2.02 * LR * steps);
      else bound = new Float64Array(diff.length).fill(1e-6);
      const over = [...diff.keys()].filter((i) => !(diff[i] <= bound[i]));
      expect({ k, over: over.slice(0, 3).map((i) => ({ i, diff: diff[i], bound: bound[i] })) }).toEqual({ k, over: [] });
      checked++;
    }
    expect(checked).toBe(14); // decoder 7; encoder: linear 2, batch norm 5 (weight, bias, running mean and var, count)
  }, 300_000);

  test('killing one rank mid-run stops the other with an error naming the lost rank', async () => {
    const port = await freePort();
    const out = path.join(tmp, 'kill');
    const start = (r: number) => spawn(process.execPath, [script, String(r), '2', String(port), out, '6', '200'], { env: { ...process.env, TORCHCAP_NUM_THREADS: '1', EPOCHS: '5' } });
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
