/**
 * `torchcap download coco`: the COCO 2014 images and captions the book trains on.
 *
 *   torchcap download coco --dir data [--parts train2014 val2014 annotations]
 *                          [--base-url URL] [--retries 5] [--quiet]
 *
 * Writes `DIR/train2014.zip`, `DIR/val2014.zip`, `DIR/annotations_trainval2014.zip` and their
 * contents `DIR/train2014/`, `DIR/val2014/`, `DIR/annotations/captions_{train,val}2014.json`.
 * Run it again after an interruption: it resumes the download and skips what is done. Exits 1
 * with the reason when a part cannot be downloaded or extracted.
 */
import type { Argv, CommandModule } from 'yargs';
import { COCO_FILES, COCO_PARTS, type CocoPart, type CocoProgress, cocoBaseUrl, downloadCoco } from '../prepare/coco';
import { type ProgressBar, createProgress, formatBytes } from '../util/progress';
import { commandFailed, processIO, type CommandIO } from './io';
import { checkInt } from '../util/checks';

export interface DownloadCocoOptions {
  dir: string;
  parts?: readonly CocoPart[];
  baseUrl?: string;
  retries?: number;
  quiet?: boolean;
}

/** Runs `download coco` and returns its exit status. */
export async function runDownloadCoco(opts: DownloadCocoOptions, io: CommandIO = processIO): Promise<number> {
  let bar: ProgressBar | undefined;
  let barKey = '';
  const onProgress = (p: CocoProgress): void => {
    const key = `${p.part} ${p.phase}`;
    if (key !== barKey) {
      bar?.stop();
      barKey = key;
      bar = createProgress({
        label: `${p.part} ${p.phase === 'download' ? 'download' : 'extract '}`,
        total: p.total ?? 0,
        unit: 'bytes',
        start: p.done,
        quiet: opts.quiet,
      });
    }
    bar!.update(p.done, p.total);
  };
  const notice = (message: string): void => {
    if (bar !== undefined && !opts.quiet) bar.log(message);
    else io.err(`${message}\n`);
  };
  try {
    if (opts.retries !== undefined) checkInt(opts.retries, '--retries', 0);
    const base = cocoBaseUrl(opts.baseUrl);
    if (!opts.quiet) io.err(`downloading COCO 2014 (${(opts.parts ?? COCO_PARTS).join(', ')}) from ${base} into ${opts.dir}\n`);
    const results = await downloadCoco({ dir: opts.dir, parts: opts.parts, baseUrl: opts.baseUrl, retries: opts.retries, onProgress, onNotice: notice });
    bar?.stop();
    for (const r of results) {
      const got = r.download.status === 'complete' ? 'already downloaded' : r.download.resumedFrom > 0 ? `downloaded (resumed at ${formatBytes(r.download.resumedFrom)})` : 'downloaded';
      io.out(
        `${r.part}: ${r.zip} ${formatBytes(r.download.bytes)} ${got}; ${r.extract.extracted} files extracted, ${r.extract.skipped} already there -> ${COCO_FILES[r.part].contents}\n`,
      );
    }
    return 0;
  } catch (e) {
    bar?.stop();
    return commandFailed('download coco', io, e);
  }
}

interface CocoArgv {
  dir: string;
  parts: CocoPart[];
  'base-url': string | undefined;
  retries: number;
  quiet: boolean;
}

const cocoCommand: CommandModule<object, CocoArgv> = {
  command: 'coco',
  describe: 'COCO 2014: train2014.zip (13 GB), val2014.zip (6 GB) and the caption annotations; resumable, size-checked, extracted',
  builder: (y: Argv<object>): Argv<CocoArgv> =>
    y
      .option('dir', { type: 'string', demandOption: true, describe: 'folder for the zips and the extracted data' })
      .option('parts', {
        type: 'array',
        string: true,
        choices: COCO_PARTS as CocoPart[],
        default: [...COCO_PARTS] as CocoPart[],
        describe: 'what to get',
      })
      .option('base-url', {
        type: 'string',
        describe: 'where the files are (default: TORCHCAP_COCO_URL, else http://images.cocodataset.org); sizes are checked against the official ones only for the official host',
      })
      .option('retries', { type: 'number', default: 5, describe: 'retries in a row that bring no new byte before giving up' })
      .option('quiet', { type: 'boolean', default: false, describe: 'no progress output' }) as unknown as Argv<CocoArgv>,
  handler: async (argv) => {
    process.exitCode = await runDownloadCoco({
      dir: argv.dir,
      parts: argv.parts,
      baseUrl: argv['base-url'],
      retries: argv.retries,
      quiet: argv.quiet,
    });
  },
};

/** The `download` command for the torchcap CLI (yargs): `download coco ...`. */
export const downloadCommand: CommandModule<object, object> = {
  command: 'download',
  describe: 'Download a dataset (coco)',
  builder: (y: Argv<object>) => y.command(cocoCommand).demandCommand(1, 'name what to download: coco'),
  handler: () => undefined,
};
