/**
 * `torchcap demo`: the main job on bundled data (see demo/run.ts). Prints the training log, the
 * held-out scores (COCO metrics, exact captions, attributes right, seen and unseen apart) and
 * whether each target was met, writes summary.json and report.html, and ends with the command
 * that serves the trained model and the page to open.
 */
import type { Argv, CommandModule } from 'yargs';
import { runDemo, resolveDemoOptions, DEMO_DEFAULTS, PRETRAIN_PRECISIONS, type DemoBackbone, type DemoOptions, type PretrainPrecision } from '../demo/run';
import { commandFailed, flagLabel, processIO, type CommandIO } from './io';

/** The demo's options; its log lines go to the command's output. */
export type DemoCommandOptions = Omit<DemoOptions, 'log'>;

/** Quotes a path for a shell command line when it needs it. */
function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

export async function runDemoCommand(opts: DemoCommandOptions, io: CommandIO = processIO): Promise<number> {
  try {
    resolveDemoOptions(opts, flagLabel()); // the flags' names: --held-out, not heldOut
    const r = await runDemo({ ...opts, log: (line) => io.out(line + '\n') });
    const s = r.summary;
    io.out(`BLEU-4 ${s.metrics.Bleu_4.toFixed(4)}\n`);
    io.out(`exact captions ${s.scenes.all.exact.toFixed(4)} (seen ${s.scenes.seen.exact.toFixed(4)}, unseen combinations ${s.scenes.unseen.exact.toFixed(4)})\n`);
    const missed = s.targets.filter((t) => !t.met);
    io.out(missed.length ? `targets MISSED: ${missed.map((t) => `${t.name} ${t.value.toFixed(4)} < ${t.min}`).join('; ')}\n` : 'all targets met\n');
    io.out(`report: ${r.report}\nsummary: ${r.summaryFile}\n`);
    io.out(`done in ${r.seconds.toFixed(0)} s\n`);
    io.out(
      `caption your own image: torchcap serve --encoder ${shellWord(r.encoder)} --decoder ${shellWord(r.decoder)} --vocab ${shellWord(r.vocab)} ` +
        `--image-size ${r.imageSize} --port 8080, then open http://127.0.0.1:8080/\n`,
    );
    return 0;
  } catch (e) {
    return commandFailed('demo', io, e);
  }
}

interface DemoArgv {
  out: string;
  images: number;
  'held-out': number;
  unseen?: number;
  epochs: number;
  backbone: DemoBackbone;
  'pretrain-epochs': number;
  augment: boolean;
  'pretrain-precision': PretrainPrecision;
  seed: number;
  quiet: boolean;
}

export const demoCommand: CommandModule<object, DemoArgv> = {
  command: 'demo',
  describe: 'Generate a synthetic captioning set, train on it, caption held-out scenes, print their scores, write summary.json and an HTML report',
  builder: (y: Argv<object>): Argv<DemoArgv> =>
    y
      .option('out', { type: 'string', default: 'torchcap-demo', describe: 'folder for the data, checkpoints, summary.json and report.html' })
      .option('images', { type: 'number', default: DEMO_DEFAULTS.images, describe: 'scenes to generate (train and held-out)' })
      .option('held-out', { type: 'number', default: DEMO_DEFAULTS.heldOut, describe: 'scenes held out from training and captioned' })
      .option('unseen', { type: 'number', describe: 'held-out scenes showing an object kind no training scene shows (default 30% of --held-out)' })
      .option('epochs', { type: 'number', default: DEMO_DEFAULTS.epochs, describe: 'epochs of the captioner' })
      .option('backbone', {
        choices: ['pretrained', 'random'] as const,
        default: DEMO_DEFAULTS.backbone,
        describe: 'pretrained: pretrain the ResNet on the training scenes, then freeze it; random: freeze it as initialised (shapes come out wrong)',
      })
      .option('pretrain-epochs', { type: 'number', default: DEMO_DEFAULTS.pretrainEpochs, describe: 'epochs of the backbone pretraining' })
      .option('augment', { type: 'boolean', default: DEMO_DEFAULTS.augment, describe: 'mirror and recolour the scenes while pretraining (--no-augment: as drawn)' })
      .option('pretrain-precision', {
        choices: PRETRAIN_PRECISIONS,
        default: DEMO_DEFAULTS.pretrainPrecision,
        describe: 'precision of the pretraining: auto is bf16 (CPU autocast) where the CPU has native bfloat16 (AVX-512 BF16), else float32',
      })
      .option('seed', { type: 'number', default: DEMO_DEFAULTS.seed, describe: 'seed of the scenes, the pretraining and the training' })
      .option('quiet', { type: 'boolean', default: false, describe: 'no per-step log lines' }),
  handler: async (argv) => {
    process.exitCode = await runDemoCommand({ ...argv, heldOut: argv['held-out'], pretrainEpochs: argv['pretrain-epochs'], pretrainPrecision: argv['pretrain-precision'] });
  },
};
