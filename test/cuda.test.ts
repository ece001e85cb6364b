/**
 * Devices. On a machine with CUDA (a CUDA libtorch and a GPU) the CUDA tests run: tensors, the
 * models, a training step and captioning on the GPU, with and without bf16 autocast, against the
 * same work on the CPU. Elsewhere they skip and say so; the device choice is tested everywhere.
 */
import { Tensor, versions, noGrad } from '../lib';
import { resolveDevice } from '../lib/core/device';
import { CaptionEncoder, CaptionDecoder } from '../lib/model';
import { crossEntropy } from '../lib/nn/functional';
import { packPaddedSequence } from '../lib/nn/rnn';
import { Adam } from '../lib/nn/optim';
import { Captioner } from '../lib/captioner';
import { writeTinyModels, removeTinyModels } from './support/tiny-captioner';
import { describeIf } from './support/skip';
import { fill, inputTensor, maxRelErr } from './support/deterministic';

const v = versions();
const why = !v.cudaBuild ? `this torchcap is built against a CPU-only libtorch (${v.libtorch})` : 'libtorch sees no CUDA device';

test('device options resolve, and CUDA is refused with the reason when it cannot be used', () => {
  expect(resolveDevice('cpu')).toBe('cpu');
  expect(resolveDevice('auto')).toBe(v.cuda ? 'cuda:0' : 'cpu');
  expect(() => resolveDevice('gpu')).toThrow(/device must be 'auto', 'cpu', 'cuda' or 'cuda:N', not "gpu"/);
  if (!v.cuda) {
    expect(() => resolveDevice('cuda')).toThrow(v.cudaBuild ? /sees no CUDA device/ : /built against a CPU-only libtorch/);
  } else {
    expect(resolveDevice('cuda')).toBe('cuda:0');
    expect(() => resolveDevice(`cuda:${v.cudaDevices}`)).toThrow(/only \d+ CUDA device/);
  }
});

describeIf(v.cuda, why, 'on CUDA', () => {
  test('tensors move to the GPU and back with the same values', () => {
    const a = Tensor.randn([64, 64]);
    const g = a.to('cuda');
    expect(g.device).toBe('cuda:0');
    expect(g.matmul(g).to('cpu').allclose(a.matmul(a), 1e-4, 1e-4)).toBe(true);
    expect(Tensor.zeros([3], { device: 'cuda' }).device).toBe('cuda:0');
  });

  test('the models give the CPU results on the GPU (inputs follow the model to its device)', async () => {
    const enc = new CaptionEncoder({ backbone: 18, embedSize: 16, backboneMode: 'fast' });
    const dec = new CaptionDecoder({ vocabSize: 40, embedSize: 16, hiddenSize: 32 });
    fill(enc.stateDict());
    fill(dec.stateDict());
    await enc.prepareAsync();
    const x = inputTensor([4, 3, 64, 64]);
    const captions = Tensor.from([[1, 5, 9, 2], [1, 8, 2, 0], [1, 3, 2, 0], [1, 2, 0, 0]], { dtype: 'int64' });
    const lengths = [4, 3, 3, 2];
    const cpu = noGrad(() => dec.forward(enc.forward(x, { train: false }), captions, lengths, { train: false }));
    enc.to('cuda');
    dec.to('cuda');
    expect(enc.device).toBe('cuda:0');
    const gpu = noGrad(() => dec.forward(enc.forward(x, { train: false }), captions, lengths, { train: false }));
    expect(gpu.device).toBe('cuda:0');
    expect(maxRelErr(gpu.to('cpu'), cpu, 1e-3)).toBeLessThan(1e-3);
    // bf16 autocast (an option of the encoder when it is built): features stay float32 and close to the float32 ones
    const amp = new CaptionEncoder({ backbone: 18, embedSize: 16, backboneMode: 'fast', device: 'cuda', autocast: 'bf16' });
    for (const [name, t] of amp.stateDict()) noGrad(() => t.copyFrom(enc.stateDict().get(name)!));
    const f16 = noGrad(() => amp.features(x, { train: false }));
    expect(f16.dtype).toBe('float32');
    expect(maxRelErr(f16.to('cpu'), noGrad(() => enc.features(x, { train: false })).to('cpu'), 1e-1)).toBeLessThan(0.1);
  });

  test('a training step on the GPU lowers the loss', async () => {
    const enc = new CaptionEncoder({ backbone: 18, embedSize: 16, backboneMode: 'eval', device: 'cuda' });
    const dec = new CaptionDecoder({ vocabSize: 40, embedSize: 16, hiddenSize: 32, device: 'cuda' });
    const opt = new Adam([...dec.parameters(), ...enc.trainableParameters()], { lr: 0.01 });
    const x = inputTensor([4, 3, 64, 64]);
    const captions = Tensor.from([[1, 5, 9, 2], [1, 8, 2, 0], [1, 3, 2, 0], [1, 2, 0, 0]], { dtype: 'int64' });
    const lengths = [4, 3, 3, 2];
    const targets = packPaddedSequence(captions, lengths, { batchFirst: true }).data.to('cuda');
    const losses: number[] = [];
    for (let i = 0; i < 20; i++) {
      const loss = crossEntropy(dec.forward(enc.forward(x, { train: true }), captions, lengths, { train: true }), targets);
      opt.zeroGrad();
      loss.backward();
      opt.step();
      losses.push(loss.item());
    }
    expect(losses[19]).toBeLessThan(losses[0]);
  });

  test('a Captioner on the GPU captions what it captions on the CPU; loaded there, its encoder is folded once, ready', async () => {
    const models = await writeTinyModels();
    const pixels = { data: new Uint8Array(64 * 64 * 3).fill(200), width: 64, height: 64 };
    const onCpu = await Captioner.load({ ...models, imageSize: 64 });
    const expected = await onCpu.caption(pixels);
    await onCpu.dispose();
    const onGpu = await Captioner.load({ ...models, imageSize: 64, device: 'cuda' });
    expect(onGpu.device).toBe('cuda:0');
    expect(onGpu.encoder.prepared).toBe(true); // built once, on the GPU, by loadEncoder; nothing moved afterwards
    expect(await onGpu.caption(pixels)).toBe(expected);
    expect(await onGpu.caption(pixels, { beam: 3 })).toEqual(expect.any(String));
    await onGpu.dispose();
    // a model passed in computes where it is: asking for another device is refused, with the reason
    const enc = new CaptionEncoder({ backbone: 18, embedSize: 32 });
    await expect(Captioner.load({ ...models, encoder: enc, device: 'cuda' })).rejects.toThrow(/computes on cpu, not cuda:0/);
    removeTinyModels(models);
  });
});
