/**
 * The demo: the whole pipeline on bundled data, in a few minutes on a laptop CPU.
 *
 * 1. Generate a synthetic captioning set (scenes.ts): drawn scenes, COCO captions, a held-out split
 *    of scenes drawn as the training ones ("seen") and scenes showing an object kind that no
 *    training scene shows ("unseen").
 * 2. Pretrain the backbone on the training scenes (pretrain.ts), the demo's stand-in for the book's
 *    ImageNet weights, which cannot be downloaded here. `backbone: 'random'` skips it and freezes a
 *    randomly initialised ResNet instead, as the demo used to (its captions then get most shapes
 *    wrong: see pretrain.ts).
 * 3. Train the book's encoder and decoder with the demo's settings: the pretrained ResNet-18 at
 *    64 x 64, frozen (eval mode) and run once over the images (cached features), a smaller LSTM
 *    (64 -> 256), batch 128.
 * 4. Caption the held-out scenes (greedy, as the book), score them with the COCO metrics and by what
 *    a person checks (exact captions, right attributes; scene-score.ts), compare with the targets,
 *    and write `summary.json` and an HTML report with every held-out image and its caption.
 */
import * as fs from 'fs';
import * as path from 'path';
import { generateScenes, readScenesFile, describeObjectKind } from './scenes';
import type { ObjectKind } from './scene-layout';
import { scoreSceneCaptions, ATTRIBUTES, type SceneScoreReport } from './scene-score';
import { pretrainBackbone, type PretrainResult } from './pretrain';
import { writeReport, type ReportSection } from './report';
import { Trainer } from '../train/trainer';
import { Captioner } from '../captioner';
import { readCaptions } from '../data/datasets';
import { evaluateCaptionsSync } from '../evaluate';
import { writeFileAtomic } from '../util/files';
import { checkChoice, checkInt, expected, positiveInt } from '../util/checks';
import { cpuBf16Support } from '../nn/resnet';

export type DemoBackbone = 'pretrained' | 'random';
export const PRETRAIN_PRECISIONS = ['auto', 'bf16', 'float32'] as const;
export type PretrainPrecision = (typeof PRETRAIN_PRECISIONS)[number];

export interface DemoOptions {
  /** Folder for the data, checkpoints, summary and report. */
  out: string;
  images?: number;
  heldOut?: number;
  /** Held-out scenes that show a withheld kind. */
  unseen?: number;
  epochs?: number;
  /** 'pretrained' (default): pretrain the ResNet on the training scenes first; 'random': freeze it as initialised. */
  backbone?: DemoBackbone;
  pretrainEpochs?: number;
  /** Mirror and recolour the scenes while pretraining (see pretrain.ts). Default true. */
  augment?: boolean;
  /**
   * Pretrain under CPU autocast in bfloat16: 'auto' (default) where the CPU has native bfloat16
   * (cpuBf16Support()), else float32; 'bf16' insists (refused where unsupported); 'float32' never.
   */
  pretrainPrecision?: PretrainPrecision;
  seed?: number;
  quiet?: boolean;
  log?: (line: string) => void;
}

/** A target the demo must reach, and whether it did. */
export interface DemoTarget {
  name: string;
  value: number;
  min: number;
  met: boolean;
}

/** What `summary.json` holds. */
export interface DemoSummary {
  demo: 'torchcap';
  /** Format of this file. */
  version: 1;
  settings: Record<string, unknown>;
  /** BLEU-1..4, ROUGE-L, CIDEr-D of the held-out captions (greedy). */
  metrics: Record<string, number>;
  /** Exact captions and attribute accuracy, over all held-out scenes, the seen and the unseen ones. */
  scenes: SceneScoreReport;
  targets: DemoTarget[];
  /** Whether every target was met. */
  met: boolean;
  /** The trained model and the report, relative to the folder of this file; `imageSize` for `serve --image-size`. */
  files: { encoder: string; decoder: string; vocab: string; report: string; imageSize: number };
  seconds: { total: number; data: number; pretrain: number; train: number; caption: number };
}

export interface DemoResult {
  summary: DemoSummary;
  summaryFile: string;
  report: string;
  encoder: string;
  decoder: string;
  vocab: string;
  /** Input size of the model (for `serve --image-size`). */
  imageSize: number;
  seconds: number;
}

export const DEMO_DEFAULTS = Object.freeze({
  images: 6000,
  heldOut: 200,
  epochs: 3,
  seed: 0,
  size: 64,
  backbone: 'pretrained' as DemoBackbone,
  pretrainEpochs: 6,
  augment: true,
  pretrainPrecision: 'auto' as PretrainPrecision,
});

/** The precision the pretraining runs in: bfloat16 where asked for (or 'auto' and supported), else float32. */
export function pretrainAutocast(precision: PretrainPrecision): 'bf16' | undefined {
  const { supported, reason } = cpuBf16Support();
  if (precision === 'bf16' && !supported) throw new Error(`pretraining in bf16 is not possible here: ${reason}`);
  return precision === 'float32' || !supported ? undefined : 'bf16';
}

/** The targets: BLEU-4 and exact captions over the held-out scenes, and exact captions of the unseen ones. */
export const DEMO_TARGETS = Object.freeze({ bleu4: 0.8, exact: 0.8, unseenExact: 0.5 });

function targets(metrics: Record<string, number>, scenes: SceneScoreReport): DemoTarget[] {
  const t = (name: string, value: number, min: number): DemoTarget => ({ name, value, min, met: value >= min });
  return [
    t('BLEU-4', metrics.Bleu_4, DEMO_TARGETS.bleu4),
    t('exact captions, held-out scenes', scenes.all.exact, DEMO_TARGETS.exact),
    t('exact captions, unseen combinations', scenes.unseen.exact, DEMO_TARGETS.unseenExact),
  ];
}

function scoreSections(scenes: SceneScoreReport, tgts: readonly DemoTarget[]): ReportSection[] {
  const groups = [['all held-out', scenes.all], ['seen', scenes.seen], ['unseen combinations', scenes.unseen]] as const;
  return [
    {
      title: 'What a person checks: exact captions, and attributes right (count per scene, the others per object)',
      table: {
        columns: ['scenes', 'number', 'exact', ...ATTRIBUTES],
        rows: groups.map(([name, s]) => [name, s.scenes, s.exact, ...ATTRIBUTES.map((a) => s.attributes[a])]),
      },
    },
    { title: 'Targets', table: { columns: ['target', 'value', 'at least', 'met'], rows: tgts.map((x) => [x.name, x.value, x.min, x.met ? 'yes' : 'NO']) } },
  ];
}

/**
 * The options with their defaults, every one checked before the demo starts (it runs for
 * minutes); `label` names an option in the errors (the `demo` command passes its flags' names).
 */
export function resolveDemoOptions(opts: DemoOptions, label: (option: keyof DemoOptions) => string = (o) => o): typeof DEMO_DEFAULTS & DemoOptions {
  const o = { ...DEMO_DEFAULTS, ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) } as typeof DEMO_DEFAULTS & DemoOptions;
  // At least one scene to train on and one held out to caption and score.
  const images = checkInt(o.images, label('images'), 2);
  const heldOut = checkInt(o.heldOut, label('heldOut'), 1, images - 1);
  if (o.unseen !== undefined) checkInt(o.unseen, label('unseen'), 0, heldOut);
  positiveInt(o.epochs, label('epochs'));
  positiveInt(o.pretrainEpochs, label('pretrainEpochs'));
  checkInt(o.seed, label('seed'), 0, 0xffffffff);
  checkChoice(o.backbone, label('backbone'), ['pretrained', 'random'] as const);
  if (typeof o.augment !== 'boolean') expected('a boolean', label('augment'), o.augment);
  checkChoice(o.pretrainPrecision, label('pretrainPrecision'), PRETRAIN_PRECISIONS);
  return o;
}

export async function runDemo(opts: DemoOptions): Promise<DemoResult> {
  const log = opts.log ?? ((line: string) => process.stdout.write(line + '\n'));
  const o = resolveDemoOptions(opts);
  const autocast = o.backbone === 'pretrained' ? pretrainAutocast(o.pretrainPrecision) : undefined;
  const started = Date.now();
  const seconds = { total: 0, data: 0, pretrain: 0, train: 0, caption: 0 };
  const elapsed = () => `${((Date.now() - started) / 1000).toFixed(0)} s`;

  // A summary left by an earlier run must not stand for this one if it fails.
  const summaryFile = path.join(o.out, 'summary.json');
  await fs.promises.rm(summaryFile, { force: true });

  const data = await generateScenes({ outDir: path.join(o.out, 'data'), count: o.images, heldOut: o.heldOut, unseen: o.unseen, size: o.size, seed: o.seed });
  const sidecar = await readScenesFile(data.scenes);
  const withheld = (sidecar.settings.withheld as Parameters<typeof describeObjectKind>[0][]).map(describeObjectKind);
  seconds.data = data.seconds;
  log(`generated ${data.counts.images} scenes (${data.counts.train} for training, ${data.counts.test} held out, ${data.counts.unseen} of them showing a kind no training scene shows: ${withheld.join(', ')}) [${elapsed()}]`);

  const models = path.join(o.out, 'models');
  let pretrained: PretrainResult | undefined;
  if (o.backbone === 'pretrained') {
    const t0 = Date.now();
    const scene = (s: (typeof sidecar.scenes)[number]) => ({ image: path.join(data.images, s.file_name), objects: s.objects });
    const heldOut = sidecar.scenes.filter((s) => s.split === 'test');
    pretrained = await pretrainBackbone({
      scenes: sidecar.scenes.filter((s) => s.split === 'train').map(scene),
      maxObjects: Math.max(...sidecar.scenes.map((s) => s.objects.length)),
      size: o.size,
      withheld: sidecar.settings.withheld as ObjectKind[],
      augment: o.augment,
      autocast,
      epochs: o.pretrainEpochs,
      probe: { seen: heldOut.filter((s) => !s.unseen).map(scene), unseen: heldOut.filter((s) => s.unseen).map(scene) },
      seed: o.seed,
      file: path.join(models, 'resnet18-scenes.pth'),
      log: (line) => log(`${line} [${elapsed()}]`),
    });
    seconds.pretrain = (Date.now() - t0) / 1000;
    const acc = Object.entries(pretrained.accuracy);
    log(`backbone pretrained: last epoch's training scenes named right: ${acc.map(([k, v]) => `${k} ${v.toFixed(3)}`).join(', ')}`);
    for (const [group, heads] of Object.entries(pretrained.probe)) {
      log(`  the classifier alone on the held-out ${group} scenes: ${Object.entries(heads).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(', ')}`);
    }
  }

  const t1 = Date.now();
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
    pretrained: pretrained?.file,
    cacheFeatures: true,
    embedSize: 64,
    hiddenSize: 256,
    resize: o.size,
    crop: o.size,
    seed: o.seed,
    quiet: true,
  });
  const backboneWords = pretrained ? 'pretrained on the training scenes' : 'random weights';
  log(`vocabulary: ${trainer.vocab.size} words; training ${o.epochs} epochs of ${trainer.samples.length} captions (ResNet-18 ${backboneWords}, frozen, features cached; LSTM 64 -> 256)`);
  trainer.on('log', (line) => {
    if (!o.quiet) log(line);
  });
  trainer.on('epoch', (e) => log(`epoch ${e.epoch + 1}/${o.epochs}: mean loss ${e.meanLoss.toFixed(4)} (${e.seconds.toFixed(1)} s) [${elapsed()}]`));
  const trained = await trainer.run();
  const last = trained.checkpoints[trained.checkpoints.length - 1];
  seconds.train = (Date.now() - t1) / 1000;

  const t2 = Date.now();
  const test = readCaptions(data.test, data.images);
  const sceneById = new Map(sidecar.scenes.map((s) => [s.id, s]));
  const captioner = await Captioner.load({ encoder: trainer.encoder, decoder: trainer.decoder, vocab: trainer.vocab, imageSize: o.size, batchSize: 100 });
  const paths = test.images.map((i) => test.imagePath(i.id));
  const captions = await captioner.caption(paths);
  await captioner.dispose();
  const results = test.images.map((img, k) => ({ image_id: img.id, caption: captions[k] }));
  const metrics = evaluateCaptionsSync(test.toCoco(), results).metrics as unknown as Record<string, number>;
  const heldScenes = test.images.map((img) => sceneById.get(img.id as number)!);
  const scenes = scoreSceneCaptions(heldScenes, captions);
  const tgts = targets(metrics, scenes);
  seconds.caption = (Date.now() - t2) / 1000;

  log(`held-out captions scored against their references [${elapsed()}]:`);
  for (const [k, v] of Object.entries(metrics)) log(`  ${k.padEnd(7)} ${v.toFixed(4)}`);
  for (const [name, s] of [['all', scenes.all], ['seen', scenes.seen], ['unseen', scenes.unseen]] as const) {
    log(`  exact captions, ${name.padEnd(6)} ${s.exact.toFixed(4)} of ${s.scenes}; attributes right: ${ATTRIBUTES.map((a) => `${a} ${s.attributes[a].toFixed(3)}`).join(', ')}`);
  }
  for (const t of tgts) log(`target ${t.name} >= ${t.min}: ${t.value.toFixed(4)} ${t.met ? 'met' : 'MISSED'}`);

  seconds.total = (Date.now() - started) / 1000;
  const settings = {
    images: o.images,
    heldOut: data.counts.test,
    unseen: data.counts.unseen,
    withheld,
    size: o.size,
    backbone: `resnet18, ${backboneWords}`,
    pretrainEpochs: pretrained ? o.pretrainEpochs : 0,
    augment: pretrained ? o.augment : false,
    pretrainPrecision: pretrained ? (autocast ?? 'float32') : null,
    epochs: o.epochs,
    seed: o.seed,
  };
  const report = path.join(o.out, 'report.html');
  const encoder = path.join(models, last.encoder);
  const decoder = path.join(models, last.decoder);
  const vocab = path.join(models, 'vocab.json');
  const rel = (file: string): string => path.relative(o.out, file);
  const files = { encoder: rel(encoder), decoder: rel(decoder), vocab: rel(vocab), report: rel(report), imageSize: o.size };
  const summary: DemoSummary = { demo: 'torchcap', version: 1, settings, metrics, scenes, targets: tgts, met: tgts.every((t) => t.met), files, seconds };

  const pretrainNote = pretrained
    ? `backbone pretrained for ${o.pretrainEpochs} epochs on the training scenes${o.augment ? ' (mirrored and recoloured at random)' : ''}${autocast ? ' under bfloat16 autocast' : ''} (the book's ImageNet weights cannot be downloaded here) in ${seconds.pretrain.toFixed(0)} s, then frozen`
    : 'backbone frozen with random weights (no pretraining)';
  await writeReport({
    file: report,
    title: 'torchcap demo: held-out scenes and their captions',
    items: test.images.map((img, k) => {
      const s = heldScenes[k];
      const unseenKinds = s.objects.filter((x) => withheld.includes(describeObjectKind(x))).map(describeObjectKind);
      return {
        image: paths[k],
        caption: captions[k],
        references: test.captionsByImage.get(img.id) ?? [],
        label: `${path.basename(paths[k])}${s.unseen ? `, unseen: ${unseenKinds.join(', ')}` : ''}`,
      };
    }),
    metrics,
    sections: scoreSections(scenes, tgts),
    notes: [
      `${data.counts.train} training scenes; ${data.counts.test} held out, ${data.counts.unseen} of them unseen combinations (a kind no training scene shows: ${withheld.join(', ')})`,
      `ResNet-18 at ${o.size}x${o.size}: ${pretrainNote}; features cached; LSTM 64 -> 256; ${o.epochs} epochs; greedy decoding`,
      `captioner trained in ${trained.seconds.toFixed(0)} s; final loss ${trained.lastLoss.toFixed(4)}; whole demo ${seconds.total.toFixed(0)} s`,
    ],
  });
  // Written last: a summary.json says the whole run, report included, is done.
  await writeFileAtomic(summaryFile, `${JSON.stringify(summary, null, 2)}\n`);
  return {
    summary,
    summaryFile,
    report,
    encoder,
    decoder,
    vocab,
    imageSize: o.size,
    seconds: seconds.total,
  };
}
