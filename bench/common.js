'use strict';
// Shared helpers of the benchmark scripts: interleaved repeats, medians, Python runs, machine info.
const { execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

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
  return `${os.availableParallelism()} cores (${cpu}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.type()} ${os.release()}, Node ${process.versions.node}${blasKernels()}`;
}

let kernels;
/**
 * The kernels OpenBLAS runs here, as torchcap's versions() reports them (a fresh process, so that
 * the caller need not load libtorch), and whether the environment chose them: both sides of every
 * comparison inherit that choice.
 */
function blasKernels() {
  if (kernels === undefined) {
    let name = null;
    try {
      name = JSON.parse(execFileSync(process.execPath, ['-e', "console.log(JSON.stringify(require('./dist').versions().blasKernels))"], { cwd: path.resolve(__dirname, '..'), encoding: 'utf8' }));
    } catch {
      name = null;
    }
    const forced = process.env.OPENBLAS_CORETYPE;
    kernels = name ? `, OpenBLAS ${name} kernels${forced ? ` (OPENBLAS_CORETYPE=${forced} in the environment)` : ''}` : '';
  }
  return kernels;
}

// The tuned Python: jemalloc preloaded with the settings PyTorch's CPU performance guide suggests
// (Debian: apt-get install libjemalloc2).
const JEMALLOC = process.env.JEMALLOC || '/usr/lib/x86_64-linux-gnu/libjemalloc.so.2';
const MALLOC_CONF = 'oversize_threshold:1,background_thread:true,metadata_thp:auto,dirty_decay_ms:-1,muzzy_decay_ms:-1';

/** The environment of the tuned Python, or null (with a printed reason) where jemalloc is missing. */
function tunedPythonEnv(log = console.log) {
  if (fs.existsSync(JEMALLOC)) return { LD_PRELOAD: JEMALLOC, MALLOC_CONF };
  log(`SKIP the tuned Python: ${JEMALLOC} is missing (apt-get install libjemalloc2, or JEMALLOC=path)`);
  return null;
}

// oneDNN's peak on this machine, through the same libtorch: a large 1x1 convolution (13 GFLOP a
// call), best of 5 after one untimed, in float32 and bfloat16 (where the CPU has it).
const PEAK_PY = `
import json, os, sys, time, torch
import torch.nn.functional as F
torch.set_num_threads(os.cpu_count())  # the machine's peak: every core, as torchcap and the bench's Python use
torch.manual_seed(0)
out = {}
n, c, hw = 32, 1024, 14
x = torch.randn(n, c, hw, hw)
w = torch.randn(c, c, 1, 1) * 0.03
flop = 2 * n * hw * hw * c * c
# The best of oneDNN's two ways in (a channels-last convolution, and mkldnn tensors with the weight
# reordered to oneDNN's layout), each the fastest of 12 runs, for each dtype: the first runs of a
# kind are slow (thread pool, primitive creation), and on a shared machine one kind can catch a busy moment.
for name, dt in (('float32', torch.float32), ('bfloat16', torch.bfloat16)):
    try:
        xc = x.to(dt).contiguous(memory_format=torch.channels_last)
        wc = w.to(dt).contiguous(memory_format=torch.channels_last)
        wp = torch._C._nn.mkldnn_reorder_conv2d_weight(w.to_mkldnn(dt), [0, 0], [1, 1], [1, 1], 1)
        xm = x.to_mkldnn(dt)
        best = 1e9
        with torch.no_grad():
            for run in (lambda: F.conv2d(xc, wc), lambda: torch.mkldnn_convolution(xm, wp, None, [0, 0], [1, 1], [1, 1], 1)):
                for i in range(12):
                    t = time.perf_counter()
                    run()
                    if i: best = min(best, time.perf_counter() - t)
        out[name] = flop / best / 1e9
    except RuntimeError:
        out[name] = None
print(json.dumps(out))
`;

/** oneDNN's peak GFLOP/s measured now: { float32, bfloat16 } (bfloat16 null where the CPU lacks it). */
function onednnPeak() {
  return JSON.parse(execFileSync(PYTHON, ['-c', PEAK_PY], { encoding: 'utf8' }));
}

function loadAverage() {
  return os.loadavg().map((x) => x.toFixed(2)).join(', ');
}

/** Seconds taken by fn (sync). */
function time(fn) {
  const t = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

/** A bench worker process's end: its result as one JSON line on stdout, or its error and exit status 1. */
function reportWorker(result) {
  result
    .then((r) => process.stdout.write(`${JSON.stringify(r)}\n`))
    .catch((e) => {
      process.stderr.write(`${e && e.stack ? e.stack : e}\n`);
      process.exit(1);
    });
}

/** The page size torchcap's CPU tensor cache takes by default on this machine, and why (from a fresh process: the choice is made once, at load). */
function defaultPages() {
  const dist = path.join(__dirname, '..', 'dist');
  const c = JSON.parse(execFileSync(process.execPath, ['-e', `console.log(JSON.stringify(require(${JSON.stringify(dist)}).cpuCache()))`], { encoding: 'utf8' }));
  return { huge: c.hugePages, why: c.hugePagesWhy };
}

module.exports = { PYTHON, JEMALLOC, MALLOC_CONF, median, python, pythonHasTorch, machine, time, tunedPythonEnv, onednnPeak, loadAverage, reportWorker, defaultPages };
