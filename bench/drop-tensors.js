'use strict';
// Dropped tensors: how fast a synchronous loop can create tensors it never disposes, and how far
// RSS climbs while the GC collects them and torchcap frees their memory.
//
//   node bench/drop-tensors.js [--repeats 5] [--baseline path/to/other/torchcap.node]
//
// Each measurement is a fresh child process (test/scripts/tensor-churn.js): 100,000 tensors of
// 1,024 floats (400 MB in all) and 20,000 of 65,536 (5 GB). With --baseline, the same runs with
// that addon (TORCHCAP_ADDON) are interleaved with the current one and the ratios of the medians
// are printed: time current / baseline and the peak RSS growth of each.
const { execFileSync } = require('child_process');
const path = require('path');
const { median, machine } = require('./common');

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const REPEATS = Number(arg('repeats', 5));
const BASELINE = arg('baseline', null);
const SCRIPT = path.join(__dirname, '..', 'test', 'scripts', 'tensor-churn.js');
const CASES = [
  { n: 100000, elements: 1024 },
  { n: 20000, elements: 65536 },
];

function once(addon, c) {
  const env = { ...process.env };
  if (addon) env.TORCHCAP_ADDON = path.resolve(addon);
  const t = process.hrtime.bigint();
  const r = JSON.parse(execFileSync(process.execPath, [SCRIPT, String(c.n), String(c.elements)], { encoding: 'utf8', env }));
  // The script's own time includes the warm-up; the loop is what is compared, so time it whole.
  return { seconds: Number(process.hrtime.bigint() - t) / 1e9, growth: r.peakGrowth };
}

const report = { machine: machine(), repeats: REPEATS, baseline: BASELINE, cases: [] };
for (const c of CASES) {
  const runs = { current: [], baseline: [] };
  for (let i = 0; i < REPEATS; i++) {
    runs.current.push(once(null, c));
    if (BASELINE) runs.baseline.push(once(BASELINE, c));
  }
  const sum = (xs) => ({ seconds: +median(xs.map((x) => x.seconds)).toFixed(2), peakRssGrowthMB: +median(xs.map((x) => x.growth)).toFixed(1) });
  const row = { tensors: c.n, elements: c.elements, current: sum(runs.current) };
  if (BASELINE) {
    row.baseline = sum(runs.baseline);
    row.timeRatio = +(row.current.seconds / row.baseline.seconds).toFixed(2);
  }
  report.cases.push(row);
}
process.stdout.write(JSON.stringify(report, null, 2) + '\n');
