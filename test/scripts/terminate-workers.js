// Terminates worker threads in the middle of captioning, several times at different moments, then
// checks that a fresh worker and the main thread still caption. Prints one JSON line; a crash of
// the process (native teardown) shows as a non-zero exit status.
// Usage: node test/scripts/terminate-workers.js ENCODER DECODER VOCAB IMAGE.png [ROUNDS]
const fs = require('fs');
const path = require('path');
const { Worker } = require('worker_threads');
const { Captioner } = require('../../dist/captioner');

const [encoder, decoder, vocab, imageFile] = process.argv.slice(2, 6);
const rounds = Number(process.argv[6] || 6);
const models = { encoder, decoder, vocab };
const image = fs.readFileSync(imageFile);
const WORKER = path.join(__dirname, 'caption-worker.js');

function start(count) {
  const worker = new Worker(WORKER, { workerData: { models, image, imageSize: 48, maxLen: 6, count } });
  const loaded = new Promise((resolve) => worker.on('message', (m) => m.loaded && resolve()));
  const result = new Promise((resolve, reject) => {
    worker.on('message', (m) => !m.loaded && resolve(m));
    worker.on('error', reject);
  });
  const exit = new Promise((resolve) => worker.on('exit', resolve));
  return { worker, loaded, result, exit };
}

(async () => {
  const codes = [];
  for (let k = 0; k < rounds; k++) {
    const w = start(1e9);
    await w.loaded;
    await new Promise((r) => setTimeout(r, 150 + k * 73)); // captions are being computed now
    codes.push(await w.worker.terminate());
  }
  const fresh = start(1);
  const r = await fresh.result;
  const main = await Captioner.load({ ...models, imageSize: 48, maxLen: 6 });
  const caption = await main.caption(image);
  await main.dispose();
  process.stdout.write(JSON.stringify({ terminated: codes, fresh: r.captions, freshExit: await fresh.exit, main: caption }) + '\n');
})().catch((e) => {
  process.stderr.write(`${e.stack || e}\n`);
  process.exit(1);
});
