#!/usr/bin/env node
// Fuzzes torchcap's public API: runs scripts/fuzz-child.js in many processes, each with its own
// seed, under a memory cap (ulimit -v), and checks that every one of them ends normally: every bad
// call a JS error with a message, no crash, no abort, no OOM kill, no hang.
//
//   npm run fuzz                                  20 processes x 2,000 calls, a random base seed
//   npm run fuzz -- --processes 200 --calls 2000  more
//   npm run fuzz -- --seed 1234 --processes 1     replays process 1234 (seeds are base, base+1, ...)
//
// Options: --processes N, --calls N, --seed BASE, --jobs N (at once; default: the CPU count),
// --memory-gb N (address space per process, default 4: the process needs about 2 to start),
// --timeout S (per process, default 300). A failure prints its seed, how the process ended, its
// last calls and stderr, and the command that replays it. Exit status 1 when any process failed.
'use strict';
const { spawn } = require('child_process');
const crypto = require('crypto');
const os = require('os');
const path = require('path');

function option(name, def) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return def;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v) || v < 0) {
    console.error(`--${name} needs a number, not ${process.argv[i + 1]}`);
    process.exit(2);
  }
  return v;
}

const PROCESSES = option('processes', 20);
const CALLS = option('calls', 2000);
const BASE = option('seed', crypto.randomInt(1, 2 ** 31 - 1 - PROCESSES));
const JOBS = Math.max(1, option('jobs', os.cpus().length));
const MEMORY_GB = option('memory-gb', 4);
const TIMEOUT_S = option('timeout', 300);
const CHILD = path.join(__dirname, 'fuzz-child.js');
const LAST_CALLS = 25;

function runOne(seed) {
  return new Promise((resolve) => {
    const started = Date.now();
    const cmd = `ulimit -v ${Math.round(MEMORY_GB * 1024 * 1024)} && exec "${process.execPath}" --expose-gc --max-old-space-size=512 --max-semi-space-size=1 "${CHILD}" --seed ${seed} --calls ${CALLS}`;
    const child = spawn('bash', ['-c', cmd], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        OMP_NUM_THREADS: '1', // many processes share the cores
        MALLOC_ARENA_MAX: '2', // glibc reserves 64 MB of address space per thread arena otherwise
        TORCHCAP_CPU_CACHE_MB: '256',
      },
    });
    const calls = [];
    const violations = [];
    let summary = null;
    let partial = '';
    let stderr = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop();
      for (const line of lines) {
        if (line.startsWith('call ')) {
          calls.push(line);
          if (calls.length > LAST_CALLS) calls.shift();
        } else if (line.startsWith('violation ')) {
          violations.push(line);
        } else if (line.startsWith('{')) {
          try {
            summary = JSON.parse(line);
          } catch {
            // not the summary
          }
        } else if (line.trim()) {
          calls.push(line); // harness output: keep it with the calls
        }
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      stderr = (stderr + chunk).slice(-4000);
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, TIMEOUT_S * 1000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const ok = code === 0 && signal === null && summary !== null && !timedOut;
      resolve({ seed, ok, code, signal, timedOut, summary, calls, violations, stderr, seconds: (Date.now() - started) / 1000 });
    });
  });
}

function report(r) {
  const how = r.timedOut
    ? `did not finish in ${TIMEOUT_S} s`
    : r.signal
      ? `was killed by ${r.signal}`
      : r.code === 2
        ? 'threw something that is not an Error with a message'
        : `exited with status ${r.code}${r.summary ? '' : ' before its summary'}`;
  const lines = [`FAILED seed ${r.seed}: the process ${how} (${r.seconds.toFixed(1)} s)`];
  if (r.violations.length) lines.push('  violations:', ...r.violations.slice(0, 10).map((l) => `    ${l}`));
  lines.push(`  last calls:`, ...r.calls.map((l) => `    ${l}`));
  if (r.stderr.trim()) lines.push('  stderr (end):', ...r.stderr.trim().split('\n').slice(-30).map((l) => `    ${l}`));
  lines.push(`  replay: npm run fuzz -- --seed ${r.seed} --processes 1 --calls ${CALLS}`);
  return lines.join('\n');
}

async function main() {
  console.log(`fuzz: ${PROCESSES} processes x ${CALLS} calls, seeds ${BASE}..${BASE + PROCESSES - 1}, ${JOBS} at once, ${MEMORY_GB} GB address space each`);
  const started = Date.now();
  const results = [];
  let next = 0;
  const worker = async () => {
    while (next < PROCESSES) {
      const r = await runOne(BASE + next++);
      results.push(r);
      if (!r.ok) console.log(report(r));
    }
  };
  await Promise.all(Array.from({ length: Math.min(JOBS, PROCESSES) }, worker));
  const thrown = {};
  let withCaptioner = 0;
  for (const r of results) {
    if (r.summary?.captioner) withCaptioner++;
    for (const [k, n] of Object.entries(r.summary?.thrown ?? {})) thrown[k] = (thrown[k] || 0) + n;
  }
  const failed = results.filter((r) => !r.ok);
  console.log(`thrown: ${JSON.stringify(thrown)}; ${withCaptioner} processes also fuzzed a Captioner`);
  console.log(
    `fuzz: ${results.length - failed.length} of ${results.length} processes ended normally, ${failed.length} failed` +
      `${failed.length ? ` (seeds ${failed.map((r) => r.seed).join(', ')})` : ''} in ${((Date.now() - started) / 1000).toFixed(0)} s`,
  );
  process.exitCode = failed.length ? 1 : 0;
}

main();
