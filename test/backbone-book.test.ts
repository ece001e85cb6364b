/**
 * The book-mode backbone on oneDNN (ResNet.blockedTrain: train-mode batch norm, frozen weights, no
 * gradient, activations in oneDNN's blocked layout): the same numbers as PyTorch's own kernels, to
 * float32 rounding, following every weight change; and ResNet construction without random
 * initialisation for loaders.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Tensor, noGrad, manualSeed } from '../lib';
import { ResNet } from '../lib/nn/resnet';
import { CaptionEncoder, CaptionDecoder } from '../lib/model';
import { crossEntropy } from '../lib/nn/functional';
import { packPaddedSequence } from '../lib/nn/rnn';
import { Adam } from '../lib/nn/optim';
import { saveWeights } from '../lib/model';
import { readStateDict } from '../lib/serialization';
import { fill, inputTensor } from './support/deterministic';
import { pythonHas, PYTHON } from './support/python';
import { testIf } from './support/skip';
import { execFileSync } from 'child_process';

/** Largest |a - b| / (1e-5 |b| + 1e-6): at most 1 when a equals b to 1e-5 relative plus 1e-6 absolute. */
function toleranceRatio(a: Tensor, b: Tensor): number {
  const a64 = a.to('float64');
  const b64 = b.to('float64');
  return a64.sub(b64).abs().div(b64.abs().mul(1e-5).add(1e-6)).max().item();
}

const maxAbs = (a: Tensor, b: Tensor): number => a.to('float64').sub(b.to('float64')).abs().max().item();

const CAPTIONS = [
  [1, 5, 9, 12, 7, 3, 2],
  [1, 8, 6, 11, 2, 0, 0],
  [1, 4, 9, 2, 0, 0, 0],
  [1, 13, 7, 2, 0, 0, 0],
  [1, 6, 2, 0, 0, 0, 0],
  [1, 10, 2, 0, 0, 0, 0],
];
const LENGTHS = [7, 5, 4, 4, 3, 3];

/** The book's models, seeded (torchvision's initialisation), and its training step. */
function bookModels(blocked: boolean) {
  manualSeed(0);
  const encoder = new CaptionEncoder({ backbone: 18, embedSize: 16 });
  encoder.resnet.blockedTrain = blocked;
  const decoder = new CaptionDecoder({ vocabSize: 14, embedSize: 16, hiddenSize: 32 });
  const optimizer = new Adam([...decoder.parameters(), ...encoder.trainableParameters()], { lr: 0.001 });
  const captions = Tensor.from(CAPTIONS, { dtype: 'int64' });
  const targets = packPaddedSequence(captions, LENGTHS, { batchFirst: true }).data;
  const step = (images: Tensor) => {
    const features = encoder.forward(images, { train: true });
    const loss = crossEntropy(decoder.forward(features, captions, LENGTHS, { train: true }), targets);
    optimizer.zeroGrad();
    loss.backward();
    optimizer.step();
    return { loss: loss.item(), features };
  };
  return { encoder, decoder, step };
}

describe('the book-mode step on oneDNN equals PyTorch kernels\' step', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torchcap-backbone-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('loss (1e-5) and the saved encoder\'s running statistics (1e-5 relative + 1e-6), ResNet-18, batch 6', async () => {
    manualSeed(1);
    const batches = [Tensor.randn([6, 3, 64, 64]), Tensor.randn([6, 3, 64, 64]).mul(0.5).add(0.2)];
    const blocked = bookModels(true);
    const pytorch = bookModels(false);
    const first = [blocked.step(batches[0]), pytorch.step(batches[0])];
    expect(Math.abs(first[0].loss - first[1].loss)).toBeLessThan(1e-5 * first[1].loss);
    // Different kernels ran (oneDNN's batch norm rounds differently): the comparison is not void.
    expect(maxAbs(first[0].features, first[1].features)).toBeGreaterThan(0);
    blocked.step(batches[1]);
    pytorch.step(batches[1]);
    await saveWeights(blocked.encoder, path.join(dir, 'onednn.ckpt'));
    await saveWeights(pytorch.encoder, path.join(dir, 'pytorch.ckpt'));
    const ours = await readStateDict(path.join(dir, 'onednn.ckpt'));
    const theirs = await readStateDict(path.join(dir, 'pytorch.ckpt'));
    const stats = [...theirs.keys()].filter((k) => k.startsWith('resnet_module.') && /running_(mean|var)$/.test(k));
    expect(stats.length).toBe(2 * 20); // ResNet-18's 20 batch norms
    let worst = 0;
    for (const k of stats) worst = Math.max(worst, toleranceRatio(ours.get(k)!, theirs.get(k)!));
    expect(worst).toBeLessThan(1);
    for (const k of [...theirs.keys()].filter((n) => n.endsWith('num_batches_tracked'))) {
      expect(ours.get(k)!.item()).toBe(theirs.get(k)!.item());
    }
    expect(ours.get('resnet_module.1.num_batches_tracked')!.item()).toBe(2);
  });

  test('where float32 rounding grows a thousandfold (deterministic weights), it is as close to float64 as PyTorch\'s kernels are', () => {
    const x = inputTensor([4, 3, 64, 64], 2.0);
    const model = (blocked: boolean, dtype?: 'float64') => {
      const r = new ResNet(18);
      fill(r.stateDict());
      r.requiresGrad(false);
      r.blockedTrain = blocked;
      if (dtype) r.native.to(null, dtype);
      return r;
    };
    const exact = model(true, 'float64');
    const truth = noGrad(() => exact.forward(x.to('float64'), { train: true }));
    const oneDnn = model(true);
    const pytorch = model(false);
    const errOneDnn = maxAbs(noGrad(() => oneDnn.forward(x, { train: true })), truth);
    const errPytorch = maxAbs(noGrad(() => pytorch.forward(x, { train: true })), truth);
    expect(errPytorch).toBeGreaterThan(1e-4); // the amplification this test is about
    expect(errOneDnn).toBeLessThan(2 * errPytorch);
    const rs = (r: ResNet) => r.stateDict().get('layer4.1.bn2.running_var')!;
    expect(maxAbs(rs(oneDnn), rs(exact))).toBeLessThan(2 * maxAbs(rs(pytorch), rs(exact)) + 1e-6);
  });

  test('a batch norm that sees one value per channel is refused as PyTorch refuses it', () => {
    const x = Tensor.randn([1, 3, 32, 32]); // layer4 is 1x1
    for (const blocked of [true, false]) {
      const r = new ResNet(18);
      r.requiresGrad(false);
      r.blockedTrain = blocked;
      expect(() => noGrad(() => r.forward(x, { train: true }))).toThrow(/Expected more than 1 value per channel when training, got input size \[1, 512, 1, 1\]/);
    }
  });
});

describe('the oneDNN book-mode path always runs the current weights', () => {
  const x = inputTensor([2, 3, 64, 64]);
  const gap = (a: Tensor, b: Tensor): number => a.sub(b).abs().max().item() / b.abs().max().item();
  // Equal seeded models (torchvision's initialisation), one on oneDNN's blocked path, one on PyTorch's kernels.
  function twins() {
    manualSeed(3);
    const a = new ResNet(18);
    const b = new ResNet(18, { init: false });
    noGrad(() => {
      for (const [k, t] of b.stateDict()) t.copyFrom(a.stateDict().get(k)!);
    });
    for (const r of [a, b]) r.requiresGrad(false);
    a.blockedTrain = true;
    return { a, b };
  }
  const train = (r: ResNet) => noGrad(() => r.forward(x, { train: true }));

  test('after an in-place change, a load and an optimizer step, the next forward runs the new weights', () => {
    const { a, b } = twins();
    const before = train(b);
    expect(gap(train(a), before)).toBeLessThan(1e-4);
    // in place, as an optimizer step or a loader's copy does
    noGrad(() => {
      for (const r of [a, b]) r.stateDict().get('layer2.0.conv1.weight')!.mulInPlace(-2);
    });
    const changed = train(b);
    expect(gap(changed, before)).toBeGreaterThan(1e-2);
    expect(gap(train(a), changed)).toBeLessThan(1e-4);
    // a whole state dict copied in, as loadWeights does
    const other = new ResNet(18);
    noGrad(() => {
      for (const r of [a, b]) for (const [k, t] of r.stateDict()) t.copyFrom(other.stateDict().get(k)!);
    });
    const loaded = train(b);
    expect(gap(loaded, changed)).toBeGreaterThan(1e-2);
    expect(gap(train(a), loaded)).toBeLessThan(1e-4);
    // an optimizer step on a stage being fine-tuned, then frozen again
    for (const r of [a, b]) {
      r.native.setRequiresGrad(true, 'layer3.');
      const out = r.forward(x, { train: true });
      const opt = new Adam(r.parameters().filter((p) => p.requiresGrad), { lr: 0.05 });
      out.mul(out).mean().backward();
      opt.step();
      r.requiresGrad(false);
    }
    const stepped = train(b);
    expect(gap(stepped, loaded)).toBeGreaterThan(1e-2);
    expect(gap(train(a), stepped)).toBeLessThan(1e-4);
  });

  test('a book-mode forward moves the running statistics under the eval-mode fold: the fast path refolds', () => {
    const { a } = twins();
    a.prepareFast();
    const evalBefore = noGrad(() => a.forward(x, { train: false }));
    train(a);
    expect(a.fastReady).toBe(false);
    const evalAfter = noGrad(() => a.forward(x, { train: false }));
    expect(gap(evalAfter, evalBefore)).toBeGreaterThan(1e-3);
    expect(gap(noGrad(() => a.forward(x, { train: false, fast: true })), evalAfter)).toBeLessThan(1e-5);
  });

  test('blockedTrain must be a boolean', () => {
    expect(() => {
      new ResNet(18).blockedTrain = 1 as never;
    }).toThrow(/Expected a boolean for blockedTrain but received number 1/);
  });
});

describe('constructing a ResNet for a checkpoint', () => {
  test('init: false draws no random numbers, and loading gives the source model\'s outputs', () => {
    manualSeed(5);
    const direct = Tensor.randn([4]).toArray();
    manualSeed(5);
    const bare = new ResNet(18, { init: false });
    expect(Tensor.randn([4]).toArray()).toEqual(direct);
    const source = new ResNet(18);
    noGrad(() => {
      for (const [k, t] of bare.stateDict()) t.copyFrom(source.stateDict().get(k)!);
    });
    const x = inputTensor([2, 3, 32, 32]);
    expect(maxAbs(noGrad(() => bare.forward(x, { train: false })), noGrad(() => source.forward(x, { train: false })))).toBe(0);
    expect(() => new ResNet(18, { init: 'no' as never })).toThrow(/Expected a boolean for init but received string no/);
  });

  testIf(pythonHas('torch', 'torchvision'), '/usr/bin/python3 lacks torch/torchvision', 'a seeded ResNet-18 draws torchvision\'s initial weights exactly', () => {
    const keys = ['conv1.weight', 'layer1.0.bn1.weight', 'layer4.1.conv2.weight', 'fc.weight', 'fc.bias'];
    const py = JSON.parse(
      execFileSync(PYTHON, ['-c', `import torch, torchvision, json\ntorch.manual_seed(0)\nsd = torchvision.models.resnet18().state_dict()\nprint(json.dumps([sd[k].double().sum().item() for k in ${JSON.stringify(keys)}]))`], { encoding: 'utf8' }),
    );
    manualSeed(0);
    const sd = new ResNet(18, { numClasses: 1000 }).stateDict();
    keys.forEach((k, i) => expect(sd.get(k)!.to('float64').sum().item()).toBeCloseTo(py[i], 9));
  });
});
