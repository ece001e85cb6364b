/**
 * The demo: the whole pipeline on bundled data, in a few minutes on a laptop CPU.
 *
 * 1. Generate a synthetic captioning set (scenes.ts): drawn scenes, COCO captions, a held-out split.
 * 2. Build the book's vocabulary from the training captions.
 * 3. Train the book's encoder and decoder with the demo's settings: a ResNet-18 backbone at 64 x 64,
 *    frozen with random weights (no pretrained weights can be downloaded here) and run once over
 *    the images (cached features), a smaller LSTM (64 -> 128), batch 128. The frozen random backbone is enough
 *    because the scenes' colours, shapes, sizes and positions survive in its pooled features.
 * 4. Caption the held-out scenes (greedy, as the book), score them with the COCO metrics, print
 *    `BLEU-4 <value>`, and write an HTML report with every held-out image and its caption.
 */
import * as path from 'path';
import { generateScenes } from './scenes';
import { writeReport } from './report';
import { Trainer } from '../train/trainer';
import { Captioner } from '../captioner';
import { readCaptions } from '../data/datasets';
import { evaluateCaptionsSync } from '../evaluate';

export interface DemoOptions {
  /** Folder for the data, checkpoints and report. */
  out: string;
  images?: number;
  heldOut?: number;
  epochs?: number;
  seed?: number;
  quiet?: boolean;
  log?: (line: string) => void;
}

export interface DemoResult {
  metrics: Record<string, number>;
  report: string;
  encoder: string;
  decoder: string;
  vocab: string;
  seconds: number;
}

export const DEMO_DEFAULTS = { images: 6000, heldOut: 200, epochs: 6, seed: 0, size: 64 };

export async function runDemo(opts: DemoOptions): Promise<DemoResult> {
  const log = opts.log ?? ((line: string) => process.stdout.write(line + '\n'));
  const o = { ...DEMO_DEFAULTS, ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) } as typeof DEMO_DEFAULTS & DemoOptions;
  const started = Date.now();
  const elapsed = () => `${((Date.now() - started) / 1000).toFixed(0)} s`;

  const data = await generateScenes({ outDir: path.join(o.out, 'data'), count: o.images, heldOut: o.heldOut, size: o.size, seed: o.seed });
  log(`generated ${data.counts.images} scenes (${data.counts.train} for training, ${data.counts.test} held out), ${data.counts.captions} captions [${elapsed()}]`);

  const models = path.join(o.out, 'models');
  const trainer = await Trainer.create({
    images: data.images,
    captions: data.train,
    out: models,
    epochs: o.epochs,
    batchSize: 128,
    lr: 0.006,
    logEvery: 50,
    saveEvery: 1_000_000,
    backbone: 18,
    backboneMode: 'eval',
    cacheFeatures: true,
    embedSize: 64,
    hiddenSize: 128,
    resize: o.size,
    crop: o.size,
    seed: o.seed,
    quiet: true,
  });
  log(`vocabulary: ${trainer.vocab.size} words; training ${o.epochs} epochs of ${trainer.samples.length} captions (ResNet-18 features cached, LSTM 64 -> 128)`);
  trainer.on('log', (line) => {
    if (!o.quiet) log(line);
  });
  trainer.on('epoch', (e) => log(`epoch ${e.epoch + 1}/${o.epochs}: mean loss ${e.meanLoss.toFixed(4)} (${e.seconds.toFixed(1)} s) [${elapsed()}]`));
  const summary = await trainer.run();
  const last = summary.checkpoints[summary.checkpoints.length - 1];

  const test = readCaptions(data.test, data.images);
  const captioner = await Captioner.load({ encoder: trainer.encoder, decoder: trainer.decoder, vocab: trainer.vocab, imageSize: o.size, batchSize: 100 });
  const paths = test.images.map((i) => test.imagePath(i.id));
  const captions = await captioner.caption(paths);
  const results = test.images.map((img, k) => ({ image_id: img.id, caption: captions[k] }));
  const scored = evaluateCaptionsSync(test.toCoco(), results);
  const metrics = scored.metrics as unknown as Record<string, number>;
  log(`held-out captions scored against their references [${elapsed()}]:`);
  for (const [k, v] of Object.entries(metrics)) log(`  ${k.padEnd(7)} ${v.toFixed(4)}`);

  const report = path.join(o.out, 'report.html');
  await writeReport({
    file: report,
    title: 'torchcap demo: held-out scenes and their captions',
    items: test.images.map((img, k) => ({ image: paths[k], caption: captions[k], references: test.captionsByImage.get(img.id) ?? [] })),
    metrics,
    notes: [
      `${data.counts.train} training scenes, ${o.epochs} epochs, ResNet-18 at ${o.size}x${o.size} (frozen, random weights, cached features), LSTM 64 -> 128, greedy decoding`,
      `trained in ${summary.seconds.toFixed(0)} s; final loss ${summary.lastLoss.toFixed(4)}`,
    ],
  });
  const seconds = (Date.now() - started) / 1000;
  return {
    metrics,
    report,
    encoder: path.join(models, last.encoder),
    decoder: path.join(models, last.decoder),
    vocab: path.join(models, 'vocab.json'),
    seconds,
  };
}
