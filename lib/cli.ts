#!/usr/bin/env node
/** The torchcap command line (yargs). Each command lives in its own module. */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { vocabCommand } from './commands/vocab';
import { resizeCommand } from './commands/resize';
import { downloadCommand } from './commands/download';
import { trainCommand } from './commands/train';
import { captionCommand } from './commands/caption';
import { evaluateCommand } from './commands/evaluate';
import { demoCommand } from './commands/demo';
import { serveCommand } from './commands/serve';
import { versions } from './core/system';
import { kebabCase } from './commands/io';

/** A flag that takes one value, given more than once ("--vocab a --vocab b"): an error naming it, not an array the command never expected. */
export function repeatedFlags(argv: Record<string, unknown>, arrayOptions: readonly string[]): string[] {
  const arrays = new Set(arrayOptions);
  const names = Object.keys(argv).filter((k) => k !== '_' && k !== '$0' && Array.isArray(argv[k]) && !arrays.has(k) && !arrays.has(kebabCase(k)));
  return [...new Set(names.map((k) => kebabCase(k)))];
}

export function main(argv: string[] = hideBin(process.argv)): void {
  void yargs(argv)
    .scriptName('torchcap')
    // yargs hands a check its parsed options as the second argument (typed as aliases).
    .check((args, options: unknown) => {
      const repeated = repeatedFlags(args, (options as { array?: string[] }).array ?? []);
      if (repeated.length) throw new Error(`${repeated.map((k) => `--${k}`).join(', ')} given more than once: each takes one value`);
      return true;
    })
    .command('versions', 'print torchcap, libtorch, BLAS, threads and CUDA', {}, () => {
      console.log(JSON.stringify(versions(), null, 2));
    })
    .command(vocabCommand)
    .command(resizeCommand)
    .command(downloadCommand)
    .command(trainCommand)
    .command(captionCommand)
    .command(evaluateCommand)
    .command(serveCommand)
    .command(demoCommand)
    .demandCommand(1)
    .strict()
    .help()
    .parse();
}

if (require.main === module) main();
