/**
 * The book's training loop, in TypeScript over the native models.
 *
 * Each step: encoder (frozen ResNet, then the trainable Linear + BatchNorm1d) -> decoder over the
 * packed captions -> cross-entropy over the packed targets -> zero grads -> backward -> Adam.
 * Adam (lr 0.001) trains the decoder and the encoder's linear and batch-norm layers. Every
 * `logEvery` steps the book's line `Epoch [e/E], Step [i/N], Loss: …, Perplexity: …` (epoch and step
 * 0-based, as the book prints them); every `saveEvery` steps and at the end of each epoch a
 * checkpoint with the book's file names. Heavy work runs on worker threads: the event loop stays
 * free for the next batch's decoding, progress output, or an app's UI.
 *
 * Also: a JSONL metrics file, a loss-curve SVG next to the checkpoints, `resume`, cached backbone
 * features (`cacheFeatures`), and periodic evaluation with the COCO metrics keeping the best
 * checkpoint by CIDEr-D.
 */
import { EventEmitter } from 'events';
import * as fs from 'fs';
import * as path from 'path';
import { Tensor, manualSeed, checkInt } from './tensor';
import { CaptionEncoder, CaptionDecoder, type BackboneMode } from './model';
import type { ResNetDepth } from './nn/resnet';
import { crossEntropyAsync, backwardAsync } from './nn/functional';
import { packPaddedSequence } from './nn/rnn';
import { Adam } from './optim';
import { Vocabulary, DEFAULT_THRESHOLD } from './vocabulary';
import { readCaptions, type CaptionCorpus } from './data/datasets';
import { CaptionLoader, epochOrder, padCaptions, type Sample } from './data/loader';
import { buildFeatureCache, type FeatureCache } from './data/features';
import { decodeImage, toBatchAsync, ImageError } from './data/images';
import { createProgress, type Progress as ProgressBar } from './data/progress';
import { LATEST, saveCheckpoint, saveWeights, latestCheckpoint, restoreCheckpoint, loadBackboneWeights, removeTemporaries, type CheckpointSet, type Progress } from './checkpoint';
import { captionBatch } from './caption';
import { CaptionEvaluator } from './evaluate';
import { writeLossCurve } from './report/loss-curve';
import { writeFileAtomic } from './util/files';
import type { ProcessGroup } from './distributed';
import { resolveDevice } from './device';

export interface TrainOptions {
  /** Folder of training images. */
  images: string;
  /** Captions: COCO JSON, Flickr8k token file (.txt, with `split`) or JSONL. */
  captions: string;
  split?: string;
  /** A vocabulary file (torchcap JSON or a JSON array of words), or one to use; built from the captions when absent. */
  vocab?: string | Vocabulary;
  threshold?: number;
  /** Folder for checkpoints, metrics and pictures. */
  out: string;
  epochs?: number;
  batchSize?: number;
  lr?: number;
  logEvery?: number;
  saveEvery?: number;
  backbone?: ResNetDepth;
  embedSize?: number;
  hiddenSize?: number;
  numLayers?: number;
  maxSeqLen?: number;
  backboneMode?: BackboneMode;
  fineTune?: ('layer1' | 'layer2' | 'layer3' | 'layer4')[];
  /** torchvision ImageNet weights (.pth) for the backbone. */
  pretrained?: string;
  resize?: number;
  crop?: number;
  seed?: number;
  cacheFeatures?: boolean;
  /** Continue from the newest checkpoint in `out`. */
  resume?: boolean;
  /** Score captions of a validation set every N steps (and at each epoch's end). */
  evalEvery?: number;
  valCaptions?: string;
  valImages?: string;
  /** Validation images scored at most (default 500). */
  valLimit?: number;
  beam?: number;
  /** Stop each epoch after this many steps (smoke runs, benchmarks). */
  maxStepsPerEpoch?: number;
  /** Batches decoded ahead. */
  prefetch?: number;
  /** 'cpu' (default), 'cuda', 'cuda:N' or 'auto'. */
  device?: string;
  /** The frozen backbone in mixed precision: bf16 or fp16 on CUDA, bf16 on a CPU with AVX-512 BF16. */
  autocast?: 'bf16' | 'fp16';
  /** Data-parallel training: this process's group (see distributed.ts). Only rank 0 writes files. */
  group?: ProcessGroup;
  /** With a group: BatchNorm statistics over all ranks' batches (PyTorch's SyncBatchNorm). */
  syncBn?: boolean;
  quiet?: boolean;
  signal?: AbortSignal;
}

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

const DEFAULTS = {
  epochs: 5,
  batchSize: 128,
  lr: 0.001,
  logEvery: 10,
  saveEvery: 1000,
  backbone: 152 as ResNetDepth,
  embedSize: 256,
  hiddenSize: 512,
  numLayers: 1,
  maxSeqLen: 20,
  resize: 256,
  crop: 224,
  seed: 0,
  threshold: DEFAULT_THRESHOLD,
  valLimit: 500,
};

/**
 * Counts and sizes must be whole numbers: a batch size of 0 looped forever on empty batches, a
 * fraction cut batches at odd places, a log or save interval of 0 silently logged or saved nothing.
 */
function checkCounts(opts: TrainOptions): void {
  const o = { ...DEFAULTS, ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) } as TrainOptions & typeof DEFAULTS;
  const counts = [['epochs', 1], ['batchSize', 1], ['logEvery', 1], ['saveEvery', 1], ['resize', 1], ['crop', 1], ['seed', 0]] as const;
  for (const [name, min] of counts) checkInt(o[name], name, min);
  for (const name of ['maxStepsPerEpoch', 'prefetch', 'evalEvery'] as const) if (o[name] !== undefined) checkInt(o[name], name, 1);
}

export function formatLogLine(e: { epoch: number; epochs: number; step: number; stepsPerEpoch: number; loss: number }): string {
  return `Epoch [${e.epoch}/${e.epochs}], Step [${e.step}/${e.stepsPerEpoch}], Loss: ${e.loss.toFixed(4)}, Perplexity: ${Math.exp(e.loss).toFixed(4)}`;
}

interface CachedBatch {
  features: Tensor;
  captions: Tensor;
  lengths: number[];
  index: number;
}

export class Trainer extends EventEmitter<TrainerEvents> {
  readonly opts: TrainOptions & typeof DEFAULTS;
  readonly vocab: Vocabulary;
  readonly corpus: CaptionCorpus;
  readonly samples: Sample[];
  readonly encoder: CaptionEncoder;
  readonly decoder: CaptionDecoder;
  readonly optimizer: Adam;
  readonly loader: CaptionLoader;
  /** Where the models compute. */
  readonly device: string;
  private progress: Progress = { epoch: 0, step: -1, globalStep: 0 };
  private cache: FeatureCache | null = null;
  private readonly skipped = new Set<string>();
  private best: { globalStep: number; CIDEr: number } | undefined;
  private readonly checkpoints: CheckpointSet[] = [];
  private evaluator: { evaluator: CaptionEvaluator; images: { id: string | number; path: string }[] } | null = null;
  /** Lines from before run() (resuming), printed when it starts. */
  private readonly notes: string[] = [];

  private constructor(opts: TrainOptions, vocab: Vocabulary, corpus: CaptionCorpus) {
    super();
    this.opts = { ...DEFAULTS, ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) } as TrainOptions & typeof DEFAULTS;
    this.vocab = vocab;
    this.corpus = corpus;
    // One sample per caption, in the order of the annotations (the book's dataset indices).
    this.samples = corpus.annotations.map((a) => ({ image: corpus.imagePath(a.imageId), ids: vocab.encode(a.caption) }));
    manualSeed(this.opts.seed);
    this.device = resolveDevice(this.opts.device);
    this.encoder = new CaptionEncoder({
      backbone: this.opts.backbone,
      embedSize: this.opts.embedSize,
      backboneMode: this.opts.backboneMode,
      fineTune: this.opts.fineTune,
      autocast: this.opts.autocast,
    });
    this.decoder = new CaptionDecoder({
      vocabSize: vocab.size,
      embedSize: this.opts.embedSize,
      hiddenSize: this.opts.hiddenSize,
      numLayers: this.opts.numLayers,
      maxSeqLen: this.opts.maxSeqLen,
    });
    if (this.device !== 'cpu') {
      this.encoder.to(this.device);
      this.decoder.to(this.device);
    }
    this.optimizer = new Adam([...this.decoder.parameters(), ...this.encoder.trainableParameters()], { lr: this.opts.lr });
    this.loader = new CaptionLoader(this.samples, {
      batchSize: this.opts.batchSize,
      seed: this.opts.seed,
      rank: opts.group?.rank ?? 0,
      worldSize: opts.group?.size ?? 1,
      resize: this.opts.resize,
      crop: this.opts.crop,
      prefetch: this.opts.prefetch,
      onSkip: (s, reason) => this.skip(s.image, reason),
    });
  }

  /** Whether this process writes logs, metrics, pictures and checkpoints (rank 0, or the only process). */
  get isMain(): boolean {
    return (this.opts.group?.rank ?? 0) === 0;
  }

  /** Reads the data, builds (or loads) the vocabulary and the models, and restores a checkpoint when resuming. */
  static async create(opts: TrainOptions): Promise<Trainer> {
    checkCounts(opts);
    const corpus = readCaptions(opts.captions, opts.images, { split: opts.split });
    let vocab: Vocabulary;
    if (opts.vocab instanceof Vocabulary) vocab = opts.vocab;
    else if (typeof opts.vocab === 'string') vocab = Vocabulary.load(opts.vocab);
    else vocab = Vocabulary.build(corpus.annotations.map((a) => a.caption), { threshold: opts.threshold ?? DEFAULTS.threshold });
    fs.mkdirSync(opts.out, { recursive: true });
    const main = (opts.group?.rank ?? 0) === 0;
    if (main && !(opts.vocab instanceof Vocabulary) && typeof opts.vocab !== 'string') vocab.save(path.join(opts.out, 'vocab.json'));
    const t = new Trainer(opts, vocab, corpus);
    if (opts.pretrained) await loadBackboneWeights(t.encoder, opts.pretrained);
    if (opts.resume) await t.resume();
    else if (main && fs.existsSync(path.join(opts.out, LATEST))) {
      // A fresh run: a later --resume must continue this run, never an older one found here.
      fs.rmSync(path.join(opts.out, LATEST), { force: true });
      t.notes.push(`Starting afresh in ${opts.out}: its older checkpoints stay, but --resume will continue this run`);
    }
    if (main) {
      removeTemporaries(opts.out);
      t.trimMetrics(t.progress.globalStep);
    }
    // Every rank starts from rank 0's weights (and BatchNorm statistics).
    if (opts.group) await opts.group.broadcastTensors([...t.encoder.stateDict().values(), ...t.decoder.stateDict().values()], 0);
    t.encoder.prepare();
    if (opts.evalEvery || opts.valCaptions) t.setUpEvaluation();
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

  private setUpEvaluation(): void {
    if (!this.opts.valCaptions) throw new TypeError('evaluation during training needs valCaptions (a COCO captions file of validation images)');
    const val = readCaptions(this.opts.valCaptions, this.opts.valImages ?? this.opts.images);
    const chosen = val.images.slice(0, this.opts.valLimit);
    const sub = val.subset(chosen.map((i) => i.id));
    this.evaluator = { evaluator: new CaptionEvaluator(sub.toCoco()), images: chosen.map((i) => ({ id: i.id, path: val.imagePath(i.id) })) };
  }

  /** The loader reports a bad image each time one of its captions comes up: count and report it once. */
  private skip(image: string, reason: string): void {
    if (this.skipped.has(image)) return;
    this.skipped.add(image);
    this.emit('skip', { image, reason });
  }

  private stepsPerEpoch(): number {
    const world = this.opts.group?.size ?? 1;
    // With cached features the samples of unreadable images are left out before batching.
    const cached = this.cache ? this.samples.filter((s) => !this.cache!.missing.has(s.image)).length : 0;
    const n = this.cache ? Math.ceil(Math.ceil(cached / world) / this.opts.batchSize) : this.loader.batchesPerEpoch();
    return this.opts.maxStepsPerEpoch ? Math.min(n, this.opts.maxStepsPerEpoch) : n;
  }

  private async *cachedEpoch(epoch: number, from: number): AsyncGenerator<CachedBatch> {
    const cache = this.cache!;
    const usable = this.samples.map((s, i) => [s, i] as const).filter(([s]) => !cache.missing.has(s.image));
    const order = epochOrder(usable.length, epoch, { seed: this.opts.seed, rank: this.opts.group?.rank ?? 0, worldSize: this.opts.group?.size ?? 1 });
    const bs = this.opts.batchSize;
    for (let b = from; b * bs < order.length; b++) {
      const batch = order.slice(b * bs, (b + 1) * bs).map((k) => usable[k][0]);
      batch.sort((x, y) => y.ids.length - x.ids.length);
      const rows = Tensor.from(batch.map((s) => cache.rowOf.get(s.image)!), { dtype: 'int64' });
      yield { features: cache.features.indexSelect(0, rows), ...padCaptions(batch.map((s) => s.ids)), index: b };
    }
  }

  /**
   * One optimisation step; returns the loss (the mean over all ranks' target tokens).
   * With a group: each rank's summed loss is divided by the all-reduced token count and the
   * gradients are summed across ranks, which equals one process's step on the union of the batches.
   */
  private async trainStep(batch: { images?: Tensor; features?: Tensor; captions: Tensor; lengths: number[] }): Promise<number> {
    const mode = { train: true };
    const group = this.opts.group;
    const sync = group && this.opts.syncBn ? group : undefined;
    const features = batch.features ? await this.encoder.headAsync(batch.features, mode, sync) : await this.encoder.forwardAsync(batch.images!, mode, sync);
    const logits = await this.decoder.forwardAsync(features, batch.captions, batch.lengths, mode);
    const packedTargets = packPaddedSequence(batch.captions, batch.lengths, { batchFirst: true }).data;
    const targets = packedTargets.device === logits.device ? packedTargets : packedTargets.to(logits.device);
    this.optimizer.zeroGrad();
    if (!group) {
      const loss = await crossEntropyAsync(logits, targets);
      await backwardAsync(loss);
      await this.optimizer.stepAsync();
      return loss.item();
    }
    const lossSum = await crossEntropyAsync(logits, targets, { reduction: 'sum' });
    // NCCL reduces CUDA tensors only; Gloo takes CPU ones.
    const totals = Tensor.from([targets.numel, lossSum.item()], { dtype: 'float64', device: group.native.backend() === 'nccl' ? this.device : 'cpu' });
    await group.allreduce([totals]);
    const [tokens, globalSum] = totals.toArray() as number[];
    await backwardAsync(lossSum.div(tokens));
    await group.allreduceGradients(this.optimizer.params.filter((p) => p.requiresGrad));
    await this.optimizer.stepAsync();
    return globalSum / tokens;
  }

  private metricsFile(): string {
    return path.join(this.opts.out, 'metrics.jsonl');
  }

  /**
   * Keeps the metrics of steps up to `globalStep`: a fresh run (0) starts a new file, a resumed one
   * drops what the interrupted run logged after its checkpoint (it repeats those steps), and lines
   * cut short by a kill.
   */
  private trimMetrics(globalStep: number): void {
    const file = this.metricsFile();
    if (!fs.existsSync(file)) return;
    const kept = fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .filter((line) => {
        try {
          const e = JSON.parse(line);
          return !(typeof e.globalStep === 'number' && e.globalStep > globalStep);
        } catch {
          return false;
        }
      });
    writeFileAtomic(file, kept.map((line) => line + '\n').join(''));
  }

  private record(entry: Record<string, unknown>): void {
    if (!this.isMain) return;
    fs.appendFileSync(this.metricsFile(), JSON.stringify({ time: new Date().toISOString(), ...entry }) + '\n');
  }

  private async checkpoint(epoch: number, step: number): Promise<void> {
    if (!this.isMain) return;
    const set = await saveCheckpoint(this.opts.out, this, { epoch, step, globalStep: this.progress.globalStep }, { best: this.best ?? null, vocabSize: this.vocab.size });
    this.checkpoints.push(set);
    writeLossCurve(this.metricsFile(), path.join(this.opts.out, 'loss.svg'));
    this.emit('checkpoint', set);
  }

  /** Greedy (or beam) captions of the validation images, scored; keeps the best checkpoint by CIDEr-D. Rank 0 only. */
  async evaluate(): Promise<Record<string, number>> {
    if (!this.evaluator) throw new Error('no validation set configured');
    if (!this.isMain) {
      await this.opts.group?.barrier();
      return {};
    }
    const results: { image_id: string | number; caption: string }[] = [];
    const size = this.opts.crop;
    const bs = Math.min(64, this.opts.batchSize);
    const imgs = this.evaluator.images;
    for (let b = 0; b < imgs.length; b += bs) {
      const part = imgs.slice(b, b + bs);
      const decoded = await Promise.all(part.map((i) => decodeImage(i.path, size).catch((e: unknown) => (e instanceof ImageError ? null : Promise.reject(e)))));
      const ok = part.filter((_, k) => decoded[k] !== null);
      if (!ok.length) continue;
      const caps = await captionBatch(this, await toBatchAsync(decoded.filter((d) => d !== null), { crop: size }), { beam: this.opts.beam });
      ok.forEach((i, k) => results.push({ image_id: i.id, caption: caps[k] }));
    }
    const scored = this.evaluator.evaluator.evaluate(results);
    const metrics = scored.metrics as unknown as Record<string, number>;
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
    writeFileAtomic(path.join(this.opts.out, 'best.json'), JSON.stringify(this.best, null, 2) + '\n');
  }

  /** Runs the remaining epochs. */
  async run(): Promise<TrainSummary> {
    const o = this.opts;
    const started = Date.now();
    if (o.cacheFeatures) {
      const images = [...new Set(this.samples.map((s) => s.image))];
      const file = path.join(o.out, 'features.safetensors');
      const bar = createProgress({ label: 'caching features', total: images.length, itemName: 'img', quiet: o.quiet || !this.isMain });
      // With several ranks, rank 0 computes the cache and the others read its file.
      if (!this.isMain) await this.opts.group!.waitForKey('features-ready');
      this.cache = await buildFeatureCache(this.encoder, images, {
        file,
        resize: o.resize,
        crop: o.crop,
        readOnly: !this.isMain,
        onProgress: (done) => bar.update(done),
        onSkip: (image, reason) => this.skip(image, reason),
      });
      if (this.isMain && this.opts.group) this.opts.group.setKey('features-ready', '1');
      bar.stop();
    }
    const steps = this.stepsPerEpoch();
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
      const bar: ProgressBar = createProgress({ label: `epoch ${epoch + 1}/${o.epochs}`, total: steps, itemName: 'step', start: step + 1, quiet });
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
      const batches = this.cache ? this.cachedEpoch(epoch, step + 1) : this.loader.epoch(epoch, step + 1);
      for await (const batch of batches) {
        if (batch.index >= steps) break;
        if (o.signal?.aborted) throw o.signal.reason ?? new Error('training aborted');
        lastLoss = await this.trainStep(batch);
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
      await this.checkpoint(epoch, steps - 1);
      if (this.evaluator && (!o.evalEvery || this.progress.globalStep % o.evalEvery !== 0)) await this.evaluate();
      const meanLoss = count ? sum / count : NaN;
      this.emit('epoch', { epoch, meanLoss, seconds: (Date.now() - epochStart) / 1000, trainSeconds });
      step = -1;
    }
    return {
      epochs: o.epochs,
      globalStep: this.progress.globalStep,
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
