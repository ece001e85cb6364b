/**
 * `torchcap caption`: captions for images, from torchcap checkpoints or the book's own.
 *
 *   torchcap caption photo.jpg [more.jpg ...] --encoder encoder-2-3000.ckpt \
 *       --decoder decoder-2-3000.ckpt --vocab vocab.json [--beam 3] [--json]
 *       [--format text|jsonl|coco --references captions_val2014.json]
 *
 * Prints `IMAGE: caption` lines; with --json (--format jsonl) one object a line:
 * {"image": ..., "caption": ...}; with --format coco one JSON array of {"image_id", "caption"}, COCO's
 * results format (`torchcap evaluate --results` reads it), each image's id found in --references by
 * its file name. An unreadable image is named on stderr (the others are still captioned) and the
 * exit status is 1.
 */
import type { Argv, CommandModule, Options } from 'yargs';
import { CAPTION_DEFAULTS, Captioner, type CaptionOutcome } from '../captioner';
import { RESNET_DEPTHS, type ResNetDepth } from '../nn/resnet';
import type { Autocast } from '../model';
import { commandFailed, processIO, type CommandIO } from './io';
import { optionalInt } from '../util/checks';
import { cocoImageFiles, imageResolver, readJsonFile, resultsToJson, EvaluationInputError, type ImageId } from '../evaluate';

export const CAPTION_FORMATS = ['text', 'jsonl', 'coco'] as const;
export type CaptionFormat = (typeof CAPTION_FORMATS)[number];

export interface CaptionCommandOptions {
  images: string[];
  encoder: string;
  decoder: string;
  vocab: string;
  backbone?: string;
  beam?: number;
  /** Same as format 'jsonl'. */
  json?: boolean;
  /** text (default), jsonl, or coco (needs `references`). */
  format?: CaptionFormat;
  /** COCO captions file whose `images` give the ids of the images, by file name (format coco). */
  references?: string;
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

/** The output format asked for, checked against --json and --references. */
function formatOf(opts: CaptionCommandOptions): CaptionFormat {
  if (opts.format !== undefined && !CAPTION_FORMATS.includes(opts.format)) throw new TypeError(`--format must be one of ${CAPTION_FORMATS.join(', ')}, not ${String(opts.format)}`);
  if (opts.json && opts.format !== undefined && opts.format !== 'jsonl') throw new TypeError(`--json means --format jsonl: it cannot be used with --format ${opts.format}`);
  const format = opts.format ?? (opts.json ? 'jsonl' : 'text');
  if (format === 'coco' && opts.references === undefined) throw new TypeError('--format coco needs --references (a COCO captions file naming the images) to find each image\'s id');
  if (format !== 'coco' && opts.references !== undefined) throw new TypeError('--references is for --format coco');
  return format;
}

/** Each image's COCO id, found in the references by its file name; every image must be there, once. */
function cocoIds(images: readonly string[], references: string): ImageId[] {
  const resolve = imageResolver(cocoImageFiles(readJsonFile(references, 'references'), references), { byId: false });
  const ids = images.map((img) => resolve(img));
  const unknown = images.filter((_, i) => ids[i] === undefined);
  if (unknown.length > 0) {
    const shown = unknown.slice(0, 5).join(', ') + (unknown.length > 5 ? ` and ${unknown.length - 5} more` : '');
    throw new EvaluationInputError(`${unknown.length} image${unknown.length > 1 ? 's are' : ' is'} not named in ${references} (by file name): ${shown}`);
  }
  const first = new Map<ImageId, string>();
  images.forEach((img, i) => {
    const other = first.get(ids[i]!);
    if (other !== undefined) throw new EvaluationInputError(`${other} and ${img} are both image ${JSON.stringify(ids[i])} of ${references}: COCO results have one caption per image`);
    first.set(ids[i]!, img);
  });
  return ids as ImageId[];
}

export async function runCaption(opts: CaptionCommandOptions, io: CommandIO = processIO): Promise<number> {
  let captioner: Captioner | undefined;
  let outcomes: CaptionOutcome[];
  let format: CaptionFormat;
  let ids: ImageId[] | undefined;
  try {
    // Flags (and the references) are checked before the model loads (which takes seconds).
    optionalInt(opts.beam, '--beam', 1);
    optionalInt(opts.maxLen, '--max-len', 1);
    format = formatOf(opts);
    if (format === 'coco') ids = cocoIds(opts.images, opts.references!);
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
  const results: { image_id: ImageId; caption: string }[] = [];
  outcomes.forEach((o, i) => {
    const image = opts.images[i];
    if ('error' in o) {
      failed++;
      io.err(`torchcap caption: ${o.error}\n`);
    } else if (format === 'coco') results.push({ image_id: ids![i], caption: o.caption });
    else if (format === 'jsonl') io.out(JSON.stringify({ image, caption: o.caption }) + '\n');
    else io.out(`${image}: ${o.caption}\n`);
  });
  // The images that could not be read are left out (and named on stderr).
  if (format === 'coco') io.out(resultsToJson(results));
  return failed ? 1 : 0;
}

/** What yargs gives for MODEL_OPTIONS. */
export interface ModelArgv {
  encoder?: string;
  decoder?: string;
  vocab?: string;
  backbone?: string;
  beam?: number;
  'max-len'?: number;
  device?: string;
  autocast?: Autocast;
  'color-managed'?: boolean;
}

interface CaptionArgv extends ModelArgv {
  images: string[];
  encoder: string;
  decoder: string;
  vocab: string;
  json: boolean;
  format?: CaptionFormat;
  references?: string;
}

/** The flags that name a trained model and how it captions: shared by `caption`, `evaluate` and `serve`. */
export const MODEL_OPTIONS = {
  encoder: { type: 'string', demandOption: true, describe: 'encoder checkpoint (encoder-E-S.ckpt)' },
  decoder: { type: 'string', demandOption: true, describe: 'decoder checkpoint (decoder-E-S.ckpt)' },
  vocab: { type: 'string', demandOption: true, describe: "vocabulary: torchcap JSON, a JSON array of words, or the book's vocabulary.pkl" },
  backbone: { type: 'string', describe: 'resnet18|34|50|101|152 (read from the checkpoint when omitted)' },
  beam: { type: 'number', default: CAPTION_DEFAULTS.beam, describe: 'beam width (1: greedy, as the book)' },
  'max-len': { type: 'number', describe: `words per caption at most (default ${CAPTION_DEFAULTS.maxLen})` },
  device: { type: 'string', default: CAPTION_DEFAULTS.device, describe: 'cpu, cuda, cuda:N, or auto (a GPU when there is one)' },
  autocast: { choices: ['bf16', 'fp16'] as const, describe: 'the backbone in mixed precision: bf16 or fp16 on CUDA, bf16 on a CPU with AVX-512 BF16' },
  'color-managed': { type: 'boolean', default: false, describe: 'convert embedded ICC profiles to sRGB (the book does not: Pillow ignores them)' },
} as const satisfies Record<string, Options>;

/** The MODEL_OPTIONS flags as a command's options. */
export function modelFlags<A extends ModelArgv>(argv: A): Pick<A, 'encoder' | 'decoder' | 'vocab' | 'backbone' | 'beam' | 'device' | 'autocast'> & { maxLen: A['max-len']; colorManaged: A['color-managed'] } {
  return { encoder: argv.encoder, decoder: argv.decoder, vocab: argv.vocab, backbone: argv.backbone, beam: argv.beam, maxLen: argv['max-len'], device: argv.device, autocast: argv.autocast, colorManaged: argv['color-managed'] };
}

export const captionCommand: CommandModule<object, CaptionArgv> = {
  command: 'caption <images..>',
  describe: 'Caption images with a trained encoder and decoder (torchcap checkpoints or the book\'s .ckpt files)',
  builder: (y: Argv<object>): Argv<CaptionArgv> =>
    (y as Argv<object>)
      .positional('images', { type: 'string', array: true, demandOption: true, default: undefined, describe: 'image files' })
      .option('json', { type: 'boolean', default: false, describe: 'one JSON object a line: {"image", "caption"} (--format jsonl)' })
      .option('format', { choices: CAPTION_FORMATS, describe: 'text (IMAGE: caption), jsonl (as --json), or coco: a JSON array of {"image_id", "caption"} for `torchcap evaluate --results`' })
      .option('references', { type: 'string', describe: "with --format coco: COCO captions file whose images give each image's id, by file name" })
      .options(MODEL_OPTIONS) as unknown as Argv<CaptionArgv>,
  handler: async (argv) => {
    process.exitCode = await runCaption({ images: argv.images, json: argv.json, format: argv.format, references: argv.references, ...modelFlags(argv) });
  },
};
