/**
 * `torchcap caption`: captions for images, from torchcap checkpoints or the book's own.
 *
 *   torchcap caption photo.jpg [more.jpg ...] --encoder encoder-2-3000.ckpt \
 *       --decoder decoder-2-3000.ckpt --vocab vocab.json [--beam 3] [--json]
 *
 * Prints `IMAGE: caption` lines, or with --json one object a line: {"image": ..., "caption": ...}.
 * An unreadable image is named on stderr (the others are still captioned) and the exit status is 1.
 */
import type { Argv, CommandModule, Options } from 'yargs';
import { CAPTION_DEFAULTS, Captioner, type CaptionOutcome } from '../captioner';
import { RESNET_DEPTHS, type ResNetDepth } from '../nn/resnet';
import type { Autocast } from '../model';
import { commandFailed, processIO, type CommandIO } from './io';
import { optionalInt } from '../util/checks';

export interface CaptionCommandOptions {
  images: string[];
  encoder: string;
  decoder: string;
  vocab: string;
  backbone?: string;
  beam?: number;
  json?: boolean;
  maxLen?: number;
  device?: string;
  autocast?: Autocast;
  colorManaged?: boolean;
}

export function parseBackbone(name: string | undefined): ResNetDepth | undefined {
  if (name === undefined) return undefined;
  const m = /^resnet(\d+)$/.exec(name);
  const depth = m ? (Number(m[1]) as ResNetDepth) : undefined;
  if (!depth || !RESNET_DEPTHS.includes(depth)) throw new RangeError(`--backbone must be one of ${RESNET_DEPTHS.map((d) => `resnet${d}`).join(', ')}, not ${name}`);
  return depth;
}

export async function runCaption(opts: CaptionCommandOptions, io: CommandIO = processIO): Promise<number> {
  let captioner: Captioner | undefined;
  let outcomes: CaptionOutcome[];
  try {
    // Flags are checked before the model loads (which takes seconds).
    optionalInt(opts.beam, '--beam', 1);
    optionalInt(opts.maxLen, '--max-len', 1);
    captioner = await Captioner.load({
      encoder: opts.encoder,
      decoder: opts.decoder,
      vocab: opts.vocab,
      backbone: parseBackbone(opts.backbone),
      maxLen: opts.maxLen,
      device: opts.device,
      autocast: opts.autocast,
      colorManaged: opts.colorManaged,
    });
    outcomes = await captioner.captionEach(opts.images, { beam: opts.beam });
  } catch (e) {
    return commandFailed('caption', io, e);
  } finally {
    await captioner?.dispose();
  }
  let failed = 0;
  outcomes.forEach((o, i) => {
    const image = opts.images[i];
    if ('error' in o) {
      failed++;
      io.err(`torchcap caption: ${o.error}\n`);
    } else if (opts.json) io.out(JSON.stringify({ image, caption: o.caption }) + '\n');
    else io.out(`${image}: ${o.caption}\n`);
  });
  return failed ? 1 : 0;
}

interface CaptionArgv {
  images: string[];
  encoder: string;
  decoder: string;
  vocab: string;
  backbone?: string;
  beam: number;
  json: boolean;
  'max-len'?: number;
  device: string;
  autocast?: 'bf16' | 'fp16';
  'color-managed': boolean;
}

/** The flags that name a trained model and how it captions: shared by `caption` and `serve`. */
export const MODEL_OPTIONS = {
  encoder: { type: 'string', demandOption: true, describe: 'encoder checkpoint (encoder-E-S.ckpt)' },
  decoder: { type: 'string', demandOption: true, describe: 'decoder checkpoint (decoder-E-S.ckpt)' },
  vocab: { type: 'string', demandOption: true, describe: "vocabulary: torchcap JSON, a JSON array of words, or the book's vocabulary.pkl" },
  backbone: { type: 'string', describe: 'resnet18|34|50|101|152 (read from the checkpoint when omitted)' },
  beam: { type: 'number', default: CAPTION_DEFAULTS.beam, describe: 'beam width (1: greedy, as the book)' },
  'max-len': { type: 'number', describe: `words per caption at most (default ${CAPTION_DEFAULTS.maxLen})` },
  device: { type: 'string', default: CAPTION_DEFAULTS.device, describe: 'cpu, cuda, cuda:N, or auto (a GPU when there is one)' },
  autocast: { choices: ['bf16', 'fp16'] as const, describe: 'on CUDA: the backbone in mixed precision' },
  'color-managed': { type: 'boolean', default: false, describe: 'convert embedded ICC profiles to sRGB (the book does not: Pillow ignores them)' },
} as const satisfies Record<string, Options>;

export const captionCommand: CommandModule<object, CaptionArgv> = {
  command: 'caption <images..>',
  describe: 'Caption images with a trained encoder and decoder (torchcap checkpoints or the book\'s .ckpt files)',
  builder: (y: Argv<object>): Argv<CaptionArgv> =>
    (y as Argv<object>)
      .positional('images', { type: 'string', array: true, demandOption: true, describe: 'image files' })
      .option('json', { type: 'boolean', default: false, describe: 'one JSON object a line: {"image", "caption"}' })
      .options(MODEL_OPTIONS) as unknown as Argv<CaptionArgv>,
  handler: async (argv) => {
    process.exitCode = await runCaption({ ...argv, maxLen: argv['max-len'], device: argv.device, autocast: argv.autocast, colorManaged: argv['color-managed'] });
  },
};
