// Saves checkpoint sets into DIR over and over (ResNet-18 encoder, a small decoder, Adam with
// state), printing `saved N` after each, until killed. Used to kill a process in the middle of a
// save. Usage: node test/support/save-loop.js DIR
const { manualSeed } = require('../../dist');
const { CaptionEncoder, CaptionDecoder } = require('../../dist/model');
const { Adam } = require('../../dist/nn/optim');
const { saveCheckpoint } = require('../../dist/model');

async function main() {
  const dir = process.argv[2];
  manualSeed(0);
  const encoder = new CaptionEncoder({ backbone: 18, embedSize: 16 });
  const decoder = new CaptionDecoder({ vocabSize: 30, embedSize: 16, hiddenSize: 32 });
  const optimizer = new Adam([...decoder.parameters(), ...encoder.trainableParameters()]);
  optimizer.params.map((p) => p.mul(p).sum()).reduce((a, b) => a.add(b)).backward();
  optimizer.step();
  for (let i = 0; ; i++) {
    await saveCheckpoint(dir, { encoder, decoder, optimizer }, { epoch: 0, step: i, globalStep: i + 1 });
    process.stdout.write(`saved ${i}\n`);
  }
}

main().catch((e) => {
  process.stderr.write(`${e.stack}\n`);
  process.exit(1);
});
