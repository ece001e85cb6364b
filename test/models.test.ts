/**
 * The book's models against PyTorch: outputs, losses, gradients, BatchNorm statistics, an Adam
 * step and greedy sampling, for deterministic weights (test/support/deterministic.ts). The
 * reference comes from scripts/fixtures/make-model-fixtures.py: the committed fixture always, and
 * a fresh run of the script when /usr/bin/python3 has torch and torchvision.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { execFileSync } from 'child_process';
import { Tensor, noGrad, memory } from '../lib';
import { ResNet } from '../lib/nn/resnet';
import { CaptionEncoder, CaptionDecoder } from '../lib/model';
import { crossEntropy } from '../lib/nn/functional';
import { packPaddedSequence } from '../lib/nn/rnn';
import { Adam } from '../lib/nn/optim';
import { loadEncoder, loadWeights, saveWeights, loadBackboneWeights, saveCheckpoint, restoreCheckpoint } from '../lib/model/checkpoint';
import { loadStateDict, saveTorchFile } from '../lib/serialization';
import { fill, inputTensor, fromJson, maxRelErr, summarize, type Json, type Summary } from './support/deterministic';
import { pythonHas, PYTHON } from './support/python';
import { describeIf } from './support/skip';

const FIXTURE = path.join(__dirname, 'fixtures/models/reference.json');
const live = pythonHas('torch', 'torchvision');

/** A fresh reference from PyTorch itself (scripts/fixtures/make-model-fixtures.py). */
function reference(): any {
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'torchcap-models-')), 'reference.json');
  execFileSync(PYTHON, [path.join(__dirname, '../scripts/fixtures/make-model-fixtures.py'), out], { stdio: 'ignore' });
  return JSON.parse(fs.readFileSync(out, 'utf8'));
}

function expectClose(ours: Tensor, ref: Json, tol = 1e-5): void {
  expect(ours.shape).toEqual(ref.shape);
  expect(maxRelErr(ours, fromJson(ref), 1e-4)).toBeLessThan(tol);
}

function expectSummary(ours: Tensor, ref: Summary, tol = 1e-5): void {
  const s = summarize(ours);
  expect(s.shape).toEqual(ref.shape);
  expect(Math.abs(s.sum - ref.sum)).toBeLessThan(tol * (Math.sqrt(ref.sumsq) * Math.sqrt(s.head.length) + 1));
  expect(Math.abs(s.sumsq - ref.sumsq) / (ref.sumsq + 1e-12)).toBeLessThan(tol * 10);
  s.head.forEach((v, i) => expect(Math.abs(v - ref.head[i])).toBeLessThan(tol * (Math.abs(ref.head[i]) + 1e-3)));
}

/**
 * The comparisons with PyTorch, against the reference `load` gives (read before the first test), each
 * tolerance multiplied by `slack`.
 */
function againstPyTorch(load: () => any, slack: number): void {
  let ref: any;
  const close = (ours: Tensor, r: Json, tol = 1e-5) => expectClose(ours, r, tol * slack);
  const summary = (ours: Tensor, r: Summary, tol = 1e-5) => expectSummary(ours, r, tol * slack);
  beforeAll(() => {
    ref = load();
  });
  test('ResNet-18: names, eval and train forward, BatchNorm statistics, gradients', () => {
    const r = new ResNet(18);
    const state = r.stateDict();
    expect([...state.keys()]).toEqual(ref.resnet18.state_dict_keys);
    fill(state);
    const x = inputTensor([2, 3, 64, 64]);
    const evalOut = noGrad(() => r.forward(x, { train: false }));
    close(evalOut, ref.resnet18.eval);
    // the fast path (BatchNorm folded, channels-last) equals the plain path
    r.prepareFast();
    const fast = noGrad(() => r.forward(x, { train: false, fast: true }));
    expect(maxRelErr(fast, evalOut, 1e-3)).toBeLessThan(1e-4);
    // train mode: batch statistics, running-average updates, gradients
    r.requiresGrad(true);
    const xg = x.clone();
    xg.requiresGrad = true;
    const trainOut = r.forward(xg, { train: true });
    close(trainOut, ref.resnet18.train);
    trainOut.mul(trainOut).sum().backward();
    const now = r.stateDict();
    close(now.get('bn1.running_mean')!, ref.resnet18['bn1.running_mean']);
    close(now.get('layer4.1.bn2.running_var')!, ref.resnet18['layer4.1.bn2.running_var']);
    expect(now.get('bn1.num_batches_tracked')!.item()).toBe(ref.resnet18['bn1.num_batches_tracked']);
    const params = r.namedParameters();
    summary(params.get('conv1.weight')!.grad!, ref.resnet18['grad.conv1.weight'], 1e-4);
    summary(params.get('layer4.1.conv2.weight')!.grad!, ref.resnet18['grad.layer4.1.conv2.weight'], 1e-4);
    summary(xg.grad!, ref.resnet18['grad.input'], 1e-4);
  });

  test('ResNet-50: bottleneck blocks with the stride on the 3x3 conv', () => {
    const r = new ResNet(50);
    expect([...r.stateDict().keys()]).toEqual(ref.resnet50.state_dict_keys);
    fill(r.stateDict());
    const out = noGrad(() => r.forward(inputTensor([1, 3, 64, 64], 1.0), { train: false }));
    summary(out, ref.resnet50.eval, 1e-4);
  });

  test('ResNet-152 with fc has torchvision\'s names', () => {
    expect([...new ResNet(152, { numClasses: 1000 }).stateDict().keys()]).toEqual(ref.resnet152_keys);
  });

  test('the book\'s encoder and decoder: names, logits, loss, gradients, Adam, sampling', () => {
    const c = ref.caption_step;
    const enc = new CaptionEncoder({ backbone: 18, embedSize: c.E });
    const dec = new CaptionDecoder({ vocabSize: c.V, embedSize: c.E, hiddenSize: c.H });
    expect([...enc.stateDict().keys()]).toEqual(c.encoder_keys);
    expect([...dec.stateDict().keys()]).toEqual(c.decoder_keys);
    fill(enc.stateDict());
    fill(dec.stateDict());
    const images = inputTensor([4, 3, 64, 64], 2.0);
    const captions = Tensor.from(c.captions, { dtype: 'int64' });
    const features = enc.forward(images, { train: true });
    close(features, c.features);
    const logits = dec.forward(features, captions, c.lengths, { train: true });
    close(logits, c.logits);
    const targets = packPaddedSequence(captions, c.lengths, { batchFirst: true }).data;
    expect(Array.from(targets.toTypedArray() as BigInt64Array, Number)).toEqual(c.targets);
    const loss = crossEntropy(logits, targets);
    expect(Math.abs(loss.item() - c.loss)).toBeLessThan(1e-5 * c.loss);
    const params = [...dec.parameters(), ...enc.trainableParameters()];
    expect(params.length).toBe(Object.keys(c.grads).length);
    loss.backward();
    close(enc.stateDict().get('batch_norm.running_mean')!, c['encoder.batch_norm.running_mean']);
    close(enc.stateDict().get('resnet_module.1.running_mean')!, c['encoder.resnet_module.1.running_mean']);
    for (const [name, p] of dec.namedParameters()) close(p.grad!, c.grads[name]);
    for (const [name, p] of enc.namedParameters()) if (p.requiresGrad) close(p.grad!, c.grads[`encoder.${name}`]);
    // the backbone stays frozen
    expect(enc.resnet.parameters().every((p) => p.grad === null)).toBe(true);

    const opt = new Adam(params, { lr: 0.001 });
    opt.step();
    opt.zeroGrad();
    const loss2 = crossEntropy(dec.forward(enc.forward(images, { train: true }), captions, c.lengths, { train: true }), targets);
    expect(Math.abs(loss2.item() - c.adam.loss2)).toBeLessThan(1e-5 * c.adam.loss2);
    loss2.backward();
    opt.step();
    for (const [name, p] of dec.namedParameters()) close(p, c.adam.after2[name]);
    const state = opt.state();
    const iLinear = [...dec.namedParameters().keys()].indexOf('linear_layer.weight');
    expect(state[iLinear]!.step).toBe(2);
    close(state[iLinear]!.expAvgSq, c.adam['exp_avg_sq.linear_layer.weight'], 1e-4);

    // greedy sampling as the book's sample(): 20 steps of argmax fed back
    const ids = noGrad(() => {
      const f = enc.forward(images, { train: false });
      let inputs = f;
      let state: Parameters<typeof dec.step>[1];
      const steps: Tensor[] = [];
      for (let i = 0; i < dec.maxSeqLen; i++) {
        const r = dec.step(inputs, state);
        state = r.state;
        const next = r.logits.argmax(1);
        steps.push(next);
        inputs = dec.embed(next);
      }
      return Tensor.stack(steps, 1);
    });
    expect(ids.toArray()).toEqual(c.sample);
  });
}

// The committed fixture was made with OpenBLAS's Haswell kernels, where torchcap gives its numbers
// bit for bit. OpenBLAS picks its kernels by CPU (or OPENBLAS_CORETYPE), and another set sums float32
// products in another order: measured against this fixture, up to 7.5e-5 relative (SkylakeX,
// Cooperlake, Sandybridge, Prescott) where the tolerance is 1e-5. So the fixture allows 20 times the
// live run's tolerances; the live run, on the same kernels as this process, keeps them as they are.
describe('against PyTorch (committed fixture)', () => againstPyTorch(() => JSON.parse(fs.readFileSync(FIXTURE, 'utf8')), 20));
describeIf(live, `${PYTHON} lacks torch/torchvision: compared with the committed fixture only`, 'against PyTorch (live run)', () => againstPyTorch(reference, 1));

test('async forward equals sync forward and inherits the grad mode it was called under', async () => {
  const enc = new CaptionEncoder({ backbone: 18, embedSize: 8, backboneMode: 'fast' });
  fill(enc.stateDict());
  await enc.prepareAsync();
  const x = inputTensor([2, 3, 64, 64]);
  const sync = noGrad(() => enc.forward(x, { train: false }));
  const asyncOut = await enc.forwardAsync(x, { train: false });
  expect(maxRelErr(asyncOut, sync)).toBeLessThan(1e-6);
  expect(asyncOut.requiresGrad).toBe(true); // the head's parameters are trainable and grad mode was on
  const features = await enc.featuresAsync(x, { train: false });
  expect(features.requiresGrad).toBe(false); // the frozen backbone never records a graph
  expect(memory().tensors).toBeGreaterThan(0);
});

test('forward without an explicit mode is refused', () => {
  const r = new ResNet(18);
  expect(() => r.forward(inputTensor([1, 3, 32, 32]), undefined as never)).toThrow(/explicit mode/);
  expect(() => r.forward(inputTensor([1, 4, 32, 32]), { train: false })).toThrow(/ResNet input must be \[N, 3, H, W\], got \[1, 4, 32, 32\]/);
});

describe('the fast path always runs the current weights (the module owns its fold)', () => {
  const x = inputTensor([2, 3, 32, 32]);
  // The largest difference relative to the largest value: both paths compute the same function
  // (the fold only reorders the arithmetic), while a stale fold is off by the weight change.
  const gap = (a: Tensor, b: Tensor): number => a.sub(b).abs().max().item() / b.abs().max().item();
  // Fast equals eval now, and eval moved since `before`: the fold followed a real change.
  function fastEqualsEval(r: ResNet, before?: Tensor): Tensor {
    const evalOut = noGrad(() => r.forward(x, { train: false }));
    const fast = noGrad(() => r.forward(x, { train: false, fast: true }));
    expect(gap(fast, evalOut)).toBeLessThan(1e-5);
    if (before) expect(gap(before, evalOut)).toBeGreaterThan(1e-3);
    return evalOut;
  }

  test('without prepareFast, the first fast forward folds; fastReady follows the weights', () => {
    const r = new ResNet(18);
    fill(r.stateDict());
    expect(r.fastReady).toBe(false);
    const first = fastEqualsEval(r);
    expect(r.fastReady).toBe(true);
    noGrad(() => r.stateDict().get('layer1.0.conv1.weight')!.mulInPlace(2));
    expect(r.fastReady).toBe(false);
    fastEqualsEval(r, first);
  });

  test('loadWeights after loadEncoder: fast features are the new weights, in sync and async calls', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torchcap-fold-'));
    const a = new CaptionEncoder({ backbone: 18, embedSize: 8 });
    const b = new CaptionEncoder({ backbone: 18, embedSize: 8 });
    fill(a.stateDict());
    fill(b.stateDict());
    noGrad(() => {
      for (const [name, t] of b.stateDict()) if (name.endsWith('conv2.weight') || name.endsWith('running_mean')) t.mulInPlace(-1.5);
    });
    await saveWeights(a, path.join(dir, 'a.ckpt'));
    await saveWeights(b, path.join(dir, 'b.ckpt'));
    const enc = await loadEncoder(path.join(dir, 'a.ckpt'), { backboneMode: 'fast' });
    await loadWeights(enc, path.join(dir, 'b.ckpt'));
    const fresh = await loadEncoder(path.join(dir, 'b.ckpt'), { backboneMode: 'eval' });
    const want = await fresh.featuresAsync(x, { train: false });
    const old = await loadEncoder(path.join(dir, 'a.ckpt'), { backboneMode: 'eval' });
    expect(gap(await old.featuresAsync(x, { train: false }), want)).toBeGreaterThan(1e-2);
    expect(gap(await enc.featuresAsync(x, { train: false }), want)).toBeLessThan(1e-5);
    expect(gap(noGrad(() => enc.features(x, { train: false })), want)).toBeLessThan(1e-5);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('an optimizer step and a train-mode forward (running statistics) make the fold stale', async () => {
    const r = new ResNet(18);
    fill(r.stateDict());
    r.prepareFast();
    const first = fastEqualsEval(r);
    r.requiresGrad(true);
    const opt = new Adam([...r.parameters()], { lr: 0.01 });
    const out = r.forward(x, { train: true }); // also updates every BatchNorm's running statistics
    out.mul(out).mean().backward();
    opt.step();
    const stepped = fastEqualsEval(r, first);
    noGrad(() => r.forward(x, { train: true })); // running statistics only
    fastEqualsEval(r, stepped);
    await r.prepareFastAsync();
    expect(r.fastReady).toBe(true);
  });
});

describe('every weight-changing path of the encoder: its fast features are those of the new weights', () => {
  const x = inputTensor([2, 3, 32, 32]);
  const gap = (a: Tensor, b: Tensor): number => a.sub(b).abs().max().item() / b.abs().max().item();
  /** An encoder whose weights differ from fill()'s in the backbone's convolutions and running means. */
  function other(opts: ConstructorParameters<typeof CaptionEncoder>[0] = {}): CaptionEncoder {
    const e = new CaptionEncoder({ backbone: 18, embedSize: 8, ...opts });
    fill(e.stateDict());
    noGrad(() => {
      for (const [name, t] of e.stateDict()) if (name.endsWith('conv2.weight') || name.endsWith('running_mean')) t.mulInPlace(-1.5);
    });
    return e;
  }
  /** A fast encoder with fill()'s weights whose fold is built (so that a stale one would show). */
  async function foldedFast(): Promise<CaptionEncoder> {
    const e = new CaptionEncoder({ backbone: 18, embedSize: 8, backboneMode: 'fast' });
    fill(e.stateDict());
    await e.prepareAsync();
    expect(e.prepared).toBe(true);
    return e;
  }
  /** The eval-mode features of `want`'s weights, and a check that `enc`'s fast ones equal them and not the old ones. */
  async function expectFeaturesOf(enc: CaptionEncoder, want: CaptionEncoder): Promise<void> {
    const evalFeatures = noGrad(() => want.resnet.forward(x, { train: false }));
    const old = noGrad(() => {
      const e = new CaptionEncoder({ backbone: 18, embedSize: 8 });
      fill(e.stateDict());
      return e.resnet.forward(x, { train: false });
    });
    expect(gap(old, evalFeatures)).toBeGreaterThan(1e-2);
    expect(gap(await enc.featuresAsync(x, { train: false }), evalFeatures)).toBeLessThan(1e-5);
    expect(gap(noGrad(() => enc.features(x, { train: false })), evalFeatures)).toBeLessThan(1e-5);
  }

  test('loadStateDict into encoder.stateDict()', async () => {
    const enc = await foldedFast();
    const b = other();
    loadStateDict(enc.stateDict(), b.stateDict(), { strict: true });
    expect(enc.prepared).toBe(false);
    await expectFeaturesOf(enc, b);
  });

  test('loadBackboneWeights (torchvision names)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torchcap-fold-'));
    const b = other();
    await saveTorchFile(path.join(dir, 'resnet18.pth'), b.resnet.stateDict());
    const enc = await foldedFast();
    await loadBackboneWeights(enc, path.join(dir, 'resnet18.pth'));
    await expectFeaturesOf(enc, b);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('restoreCheckpoint', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torchcap-fold-'));
    const b = other();
    const dec = new CaptionDecoder({ vocabSize: 12, embedSize: 8, hiddenSize: 16 });
    const set = await saveCheckpoint(dir, { encoder: b, decoder: dec, optimizer: new Adam(dec.parameters()) }, { epoch: 0, step: 0, globalStep: 1 });
    const enc = await foldedFast();
    const restoredDecoder = new CaptionDecoder({ vocabSize: 12, embedSize: 8, hiddenSize: 16 });
    await restoreCheckpoint(dir, set, { encoder: enc, decoder: restoredDecoder, optimizer: new Adam(restoredDecoder.parameters()) });
    await expectFeaturesOf(enc, b);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('optimizer steps on a fine-tuned backbone (layer4 trained): its fast path follows', async () => {
    const enc = new CaptionEncoder({ backbone: 18, embedSize: 8, fineTune: ['layer4'] });
    fill(enc.stateDict());
    await enc.resnet.prepareFastAsync();
    const fastBefore = noGrad(() => enc.resnet.forward(x, { train: false, fast: true }));
    const opt = new Adam(enc.trainableParameters(), { lr: 0.05 });
    expect(enc.trainableParameters().length).toBeGreaterThan(4); // layer4 and the head
    for (let i = 0; i < 2; i++) {
      const out = await enc.forwardAsync(x, { train: false }); // eval mode: only the optimizer changes the weights
      opt.zeroGrad();
      out.square().mean().backward();
      await opt.stepAsync();
    }
    expect(enc.resnet.fastReady).toBe(false);
    const evalAfter = noGrad(() => enc.resnet.forward(x, { train: false }));
    expect(gap(fastBefore, evalAfter)).toBeGreaterThan(1e-3);
    expect(gap(noGrad(() => enc.resnet.forward(x, { train: false, fast: true })), evalAfter)).toBeLessThan(1e-5);
    expect(gap(await enc.resnet.forwardAsync(x, { train: false, fast: true }), evalAfter)).toBeLessThan(1e-5);
  });
});

describe('packPaddedSequence validates lengths', () => {
  const x = Tensor.zeros([3, 5, 2]);
  test.each([
    [[5, 3], /lengths has 2 entries but the batch has 3/],
    [[5, 0, 1], /lengths\[1\] is 0: every sequence needs at least one step/],
    [[6, 3, 1], /lengths\[0\] is 6 but the sequences are only 5 steps long/],
    [[3, 5, 1], /decreasing order \(lengths\[0\] = 3 < lengths\[1\] = 5\)/],
    [[5, 2.5, 1], /Expected an integer for lengths\[1\]/],
  ])('%j', (lengths, msg) => {
    expect(() => packPaddedSequence(x, lengths as number[], { batchFirst: true })).toThrow(msg);
  });
  test('unsorted lengths work with enforceSorted: false and keep the permutation', () => {
    const p = packPaddedSequence(Tensor.arange(15, undefined, 1, { dtype: 'float32' }).reshape(3, 5), [2, 5, 3], { batchFirst: true, enforceSorted: false });
    expect(p.batchSizes.toArray()).toEqual([3, 3, 2, 1, 1]);
    expect(p.sortedIndices!.toArray()).toEqual([1, 2, 0]);
    expect(p.unsortedIndices!.toArray()).toEqual([2, 0, 1]);
    expect(p.data.toArray()).toEqual([5, 10, 0, 6, 11, 1, 7, 12, 8, 9]);
  });
});

test("Adam's hyperparameters are saved with the training checkpoint and restored", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torchcap-adam-'));
  const enc = new CaptionEncoder({ backbone: 18, embedSize: 8 });
  const dec = new CaptionDecoder({ vocabSize: 12, embedSize: 8, hiddenSize: 16 });
  const hp = { lr: 0.002, beta1: 0.8, beta2: 0.99, eps: 1e-6, weightDecay: 0.01 };
  const opt = new Adam(dec.parameters(), hp);
  expect(opt.hyperparameters).toEqual(hp);
  const set = await saveCheckpoint(dir, { encoder: enc, decoder: dec, optimizer: opt }, { epoch: 0, step: 0, globalStep: 1 });
  const fresh = new Adam(dec.parameters());
  expect(fresh.hyperparameters).toEqual({ lr: 0.001, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 });
  await restoreCheckpoint(dir, set, { encoder: enc, decoder: dec, optimizer: fresh });
  expect(fresh.hyperparameters).toEqual(hp);
  expect(() => (fresh.hyperparameters = { beta1: 1 })).toThrow(/betas must be in \[0, 1\)/);
  fs.rmSync(dir, { recursive: true, force: true });
});
