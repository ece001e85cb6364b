/**
 * The addon in worker threads: four workers load torchcap and caption at the same time as the main
 * thread, each with its own environment state; workers terminated in the middle of a caption.
 * The workers run the compiled library (dist/, built by `npm test`'s pretest step).
 */
import * as fs from 'fs';
import * as path from 'path';
import { Worker } from 'worker_threads';
import { spawnSync } from 'child_process';
import { Captioner } from '../lib/captioner';
import { writeTinyModels, removeTinyModels, noiseImage, type TinyModels } from './support/tiny-captioner';

const WORKER = path.join(__dirname, 'scripts', 'caption-worker.js');
const DIST = path.join(__dirname, '..', 'dist', 'captioner.js');
const SIZE = 48;
const MAX_LEN = 6;

interface WorkerResult {
  threadId: number;
  captions?: string[];
  batch?: string[];
  memory?: { tensors: number; bytes: number };
  error?: string;
}

let models: TinyModels;
let image: Buffer;

beforeAll(async () => {
  if (!fs.existsSync(DIST)) throw new Error(`${DIST} is missing: build the library first (npx tsc -p .)`);
  models = await writeTinyModels();
  image = await noiseImage(64, 48, 7);
});

afterAll(() => removeTinyModels(models));

function startWorker(count: number): { worker: Worker; result: Promise<WorkerResult>; exit: Promise<number> } {
  const worker = new Worker(WORKER, {
    workerData: { models: { encoder: models.encoder, decoder: models.decoder, vocab: models.vocab }, image, imageSize: SIZE, maxLen: MAX_LEN, count },
  });
  const result = new Promise<WorkerResult>((resolve, reject) => {
    worker.on('message', (m: WorkerResult & { loaded?: boolean }) => !m.loaded && resolve(m));
    worker.on('error', reject);
  });
  const exit = new Promise<number>((resolve) => worker.on('exit', resolve));
  return { worker, result, exit };
}

test('four worker threads and the main thread load torchcap and caption at the same time', async () => {
  const main = await Captioner.load({ encoder: models.encoder, decoder: models.decoder, vocab: models.vocab, imageSize: SIZE, maxLen: MAX_LEN });
  const expected = await main.caption(image);
  const workers = Array.from({ length: 4 }, () => startWorker(5));
  // The main thread keeps captioning while the workers run.
  const mainCaptions: string[] = [];
  const mainLoop = (async () => {
    for (let i = 0; i < 5; i++) mainCaptions.push(await main.caption(image));
  })();
  const results = await Promise.all(workers.map((w) => w.result));
  await mainLoop;
  const codes = await Promise.all(workers.map((w) => w.exit));

  for (const r of results) expect(r.error).toBeUndefined();
  expect(new Set(results.map((r) => r.threadId)).size).toBe(4);
  for (const r of results) {
    expect(r.captions).toEqual(Array(5).fill(expected));
    expect(r.batch).toEqual([expected, expected]);
    expect(r.memory!.tensors).toBeGreaterThan(0); // each worker counts its own tensors
  }
  expect(mainCaptions).toEqual(Array(5).fill(expected));
  expect(codes).toEqual([0, 0, 0, 0]);
  // eslint-disable-next-line no-console
  console.log(`4 workers + main thread: ${results.map((r) => r.captions!.length + r.batch!.length).join(' + ')} + ${mainCaptions.length} captions, all equal: "${expected}"`);
  await main.dispose();
});

// A worker terminated while a caption's native work is queued or running must not take the process
// down (a job that settles while the worker's environment is torn down must not throw into
// node-addon-api). Run in a child process, so that a native abort shows as its exit status.
test(
  'workers terminated in the middle of captioning are cleaned up; torchcap keeps working',
  () => {
    const file = path.join(models.dir, 'image.png');
    fs.writeFileSync(file, image);
    const run = spawnSync(process.execPath, [path.join(__dirname, 'scripts', 'terminate-workers.js'), models.encoder, models.decoder, models.vocab, file, '6'], {
      encoding: 'utf8',
      timeout: 110000,
    });
    expect({ status: run.status, signal: run.signal, stderr: run.stderr.slice(-400) }).toEqual({ status: 0, signal: null, stderr: '' });
    const r = JSON.parse(run.stdout.trim());
    expect(r.terminated).toEqual([1, 1, 1, 1, 1, 1]);
    expect(r.freshExit).toBe(0);
    expect(r.fresh).toEqual([r.main]);
  },
  120000,
);
