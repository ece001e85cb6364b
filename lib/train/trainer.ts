/**
 * The book's training loop, in TypeScript over the native models.
 *
 * Each step (step.ts): encoder -> decoder over the packed captions -> cross-entropy -> backward ->
 * Adam (lr 0.001) on the decoder and the encoder's linear and batch-norm layers. Every `logEvery`
 * steps the book's line `Epoch [e/E], Step [i/N], Loss: …, Perplexity: …` (epoch and step 0-based,
 * as the book prints them); every `saveEvery` steps and at the end of each epoch a checkpoint with
 * the book's file names. Heavy work runs on native threads: the event loop stays free for the next
 * batch's decoding, progress output, or an app's UI.
 *
 * Also: a JSONL metrics file and a loss-curve SVG next to the checkpoints (metrics.ts), `resume`,
 * cached backbone features (features.ts), and periodic validation with the COCO metrics keeping the
 * best checkpoint by CIDEr-D (validation.ts).
 */
import { EventEmitter } from 'events';
import * as fs from 'fs';
import * as path from 'path';
import { manualSeed } from '../core/tensor';
import { resolveDevice } from '../core/device';
import { Adam } from '../nn/optim';
import { Vocabulary } from '../vocabulary';
import { readCaptions, CaptionLoader, DatasetError, type CaptionCorpus, type Sample } from '../data';
import type { EvaluationSet } from '../evaluate';
import { evaluateModel } from '../sample';
import {
  CaptionEncoder,
  CaptionDecoder,
  LATEST,
  saveCheckpoint,
  saveWeights,
  latestCheckpoint,
  restoreCheckpoint,
  loadBackboneWeights,
  removeTemporaries,
  type CheckpointSet,
  type TrainingPosition,
} from '../model';
import { createProgress, type ProgressBar } from '../util/progress';
import { writeFileAtomicSync } from '../util/files';
import { resolveTrainOptions, type ResolvedTrainOptions, type TrainOptions } from './options';
import { trainStep } from './step';
import { buildFeatureCache, cachedEpoch, cachedSamples, type FeatureCache } from './features';
import { validationSet } from './validation';
import { MetricsLog, formatLogLine } from './metrics';
import { writeLossCurve } from './loss-curve';

export interface StepEvent {
  epoch: number;
  step: number;
  stepsPerEpoch: number;
  globalStep: number;
  loss: number;
  perplexity: number;
  imagesPerSecond: number;
}

export interface EvalEvent {
  globalStep: number;
  metrics: Record<string, number>;
  best: boolean;
}

export interface TrainSummary {
  epochs: number;
  globalStep: number;
  /** Steps this run took (0 when a resumed run had finished already). */
  steps: number;
  lastLoss: number;
  /** Images that could not be read (each counted once, however many of its captions came up). */
  skipped: number;
  checkpoints: CheckpointSet[];
  best?: { globalStep: number; CIDEr: number };
  seconds: number;
}

export interface TrainerEvents {
  log: [line: string];
  step: [StepEvent];
  checkpoint: [CheckpointSet];
  skip: [{ image: string; reason: string }];
  eval: [EvalEvent];
  /** seconds: the whole epoch; trainSeconds: its training steps alone (no checkpoints or evaluation). */
  epoch: [{ epoch: number; meanLoss: number; seconds: number; trainSeconds: number }];
}

export class Trainer extends EventEmitter<TrainerEvents> {
  readonly opts: ResolvedTrainOptions;
  readonly vocab: Vocabulary;
  readonly corpus: CaptionCorpus;
  readonly samples: Sample[];
  readonly encoder: CaptionEncoder;
  readonly decoder: CaptionDecoder;
  readonly optimizer: Adam;
  readonly loader: CaptionLoader;
  /** Where the models compute. */
  readonly device: string;
  private progress: TrainingPosition = { epoch: 0, step: -1, globalStep: 0 };
  private cache: FeatureCache | null = null;
  private readonly skipped = new Set<string>();
  private best: { globalStep: number; CIDEr: number } | undefined;
  private readonly checkpoints: CheckpointSet[] = [];
  private validation: EvaluationSet | null = null;
  private readonly metrics: MetricsLog;
  /** Lines from before run() (resuming), printed when it starts. */
  private readonly notes: string[] = [];

  private constructor(opts: ResolvedTrainOptions, vocab: Vocabulary, corpus: CaptionCorpus) {
    super();
    this.opts = opts;
    this.vocab = vocab;
    this.corpus = corpus;
    this.metrics = new MetricsLog(path.join(opts.out, 'metrics.jsonl'));
    // One sample per caption, in the order of the annotations (the book's dataset indices).
    this.samples = corpus.annotations.map((a) => ({ image: corpus.imagePath(a.imageId), ids: vocab.encode(a.caption) }));
    manualSeed(opts.seed);
    this.device = resolveDevice(opts.device);
    this.encoder = new CaptionEncoder({
      backbone: opts.backbone,
      embedSize: opts.embedSize,
      backboneMode: opts.backboneMode,
      fineTune: opts.fineTune,
      device: this.device,
      autocast: opts.autocast,
    });
    this.decoder = new CaptionDecoder({
      vocabSize: vocab.size,
      embedSize: opts.embedSize,
      hiddenSize: opts.hiddenSize,
      numLayers: opts.numLayers,
      maxSeqLen: opts.maxSeqLen,
      device: this.device,
    });
    this.optimizer = new Adam([...this.decoder.parameters(), ...this.encoder.trainableParameters()], { lr: opts.lr });
    this.loader = new CaptionLoader(this.samples, {
      batchSize: opts.batchSize,
      seed: opts.seed,
      rank: this.rank,
      worldSize: this.worldSize,
      resize: opts.resize,
      crop: opts.crop,
      colorManaged: opts.colorManaged,
      prefetch: opts.prefetch,
      onSkip: (s, reason) => this.skip(s.image, reason),
    });
  }

  private get rank(): number {
    return this.opts.group?.rank ?? 0;
  }
  private get worldSize(): number {
    return this.opts.group?.size ?? 1;
  }

  /** Whether this process writes logs, metrics, pictures and checkpoints (rank 0, or the only process). */
  get isMain(): boolean {
    return this.rank === 0;
  }

  /** Reads the data, builds (or loads) the vocabulary and the models, and restores a checkpoint when resuming. */
  static async create(options: TrainOptions): Promise<Trainer> {
    const opts = resolveTrainOptions(options);
    const stat = fs.statSync(opts.images, { throwIfNoEntry: false });
    if (!stat) throw new DatasetError(`images folder not found: ${opts.images}`);
    if (!stat.isDirectory()) throw new DatasetError(`the images folder ${opts.images} is a file, not a folder`);
    const corpus = readCaptions(opts.captions, opts.images, { split: opts.split });
    let vocab: Vocabulary;
    if (opts.vocab instanceof Vocabulary) vocab = opts.vocab;
    else if (typeof opts.vocab === 'string') vocab = Vocabulary.load(opts.vocab);
    else vocab = Vocabulary.build(corpus.annotations.map((a) => a.caption), { threshold: opts.threshold });
    fs.mkdirSync(opts.out, { recursive: true });
    const t = new Trainer(opts, vocab, corpus);
    if (t.isMain && opts.vocab === undefined) vocab.save(path.join(opts.out, 'vocab.json'));
    if (opts.pretrained) await loadBackboneWeights(t.encoder, opts.pretrained);
    if (opts.resume) await t.resume();
    else if (t.isMain && fs.existsSync(path.join(opts.out, LATEST))) {
      // A fresh run: a later --resume must continue this run, never an older one found here.
      fs.rmSync(path.join(opts.out, LATEST), { force: true });
      t.notes.push(`Starting afresh in ${opts.out}: its older checkpoints stay, but --resume will continue this run`);
    }
    if (t.isMain) {
      removeTemporaries(opts.out);
      t.metrics.trim(t.progress.globalStep);
    }
    // Every rank starts from rank 0's weights (and BatchNorm statistics).
    if (opts.group) await opts.group.broadcastTensors([...t.encoder.stateDict().values(), ...t.decoder.stateDict().values()], 0);
    if (opts.valCaptions) t.validation = validationSet(opts.valCaptions, opts.valImages ?? opts.images, opts.valLimit);
    return t;
  }

  private async resume(): Promise<void> {
    const set = latestCheckpoint(this.opts.out);
    if (!set) {
      this.notes.push(`No checkpoint in ${this.opts.out}: starting from the beginning`);
      return;
    }
    const { progress, extra } = await restoreCheckpoint(this.opts.out, set, this);
    this.progress = progress;
    if (typeof extra.best === 'object' && extra.best) this.best = extra.best as { globalStep: number; CIDEr: number };
    this.notes.push(`Resumed from ${set.encoder}, ${set.decoder}, ${set.training} (epoch ${progress.epoch}, step ${progress.step})`);
  }

  /** The loader reports a bad image each time one of its captions comes up: count and report it once. */
  private skip(image: string, reason: string): void {
    if (this.skipped.has(image)) return;
    this.skipped.add(image);
    this.emit('skip', { image, reason });
  }

  private stepsPerEpoch(): number {
    // With cached features the samples of unreadable images are left out before batching.
    const n = this.cache ? Math.ceil(Math.ceil(cachedSamples(this.cache, this.samples).length / this.worldSize) / this.opts.batchSize) : this.loader.batchesPerEpoch();
    return this.opts.maxStepsPerEpoch ? Math.min(n, this.opts.maxStepsPerEpoch) : n;
  }

  private record(entry: Record<string, unknown>): void {
    if (this.isMain) this.metrics.record(entry);
  }

  private async checkpoint(epoch: number, step: number): Promise<void> {
    if (!this.isMain) return;
    const set = await saveCheckpoint(this.opts.out, this, { epoch, step, globalStep: this.progress.globalStep }, { best: this.best ?? null, vocabSize: this.vocab.size });
    this.checkpoints.push(set);
    writeLossCurve(this.metrics.file, path.join(this.opts.out, 'loss.svg'));
    this.emit('checkpoint', set);
  }

  /** Greedy (or beam) captions of the validation images, scored; keeps the best checkpoint by CIDEr-D. Rank 0 only. */
  async evaluate(): Promise<Record<string, number>> {
    if (!this.validation) throw new Error('no validation set configured');
    if (!this.isMain) {
      await this.opts.group?.barrier();
      return {};
    }
    const { evaluation, failed } = await evaluateModel(this, this.validation, {
      imageSize: this.opts.crop,
      batchSize: Math.min(64, this.opts.batchSize),
      beam: this.opts.beam,
      colorManaged: this.opts.colorManaged,
      meteor: false,
    });
    for (const f of failed) this.skip(f.path, f.reason);
    const metrics = evaluation.metrics as unknown as Record<string, number>;
    const isBest = !this.best || metrics.CIDEr > this.best.CIDEr;
    if (isBest) this.best = { globalStep: this.progress.globalStep, CIDEr: metrics.CIDEr };
    this.record({ type: 'eval', globalStep: this.progress.globalStep, ...metrics });
    this.emit('eval', { globalStep: this.progress.globalStep, metrics, best: isBest });
    const line = Object.entries(metrics)
      .map(([k, v]) => `${k} ${v.toFixed(4)}`)
      .join(', ');
    this.emit('log', `Eval at step ${this.progress.globalStep}: ${line}${isBest ? ' (best so far)' : ''}`);
    if (isBest) await this.saveBest();
    await this.opts.group?.barrier();
    return metrics;
  }

  private async saveBest(): Promise<void> {
    await saveWeights(this.encoder, path.join(this.opts.out, 'encoder-best.ckpt'));
    await saveWeights(this.decoder, path.join(this.opts.out, 'decoder-best.ckpt'));
    writeFileAtomicSync(path.join(this.opts.out, 'best.json'), JSON.stringify(this.best, null, 2) + '\n');
  }

  /** Builds (or reads) the feature cache; with several ranks, rank 0 computes it and the others read its file. */
  private async cacheFeatures(): Promise<void> {
    const o = this.opts;
    const images = [...new Set(this.samples.map((s) => s.image))];
    const bar = createProgress({ label: 'caching features', total: images.length, itemName: 'img', quiet: o.quiet || !this.isMain });
    if (!this.isMain) await o.group!.waitForKey('features-ready');
    this.cache = await buildFeatureCache(this.encoder, images, {
      file: path.join(o.out, 'features.safetensors'),
      resize: o.resize,
      crop: o.crop,
      colorManaged: o.colorManaged ?? false,
      readOnly: !this.isMain,
      onProgress: (done) => bar.update(done),
      onSkip: (image, reason) => this.skip(image, reason),
    });
    if (this.isMain && o.group) o.group.setKey('features-ready', '1');
    bar.stop();
  }

  /** Runs the remaining epochs. */
  async run(): Promise<TrainSummary> {
    const o = this.opts;
    const started = Date.now();
    if (o.cacheFeatures) await this.cacheFeatures();
    const steps = this.stepsPerEpoch();
    const startStep = this.progress.globalStep;
    let lastLoss = NaN;
    let { epoch, step } = this.progress;
    // A checkpoint taken at an epoch's last step resumes at the next epoch.
    if (step >= steps - 1) {
      epoch++;
      step = -1;
    }
    for (; epoch < o.epochs; epoch++) {
      const epochStart = Date.now();
      const quiet = o.quiet || !this.isMain;
      const bar: ProgressBar = createProgress({ label: `epoch ${epoch + 1}/${o.epochs}`, total: steps, itemName: 'step', start: step + 1, quiet, logTo: process.stdout });
      const log = (line: string) => {
        if (!this.isMain) return;
        if (!quiet) bar.log(line);
        this.emit('log', line);
      };
      for (const line of this.notes.splice(0)) log(line);
      let sum = 0;
      let count = 0;
      let tick = Date.now();
      let images = 0;
      let aside = 0; // ms spent on checkpoints and evaluation inside the epoch
      const batches = this.cache
        ? cachedEpoch(this.cache, this.samples, epoch, { batchSize: o.batchSize, seed: o.seed, rank: this.rank, worldSize: this.worldSize, from: step + 1 })
        : this.loader.epoch(epoch, step + 1);
      for await (const batch of batches) {
        if (batch.index >= steps) break;
        if (o.signal?.aborted) throw o.signal.reason ?? new Error('training aborted');
        // One image left (the epoch's last batch, or a batch whose other images were unreadable):
        // the encoder's BatchNorm1d cannot take statistics over it, and PyTorch would stop the run
        // here. A single process leaves it out; ranks must step together, so they go on and fail.
        if (batch.lengths.length < 2 && !o.group) {
          log(`Step [${batch.index}/${steps}] left out: one image, and batch norm needs two or more`);
          continue;
        }
        lastLoss = await trainStep(this, batch, { group: o.group, syncBn: o.syncBn });
        step = batch.index;
        this.progress = { epoch, step, globalStep: this.progress.globalStep + 1 };
        sum += lastLoss;
        count++;
        images += batch.lengths.length;
        bar.update(step + 1);
        if (step % o.logEvery === 0) {
          const now = Date.now();
          const ev: StepEvent = {
            epoch,
            step,
            stepsPerEpoch: steps,
            globalStep: this.progress.globalStep,
            loss: lastLoss,
            perplexity: Math.exp(lastLoss),
            imagesPerSecond: (images * 1000) / Math.max(1, now - tick),
          };
          tick = now;
          images = 0;
          log(formatLogLine({ epoch, epochs: o.epochs, step, stepsPerEpoch: steps, loss: lastLoss }));
          this.record({ type: 'step', ...ev });
          this.emit('step', ev);
        }
        const asideStart = Date.now();
        if ((step + 1) % o.saveEvery === 0 && step + 1 < steps) await this.checkpoint(epoch, step);
        if (o.evalEvery && this.progress.globalStep % o.evalEvery === 0) await this.evaluate();
        aside += Date.now() - asideStart;
      }
      const trainSeconds = (Date.now() - epochStart - aside) / 1000;
      bar.stop();
      // Every image unreadable (a wrong folder, say): no batch was made. Say so, and save nothing
      // under the names of a trained model.
      if (count === 0 && step + 1 < steps) {
        throw new DatasetError(`epoch ${epoch + 1} trained no step: none of its images could be read (${this.skipped.size} skipped; is ${o.images} the right folder?)`);
      }
      await this.checkpoint(epoch, steps - 1);
      if (this.validation && (!o.evalEvery || this.progress.globalStep % o.evalEvery !== 0)) await this.evaluate();
      const meanLoss = count ? sum / count : NaN;
      this.emit('epoch', { epoch, meanLoss, seconds: (Date.now() - epochStart) / 1000, trainSeconds });
      step = -1;
    }
    return {
      epochs: o.epochs,
      globalStep: this.progress.globalStep,
      steps: this.progress.globalStep - startStep,
      lastLoss,
      skipped: this.skipped.size,
      checkpoints: this.checkpoints,
      best: this.best,
      seconds: (Date.now() - started) / 1000,
    };
  }
}

/** Creates a trainer and runs it; `listen` subscribes to its events first. */
export async function train(opts: TrainOptions, listen?: (t: Trainer) => void): Promise<TrainSummary> {
  const t = await Trainer.create(opts);
  listen?.(t);
  return t.run();
}
