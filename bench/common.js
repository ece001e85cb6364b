'use strict';
// Shared helpers of the benchmark scripts: interleaved repeats, medians, Python runs, machine info.
const { execFileSync } = require('child_process');
const os = require('os');

const PYTHON = process.env.TORCHCAP_PYTHON || '/usr/bin/python3';

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Runs a Python script; returns its stdout parsed as JSON. */
function python(script, args = []) {
  return JSON.parse(execFileSync(PYTHON, ['-c', script, ...args.map(String)], { encoding: 'utf8', maxBuffer: 1 << 28 }));
}

function pythonHasTorch() {
  try {
    execFileSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function machine() {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  return `${os.availableParallelism()} cores (${cpu}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.type()} ${os.release()}, Node ${process.versions.node}`;
}

/** Seconds taken by fn (sync). */
function time(fn) {
  const t = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

module.exports = { PYTHON, median, python, pythonHasTorch, machine, time };
