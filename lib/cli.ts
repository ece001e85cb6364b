#!/usr/bin/env node
/** The torchcap command line (yargs). Each command lives in its own module. */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { versions } from './runtime';
import { Tensor, manualSeed } from './tensor';
import { vocabCommand } from './commands/vocab';
import { resizeCommand } from './commands/resize';
import { downloadCommand } from './commands/download';
import { trainCommand } from './commands/train';
import { captionCommand } from './commands/caption';
import { evaluateCommand } from './evaluate/command';

/** A small real run while the captioning pipeline is built: fit y = 3x - 2 with autograd. */
function fitLine(): void {
  manualSeed(0);
  const x = Tensor.randn([256, 1]);
  const y = x.mul(3).sub(2).add(Tensor.randn([256, 1]).mul(0.1));
  const w = Tensor.zeros([1, 1], { requiresGrad: true });
  const b = Tensor.zeros([1], { requiresGrad: true });
  for (let step = 0; step <= 100; step++) {
    const loss = x.matmul(w).add(b).sub(y).square().mean();
    loss.backward();
    for (const p of [w, b]) {
      p.detach().subInPlace(p.grad!, 0.1);
      p.zeroGrad();
    }
    if (step % 20 === 0) console.log(`step ${step}  loss ${loss.item().toFixed(4)}`);
  }
  console.log(`w ${w.item().toFixed(3)}  b ${b.item().toFixed(3)}`);
}

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
    .command('demo', 'the main job on bundled data', {}, () => fitLine())
    .demandCommand(1)
    .strict()
    .help()
    .parse();
}

if (require.main === module) main();
