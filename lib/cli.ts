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

export function main(argv: string[] = hideBin(process.argv)): void {
  void yargs(argv)
    .scriptName('torchcap')
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
