// One rank of a small data-parallel run on the 13 fixture COCO photos (test/fixtures/coco-photos),
// for the distributed tests.
// Usage: node test/scripts/dist-train.js RANK WORLD PORT OUT BATCH STEPS [syncbn]
// Writes OUT/rank<RANK>-of-<WORLD>.safetensors: the encoder's and decoder's state after training,
// the gradients of the last step (grad.*) and how sensitive Adam's steps were to them
// (adam_sensitivity.*, see below).
const path = require('path');
const { ProcessGroup } = require('../../dist/distributed');
const { Trainer } = require('../../dist/train');
const { saveSafetensors } = require('../../dist/serialization');
const { Vocabulary } = require('../../dist/vocabulary');
const { Tensor } = require('../../dist');

const [rank, world, port, batch, steps] = [2, 3, 4, 6, 7].map((i) => Number(process.argv[i]));
const out = process.argv[5];
const syncBn = process.argv[8] === 'syncbn';
const data = path.resolve(__dirname, '../fixtures/coco-photos');

(async () => {
  const group = world > 1 ? await ProcessGroup.init({ rank, worldSize: world, host: '127.0.0.1', port, timeoutMs: 20000, heartbeatMs: 500 }) : undefined;
  const captions = path.join(data, 'captions.json');
  const trainer = await Trainer.create({
    images: path.join(data, 'images'),
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
  // How sensitive each weight's Adam steps were to its gradient: the sum over steps of
  // 1 / (sqrt(v_hat) + eps), with v_hat Adam's bias-corrected second moment after that step.
  const { beta2, eps } = trainer.optimizer.hyperparameters;
  const sensitivity = [];
  trainer.on('step', () => {
    trainer.optimizer.state().forEach((s, i) => {
      if (!s) return;
      const v = s.expAvgSq.toTypedArray();
      const correction = 1 - beta2 ** s.step;
      const acc = (sensitivity[i] ??= new Float64Array(v.length));
      for (let j = 0; j < v.length; j++) acc[j] += 1 / (Math.sqrt(v[j] / correction) + eps);
    });
  });
  await trainer.run();
  const state = new Map();
  for (const [k, v] of trainer.encoder.stateDict()) state.set(`encoder.${k}`, v);
  for (const [k, v] of trainer.decoder.stateDict()) state.set(`decoder.${k}`, v);
  // the gradients of the last step (all-reduced across ranks)
  for (const [k, v] of trainer.encoder.namedParameters()) if (v.grad) state.set(`grad.encoder.${k}`, v.grad);
  for (const [k, v] of trainer.decoder.namedParameters()) if (v.grad) state.set(`grad.decoder.${k}`, v.grad);
  // the optimizer's parameters in its order: the decoder's, then the encoder's trainable ones
  const named = [...[...trainer.decoder.namedParameters()].map(([k, v]) => [`decoder.${k}`, v]), ...[...trainer.encoder.namedParameters()].filter(([, v]) => v.requiresGrad).map(([k, v]) => [`encoder.${k}`, v])];
  sensitivity.forEach((acc, i) => state.set(`adam_sensitivity.${named[i][0]}`, Tensor.from(acc).reshape(named[i][1].shape)));
  await saveSafetensors(path.join(out, `rank${rank}-of-${world}.safetensors`), state);
  group?.destroy();
})().catch((e) => {
  process.stderr.write(`rank ${rank}: ${e.name}: ${e.message}\n`);
  process.exit(1);
});
