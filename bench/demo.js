'use strict';
// The demo (`npm run demo`) under several seeds and pretraining precisions, each run in its own
// process through the command line, one after another: its scores, exact captions (all held-out
// scenes, the seen and the unseen ones) and seconds, as the table in README.md shows them.
//
// Usage: node bench/demo.js                     (needs dist/: npx tsc -p .; about 3-4 minutes a run)
//        DEMO_RUNS=bf16:0,float32:0 node bench/demo.js
//   DEMO_RUNS lists precision:seed pairs; a precision is bf16 (the pretraining under bfloat16
//   autocast, which needs native bfloat16) or float32. Default: bf16 seeds 0, 1, 2; float32 seeds 0, 2.
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');
const { machine, loadAverage } = require('./common');

const RUNS = (process.env.DEMO_RUNS || 'bf16:0,bf16:1,bf16:2,float32:0,float32:2').split(',').map((r) => {
  const [precision, seed] = r.split(':');
  if (!['bf16', 'float32'].includes(precision) || !/^\d+$/.test(seed ?? '')) throw new Error(`DEMO_RUNS: "${r}" is not precision:seed (bf16 or float32, then a whole number)`);
  return { precision, seed: Number(seed) };
});
const cli = path.join(__dirname, '..', 'dist', 'cli.js');

function main() {
  const { cpuBf16Support } = require('../dist/nn/resnet');
  const bf16 = cpuBf16Support();
  console.log(`The demo (npm run demo's defaults but the seed and the pretraining precision), one process a run; ${machine()}; load average at start ${loadAverage()}`);
  console.log('| pretraining | seed | BLEU-4 | exact, all | seen | unseen | seconds (data, pretraining, captioner) | targets |');
  console.log('|---|---|---|---|---|---|---|---|');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torchcap-bench-demo-'));
  try {
    for (const { precision, seed } of RUNS) {
      if (precision === 'bf16' && !bf16.supported) {
        console.log(`| bfloat16 | ${seed} | skipped: ${bf16.reason} | | | | | |`);
        continue;
      }
      const out = path.join(tmp, `${precision}-${seed}`);
      process.stderr.write(`  demo ${precision} seed ${seed}\n`);
      execFileSync(process.execPath, [cli, 'demo', '--out', out, '--seed', String(seed), '--pretrain-precision', precision, '--quiet'], { stdio: ['ignore', 'ignore', 'inherit'] });
      const s = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
      const sec = s.seconds;
      const exact = (k) => `${s.scenes[k].exact.toFixed(3)} of ${s.scenes[k].scenes}`;
      console.log(
        `| ${s.settings.pretrainPrecision === 'bf16' ? 'bfloat16' : s.settings.pretrainPrecision} | ${seed} | ${s.metrics.Bleu_4.toFixed(3)} | ${exact('all')} | ${exact('seen')} | ${exact('unseen')} | ` +
          `${sec.total.toFixed(0)} (${sec.data.toFixed(0)}, ${sec.pretrain.toFixed(0)}, ${(sec.train + sec.caption).toFixed(0)}) | ${s.met ? 'met' : `missed: ${s.targets.filter((t) => !t.met).map((t) => t.name).join(', ')}`} |`,
      );
      fs.rmSync(out, { recursive: true, force: true });
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  console.log(`load average at end: ${loadAverage()}`);
}

main();
