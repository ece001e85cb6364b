/**
 * `torchcap evaluate`: scores captions with the COCO caption metrics, as coco-caption reports them.
 *
 * From a trained model, in one command: every image the references name (found in --images by its
 * file name), or those of a split, sorted by image id, the first --limit of them, captioned in
 * batches and scored; images missing from the folder or unreadable are listed and left out.
 *
 *   torchcap evaluate --encoder E --decoder D --vocab V --references captions_val2014.json \
 *                     --images val2014 [--split FILE] [--limit N] [--beam K] [--batch-size B]
 *                     [--device cpu|cuda|auto] [--results-out results.json] [--report report.html]
 *
 * From captions made elsewhere (COCO's results format):
 *
 *   torchcap evaluate --references captions_val2017.json --results results.json
 *
 * Both: [--json] [--per-image scores.json] [--meteor-jar meteor-1.5.jar].
 */
import * as fs from 'fs';
import * as path from 'path';
import type { Argv, CommandModule } from 'yargs';
import {
  type CaptionEvaluation, type CaptionResult, type EvaluationSet, type ImageId,
  EvaluationInputError, evaluateCaptions, readEvaluationSet, readReferencesFile, readResultsFile, resultsToJson, writeEvaluationReport,
} from '../evaluate';
import { CAPTION_DEFAULTS, Captioner } from '../captioner';
import type { Autocast } from '../model';
import { optionalInt, positiveInt } from '../util/checks';
import { writeFileAtomic } from '../util/files';
import { createProgress } from '../util/progress';
import { MODEL_OPTIONS, modelFlags, parseBackbone, type ModelArgv } from './caption';
import { commandFailed, processIO, type CommandIO } from './io';

export interface EvaluateCommandOptions {
  references: string;
  /** Captions made elsewhere, COCO's results format. */
  results?: string;
  /** The folder of the references' images: caption them with the model first. */
  images?: string;
  encoder?: string;
  decoder?: string;
  vocab?: string;
  backbone?: string;
  beam?: number;
  maxLen?: number;
  device?: string;
  autocast?: Autocast;
  colorManaged?: boolean;
  batchSize?: number;
  /** Image ids or file names to evaluate (a file listing them). */
  split?: string;
  /** The first N images by id. */
  limit?: number;
  /** Write the generated captions here (COCO's results format). */
  resultsOut?: string;
  /** Write the HTML report here. */
  report?: string;
  json?: boolean;
  perImage?: string;
  meteorJar?: string;
  /** No progress display. */
  quiet?: boolean;
}

const ORDER = ['Bleu_1', 'Bleu_2', 'Bleu_3', 'Bleu_4', 'METEOR', 'ROUGE_L', 'CIDEr', 'SPICE'] as const;

function scoreOf(ev: CaptionEvaluation, name: (typeof ORDER)[number]): number | undefined {
  return name === 'SPICE' ? undefined : ev.metrics[name];
}

function reasonOf(ev: CaptionEvaluation, name: (typeof ORDER)[number]): string {
  const r = name === 'METEOR' ? ev.unavailable.METEOR : name === 'SPICE' ? ev.unavailable.SPICE : undefined;
  return r ?? 'not computed';
}

/** The table printed without `--json`. */
export function formatTable(ev: CaptionEvaluation, referenceCount: number): string {
  const lines = [`COCO caption metrics (computed as coco-caption does): ${ev.images} images, ${referenceCount} reference captions`];
  const width = Math.max(...ORDER.map((n) => n.length)) + 2;
  lines.push(`${'metric'.padEnd(width)}score`);
  for (const name of ORDER) {
    const v = scoreOf(ev, name);
    lines.push(`${name.padEnd(width)}${v === undefined ? `unavailable: ${reasonOf(ev, name)}` : v.toFixed(6)}`);
  }
  const s = ev.bleuStats;
  lines.push(
    `BLEU statistics: testlen ${s.testlen}, reflen ${s.reflen}, guess [${s.guess.join(', ')}], correct [${s.correct.join(', ')}], ratio ${s.ratio}`,
  );
  return lines.join('\n') + '\n';
}

/** The object printed with `--json`: the toolkit's metric names as keys (null when not computed). */
export function toJsonSummary(ev: CaptionEvaluation): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const name of ORDER) out[name] = scoreOf(ev, name) ?? null;
  out.images = ev.images;
  out.bleu = ev.bleuStats;
  out.unavailable = ev.unavailable;
  return out;
}

/** A file the command will write: refused up front (before hours of captioning) when it cannot be. */
function checkOutput(file: string | undefined, what: string): void {
  if (file === undefined) return;
  const abs = path.resolve(file);
  if (fs.statSync(abs, { throwIfNoEntry: false })?.isDirectory()) throw new EvaluationInputError(`cannot write ${what} to ${file}: it is a directory`);
  if (!fs.statSync(path.dirname(abs), { throwIfNoEntry: false })?.isDirectory()) throw new EvaluationInputError(`cannot write ${what} to ${file}: its folder ${path.dirname(abs)} does not exist`);
}

async function writeOutput(file: string, what: string, data: string): Promise<void> {
  try {
    await writeFileAtomic(file, data);
  } catch (e) {
    throw new EvaluationInputError(`cannot write ${what} to ${file}: ${(e as Error).message}`);
  }
}

/** What both modes print and write once the captions are scored. */
async function reportScores(
  ev: CaptionEvaluation,
  results: readonly CaptionResult[],
  referenceCount: number,
  opts: EvaluateCommandOptions,
  io: CommandIO,
  extra: { lines?: string[]; json?: Record<string, unknown>; written?: string[] } = {},
): Promise<void> {
  const written = [...(extra.written ?? [])];
  if (opts.perImage !== undefined) {
    const captions = new Map<ImageId, string>(results.map((r) => [r.image_id, r.caption]));
    const rows = ev.perImage.map((p) => ({ ...p, caption: captions.get(p.image_id) }));
    await writeOutput(opts.perImage, 'the per-image scores', JSON.stringify(rows, null, 1) + '\n');
    written.push(`per-image scores written to ${opts.perImage}`);
  }
  if (opts.json) {
    io.out(JSON.stringify({ ...toJsonSummary(ev), ...extra.json }) + '\n');
    for (const w of written) io.err(`${w}\n`);
  } else {
    for (const l of extra.lines ?? []) io.out(`${l}\n`);
    io.out(formatTable(ev, referenceCount));
    for (const w of written) io.out(`${w}\n`);
  }
}

/** `--results`: scores captions made elsewhere. */
async function scoreResults(opts: EvaluateCommandOptions & { results: string }, io: CommandIO): Promise<number> {
  const refs = readReferencesFile(opts.references);
  const results = readResultsFile(opts.results);
  const ev = await evaluateCaptions(refs, results, { jar: opts.meteorJar });
  let referenceCount = 0;
  const evaluated = new Set<ImageId>(ev.perImage.map((p) => p.image_id));
  for (const [id, caps] of refs) if (evaluated.has(id)) referenceCount += caps.length;
  await reportScores(ev, results, referenceCount, opts, io);
  return 0;
}

/** `--images`: captions the references' images with the model, then scores them. */
async function scoreModel(opts: EvaluateCommandOptions & { images: string }, io: CommandIO): Promise<number> {
  // Everything that can be checked is, before the model loads and the captioning starts.
  const missing = (['encoder', 'decoder', 'vocab'] as const).filter((k) => opts[k] === undefined);
  if (missing.length) throw new EvaluationInputError(`evaluating a model needs ${missing.map((k) => `--${k}`).join(', ')} (or give --results: captions made elsewhere)`);
  optionalInt(opts.beam, '--beam', 1);
  optionalInt(opts.maxLen, '--max-len', 1);
  optionalInt(opts.limit, '--limit', 1);
  const batchSize = positiveInt(opts.batchSize, '--batch-size', CAPTION_DEFAULTS.batchSize);
  const backbone = parseBackbone(opts.backbone);
  checkOutput(opts.resultsOut, 'the results');
  checkOutput(opts.perImage, 'the per-image scores');
  checkOutput(opts.report, 'the report');
  const set: EvaluationSet = readEvaluationSet(opts.references, { images: opts.images, split: opts.split, limit: opts.limit });

  const captioner = await Captioner.load({
    encoder: opts.encoder!,
    decoder: opts.decoder!,
    vocab: opts.vocab!,
    backbone,
    maxLen: opts.maxLen,
    device: opts.device,
    autocast: opts.autocast,
    colorManaged: opts.colorManaged,
    batchSize,
  });
  const bar = createProgress({ label: 'evaluate', total: set.images.length, itemName: 'img', quiet: opts.quiet });
  let outcome;
  try {
    outcome = await captioner.evaluate(set, { beam: opts.beam, jar: opts.meteorJar, onProgress: (done) => bar.update(done) });
  } finally {
    bar.stop();
    await captioner.dispose();
  }
  const { evaluation: ev, results, failed } = outcome;
  for (const f of failed) io.err(`torchcap evaluate: not scored: ${f.reason}\n`);

  const written: string[] = [];
  if (opts.resultsOut !== undefined) {
    await writeOutput(opts.resultsOut, 'the results', resultsToJson(results));
    written.push(`results (${results.length} captions) written to ${opts.resultsOut}`);
  }
  if (opts.report !== undefined) {
    const settings = `${opts.beam && opts.beam > 1 ? `beam search, width ${opts.beam}` : 'greedy decoding'}, batches of ${batchSize}, on ${captioner.device}`;
    let r;
    try {
      r = await writeEvaluationReport({ file: opts.report, set, evaluation: ev, results, failed, notes: [`encoder ${opts.encoder}, decoder ${opts.decoder}, vocabulary ${opts.vocab}`, settings] });
    } catch (e) {
      throw new EvaluationInputError(`cannot write the report to ${opts.report}: ${(e as Error).message}`);
    }
    written.push(`report written to ${opts.report}`);
    for (const m of r.missingImages) io.err(`torchcap evaluate: the report shows no picture for ${m.image}: ${m.reason}\n`);
  }
  const referenceCount = results.reduce((n, r) => n + set.referencesOf(r.image_id).length, 0);
  const names = failed.slice(0, 10).map((f) => path.basename(f.path)).join(', ') + (failed.length > 10 ? ` and ${failed.length - 10} more` : '');
  const summary = `scored ${results.length} of ${set.images.length} images` +
    (failed.length ? `; ${failed.length} not scored (missing from ${opts.images} or unreadable, each named on stderr with the reason): ${names}` : '');
  await reportScores(ev, results, referenceCount, opts, io, {
    lines: [summary],
    json: { scored: results.length, notScored: failed.map((f) => ({ image_id: f.id, image: f.path, reason: f.reason })) },
    written,
  });
  return 0;
}

/**
 * Runs the command and returns its exit status: 0 when scores were printed (images that could not
 * be read are listed and left out), 1 when an input is unusable or a file cannot be written (the
 * reason goes to `io.err`).
 */
export async function runEvaluate(opts: EvaluateCommandOptions, io: CommandIO = processIO): Promise<number> {
  try {
    if ((opts.results === undefined) === (opts.images === undefined)) {
      throw new EvaluationInputError('give either --results (captions made elsewhere) or --images with --encoder, --decoder and --vocab (caption the references\' images with a model)');
    }
    if (opts.results !== undefined) {
      const modelOnly = (['encoder', 'decoder', 'vocab', 'split', 'limit', 'resultsOut', 'report'] as const).filter((k) => opts[k] !== undefined);
      if (modelOnly.length) throw new EvaluationInputError(`${modelOnly.map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ')} go${modelOnly.length > 1 ? '' : 'es'} with --images (evaluating a model), not --results`);
      return await scoreResults({ ...opts, results: opts.results }, io);
    }
    return await scoreModel({ ...opts, images: opts.images! }, io);
  } catch (e) {
    return commandFailed('evaluate', io, e);
  }
}

interface EvaluateArgv extends ModelArgv {
  references: string;
  results?: string;
  images?: string;
  'batch-size': number;
  split?: string;
  limit?: number;
  'results-out'?: string;
  report?: string;
  json: boolean;
  'per-image'?: string;
  'meteor-jar'?: string;
  quiet: boolean;
}

const { encoder: encoderOption, decoder: decoderOption, vocab: vocabOption, ...SAMPLING_OPTIONS } = MODEL_OPTIONS;

/** The `evaluate` command for the torchcap CLI (yargs). */
export const evaluateCommand: CommandModule<object, EvaluateArgv> = {
  command: 'evaluate',
  describe: 'Score a model (or captions made elsewhere) with the COCO caption metrics (BLEU-1..4, ROUGE-L, CIDEr-D; METEOR with Java and its jar), computed as coco-caption does',
  builder: (y: Argv<object>): Argv<EvaluateArgv> =>
    y
      .option('references', {
        type: 'string',
        demandOption: true,
        describe: 'reference captions in COCO captions format (e.g. captions_val2014.json)',
      })
      .option('images', { type: 'string', describe: "folder of the references' images (by their file_name): caption them with the model, then score" })
      .option('results', {
        type: 'string',
        describe: 'or captions made elsewhere: a JSON array of {"image_id", "caption"}, one per image',
      })
      .options({
        encoder: { ...encoderOption, demandOption: false, describe: `${encoderOption.describe} (with --images)` },
        decoder: { ...decoderOption, demandOption: false, describe: `${decoderOption.describe} (with --images)` },
        vocab: { ...vocabOption, demandOption: false, describe: `${vocabOption.describe} (with --images)` },
        ...SAMPLING_OPTIONS,
      })
      .option('batch-size', { type: 'number', default: CAPTION_DEFAULTS.batchSize, describe: 'images per encoder pass' })
      .option('split', { type: 'string', describe: 'only these images: a file of image ids or file names, one a line (or a JSON array)' })
      .option('limit', { type: 'number', describe: 'the first N images by image id (after --split)' })
      .option('results-out', { type: 'string', describe: "write the model's captions here, COCO's results format" })
      .option('report', { type: 'string', describe: 'write an HTML report here: the scores, the best and worst 20 captions by CIDEr-D with their images and references' })
      .option('json', { type: 'boolean', default: false, describe: 'print one JSON object keyed by metric name' })
      .option('per-image', { type: 'string', describe: 'also write each image\'s scores to this JSON file' })
      .option('meteor-jar', {
        type: 'string',
        describe: 'METEOR 1.5 jar (with its data/ folder); default: TORCHCAP_METEOR_JAR. Needs Java',
      })
      .option('quiet', { type: 'boolean', default: false, describe: 'no progress display' }) as unknown as Argv<EvaluateArgv>,
  handler: async (argv) => {
    process.exitCode = await runEvaluate({
      references: argv.references,
      results: argv.results,
      images: argv.images,
      ...modelFlags(argv),
      batchSize: argv['batch-size'],
      split: argv.split,
      limit: argv.limit,
      resultsOut: argv['results-out'],
      report: argv.report,
      json: argv.json,
      perImage: argv['per-image'],
      meteorJar: argv['meteor-jar'],
      quiet: argv.quiet,
    });
  },
};
