// One rank of a small data-parallel run on the COCO mini set, for the distributed tests.
// Usage: node test/scripts/dist-train.js RANK WORLD PORT OUT BATCH STEPS [syncbn]
// Writes OUT/rank<RANK>-of-<WORLD>.safetensors: the encoder's and decoder's state after training and
// the gradients of the last step.
const path = require('path');
const { ProcessGroup } = require('../../dist/distributed');
const { Trainer } = require('../../dist/train');
const { saveSafetensors } = require('../../dist/serialization');
const { Vocabulary } = require('../../dist/vocabulary');

const [rank, world, port, batch, steps] = [2, 3, 4, 6, 7].map((i) => Number(process.argv[i]));
const out = process.argv[5];
const syncBn = process.argv[8] === 'syncbn';
const data = process.env.TORCHCAP_SHARED_DATA || path.resolve(__dirname, '../../../shared/data');

(async () => {
  const group = world > 1 ? await ProcessGroup.init({ rank, worldSize: world, host: '127.0.0.1', port, timeoutMs: 20000, heartbeatMs: 500 }) : undefined;
  const captions = path.join(data, 'coco-val2017-mini/captions.json');
  const trainer = await Trainer.create({
    images: path.join(data, 'coco-val2017-mini/images'),
    captions,
    vocab: Vocabulary.build(require(captions).annotations.map((a) => a.caption), { threshold: 1 }),
    out: path.join(out, `run-${world}`),
    epochs: Number(process.env.EPOCHS || 1),
    batchSize: batch,
    maxStepsPerEpoch: steps,
    backbone: 18,
    backboneMode: 'eval',
    embedSize: 32,
    hiddenSize: 48,
    resize: 72,
    crop: 64,
    logEvery: 1,
    saveEvery: 1000000,
    quiet: true,
    group,
    syncBn,
  });
  trainer.on('log', (l) => process.stdout.write(`rank ${rank}: ${l}\n`));
  await trainer.run();
  const state = new Map();
  for (const [k, v] of trainer.encoder.stateDict()) state.set(`encoder.${k}`, v);
  for (const [k, v] of trainer.decoder.stateDict()) state.set(`decoder.${k}`, v);
  // the gradients of the last step (all-reduced across ranks)
  for (const [k, v] of trainer.encoder.namedParameters()) if (v.grad) state.set(`grad.encoder.${k}`, v.grad);
  for (const [k, v] of trainer.decoder.namedParameters()) if (v.grad) state.set(`grad.decoder.${k}`, v.grad);
  await saveSafetensors(path.join(out, `rank${rank}-of-${world}.safetensors`), state);
  group?.destroy();
})().catch((e) => {
  process.stderr.write(`rank ${rank}: ${e.name}: ${e.message}\n`);
  process.exit(1);
});
