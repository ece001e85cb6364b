/**
 * Checkpoints across the language border: torchcap's files opened by Python's torch.load and
 * loaded into the book's own CNNModel/LSTMModel (same logits, same next Adam step), the book's
 * `torch.save(model.state_dict())` files and vocabulary.pkl loaded by torchcap (shapes inferred,
 * same features and greedy ids as the book's `sample`), strict loading errors, and a process
 * killed in the middle of saving.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn } from 'child_process';
import { Tensor, manualSeed, noGrad } from '../lib/core/tensor';
import { CaptionEncoder, CaptionDecoder, torchvisionToBookKey } from '../lib/model';
import { ResNet } from '../lib/nn/resnet';
import { Adam } from '../lib/nn/optim';
import { crossEntropy } from '../lib/nn/functional';
import { packPaddedSequence } from '../lib/nn/rnn';
import { Linear, Embedding } from '../lib/nn/layers';
import { greedy, cutAtEnd } from '../lib/sample';
import { Captioner, loadVocabulary } from '../lib/captioner';
import {
  saveCheckpoint,
  restoreCheckpoint,
  latestCheckpoint,
  loadEncoder,
  loadDecoder,
  loadWeights,
  saveWeights,
  inferEncoderOptions,
  inferDecoderOptions,
  removeTemporaries,
  loadBackboneWeights,
  LATEST,
  type CheckpointSet,
} from '../lib/model/checkpoint';
import { saveTorchFile, readStateDict, readTorchFile } from '../lib/serialization';
import { inputTensor } from './support/deterministic';
import { PYTHON, pythonHas, runPython } from './support/python';
import { withBookModels } from './support/book-python';
import { describeIf, testIf } from './support/skip';
import { rejected } from './support/errors';
import { fixturePhotos } from './support/data';
import { cliBuilt, NO_CLI } from './support/cli';

const live = pythonHas('torch', 'torchvision');
const NO_TORCH = `${PYTHON} lacks torch/torchvision`;
const FIXTURES = path.join(__dirname, '../scripts/fixtures');
const DIST = path.join(__dirname, '../dist');
const PHOTO = fixturePhotos[0];

const CAPTIONS = [
  [1, 5, 9, 12, 7, 3, 2],
  [1, 8, 6, 29, 2, 0, 0],
];
const LENGTHS = [7, 5];

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torchcap-checkpoint-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function maxAbs(a: Tensor, b: number[][] | number[]): number {
  const ref = Tensor.from(b as number[][], { dtype: 'float64' });
  expect(a.shape).toEqual(ref.shape);
  return a.to('float64').sub(ref).abs().max().item();
}

/** The book's models in torchcap, after `steps` training steps (book mode: the frozen ResNet's BatchNorm statistics move). */
function trainedModels(steps: number) {
  manualSeed(0);
  const encoder = new CaptionEncoder({ backbone: 18, embedSize: 16 });
  const decoder = new CaptionDecoder({ vocabSize: 30, embedSize: 16, hiddenSize: 32 });
  const optimizer = new Adam([...decoder.parameters(), ...encoder.trainableParameters()], { lr: 0.001 });
  const images = inputTensor([2, 3, 64, 64], 2.0);
  const captions = Tensor.from(CAPTIONS, { dtype: 'int64' });
  const step = () => {
    const features = encoder.forward(images, { train: true });
    const logits = decoder.forward(features, captions, LENGTHS, { train: true });
    const loss = crossEntropy(logits, packPaddedSequence(captions, LENGTHS, { batchFirst: true }).data);
    optimizer.zeroGrad();
    loss.backward();
    optimizer.step();
    return loss.item();
  };
  for (let i = 0; i < steps; i++) step();
  return { encoder, decoder, optimizer, images, captions, step };
}

describeIf(live, NO_TORCH, "torchcap's checkpoints in Python", () => {
  let py: any;
  let models: ReturnType<typeof trainedModels>;
  beforeAll(async () => {
    models = trainedModels(2);
    await saveCheckpoint(path.join(tmp, 'ours'), models, { epoch: 0, step: 1, globalStep: 2 });
    const out = runPython(
      withBookModels(`
import sys, json
sys.path.insert(0, sys.argv[2])
from deterministic import input_tensor
d = sys.argv[1]
enc_sd = torch.load(f'{d}/encoder-1-2.ckpt')
dec_sd = torch.load(f'{d}/decoder-1-2.ckpt')
state = torch.load(f'{d}/training-1-2.ckpt')
enc, dec = CNNModel(16, 18), LSTMModel(16, 32, 30, 1)
info = {
  'types': [type(enc_sd).__name__, type(dec_sd).__name__],
  'all_tensors': all(torch.is_tensor(v) for v in list(enc_sd.values()) + list(dec_sd.values())),
  'enc_keys': list(enc_sd.keys()) == list(enc.state_dict().keys()),
  'dec_keys': list(dec_sd.keys()) == list(dec.state_dict().keys()),
  'num_batches_tracked': int(enc_sd['resnet_module.1.num_batches_tracked']),
}
enc.load_state_dict(enc_sd, strict=True)
dec.load_state_dict(dec_sd, strict=True)
images = input_tensor([2, 3, 64, 64], 2.0)
caps = torch.tensor(${JSON.stringify(CAPTIONS)})
lens = ${JSON.stringify(LENGTHS)}
enc.eval(); dec.eval()
with torch.no_grad():
    feats = enc(images)
    info['features'] = feats.tolist()
    info['logits'] = dec(feats, caps, lens).tolist()
# the optimizer, as the book builds it, takes torchcap's state and makes the next step
params = book_params(enc, dec)
opt = torch.optim.Adam(params, lr=0.001)
opt.load_state_dict(state['optimizer'])
info['training'] = {k: state[k] for k in ('format', 'epoch', 'step', 'global_step')}
info['state_shapes_match'] = all(opt.state[p]['exp_avg'].shape == p.shape and opt.state[p]['exp_avg_sq'].shape == p.shape for p in params)
info['steps'] = [float(opt.state[p]['step']) for p in params]
enc.train(); dec.train()
loss = nn.CrossEntropyLoss()(dec(enc(images), caps, lens), pack_padded_sequence(caps, lens, batch_first=True)[0])
opt.zero_grad()
loss.backward()
opt.step()
info['loss3'] = loss.item()
info['after3'] = {'decoder.linear_layer.weight': dec.linear_layer.weight.tolist(), 'encoder.linear_layer.weight': enc.linear_layer.weight.tolist(),
                  'encoder.batch_norm.bias': enc.batch_norm.bias.tolist()}
print(json.dumps(info))
`),
      [path.join(tmp, 'ours'), FIXTURES],
    );
    py = JSON.parse(out);
  });

  test('torch.load gives a dict of tensors with the book\'s names, which the book\'s models load strictly', () => {
    expect(py.types).toEqual(['OrderedDict', 'OrderedDict']);
    expect(py.all_tensors).toBe(true);
    expect(py.enc_keys).toBe(true);
    expect(py.dec_keys).toBe(true);
    expect(py.num_batches_tracked).toBe(2);
  });

  test("the book's LSTMModel gives torchcap's logits for the same inputs (1e-5), and CNNModel its features", () => {
    const { encoder, decoder, images, captions } = models;
    noGrad(() => {
      const features = encoder.forward(images, { train: false });
      expect(maxAbs(features, py.features)).toBeLessThan(1e-5);
      const logits = decoder.forward(features, captions, LENGTHS, { train: false });
      expect(logits.shape).toEqual([12, 30]);
      expect(maxAbs(logits, py.logits)).toBeLessThan(1e-5);
    });
  });

  test("the training state's optimizer part loads into torch.optim.Adam, and its next step equals torchcap's resumed step", async () => {
    expect(py.training).toEqual({ format: 'torchcap-training', epoch: 0, step: 1, global_step: 2 });
    expect(py.state_shapes_match).toBe(true);
    expect(py.steps).toEqual(new Array(11).fill(2));
    // torchcap resumes from the same files into fresh models and takes the third step
    const fresh = trainedModels(0);
    const set = latestCheckpoint(path.join(tmp, 'ours'))!;
    const { progress } = await restoreCheckpoint(path.join(tmp, 'ours'), set, fresh);
    expect(progress).toEqual({ epoch: 0, step: 1, globalStep: 2 });
    const loss3 = fresh.step();
    expect(Math.abs(loss3 - py.loss3)).toBeLessThan(1e-5);
    expect(maxAbs(fresh.decoder.stateDict().get('linear_layer.weight')!, py.after3['decoder.linear_layer.weight'])).toBeLessThan(1e-5);
    expect(maxAbs(fresh.encoder.stateDict().get('linear_layer.weight')!, py.after3['encoder.linear_layer.weight'])).toBeLessThan(1e-5);
    expect(maxAbs(fresh.encoder.stateDict().get('batch_norm.bias')!, py.after3['encoder.batch_norm.bias'])).toBeLessThan(1e-5);
  });
});

describeIf(live, NO_TORCH, "the book's own files in torchcap", () => {
  let py: { features: number[][]; ids: number[][]; words: string[] };
  const dir = () => path.join(tmp, 'book');
  beforeAll(() => {
    fs.mkdirSync(dir());
    const out = runPython(
      withBookModels(`
import sys, json, pickle
sys.path.insert(0, sys.argv[2])
from deterministic import input_tensor
d = sys.argv[1]
torch.manual_seed(0)
enc, dec = CNNModel(16, 18), LSTMModel(16, 32, 30, 2)
enc.train()
with torch.no_grad():
    enc(input_tensor([4, 3, 64, 64], 1.0))  # moves the BatchNorm statistics away from their defaults
enc.eval(); dec.eval()
torch.save(enc.state_dict(), f'{d}/encoder-2-3000.ckpt')
torch.save(dec.state_dict(), f'{d}/decoder-2-3000.ckpt')
vocab = Vocab()
words = ['<pad>', '<start>', '<end>', '<unk>'] + [f'word{i}' for i in range(26)]
for w in words:
    vocab.add_token(w)
with open(f'{d}/vocabulary.pkl', 'wb') as f:
    pickle.dump(vocab, f)
with torch.no_grad():
    feats = enc(input_tensor([2, 3, 64, 64], 2.0))
    ids = dec.sample(feats)
print(json.dumps({'features': feats.tolist(), 'ids': ids.tolist(), 'words': words}))
`),
      [dir(), FIXTURES],
    );
    py = JSON.parse(out);
  });

  test('loadEncoder/loadDecoder infer ResNet-18, the sizes and two LSTM layers; same features and greedy ids as the book\'s sample', async () => {
    const encoder = await loadEncoder(path.join(dir(), 'encoder-2-3000.ckpt'));
    const decoder = await loadDecoder(path.join(dir(), 'decoder-2-3000.ckpt'));
    expect(encoder.resnet.depth).toBe(18);
    expect(encoder.embedSize).toBe(16);
    expect([decoder.vocabSize, decoder.embedSize, decoder.hiddenSize, decoder.lstm.numLayers]).toEqual([30, 16, 32, 2]);
    const features = noGrad(() => encoder.forward(inputTensor([2, 3, 64, 64], 2.0), { train: false }));
    expect(maxAbs(features, py.features)).toBeLessThan(1e-5);
    expect(await greedy(decoder, features)).toEqual(py.ids.map(cutAtEnd));
    // the fast path (BatchNorm folded) the Captioner uses gives the same features
    const fast = await loadEncoder(path.join(dir(), 'encoder-2-3000.ckpt'), { backboneMode: 'fast' });
    expect(maxAbs(noGrad(() => fast.forward(inputTensor([2, 3, 64, 64], 2.0), { train: false })), py.features)).toBeLessThan(1e-4);
  });

  test('vocabulary.pkl is read; the Captioner captions a real photo from the book\'s files', async () => {
    const vocab = await loadVocabulary(path.join(dir(), 'vocabulary.pkl'));
    expect(vocab.words).toEqual(py.words);
    // told apart by content, not by name: the pickle under a .json name, torchcap's JSON under .pkl
    const renamed = path.join(dir(), 'vocabulary-pickle.json');
    fs.copyFileSync(path.join(dir(), 'vocabulary.pkl'), renamed);
    expect((await loadVocabulary(renamed)).words).toEqual(py.words);
    const json = path.join(dir(), 'vocab-json.pkl');
    fs.writeFileSync(json, JSON.stringify(vocab.toJSON()));
    expect((await loadVocabulary(json)).words).toEqual(py.words);
    const captioner = await Captioner.load({
      encoder: path.join(dir(), 'encoder-2-3000.ckpt'),
      decoder: path.join(dir(), 'decoder-2-3000.ckpt'),
      vocab: path.join(dir(), 'vocabulary.pkl'),
      backbone: 18,
    });
    const caption = await captioner.caption(PHOTO);
    expect(typeof caption).toBe('string');
    expect(caption).not.toMatch(/<start>|<end>|<pad>/);
    for (const w of caption.split(' ').filter(Boolean)) expect(py.words).toContain(w);
    await captioner.dispose();
  });

  testIf(cliBuilt, NO_CLI, 'the CLI captions with the book\'s files and vocabulary.pkl', async () => {
    const r = await run(process.execPath, [
      path.join(DIST, 'cli.js'),
      'caption',
      PHOTO,
      '--encoder',
      path.join(dir(), 'encoder-2-3000.ckpt'),
      '--decoder',
      path.join(dir(), 'decoder-2-3000.ckpt'),
      '--vocab',
      path.join(dir(), 'vocabulary.pkl'),
      '--backbone',
      'resnet18',
      '--json',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const line = JSON.parse(r.stdout.trim());
    expect(line.image).toBe(PHOTO);
    expect(typeof line.caption).toBe('string');
  });
});

describe('strict loading', () => {
  test('a wrong-shape file, a missing and an unexpected name are errors that name them', async () => {
    manualSeed(1);
    const small = new CaptionDecoder({ vocabSize: 30, embedSize: 16, hiddenSize: 32 });
    const file = path.join(tmp, 'decoder-h32.ckpt');
    await saveWeights(small, file);
    const other = new CaptionDecoder({ vocabSize: 30, embedSize: 16, hiddenSize: 24 });
    const e = await rejected(loadWeights(other, file));
    expect(e.name).toMatch(/CheckpointError|StateDictMismatch/);
    expect(e.message).toContain('decoder-h32.ckpt');
    expect(e.message).toMatch(/lstm_layer\.weight_hh_l0/);
    expect(e.message).toMatch(/32/);

    const state = await readStateDict(file);
    const missing = new Map(state);
    missing.delete('linear_layer.bias');
    missing.set('linear_layer.extra', Tensor.zeros([1]));
    await saveTorchFile(path.join(tmp, 'decoder-odd.ckpt'), missing);
    const e2 = await rejected(loadDecoder(path.join(tmp, 'decoder-odd.ckpt')));
    expect(e2.message).toMatch(/linear_layer\.bias/);
    expect(e2.message).toMatch(/linear_layer\.extra/);
  });

  test("the loaders' layers are built uninitialised: no random numbers drawn, the real shapes, and once loaded the same outputs and gradients", async () => {
    const draw = (build: () => void) => {
      manualSeed(11);
      build();
      return Tensor.randn([4]).toArray();
    };
    const untouched = draw(() => undefined);
    expect(draw(() => [new Linear(64, 300, { init: false }), new Embedding(300, 16, { init: false })])).toEqual(untouched);
    expect(draw(() => new Linear(64, 300))).not.toEqual(untouched); // the control: libtorch's initialisation draws
    const bare = new Linear(64, 300, { init: false });
    expect([...bare.stateDict()].map(([k, t]) => [k, t.shape])).toEqual([['weight', [300, 64]], ['bias', [300]]]);
    expect(new Embedding(300, 16, { init: false }).stateDict().get('weight')!.shape).toEqual([300, 16]);
    expect(() => new Linear(2, 2, { init: 'no' as never })).toThrow(/Expected a boolean for init but received the string "no"/);

    // the loader's decoder against the one it was saved from: same logits, same gradients
    manualSeed(12);
    const saved = new CaptionDecoder({ vocabSize: 30, embedSize: 16, hiddenSize: 32 });
    const file = path.join(tmp, 'decoder-uninit.ckpt');
    await saveWeights(saved, file);
    const loaded = await loadDecoder(file);
    const features = Tensor.randn([2, 16]);
    const captions = Tensor.from([[1, 5, 7], [1, 4, 0]], { dtype: 'int64' });
    const run = (d: CaptionDecoder) => {
      const logits = d.forward(features, captions, [3, 2], { train: true });
      crossEntropy(logits, Tensor.from([5, 4, 7, 0, 2], { dtype: 'int64' })).backward();
      return [logits.toArray(), d.linear.stateDict().get('weight')!.grad!.toArray(), d.embedding.stateDict().get('weight')!.grad!.toArray()];
    };
    expect(run(loaded)).toEqual(run(saved));
  });

  test('a decoder file given as encoder, and a backbone that does not match, are refused', async () => {
    const file = path.join(tmp, 'decoder-h32.ckpt');
    const e = await rejected(loadEncoder(file));
    expect(e.name).toBe('CheckpointError');
    expect(e.message).toMatch(/not an encoder checkpoint/);
    manualSeed(2);
    const enc = new CaptionEncoder({ backbone: 18, embedSize: 8 });
    const encFile = path.join(tmp, 'encoder-r18.ckpt');
    await saveWeights(enc, encFile);
    expect(inferEncoderOptions(await readStateDict(encFile))).toEqual({ backbone: 18, embedSize: 8 });
    const e2 = await rejected(loadEncoder(encFile, { backbone: 152 }));
    expect(e2.message).toMatch(/holds a ResNet-18 but --backbone says resnet152/);
    const e3 = await rejected(Captioner.load({ encoder: encFile, decoder: file, vocab: path.join(tmp, 'nope.json') }));
    expect(e3.message).toMatch(/nope\.json/);
  });
});

describe('restoreCheckpoint checks every file before it changes anything', () => {
  let dir = '';
  let set: CheckpointSet;
  let training: Map<string, unknown>;
  beforeAll(async () => {
    dir = path.join(tmp, 'restore');
    set = await saveCheckpoint(dir, trainedModels(1), { epoch: 0, step: 0, globalStep: 1 });
    training = (await readTorchFile(path.join(dir, set.training))) as Map<string, unknown>;
  });

  /** Fresh models, and what a restore must leave as it is when it fails. */
  function fresh(opts: { backbone?: 18 | 34; hiddenSize?: number } = {}) {
    manualSeed(5);
    const encoder = new CaptionEncoder({ backbone: opts.backbone ?? 18, embedSize: 16, init: opts.backbone !== 34 });
    const decoder = new CaptionDecoder({ vocabSize: 30, embedSize: 16, hiddenSize: opts.hiddenSize ?? 32 });
    const optimizer = new Adam([...decoder.parameters(), ...encoder.trainableParameters()], { lr: 0.001 });
    const snapshot = () => ({
      encoder: Array.from(encoder.linear.stateDict().get('weight')!.toTypedArray() as Float32Array),
      decoder: Array.from(decoder.linear.stateDict().get('weight')!.toTypedArray() as Float32Array),
      optimizer: optimizer.state().map((s) => s && s.step),
      lr: optimizer.hyperparameters.lr,
    });
    return { models: { encoder, decoder, optimizer }, snapshot, before: snapshot() };
  }

  /** The saved training state with `change` applied to a copy of it. */
  async function writeTraining(change: (t: Map<string, unknown>, opt: Map<string, unknown>, state: Map<number, Map<string, unknown>>) => void): Promise<void> {
    const opt = new Map(training.get('optimizer') as Map<string, unknown>);
    const state = new Map([...(opt.get('state') as Map<number, Map<string, unknown>>)].map(([k, v]) => [k, new Map(v)]));
    opt.set('state', state);
    opt.set('param_groups', [new Map((opt.get('param_groups') as Map<string, unknown>[])[0])]);
    const t = new Map(training);
    t.set('optimizer', opt);
    change(t, opt, state);
    await saveTorchFile(path.join(dir, set.training), t);
  }

  test.each<[string, (t: Map<string, unknown>, opt: Map<string, unknown>, state: Map<number, Map<string, unknown>>) => void, RegExp]>([
    ['no optimizer', (t) => t.delete('optimizer'), /: optimizer is missing$/],
    ['an optimizer that is a list', (t) => t.set('optimizer', [1, 2]), /: optimizer is list, not a dict \(Adam\.state_dict\(\)\)$/],
    ['a state that is a list', (_t, opt) => opt.set('state', []), /: optimizer\.state is list, not a dict$/],
    ['state[0] that is an int', (_t, _o, state) => state.set(0, 5 as unknown as Map<string, unknown>), /: optimizer\.state\[0\] is int, not a dict$/],
    ['state for a parameter the optimizer lacks', (_t, _o, state) => state.set(999, state.get(0)!), /: optimizer\.state holds state for parameter 999, but the optimizer has \d+ parameters/],
    ['exp_avg of another shape', (_t, _o, state) => state.get(0)!.set('exp_avg', Tensor.zeros([1])), /: optimizer\.state\[0\]\.exp_avg has shape \[1\] but parameter 0 has \[30, 16\]$/],
    ['a negative learning rate', (_t, opt) => (opt.get('param_groups') as Map<string, unknown>[])[0].set('lr', -1), /: has an optimizer lr of -1; it must be positive$/],
    ['no global_step', (t) => t.delete('global_step'), /: global_step is missing$/],
    ['extra that is not JSON', (t) => t.set('extra', '{not json'), /: extra is not valid JSON: /],
  ])('a training file with %s: a CheckpointError naming the file and the field; models and optimizer unchanged', async (_what, change, message) => {
    await writeTraining(change);
    const { models, snapshot, before } = fresh();
    const e = await rejected(restoreCheckpoint(dir, set, models));
    expect(e.name).toBe('CheckpointError');
    expect(e.message.startsWith(`${path.join(dir, set.training)}: `)).toBe(true);
    expect(e.message).toMatch(message);
    expect(snapshot()).toEqual(before);
  });

  test('a training file that is no PyTorch file at all leaves the models as they were', async () => {
    fs.writeFileSync(path.join(dir, set.training), 'garbage');
    const { models, snapshot, before } = fresh();
    const e = await rejected(restoreCheckpoint(dir, set, models));
    expect(e.message).toMatch(/training-1-1\.ckpt: not a PyTorch/);
    expect(snapshot()).toEqual(before);
  });

  test('steps saved as ints (PyTorch before 1.12) restore', async () => {
    await writeTraining((_t, _o, state) => {
      for (const s of state.values()) s.set('step', (s.get('step') as Tensor).item());
    });
    const { models, snapshot, before } = fresh();
    const r = await restoreCheckpoint(dir, set, models);
    expect(r.progress).toEqual({ epoch: 0, step: 0, globalStep: 1 });
    expect(snapshot().optimizer[0]).toBe(1);
    expect(snapshot().decoder).not.toEqual(before.decoder);
  });

  test('an encoder of another ResNet is refused naming both depths, a decoder of another size before the encoder changes', async () => {
    await writeTraining(() => undefined);
    const r34 = fresh({ backbone: 34 });
    const e = await rejected(restoreCheckpoint(dir, set, r34.models));
    expect(e.message).toBe(`${path.join(dir, set.encoder)}: holds a ResNet-18, but the encoder is a ResNet-34 (--backbone resnet34)`);
    expect(r34.snapshot()).toEqual(r34.before);
    await writeTraining((_t, _o, state) => state.clear()); // an optimizer state that fits any model
    const narrow = fresh({ hiddenSize: 24 });
    const e2 = await rejected(restoreCheckpoint(dir, set, narrow.models));
    expect(e2.message).toMatch(/decoder-1-1\.ckpt.*lstm_layer\.weight_hh_l0/s);
    expect(narrow.snapshot()).toEqual(narrow.before);
  });
});

describe("torchvision's ResNet weights for the backbone", () => {
  test('a file of another depth says which ResNet it holds and which the encoder is; one of the same depth loads', async () => {
    manualSeed(3);
    const file = path.join(tmp, 'resnet18.pth');
    const resnet = new ResNet(18);
    await saveTorchFile(file, resnet.stateDict());
    const e = await rejected(loadBackboneWeights(new CaptionEncoder({ backbone: 34, embedSize: 8, init: false }), file));
    expect(e.name).toBe('CheckpointError');
    expect(e.message).toBe(`${file}: holds a ResNet-18, but the encoder is a ResNet-34 (--backbone resnet34)`);
    const encoder = new CaptionEncoder({ backbone: 18, embedSize: 8, init: false });
    await loadBackboneWeights(encoder, file);
    const w = encoder.resnet.stateDict().get('conv1.weight')!;
    expect(w.sub(resnet.stateDict().get('conv1.weight')!).abs().max().item()).toBe(0);
  });
});

describe('shape inference from the book\'s names', () => {
  test('every ResNet depth and the decoder sizes are read off a state dict', () => {
    // the book's keys for each depth, with placeholder tensors: only names and a few shapes matter
    for (const depth of [18, 34, 50, 101, 152] as const) {
      const resnet = new ResNet(depth);
      const state = new Map<string, Tensor>();
      for (const key of resnet.stateDict().keys()) state.set(`resnet_module.${torchvisionToBookKey(key)}`, Tensor.zeros([1]));
      state.set('linear_layer.weight', Tensor.zeros([300, resnet.featureDim]));
      expect([depth, inferEncoderOptions(state)]).toEqual([depth, { backbone: depth, embedSize: 300 }]);
    }
    const dec = new Map<string, Tensor>([
      ['embedding_layer.weight', Tensor.zeros([9948, 256])],
      ['lstm_layer.weight_ih_l0', Tensor.zeros([2048, 256])],
      ['lstm_layer.weight_hh_l0', Tensor.zeros([2048, 512])],
      ['lstm_layer.weight_ih_l1', Tensor.zeros([2048, 512])],
    ]);
    expect(inferDecoderOptions(dec)).toEqual({ vocabSize: 9948, embedSize: 256, hiddenSize: 512, numLayers: 2 });
  });
});

function run(cmd: string, args: string[]): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

describeIf(fs.existsSync(path.join(DIST, 'model', 'checkpoint.js')), 'dist/ is not built (npx tsc -p .)', 'a process killed while saving', () => {
  test('leaves the previous complete set as the latest, which restores', async () => {
    let interrupted = 0;
    for (const delay of [30, 150, 300]) {
      const dir = fs.mkdtempSync(path.join(tmp, 'kill-'));
      const child = spawn(process.execPath, [path.join(__dirname, 'support/save-loop.js'), dir], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      await new Promise<void>((resolve, reject) => {
        child.on('error', reject);
        child.stdout.on('data', (d) => {
          out += d;
          if (/saved 0\n/.test(out)) resolve();
        });
        child.on('exit', () => reject(new Error(`save loop exited early: ${out}`)));
      });
      await new Promise((r) => setTimeout(r, delay));
      const exited = new Promise((r) => child.on('exit', r));
      child.kill('SIGKILL');
      await exited;
      const saved = [...out.matchAll(/saved (\d+)/g)].map((m) => Number(m[1]));
      const set = latestCheckpoint(dir)!;
      expect(set).not.toBeNull();
      // the index names a set the loop finished (the one it reported last, or one finished just before the kill)
      expect(set.progress.step).toBeGreaterThanOrEqual(saved[saved.length - 1]);
      const restored = await restoreCheckpoint(dir, set, trainedModels(0));
      expect(restored.progress).toEqual(set.progress);
      // a half-written file or a newer set not yet in the index: the kill came in the middle of a save
      const names = fs.readdirSync(dir);
      const newer = `encoder-1-${set.progress.step + 2}.ckpt`;
      const temporaries = names.filter((n) => n.endsWith('.tmp'));
      if (temporaries.length || names.includes(newer)) interrupted++;
      // what the next run removes before it starts: only the temporaries
      expect(removeTemporaries(dir).sort()).toEqual(temporaries.sort());
      expect(fs.readdirSync(dir).sort()).toEqual(names.filter((n) => !n.endsWith('.tmp')).sort());
      fs.rmSync(dir, { recursive: true, force: true });
    }
    expect(interrupted).toBeGreaterThan(0);
  });

  test('an index naming a missing file is an error, not a silent fallback', () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'idx-'));
    fs.writeFileSync(path.join(dir, LATEST), JSON.stringify({ encoder: 'encoder-1-5.ckpt', decoder: 'decoder-1-5.ckpt', training: 'training-1-5.ckpt', progress: { epoch: 0, step: 4, globalStep: 5 } }));
    expect(() => latestCheckpoint(dir)).toThrow(/encoder file encoder-1-5\.ckpt, which is missing/);
    expect(latestCheckpoint(path.join(tmp, 'no-such-dir'))).toBeNull();
  });
});
