/**
 * `torchcap demo`: the main job on bundled data (see demo/run.ts). Prints the book's log lines,
 * the held-out scores and a line `BLEU-4 <value>`, and writes report.html.
 */
import type { Argv, CommandModule } from 'yargs';
import { runDemo, DEMO_DEFAULTS } from '../demo/run';
import { commandFailed, processIO, type CommandIO } from './io';

export async function runDemoCommand(opts: { out: string; images?: number; epochs?: number; quiet?: boolean }, io: CommandIO = processIO): Promise<number> {
  try {
    const r = await runDemo({ ...opts, log: (line) => io.out(line + '\n') });
    io.out(`BLEU-4 ${r.metrics.Bleu_4.toFixed(4)}\n`);
    io.out(`report: ${r.report}\n`);
    io.out(`caption your own scene: torchcap caption IMAGE --encoder ${r.encoder} --decoder ${r.decoder} --vocab ${r.vocab}\n`);
    io.out(`done in ${r.seconds.toFixed(0)} s\n`);
    return 0;
  } catch (e) {
    return commandFailed('demo', io, e);
  }
}

interface DemoArgv {
  out: string;
  images: number;
  epochs: number;
  quiet: boolean;
}

export const demoCommand: CommandModule<object, DemoArgv> = {
  command: 'demo',
  describe: 'Generate a synthetic captioning set, train on it, caption held-out scenes, print BLEU-4 and write an HTML report',
  builder: (y: Argv<object>): Argv<DemoArgv> =>
    y
      .option('out', { type: 'string', default: 'torchcap-demo', describe: 'folder for the data, checkpoints and report.html' })
      .option('images', { type: 'number', default: DEMO_DEFAULTS.images, describe: 'scenes to generate (train and held-out)' })
      .option('epochs', { type: 'number', default: DEMO_DEFAULTS.epochs })
      .option('quiet', { type: 'boolean', default: false, describe: "no per-step log lines" }),
  handler: async (argv) => {
    process.exitCode = await runDemoCommand(argv);
  },
};
