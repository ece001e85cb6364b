// A worker thread that loads torchcap (from dist/), captions an image `count` times and reports.
// workerData: { models: { encoder, decoder, vocab }, image: Uint8Array, imageSize, maxLen, count }
const { parentPort, workerData, threadId } = require('worker_threads');
const { Captioner } = require('../../dist/captioner');
const { memory } = require('../../dist/core/system');

(async () => {
  const { models, image, imageSize, maxLen, count } = workerData;
  const captioner = await Captioner.load({ ...models, imageSize, maxLen });
  parentPort.postMessage({ loaded: true, threadId });
  const captions = [];
  for (let i = 0; i < count; i++) captions.push(await captioner.caption(image));
  const batch = await captioner.caption([image, image]);
  await captioner.dispose();
  parentPort.postMessage({ threadId, captions, batch, memory: memory() });
})().catch((e) => parentPort.postMessage({ threadId, error: String((e && e.stack) || e) }));
