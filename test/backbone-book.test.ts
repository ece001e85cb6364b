/**
 * The book-mode backbone on oneDNN (ResNet.blockedTrain, the default where blockedTrainSupport()
 * says so: train-mode batch norm, frozen weights, no gradient, activations in oneDNN's blocked
 * layout): bit for bit the numbers of PyTorch's own kernels, following every weight change; and
 * ResNet construction without random initialisation for loaders.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Tensor, noGrad, manualSeed } from '../lib';
import { ResNet, blockedTrainSupport } from '../lib/nn/resnet';
import { CaptionEncoder, CaptionDecoder } from '../lib/model';
import { crossEntropy } from '../lib/nn/functional';
import { packPaddedSequence } from '../lib/nn/rnn';
import { Adam } from '../lib/nn/optim';
import { saveWeights } from '../lib/model';
import { readStateDict } from '../lib/serialization';
import { fill, inputTensor } from './support/deterministic';
import { pythonHas, PYTHON } from './support/python';
import { testIf, describeIf } from './support/skip';
import { execFileSync } from 'child_process';

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

const BLOCKED = blockedTrainSupport();
const NO_BLOCKED = `book mode cannot keep activations in oneDNN's layout here: ${BLOCKED.reason}`;

/** Every running statistic and batch count of two ResNets' state dicts, as [name, a, b]. */
function statistics(a: Map<string, Tensor>, b: Map<string, Tensor>): [string, Tensor, Tensor][] {
  return [...b.keys()].filter((k) => /(running_(mean|var)|num_batches_tracked)$/.test(k)).map((k) => [k, a.get(k)!, b.get(k)!]);
}

describeIf(BLOCKED.supported, NO_BLOCKED, 'the book-mode step on oneDNN is PyTorch kernels\' step, bit for bit', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torchcap-backbone-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('ResNet-18, batch 6, two steps: the losses, the features and every saved running statistic', async () => {
    manualSeed(1);
    const batches = [Tensor.randn([6, 3, 64, 64]), Tensor.randn([6, 3, 64, 64]).mul(0.5).add(0.2)];
    const blocked = bookModels(true);
    const pytorch = bookModels(false);
    for (const batch of batches) {
      const [a, b] = [blocked.step(batch), pytorch.step(batch)];
      expect(a.loss).toBe(b.loss);
      expect(maxAbs(a.features, b.features)).toBe(0);
    }
    await saveWeights(blocked.encoder, path.join(dir, 'onednn.ckpt'));
    await saveWeights(pytorch.encoder, path.join(dir, 'pytorch.ckpt'));
    const stats = statistics(await readStateDict(path.join(dir, 'onednn.ckpt')), await readStateDict(path.join(dir, 'pytorch.ckpt')));
    expect(stats.length).toBe(3 * 21); // ResNet-18's 20 batch norms and the encoder head's
    for (const [k, ours, theirs] of stats) expect([k, maxAbs(ours, theirs)]).toEqual([k, 0]);
    expect(stats.find(([k]) => k === 'resnet_module.1.num_batches_tracked')![1].item()).toBe(2);
  });

  test('ResNet-50 (bottlenecks, downsampling, odd sizes down to 3x3), batch 3, two forwards: features and statistics', () => {
    const x = [inputTensor([3, 3, 72, 72], 2.0), inputTensor([3, 3, 72, 72]).mul(0.5).add(0.1)];
    const model = (blocked: boolean) => {
      const r = new ResNet(50);
      fill(r.stateDict());
      r.requiresGrad(false);
      r.blockedTrain = blocked;
      return r;
    };
    const [a, b] = [model(true), model(false)];
    for (const input of x) expect(maxAbs(noGrad(() => a.forward(input, { train: true })), noGrad(() => b.forward(input, { train: true })))).toBe(0);
    const stats = statistics(a.stateDict(), b.stateDict());
    expect(stats.length).toBe(3 * 53); // ResNet-50's 53 batch norms
    for (const [k, ours, theirs] of stats) expect([k, maxAbs(ours, theirs)]).toEqual([k, 0]);
  });

  test('the activations stay in oneDNN\'s layout: a forward reorders the input and the output only (oneDNN\'s own log)', () => {
    // oneDNN logs every primitive it runs; activation reorders are the ones sized [3, C, H, W].
    const script = `
      const { Tensor, noGrad } = require(${JSON.stringify(path.resolve(__dirname, '../dist'))});
      const { ResNet } = require(${JSON.stringify(path.resolve(__dirname, '../dist/nn/resnet'))});
      const r = new ResNet(18);
      r.requiresGrad(false);
      r.blockedTrain = process.argv[1] === 'blocked';
      const x = Tensor.randn([3, 3, 64, 64]);
      noGrad(() => r.forward(x, { train: true }));
      console.log('TORCHCAP-MARK');
      noGrad(() => r.forward(x, { train: true }));`;
    const reorders = (mode: string): number => {
      const out = execFileSync(process.execPath, ['-e', script, mode], { env: { ...process.env, DNNL_VERBOSE: '1', ONEDNN_VERBOSE: '1' }, encoding: 'utf8' });
      const lines = out.slice(out.indexOf('TORCHCAP-MARK')).split('\n');
      expect(lines.some((l) => /,exec,cpu,convolution,/.test(l))).toBe(true);
      return lines.filter((l) => /,exec,cpu,reorder,/.test(l) && /,3x\d+x\d+x\d+,/.test(l)).length;
    };
    expect(reorders('blocked')).toBe(2);
    expect(reorders('pytorch')).toBeGreaterThanOrEqual(20); // around each of the 20 convolutions
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

test('blockedTrainSupport says whether book mode runs on oneDNN here, and TORCHCAP_ONEDNN_PREPACK=0 turns it off', () => {
  expect(typeof BLOCKED.supported).toBe('boolean');
  if (!BLOCKED.supported) expect(BLOCKED.reason.length).toBeGreaterThan(0);
  expect(new ResNet(18).blockedTrain).toBe(true);
  const script = `console.log(JSON.stringify(require(${JSON.stringify(path.resolve(__dirname, '../dist/nn/resnet'))}).blockedTrainSupport()))`;
  const off = JSON.parse(execFileSync(process.execPath, ['-e', script], { env: { ...process.env, TORCHCAP_ONEDNN_PREPACK: '0' }, encoding: 'utf8' }));
  expect(off.supported).toBe(false);
  if (BLOCKED.supported) expect(off.reason).toBe('turned off by TORCHCAP_ONEDNN_PREPACK=0');
});

describeIf(BLOCKED.supported, NO_BLOCKED, 'the oneDNN book-mode path always runs the current weights', () => {
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
    expect(gap(train(a), before)).toBe(0);
    // in place, as an optimizer step or a loader's copy does
    noGrad(() => {
      for (const r of [a, b]) r.stateDict().get('layer2.0.conv1.weight')!.mulInPlace(-2);
    });
    const changed = train(b);
    expect(gap(changed, before)).toBeGreaterThan(1e-2);
    expect(gap(train(a), changed)).toBe(0);
    // a whole state dict copied in, as loadWeights does
    const other = new ResNet(18);
    noGrad(() => {
      for (const r of [a, b]) for (const [k, t] of r.stateDict()) t.copyFrom(other.stateDict().get(k)!);
    });
    const loaded = train(b);
    expect(gap(loaded, changed)).toBeGreaterThan(1e-2);
    expect(gap(train(a), loaded)).toBe(0);
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
    expect(gap(train(a), stepped)).toBe(0);
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
    expect(() => new ResNet(18, { init: 'no' as never })).toThrow(/Expected a boolean for init but received the string "no"/);
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
