#!/usr/bin/env node
// Times `torchcap evaluate` work on COCO val2017: 5,000 images x 5 reference captions.
//
//   npx tsc -p . && node bench/evaluate.js [path/to/coco-captions-val2017.json] [--runs N]
//
// Each run reads and checks the references file, tokenizes every reference and candidate, and
// computes BLEU-1..4, ROUGE-L and CIDEr-D (METEOR is a Java program and is not timed). Candidates
// are each image's first reference caption; the references are all of its captions. A second
// timing scores the first caption against the other captions only.
'use strict';
const fs = require('fs');
const path = require('path');

let evaluate;
try {
  evaluate = require('../dist/evaluate');
} catch (e) {
  console.error('bench/evaluate.js needs the compiled library: run `npx tsc -p .` first.');
  console.error(String(e && e.message));
  process.exit(2);
}

const args = process.argv.slice(2);
const runsAt = args.indexOf('--runs');
const runs = runsAt >= 0 ? Number(args[runsAt + 1]) : 3;
const positional = args.filter((a, i) => a !== '--runs' && args[i - 1] !== '--runs');
const file = positional[0]
  ?? path.join(process.env.TORCHCAP_SHARED_DATA ?? path.resolve(__dirname, '../../shared/data'), 'coco-captions-val2017.json');
if (!fs.existsSync(file)) {
  console.error(`references file not found: ${file}`);
  process.exit(2);
}

const seconds = (t0) => Number(process.hrtime.bigint() - t0) / 1e9;
const totals = [];
for (let r = 1; r <= runs; r++) {
  const t0 = process.hrtime.bigint();
  const refs = evaluate.readReferencesFile(file);
  const tLoad = seconds(t0);
  const results = [];
  let referenceCount = 0;
  for (const [id, caps] of refs) {
    results.push({ image_id: id, caption: caps[0] });
    referenceCount += caps.length;
  }
  const t1 = process.hrtime.bigint();
  const ev = evaluate.evaluateCaptionsSync(refs, results);
  const tScore = seconds(t1);
  const total = seconds(t0);
  totals.push(total);
  const m = ev.metrics;
  console.log(
    `run ${r}: ${ev.images} images x ${(referenceCount / ev.images).toFixed(2)} references: ` +
    `${total.toFixed(2)} s (read ${tLoad.toFixed(2)} s, tokenize and score ${tScore.toFixed(2)} s); ` +
    `Bleu_4 ${m.Bleu_4.toFixed(4)} ROUGE_L ${m.ROUGE_L.toFixed(4)} CIDEr ${m.CIDEr.toFixed(4)}`,
  );
}

const refs = evaluate.readReferencesFile(file);
const others = new Map();
const firsts = [];
for (const [id, caps] of refs) {
  firsts.push({ image_id: id, caption: caps[0] });
  others.set(id, caps.slice(1));
}
const t2 = process.hrtime.bigint();
const loo = evaluate.evaluateCaptionsSync(others, firsts);
console.log(
  `first caption vs the other captions: ${seconds(t2).toFixed(2)} s; ` +
  `Bleu_1 ${loo.metrics.Bleu_1.toFixed(4)} Bleu_4 ${loo.metrics.Bleu_4.toFixed(4)} ROUGE_L ${loo.metrics.ROUGE_L.toFixed(4)} CIDEr ${loo.metrics.CIDEr.toFixed(4)}`,
);
console.log(`best of ${runs}: ${Math.min(...totals).toFixed(2)} s, worst ${Math.max(...totals).toFixed(2)} s (target: under 10 s)`);
