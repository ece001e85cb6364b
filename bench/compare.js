'use strict';
// torchcap against another checkout of itself: the same bench tasks (bench/torchcap_tasks.js of
// each checkout, on the same data and options) in fresh processes, the two interleaved, REPEATS
// times (default 3); prints the median of each figure and the ratio this / other, where a ratio
// above 1 means this checkout is faster. For checking that a change kept the speed.
//
//   node bench/compare.js ../other-checkout        (both built: dist/ and the addon)
//   REPEATS=5 TASKS=train-step,caption node bench/compare.js ../other-checkout
const path = require('path');
const { execFileSync } = require('child_process');
const { median, machine, loadAverage } = require('./common');

const REPEATS = Number(process.env.REPEATS || 3);
const VOCAB = 9948;
const ALL = ['train-step', 'epoch', 'caption', 'data', 'forward'];
const TASKS = (process.env.TASKS || ALL.join(',')).split(',');

// Each run: the task's options, and its figures as [name, field, better] (better: 'lower' or 'higher').
const RUNS = [
  ['train-step', 'book mode step, batch 16', { batch: 16, steps: 3, vocab: VOCAB, mode: 'book' }, [['seconds a step', 'seconds_per_step', 'lower']]],
  ['train-step', 'fast path step, batch 16', { batch: 16, steps: 3, vocab: VOCAB, mode: 'fast' }, [['seconds a step', 'seconds_per_step', 'lower']]],
  ['epoch', 'epoch on cached features', { batch: 16, samples: 160, vocab: VOCAB }, [['seconds (a later epoch)', 'seconds', 'lower']]],
  ['caption', 'captioning', { images: 16, vocab: VOCAB }, [['one image, seconds', 'median_seconds', 'lower'], ['16 images as a batch, seconds', 'batch16_seconds', 'lower']]],
  ['data', 'training loader', { batch: 128, samples: 1280 }, [['images/s', 'images_per_second', 'higher']]],
  ['forward', 'ResNet-152 forward, batch 16', { batch: 16, reps: 2 }, [['eval mode, seconds', 'plain_seconds', 'lower'], ['fast path, seconds', 'fast_seconds', 'lower']]],
];

function task(root, name, data, opts) {
  const out = execFileSync(process.execPath, [path.join(root, 'bench', 'torchcap_tasks.js'), name, data, JSON.stringify(opts)], {
    cwd: root,
    encoding: 'utf8',
    maxBuffer: 1 << 26,
  });
  return JSON.parse(out.trim().split('\n').pop());
}

function main() {
  const other = process.argv[2];
  if (!other) {
    console.error('usage: node bench/compare.js <other checkout> (built: dist/ and the addon)');
    process.exit(2);
  }
  const roots = { this: path.resolve(__dirname, '..'), other: path.resolve(other) };
  const rev = (root) => {
    try {
      return execFileSync('git', ['-C', root, 'log', '-1', '--format=%h %s'], { encoding: 'utf8' }).trim().slice(0, 90);
    } catch {
      return root;
    }
  };
  const data = execFileSync(process.execPath, ['-e', "require('./bench/data').benchData().then((d) => console.log(JSON.stringify(d)))"], { cwd: roots.this, encoding: 'utf8' });
  const { dir, kind } = JSON.parse(data.trim().split('\n').pop());
  console.log(`torchcap, this checkout against another; ${machine()}; load average ${loadAverage()}; median of ${REPEATS} interleaved runs; data: ${kind}`);
  console.log(`  this:  ${rev(roots.this)}`);
  console.log(`  other: ${rev(roots.other)}`);
  for (const [name, title, opts, figures] of RUNS.filter((r) => TASKS.includes(r[0]))) {
    const results = { this: [], other: [] };
    for (let r = 0; r < REPEATS; r++) {
      // alternate which goes first, so neither always runs after the other
      const order = r % 2 ? ['other', 'this'] : ['this', 'other'];
      for (const k of order) {
        process.stderr.write(`  ${title}: ${k} (${r + 1}/${REPEATS})\n`);
        results[k].push(task(roots[k], name, dir, opts));
      }
    }
    for (const [label, field, better] of figures) {
      const a = median(results.this.map((x) => x[field]));
      const b = median(results.other.map((x) => x[field]));
      const ratio = better === 'lower' ? b / a : a / b;
      const all = (k) => results[k].map((x) => x[field].toFixed(3)).join(' ');
      console.log(`${title}, ${label}: this ${a.toFixed(3)}, other ${b.toFixed(3)}, speed ratio this/other ${ratio.toFixed(2)} (runs: this ${all('this')}; other ${all('other')})`);
    }
  }
  console.log(`load average at end: ${loadAverage()}`);
}

main();
