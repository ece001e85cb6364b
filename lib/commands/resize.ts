/**
 * `torchcap resize`: the book's preprocessing step (`reshape_images`), every image of a folder to
 * 256 x 256 with Pillow's ANTIALIAS, saved as Pillow saves it (JPEG quality 75, 4:2:0).
 *
 *   torchcap resize --input data/train2014 --output data/resized_images [--size 256]
 *                   [--concurrency N] [--quality 75] [--subsampling 4:2:0] [--color-managed]
 *                   [--auto-orient] [--quiet]
 *
 * Exits 0 when every image is resized or already was, also when some files could not be read
 * (they are listed at the end); exits 1 when the input folder is missing, holds no files, none of
 * its files could be read, or the output cannot be written.
 */
import * as os from 'os';
import type { Argv, CommandModule } from 'yargs';
import { createProgress } from '../util/progress';
import { DEFAULT_JPEG_QUALITY, DEFAULT_SIZE, DEFAULT_SUBSAMPLING, DEFAULT_WEBP_QUALITY, resizeImages, type JpegSubsampling } from '../prepare/resize';
import { processIO, type CommandIO } from './io';
import { optionalInt } from '../util/checks';

export interface ResizeCommandOptions {
  input: string;
  output: string;
  size?: number;
  concurrency?: number;
  quality?: number;
  subsampling?: JpegSubsampling;
  colorManaged?: boolean;
  autoOrient?: boolean;
  quiet?: boolean;
}

/** Runs the command and returns its exit status (see the module comment). */
export async function runResize(opts: ResizeCommandOptions, io: CommandIO = processIO): Promise<number> {
  const progress = createProgress({ label: 'resize', total: 0, itemName: 'img', quiet: opts.quiet });
  try {
    // The flags, in their own names (resizeImages names its options).
    optionalInt(opts.size, '--size', 1, 16383);
    optionalInt(opts.concurrency, '--concurrency', 1, 1024);
    optionalInt(opts.quality, '--quality', 1, 100);
    const r = await resizeImages({
      input: opts.input,
      output: opts.output,
      size: opts.size,
      concurrency: opts.concurrency,
      jpegQuality: opts.quality,
      subsampling: opts.subsampling,
      colorManaged: opts.colorManaged,
      autoOrient: opts.autoOrient,
      onProgress: (p) => progress.update(p.done + p.skipped + p.failed, p.total),
    });
    progress.stop();
    if (r.total === 0) {
      io.err(`torchcap resize: no files in ${opts.input}\n`);
      return 1;
    }
    const rate = r.done > 0 && r.seconds > 0 ? `, ${(r.done / r.seconds).toFixed(1)} images/s` : '';
    io.out(
      `resized ${r.done}, already done ${r.skipped}, failed ${r.failed.length} of ${r.total} files in ${r.seconds.toFixed(1)} s${rate}; output in ${opts.output}\n`,
    );
    if (r.failed.length > 0) {
      io.out(`${r.failed.length} file${r.failed.length === 1 ? '' : 's'} could not be resized:\n`);
      for (const f of r.failed) io.out(`  ${f.file}: ${f.reason}\n`);
    }
    if (r.done + r.skipped === 0) {
      io.err(`torchcap resize: none of the ${r.total} files in ${opts.input} could be read as an image\n`);
      return 1;
    }
    return 0;
  } catch (e) {
    progress.stop();
    io.err(`torchcap resize: ${(e as Error).message}\n`);
    return 1;
  }
}

interface ResizeArgv {
  input: string;
  output: string;
  size: number;
  concurrency: number;
  quality?: number;
  subsampling: JpegSubsampling;
  'color-managed': boolean;
  'auto-orient': boolean;
  quiet: boolean;
}

/** The `resize` command for the torchcap CLI (yargs). */
export const resizeCommand: CommandModule<object, ResizeArgv> = {
  command: 'resize',
  describe:
    "Resize every image of a folder to SIZE x SIZE as the book's reshape_images does (Pillow's ANTIALIAS, aspect ratio not kept, saved as Pillow saves it), same file names, in parallel; reruns skip finished files",
  builder: (y: Argv<object>): Argv<ResizeArgv> =>
    y
      .option('input', { type: 'string', demandOption: true, describe: 'folder of source images (e.g. data/train2014)' })
      .option('output', { type: 'string', demandOption: true, describe: 'folder for the resized images (created if missing)' })
      .option('size', { type: 'number', default: DEFAULT_SIZE, describe: 'width and height of the output' })
      .option('concurrency', {
        type: 'number',
        default: os.availableParallelism(),
        defaultDescription: 'the number of cores',
        describe: 'images resized at once',
      })
      .option('quality', {
        type: 'number',
        defaultDescription: `${DEFAULT_JPEG_QUALITY} for JPEG, ${DEFAULT_WEBP_QUALITY} for WebP (Pillow's, the book's)`,
        describe: 'JPEG/WebP quality (1-100); 90 with --subsampling 4:4:4 keeps more detail',
      })
      .option('subsampling', {
        type: 'string',
        choices: ['4:2:0', '4:2:2', '4:4:4'] as const,
        default: DEFAULT_SUBSAMPLING,
        describe: "JPEG chroma subsampling (4:2:0 is Pillow's default, the book's)",
      })
      .option('color-managed', {
        type: 'boolean',
        default: false,
        describe: 'convert embedded ICC profiles (and CMYK) to sRGB first (the book does not: Pillow ignores them)',
      })
      .option('auto-orient', {
        type: 'boolean',
        default: false,
        describe: 'apply the EXIF Orientation tag (the book does not: PIL keeps the stored pixels)',
      })
      .option('quiet', { type: 'boolean', default: false, describe: 'no progress output' })
      .example('$0 resize --input data/train2014 --output data/resized_images', 'the book\'s preprocessing'),
  handler: async (argv) => {
    process.exitCode = await runResize({
      input: argv.input,
      output: argv.output,
      size: argv.size,
      concurrency: argv.concurrency,
      quality: argv.quality,
      subsampling: argv.subsampling,
      colorManaged: argv['color-managed'],
      autoOrient: argv['auto-orient'],
      quiet: argv.quiet,
    });
  },
};
