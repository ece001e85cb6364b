/**
 * `torchcap train`: the book's training run.
 *
 *   torchcap train --images data/resized_images --captions annotations/captions_train2014.json \
 *       --vocab vocab.json --out models_dir
 *
 * Defaults are the book's (TRAIN_DEFAULTS in train/options.ts): 5 epochs, batch 128, lr 0.001, a log
 * line every 10 steps, checkpoints every 1000 steps, ResNet-152. `--resume` continues from the newest checkpoint in --out. SIGINT or
 * SIGTERM stops after the current step; the last checkpoint stays usable.
 */
import type { Argv, CommandModule } from 'yargs';
import { train, resolveTrainOptions, TRAIN_DEFAULTS, type TrainOptions } from '../train';
import { checkInt, positiveNumber } from '../util/checks';
import { BACKBONE_STAGES } from '../model/encoder';
import { BACKBONE_MODES, type BackboneMode } from '../model';
import { MODEL_OPTIONS, parseBackbone } from './caption';
import { ProcessGroup, distributedEnv, distributedBackends, launchLocal, type DistributedEnv } from '../distributed';
import { resolveDevice } from '../core/device';
import { flagLabel, processIO, type CommandIO } from './io';

/** The command's own settings (the training ones are TRAIN_DEFAULTS). */
export const TRAIN_COMMAND_DEFAULTS = Object.freeze({ nproc: 1, distTimeout: 300 });

export interface DistributedOptions {
  /** Seconds a collective may wait for the other ranks. */
  timeout?: number;
  backend?: 'gloo' | 'nccl';
}

/** With several ranks on one machine, plain 'cuda' means this rank's GPU (cuda:LOCAL_RANK). */
function rankDevice(device: string): string {
  const env = distributedEnv();
  return env && device === 'cuda' ? `cuda:${env.localRank}` : device;
}

function defaultBackend(device: string): 'gloo' | 'nccl' {
  return resolveDevice(device).startsWith('cuda') && distributedBackends().includes('nccl') ? 'nccl' : 'gloo';
}

export async function runTrain(opts: TrainOptions, io: CommandIO = processIO, dist: DistributedOptions = {}): Promise<number> {
  let env: DistributedEnv | null;
  let group: ProcessGroup | undefined;
  try {
    env = distributedEnv();
    if (env) {
      group = await ProcessGroup.init({
        rank: env.rank,
        worldSize: env.worldSize,
        host: env.masterAddr,
        port: env.masterPort,
        timeoutMs: (dist.timeout ?? TRAIN_COMMAND_DEFAULTS.distTimeout) * 1000,
        backend: dist.backend,
      });
      if (env.rank === 0) io.err(`torchcap: rank 0 of ${env.worldSize} joined the group (${group.backend})\n`);
    }
  } catch (e) {
    io.err(`torchcap train: joining the process group failed: ${(e as Error).message}\n`);
    return 1;
  }
  const rank = group?.rank ?? 0;
  const stop = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => {
    io.err(`\ntorchcap train: ${sig}: stopping after the current step\n`);
    stop.abort(new Error(`stopped by ${sig}`));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const summary = await train({ ...opts, group, signal: stop.signal }, (t) => {
      // Without --quiet the trainer prints them (to stdout, above its progress bar on a terminal).
      t.on('log', (line) => opts.quiet && io.out(line + '\n'));
      t.on('skip', ({ reason }) => io.err(`skipped: ${reason}\n`));
      t.on('checkpoint', (set) => opts.quiet || io.err(`saved ${set.encoder}, ${set.decoder}, ${set.training}\n`));
    });
    if (rank !== 0) return 0;
    if (summary.steps === 0) {
      io.out(`done: nothing left to train: the run in ${opts.out} has finished its ${summary.epochs} epoch${summary.epochs === 1 ? '' : 's'} (${summary.globalStep} steps); raise --epochs to train on\n`);
      return 0;
    }
    io.out(
      `done: ${summary.globalStep} steps, last loss ${summary.lastLoss.toFixed(4)}, ${summary.skipped} images skipped, ${summary.seconds.toFixed(1)} s` +
        (summary.best ? `; best CIDEr-D ${summary.best.CIDEr.toFixed(4)} at step ${summary.best.globalStep}` : '') +
        '\n',
    );
    return 0;
  } catch (e) {
    io.err(`torchcap train${group ? ` (rank ${rank})` : ''}: ${(e as Error).message}\n`);
    return 1;
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    group?.destroy();
  }
}

interface TrainArgv {
  images: string;
  captions: string;
  split?: string;
  vocab?: string;
  threshold: number;
  out: string;
  epochs: number;
  'batch-size': number;
  lr: number;
  'log-every': number;
  'save-every': number;
  backbone: string;
  'backbone-mode': BackboneMode;
  'fine-tune'?: string[];
  pretrained?: string;
  'embed-size': number;
  'hidden-size': number;
  'num-layers': number;
  resize: number;
  crop: number;
  seed: number;
  'cache-features': boolean;
  'color-managed': boolean;
  resume: boolean;
  'eval-every'?: number;
  'val-captions'?: string;
  'val-images'?: string;
  'val-limit': number;
  beam: number;
  'max-steps'?: number;
  quiet: boolean;
  nproc: number;
  'sync-bn': boolean;
  'dist-timeout': number;
  'dist-backend'?: 'gloo' | 'nccl';
  device: string;
  autocast?: 'bf16' | 'fp16';
}

export const trainCommand: CommandModule<object, TrainArgv> = {
  command: 'train',
  describe: `Train the encoder and decoder as the book does (defaults: ${TRAIN_DEFAULTS.epochs} epochs, batch ${TRAIN_DEFAULTS.batchSize}, lr ${TRAIN_DEFAULTS.lr}, ResNet-${TRAIN_DEFAULTS.backbone})`,
  builder: (y: Argv<object>): Argv<TrainArgv> =>
    y
      .option('images', { type: 'string', demandOption: true, describe: 'folder of training images (resized to 256x256 by `torchcap resize`)' })
      .option('captions', { type: 'string', demandOption: true, describe: 'captions: COCO JSON, Flickr8k token .txt (with --split) or JSONL' })
      .option('split', { type: 'string', describe: 'Flickr8k: list of training images' })
      .option('vocab', { type: 'string', describe: 'vocabulary file (built from the captions and saved in --out when omitted)' })
      .option('threshold', { type: 'number', default: TRAIN_DEFAULTS.threshold, describe: 'vocabulary threshold when building one' })
      .option('out', { type: 'string', demandOption: true, describe: 'folder for checkpoints, metrics.jsonl and loss.svg' })
      .option('epochs', { type: 'number', default: TRAIN_DEFAULTS.epochs, describe: 'passes over the captions' })
      .option('batch-size', { type: 'number', default: TRAIN_DEFAULTS.batchSize, describe: 'images a step (per rank with several ranks)' })
      .option('lr', { type: 'number', default: TRAIN_DEFAULTS.lr, describe: 'Adam learning rate' })
      .option('log-every', { type: 'number', default: TRAIN_DEFAULTS.logEvery, describe: 'steps between log lines' })
      .option('save-every', { type: 'number', default: TRAIN_DEFAULTS.saveEvery, describe: 'steps between checkpoints (also at the end of each epoch)' })
      .option('backbone', { type: 'string', default: `resnet${TRAIN_DEFAULTS.backbone}`, describe: 'resnet18|34|50|101|152' })
      .option('backbone-mode', {
        choices: BACKBONE_MODES,
        default: TRAIN_DEFAULTS.backboneMode,
        describe: "frozen ResNet in the encoder's mode as the book (book), always in eval mode (eval), or eval on the folded fast path (fast)",
      })
      .option('fine-tune', { type: 'string', array: true, choices: BACKBONE_STAGES, describe: 'backbone stages to train, e.g. layer4 (not with --cache-features)' })
      .option('pretrained', { type: 'string', describe: "torchvision ImageNet weights for the backbone (e.g. resnet152-394f9c45.pth)" })
      .option('embed-size', { type: 'number', default: TRAIN_DEFAULTS.embedSize, describe: "the encoder's output and the decoder's word embedding size" })
      .option('hidden-size', { type: 'number', default: TRAIN_DEFAULTS.hiddenSize, describe: "the decoder's LSTM hidden size" })
      .option('num-layers', { type: 'number', default: TRAIN_DEFAULTS.numLayers, describe: "the decoder's LSTM layers" })
      .option('resize', { type: 'number', default: TRAIN_DEFAULTS.resize, describe: 'images not of this size are resized to it' })
      .option('crop', { type: 'number', default: TRAIN_DEFAULTS.crop, describe: 'random crop size' })
      .option('seed', { type: 'number', default: TRAIN_DEFAULTS.seed, describe: 'seed of the initial weights, the shuffling and the crops' })
      .option('color-managed', { type: 'boolean', default: false, describe: 'convert embedded ICC profiles to sRGB (the book does not: Pillow ignores them)' })
      .option('cache-features', { type: 'boolean', default: false, describe: 'compute the frozen backbone once (centre crop, no flip) and train on cached features' })
      .option('resume', { type: 'boolean', default: false, describe: 'continue from the newest checkpoint in --out' })
      .option('eval-every', { type: 'number', describe: 'score validation captions every N steps (and at each epoch end); keeps the best checkpoint by CIDEr-D as encoder-best.ckpt, decoder-best.ckpt and best.json (needs --val-captions)' })
      .option('val-captions', { type: 'string', describe: 'COCO captions file of the validation images' })
      .option('val-images', { type: 'string', describe: 'folder of the validation images (default: --images)' })
      .option('val-limit', { type: 'number', default: TRAIN_DEFAULTS.valLimit, describe: 'validation images scored at most' })
      .option('beam', { type: 'number', default: TRAIN_DEFAULTS.beam, describe: 'beam width for validation captions' })
      .option('max-steps', { type: 'number', describe: 'stop each epoch after this many steps' })
      .option('quiet', { type: 'boolean', default: false, describe: 'log lines only, no progress bar' })
      .option('nproc', { type: 'number', default: TRAIN_COMMAND_DEFAULTS.nproc, describe: 'data-parallel ranks to start on this machine (torchrun-style; each gets its share of the cores)' })
      .option('sync-bn', { type: 'boolean', default: false, describe: "with several ranks: the encoder's BatchNorm takes its statistics over all ranks (SyncBatchNorm)" })
      .option('dist-timeout', { type: 'number', default: TRAIN_COMMAND_DEFAULTS.distTimeout, describe: 'seconds a rank waits for the others before failing' })
      .option('dist-backend', { choices: ['gloo', 'nccl'] as const, describe: 'c10d backend (default: nccl on CUDA, gloo on the CPU)' })
      .option('device', { type: 'string', default: TRAIN_DEFAULTS.device, describe: 'cpu, cuda, cuda:N, or auto (a GPU when there is one); with several local ranks, cuda means cuda:LOCAL_RANK' })
      .option('autocast', MODEL_OPTIONS.autocast),
  handler: async (argv) => {
    let backbone;
    let backend: 'gloo' | 'nccl';
    let opts: TrainOptions;
    try {
      // Every flag is checked before anything starts (ranks, data, models), in the flags' names.
      checkInt(argv.nproc, '--nproc', 1);
      positiveNumber(argv['dist-timeout'], '--dist-timeout');
      backbone = parseBackbone(argv.backbone);
      opts = trainOptions(argv, backbone);
      resolveTrainOptions(opts, trainFlag);
      resolveDevice(rankDevice(argv.device));
      backend = argv['dist-backend'] ?? defaultBackend(rankDevice(argv.device));
    } catch (e) {
      process.stderr.write(`torchcap train: ${(e as Error).message}\n`);
      process.exitCode = 1;
      return;
    }
    if (argv.nproc > 1 && !process.env.WORLD_SIZE) {
      process.exitCode = await launchLocal(argv.nproc, process.argv.slice(2));
      return;
    }
    process.exitCode = await runTrain(opts, processIO, { timeout: argv['dist-timeout'], backend });
  },
};

/** A training option's flag: `batchSize` -> `--batch-size`. */
const trainFlag = flagLabel({ maxStepsPerEpoch: 'max-steps' });

function trainOptions(argv: TrainArgv, backbone: TrainOptions['backbone']): TrainOptions {
  return {
    images: argv.images,
    captions: argv.captions,
    split: argv.split,
    vocab: argv.vocab,
    threshold: argv.threshold,
    out: argv.out,
    epochs: argv.epochs,
    batchSize: argv['batch-size'],
    lr: argv.lr,
    logEvery: argv['log-every'],
    saveEvery: argv['save-every'],
    backbone,
    backboneMode: argv['backbone-mode'],
    fineTune: argv['fine-tune'] as TrainOptions['fineTune'],
    pretrained: argv.pretrained,
    embedSize: argv['embed-size'],
    hiddenSize: argv['hidden-size'],
    numLayers: argv['num-layers'],
    resize: argv.resize,
    crop: argv.crop,
    seed: argv.seed,
    cacheFeatures: argv['cache-features'],
    colorManaged: argv['color-managed'],
    resume: argv.resume,
    evalEvery: argv['eval-every'],
    valCaptions: argv['val-captions'],
    valImages: argv['val-images'],
    valLimit: argv['val-limit'],
    beam: argv.beam,
    maxStepsPerEpoch: argv['max-steps'],
    quiet: argv.quiet,
    syncBn: argv['sync-bn'],
    device: rankDevice(argv.device),
    autocast: argv.autocast,
  };
}
