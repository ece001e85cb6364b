#!/usr/bin/env node
'use strict';
// Finds the libtorch that torchcap builds against and loads with.
//
// Order: the LIBTORCH environment variable (an unpacked libtorch, CPU or CUDA); a Python `torch`
// that /usr/bin/python3 or python3 can import (its cmake prefix path); a system install
// (Debian/Ubuntu libtorch-dev). The install script, binding.gyp and the run-time loader all ask
// this one module, so the three never disagree.
//
// CLI: node scripts/find-libtorch.js [--json | --cmake-prefix | --gyp-cflags | --gyp-include | --gyp-libs]

const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');

const SYSTEM_PREFIXES = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib', '/usr/local/lib'];

function exists(p) {
  try {
    fs.accessSync(p);
    return true;
  } catch {
    return false;
  }
}

/** The TorchConfig.cmake under a cmake prefix (or its parent folders), or null. */
function torchConfigUnder(prefix) {
  for (const rel of ['share/cmake/Torch', 'cmake/Torch', 'Torch', 'lib/cmake/Torch']) {
    const file = path.join(prefix, rel, 'TorchConfig.cmake');
    if (exists(file)) return file;
  }
  return null;
}

function readVersion(includeDirs) {
  // libtorch 2.x's later releases define the version in torch/headeronly/version.h, which the
  // older file now only includes
  const files = includeDirs.flatMap((dir) => [path.join(dir, 'torch/csrc/api/include/torch/version.h'), path.join(dir, 'torch/headeronly/version.h')]);
  for (const file of files) {
    if (!exists(file)) continue;
    const text = fs.readFileSync(file, 'utf8');
    const m = /#define TORCH_VERSION_MAJOR (\d+)[\s\S]*?#define TORCH_VERSION_MINOR (\d+)[\s\S]*?#define TORCH_VERSION_PATCH (\d+)/.exec(text);
    if (m) return `${m[1]}.${m[2]}.${m[3]}`;
  }
  return null;
}

function cxxAbi(configFile) {
  const text = fs.readFileSync(configFile, 'utf8');
  const m = /_GLIBCXX_USE_CXX11_ABI=(\d)/.exec(text);
  return m ? Number(m[1]) : 1;
}

function findLib(dirs, name) {
  for (const d of dirs) {
    for (const f of [`lib${name}.so`, `lib${name}.dylib`]) {
      if (exists(path.join(d, f))) return path.join(d, f);
    }
  }
  return null;
}

/** Describe a libtorch found at a cmake config file. */
function describe(configFile, source) {
  // TorchConfig.cmake lives at <root>/share/cmake/Torch (unpacked libtorch, Python torch) or at
  // <libdir>/cmake/Torch (Debian).
  const torchDir = path.dirname(configFile);
  let root;
  let libDir;
  let includeDirs;
  if (path.basename(path.dirname(path.dirname(torchDir))) === 'share') {
    root = path.dirname(path.dirname(path.dirname(torchDir)));
    libDir = path.join(root, 'lib');
    includeDirs = [path.join(root, 'include'), path.join(root, 'include/torch/csrc/api/include')];
  } else {
    libDir = path.dirname(path.dirname(torchDir));
    root = libDir;
    includeDirs = ['/usr/include', '/usr/include/torch/csrc/api/include'];
  }
  const version = readVersion(includeDirs);
  const cudaLib = findLib([libDir], 'torch_cuda');
  return {
    source,
    cmakePrefix: path.dirname(torchDir),
    configFile,
    root,
    libDir,
    includeDirs,
    version,
    versionMajorMinor: version ? version.split('.').slice(0, 2).join('.') : null,
    cuda: Boolean(cudaLib),
    cxx11Abi: cxxAbi(configFile),
    system: source === 'system',
  };
}

function pythonCandidates() {
  const out = [];
  for (const py of ['/usr/bin/python3', 'python3']) {
    try {
      const text = execFileSync(py, ['-c', 'import torch.utils; print(torch.utils.cmake_prefix_path)'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
        timeout: 60000,
      }).trim();
      if (text) out.push({ python: py, prefix: text });
    } catch {
      // this interpreter has no torch
    }
  }
  return out;
}

/**
 * Finds libtorch. Returns a description, or null with `tried` filled in.
 * @param {{ env?: NodeJS.ProcessEnv, python?: boolean, tried?: string[] }} [opts]
 */
function findLibtorch(opts = {}) {
  const env = opts.env || process.env;
  const tried = opts.tried || [];
  if (env.LIBTORCH) {
    const config = torchConfigUnder(env.LIBTORCH);
    if (config) return describe(config, 'LIBTORCH');
    tried.push(`LIBTORCH=${env.LIBTORCH} (no share/cmake/Torch/TorchConfig.cmake under it)`);
    return null; // an explicit choice that is wrong must not silently fall back
  }
  tried.push('LIBTORCH (not set)');
  if (opts.python !== false) {
    for (const { python, prefix } of pythonCandidates()) {
      const config = torchConfigUnder(prefix);
      if (config) return describe(config, `python:${python}`);
      tried.push(`${python} torch (cmake prefix ${prefix} has no TorchConfig.cmake)`);
    }
  }
  for (const p of SYSTEM_PREFIXES) {
    const config = torchConfigUnder(p);
    if (config) return describe(config, 'system');
  }
  tried.push(`system install (no TorchConfig.cmake under ${SYSTEM_PREFIXES.join(', ')})`);
  return null;
}

/** Whether libtorch at `info` runs on OpenBLAS (the reference BLAS is ~35x slower). */
function openblasPresent() {
  return SYSTEM_PREFIXES.some((d) => exists(path.join(d, 'libopenblas.so.0')) || exists(path.join(d, 'openblas-pthread/libopenblas.so.0')));
}

/**
 * The compile definitions libtorch's CMake targets hand to their users (USE_C10D_GLOO,
 * USE_DISTRIBUTED, ...): cmake-js gets them from find_package(Torch); node-gyp from here.
 */
function torchDefinitions(info) {
  const file = path.join(info.cmakePrefix, 'Caffe2', 'Caffe2Targets.cmake');
  if (!exists(file)) return [];
  const defs = new Set();
  for (const m of fs.readFileSync(file, 'utf8').matchAll(/INTERFACE_COMPILE_DEFINITIONS "([^"]*)"/g)) {
    for (const d of m[1].split(';')) if (/^USE_[A-Z0-9_]+$/.test(d)) defs.add(d);
  }
  return [...defs];
}

/**
 * Whether the oneDNN wrapper that a system libtorch was built with (Debian's libideep-dev) is
 * installed: the book-mode backbone then keeps its activations in oneDNN's layout and the fast
 * path fuses the residual add and ReLU into its convolutions (native/onednn.cc). Only for a
 * system libtorch, whose build used those same headers.
 */
function ideep(info) {
  return info.system && exists('/usr/include/ideep.hpp') && exists('/usr/include/oneapi/dnnl/dnnl.hpp');
}

/** Whether libjpeg-turbo's TurboJPEG API is installed (header and library). */
function turbojpeg() {
  return exists('/usr/include/turbojpeg.h') && SYSTEM_PREFIXES.some((d) => exists(path.join(d, 'libturbojpeg.so')));
}

/** Whether libtorch `version` ('2.14.1') refuses C++ older than C++20 (2.14 and later do). */
function needsCxx20(version) {
  const [major, minor] = String(version || '').split('.').map(Number);
  return major > 2 || (major === 2 && minor >= 14);
}

function gypFlags(info, what) {
  switch (what) {
    case 'include':
      return info.includeDirs.join(' ');
    case 'cflags':
      // OpenMP as a system libtorch uses it (CMakeLists.txt says why); C++20 where libtorch requires
      // it (2.14 and later; this comes after binding.gyp's -std=c++17, and the last -std counts)
      return `-D_GLIBCXX_USE_CXX11_ABI=${info.cxx11Abi}${info.system ? ' -fopenmp' : ''}${needsCxx20(info.version) ? ' -std=c++20' : ''}`;
    case 'defines':
      return [info.cuda ? 'TORCHCAP_CUDA' : 'TORCHCAP_CPU_ONLY', ...torchDefinitions(info), ...(turbojpeg() ? ['TORCHCAP_TURBOJPEG'] : []), ...(ideep(info) ? ['TORCHCAP_IDEEP'] : [])].join(' ');
    case 'libs': {
      const libs = [`-L${info.libDir}`];
      if (!info.system) libs.push(`-Wl,-rpath,${info.libDir}`);
      // torch_cuda is only reached through static registration: keep it linked.
      if (info.cuda) libs.push('-Wl,--no-as-needed', '-ltorch_cuda', '-lc10_cuda', '-Wl,--as-needed');
      libs.push('-ltorch', '-ltorch_cpu', '-lc10');
      if (info.system) libs.push('-fopenmp');
      if (turbojpeg()) libs.push('-lturbojpeg');
      return libs.join(' ');
    }
    default:
      throw new Error(`unknown flag set ${what}`);
  }
}

module.exports = { findLibtorch, openblasPresent, gypFlags, needsCxx20, readVersion, torchConfigUnder, torchDefinitions, ideep };

if (require.main === module) {
  const arg = process.argv[2] || '--json';
  const tried = [];
  const info = findLibtorch({ tried });
  if (!info) {
    process.stderr.write(`torchcap: no libtorch found. Tried: ${tried.join('; ')}\n`);
    process.exit(1);
  }
  if (arg === '--json') process.stdout.write(JSON.stringify(info, null, 2) + '\n');
  else if (arg === '--cmake-prefix') process.stdout.write(info.cmakePrefix + '\n');
  else if (arg.startsWith('--gyp-')) process.stdout.write(gypFlags(info, arg.slice(6)) + '\n');
  else {
    process.stderr.write(`unknown option ${arg}\n`);
    process.exit(2);
  }
}
