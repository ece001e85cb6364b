'use strict';
// GPU throughput of the book's models (run on a CUDA machine; see scripts/gpu-check.sh): training
// steps (ResNet-152 at 224, batch 32, book mode and the frozen fast path) and captioning (batch 64),
// each in float32 and with bf16 autocast on the backbone. Prints images/s.
const { Tensor, versions, noGrad } = require('../dist');
const { CaptionEncoder, CaptionDecoder } = require('../dist/model');
const { crossEntropy } = require('../dist/nn/functional');
const { packPaddedSequence } = require('../dist/nn/rnn');
const { Adam } = require('../dist/nn/optim');
const { greedy } = require('../dist/sample');

const v = versions();
if (!v.cuda) {
  console.log(`SKIP GPU benchmark: no CUDA (${v.cudaBuild ? 'no device visible' : 'CPU-only libtorch'})`);
  process.exit(0);
}
const device = 'cuda';
const V = 9948; // the book's vocabulary size

function sync(t) {
  return t.to('cpu').sum().item(); // waits for the GPU
}

async function trainSteps(mode, autocast, batch, steps) {
  const enc = new CaptionEncoder({ backbone: 152, backboneMode: mode, autocast }).to(device);
  const dec = new CaptionDecoder({ vocabSize: V }).to(device);
  const opt = new Adam([...dec.parameters(), ...enc.trainableParameters()]);
  const x = Tensor.randn([batch, 3, 224, 224], { device });
  const T = 16;
  const captions = Tensor.randint(0, V, [batch, T]);
  const lengths = Array.from({ length: batch }, (_, i) => T - Math.floor((i * 8) / batch));
  const targets = packPaddedSequence(captions, lengths, { batchFirst: true }).data.to(device);
  const step = () => {
    const loss = crossEntropy(dec.forward(enc.forward(x, { train: true }), captions, lengths, { train: true }), targets);
    opt.zeroGrad();
    loss.backward();
    opt.step();
    return loss;
  };
  sync(step());
  const t = Date.now();
  let loss;
  for (let i = 0; i < steps; i++) loss = step();
  sync(loss);
  return (batch * steps) / ((Date.now() - t) / 1000);
}

async function caption(autocast, batch, reps) {
  const enc = new CaptionEncoder({ backbone: 152, backboneMode: 'fast', autocast }).to(device);
  const dec = new CaptionDecoder({ vocabSize: V }).to(device);
  const x = Tensor.randn([batch, 3, 224, 224], { device });
  const run = async () => greedy(dec, noGrad(() => enc.forward(x, { train: false })));
  await run();
  const t = Date.now();
  for (let i = 0; i < reps; i++) await run();
  return (batch * reps) / ((Date.now() - t) / 1000);
}

(async () => {
  console.log(`GPU: libtorch ${v.libtorch}, ${v.cudaDevices} device(s)`);
  for (const [mode, autocast] of [['book', undefined], ['book', 'bf16'], ['fast', undefined], ['fast', 'bf16']]) {
    console.log(`train ResNet-152 224 batch 32, backbone ${mode}${autocast ? ' + bf16 autocast' : ''}: ${(await trainSteps(mode, autocast, 32, 10)).toFixed(0)} images/s`);
  }
  for (const autocast of [undefined, 'bf16']) {
    console.log(`caption ResNet-152 224 batch 64, greedy 20 steps${autocast ? ' + bf16 autocast' : ''}: ${(await caption(autocast, 64, 5)).toFixed(0)} images/s`);
  }
})();
