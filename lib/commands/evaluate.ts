/**
 * `torchcap evaluate`: scores generated captions with the COCO caption metrics, as coco-caption
 * reports them.
 *
 *   torchcap evaluate --references captions_val2017.json --results results.json [--json]
 *                     [--per-image scores.json] [--meteor-jar meteor-1.5.jar]
 */
import * as fs from 'fs';
import type { Argv, CommandModule } from 'yargs';
import { type CaptionEvaluation, evaluateCaptions } from '../evaluate';
import { EvaluationInputError, type ImageId, readReferencesFile, readResultsFile } from '../evaluate/inputs';
import { processIO, type CommandIO } from './io';

export interface EvaluateCommandOptions {
  references: string;
  results: string;
  json?: boolean;
  perImage?: string;
  meteorJar?: string;
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

/**
 * Runs the command and returns its exit status: 0 on success, 1 when an input is unusable or a
 * file cannot be written (the reason goes to `io.err`).
 */
export async function runEvaluate(opts: EvaluateCommandOptions, io: CommandIO = processIO): Promise<number> {
  try {
    const refs = readReferencesFile(opts.references);
    const results = readResultsFile(opts.results);
    const ev = await evaluateCaptions(refs, results, { jar: opts.meteorJar });
    let referenceCount = 0;
    const evaluated = new Set<ImageId>(ev.perImage.map((p) => p.image_id));
    for (const [id, caps] of refs) if (evaluated.has(id)) referenceCount += caps.length;
    if (opts.perImage !== undefined) {
      const captions = new Map<ImageId, string>(results.map((r) => [r.image_id, r.caption]));
      const rows = ev.perImage.map((p) => ({ ...p, caption: captions.get(p.image_id) }));
      try {
        fs.writeFileSync(opts.perImage, JSON.stringify(rows, null, 1) + '\n');
      } catch (e) {
        throw new EvaluationInputError(`cannot write the per-image scores to ${opts.perImage}: ${(e as Error).message}`);
      }
    }
    if (opts.json) {
      io.out(JSON.stringify(toJsonSummary(ev)) + '\n');
      if (opts.perImage !== undefined) io.err(`per-image scores written to ${opts.perImage}\n`);
    } else {
      io.out(formatTable(ev, referenceCount));
      if (opts.perImage !== undefined) io.out(`per-image scores written to ${opts.perImage}\n`);
    }
    return 0;
  } catch (e) {
    if (e instanceof EvaluationInputError) {
      io.err(`torchcap evaluate: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}

interface EvaluateArgv {
  references: string;
  results: string;
  json: boolean;
  'per-image': string | undefined;
  'meteor-jar': string | undefined;
}

/** The `evaluate` command for the torchcap CLI (yargs). */
export const evaluateCommand: CommandModule<object, EvaluateArgv> = {
  command: 'evaluate',
  describe: 'Score captions with the COCO caption metrics (BLEU-1..4, ROUGE-L, CIDEr-D; METEOR with Java and its jar), computed as coco-caption does',
  builder: (y: Argv<object>): Argv<EvaluateArgv> =>
    y
      .option('references', {
        type: 'string',
        demandOption: true,
        describe: 'reference captions in COCO captions format (e.g. captions_val2017.json)',
      })
      .option('results', {
        type: 'string',
        demandOption: true,
        describe: 'generated captions: a JSON array of {"image_id", "caption"}, one per image',
      })
      .option('json', { type: 'boolean', default: false, describe: 'print one JSON object keyed by metric name' })
      .option('per-image', { type: 'string', describe: 'also write each image\'s scores to this JSON file' })
      .option('meteor-jar', {
        type: 'string',
        describe: 'METEOR 1.5 jar (with its data/ folder); default: TORCHCAP_METEOR_JAR. Needs Java',
      }),
  handler: async (argv) => {
    process.exitCode = await runEvaluate({
      references: argv.references,
      results: argv.results,
      json: argv.json,
      perImage: argv['per-image'],
      meteorJar: argv['meteor-jar'],
    });
  },
};
