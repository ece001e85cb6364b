#!/usr/bin/env node
'use strict';
// `npm install` step: make sure libtorch (and OpenBLAS) are present, then use a matching prebuilt
// addon or build one from source.
//
//   node scripts/install.js                  prebuild if one matches, else build (cmake-js)
//   node scripts/install.js --build-from-source [--tool node-gyp|cmake-js]
//
// Environment: LIBTORCH (an unpacked libtorch to use), TORCHCAP_BUILD_FROM_SOURCE=1,
// TORCHCAP_BUILD_TOOL=node-gyp, TORCHCAP_NO_APT=1 (never call apt-get),
// TORCHCAP_PREBUILD_URL=<base URL>: opt in to downloading a prebuilt addon that the package does
// not ship (e.g. another CUDA flavour) from <base URL>/<platform>-<arch>/<flavour>.node. Nothing is
// downloaded otherwise; a failed download only warns, and the install goes on without it.

const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const { findLibtorch, openblasPresent } = require('./find-libtorch');

const ROOT = path.resolve(__dirname, '..');
const args = process.argv.slice(2);
const log = (msg) => process.stdout.write(`torchcap: ${msg}\n`);

function fail(msg) {
  process.stderr.write(`\ntorchcap: ${msg}\n\n`);
  process.exit(1);
}

function which(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function canApt() {
  return (
    process.platform === 'linux' &&
    !process.env.TORCHCAP_NO_APT &&
    typeof process.getuid === 'function' &&
    process.getuid() === 0 &&
    which('apt-get')
  );
}

let aptUpdated = false;
function aptInstall(packages) {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  if (!aptUpdated) {
    log('apt-get update');
    spawnSync('apt-get', ['update', '-q'], { stdio: 'inherit', env });
    aptUpdated = true;
  }
  log(`apt-get install ${packages.join(' ')}`);
  const r = spawnSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...packages], { stdio: 'inherit', env });
  if (r.status !== 0) fail(`apt-get install ${packages.join(' ')} failed (exit ${r.status}).`);
}

function ensureLibtorch() {
  const tried = [];
  let info = findLibtorch({ tried });
  if (info) return info;
  if (process.env.LIBTORCH) fail(`LIBTORCH is set but holds no libtorch: ${tried.join('; ')}`);
  if (!canApt()) {
    fail(
      'no libtorch found.\n' +
        `  looked at: ${tried.join('; ')}\n` +
        '  install one of:\n' +
        '    - Debian/Ubuntu: sudo apt-get install libtorch-dev libopenblas0-pthread\n' +
        '    - an unpacked libtorch from pytorch.org, then: export LIBTORCH=/path/to/libtorch\n' +
        '    - a Python torch that python3 can import\n' +
        '  then run npm install again.',
    );
  }
  aptInstall(['libtorch-dev', ...SYSTEM_EXTRAS]);
  info = findLibtorch({ tried: [] });
  if (!info) fail('libtorch-dev was installed but its TorchConfig.cmake was not found.');
  return info;
}

// With Debian's libtorch: OpenBLAS (without it libtorch uses the reference BLAS, ~35x slower),
// the Gloo headers that c10d's ProcessGroupGloo needs (distributed training), and libjpeg-turbo's
// TurboJPEG API (the training loader's native JPEG decoding), and the oneDNN wrapper libtorch was
// built with (libideep-dev: the book-mode backbone in oneDNN's layout).
const SYSTEM_EXTRAS = ['libopenblas0-pthread', 'libgloo-dev', 'libturbojpeg0-dev', 'libideep-dev'];

function glooHeadersPresent() {
  return fs.existsSync('/usr/include/gloo/algorithm.h');
}

function ensureSystemExtras(info) {
  if (!info.system) return;
  const missing = [];
  if (!openblasPresent()) missing.push('libopenblas0-pthread');
  if (!glooHeadersPresent()) missing.push('libgloo-dev');
  if (!fs.existsSync('/usr/include/turbojpeg.h')) missing.push('libturbojpeg0-dev');
  if (!fs.existsSync('/usr/include/ideep.hpp')) missing.push('libideep-dev');
  if (!missing.length) return;
  if (canApt()) aptInstall(missing);
  else {
    if (missing.includes('libopenblas0-pthread')) log('WARNING: OpenBLAS is missing; libtorch falls back to the reference BLAS (~35x slower). Install libopenblas0-pthread.');
    if (missing.includes('libgloo-dev')) log('WARNING: the Gloo headers are missing; torchcap builds without distributed training. Install libgloo-dev.');
    if (missing.includes('libideep-dev')) log('WARNING: libideep-dev is missing; book-mode training runs on PyTorch\'s kernels in NCHW, more slowly. Install libideep-dev.');
    if (missing.includes('libturbojpeg0-dev')) log('WARNING: libjpeg-turbo (libturbojpeg0-dev) is missing; the loader decodes every image with sharp, more slowly.');
  }
}

/** Loads an addon file in a child process; returns null when it works, else the error text. */
function tryLoad(file) {
  const r = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(file)}).versions()`], { encoding: 'utf8' });
  return r.status === 0 ? null : (r.stderr || '').trim().split('\n').slice(0, 3).join(' ');
}

/** Downloads url to dest (via a .part file); returns null on success, else the reason. */
async function download(url, dest) {
  const part = `${dest}.part`;
  try {
    const res = await fetch(url, { redirect: 'follow', signal: AbortSignal.timeout(120000) });
    if (!res.ok) return `HTTP ${res.status} ${res.statusText}`;
    const body = Buffer.from(await res.arrayBuffer());
    const expected = Number(res.headers.get('content-length'));
    if (expected && body.length !== expected) return `got ${body.length} of ${expected} bytes`;
    // an addon is an ELF shared object; an HTML error page is not
    if (body.length < 4 || body.readUInt32BE(0) !== 0x7f454c46) return 'the response is not a shared library';
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.writeFileSync(part, body);
    fs.renameSync(part, dest);
    return null;
  } catch (e) {
    fs.rmSync(part, { force: true });
    return e.message;
  }
}

/** The opted-in download of a prebuilt addon for `info`; warns and returns false when it fails. */
async function fetchPrebuild(info, baseUrl, root = ROOT) {
  const name = `torch-${info.versionMajorMinor}-${info.cuda ? 'cuda' : 'cpu'}.node`;
  const platformDir = `${process.platform}-${process.arch}`;
  const dest = path.join(root, 'prebuilds', platformDir, name);
  const url = `${baseUrl.replace(/\/+$/, '')}/${platformDir}/${name}`;
  log(`downloading ${url} (TORCHCAP_PREBUILD_URL)`);
  const why = await download(url, dest);
  if (why) {
    log(`WARNING: could not download the prebuilt addon (${why}); continuing without it`);
    return false;
  }
  const err = tryLoad(dest);
  if (err) {
    fs.rmSync(dest, { force: true });
    log(`WARNING: the downloaded addon does not load here (${err}); continuing without it`);
    return false;
  }
  return true;
}

function matchingPrebuild(info) {
  const dir = path.join(ROOT, 'prebuilds', `${process.platform}-${process.arch}`);
  const names = [`torch-${info.versionMajorMinor}-${info.cuda ? 'cuda' : 'cpu'}.node`];
  for (const name of names) {
    const file = path.join(dir, name);
    if (fs.existsSync(file)) return file;
  }
  return null;
}

function ensureToolchain(tool) {
  const missing = [];
  if (tool !== 'node-gyp' && !which('cmake')) missing.push('cmake');
  if (!which('c++') && !which('g++')) missing.push('g++');
  // cmake-js drives ninja where it is installed, else make; node-gyp always make
  if (!which('make') && (tool === 'node-gyp' || !which('ninja'))) missing.push('make');
  if (!missing.length) return;
  if (canApt()) aptInstall(missing);
  else fail(`building from source needs ${missing.join(', ')}; install them (apt-get install ${missing.join(' ')}).`);
}

/** Node's own headers (a Debian or tarball install ships them): builds then need no download. */
function localNodeHeaders() {
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  return fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h')) ? prefix : null;
}

function build(info, tool) {
  ensureToolchain(tool);
  const bin = (name) => path.join(ROOT, 'node_modules', '.bin', name);
  let r;
  const env = { ...process.env };
  const headers = localNodeHeaders();
  if (headers && !env.npm_config_nodedir) env.npm_config_nodedir = headers;
  if (info.source === 'LIBTORCH' || info.source.startsWith('python')) env.LIBTORCH ??= info.root;
  if (tool === 'node-gyp') {
    const gyp = fs.existsSync(bin('node-gyp')) ? bin('node-gyp') : 'node-gyp';
    log(`building with node-gyp against libtorch ${info.version} (${info.source})`);
    r = spawnSync(gyp, ['rebuild', '-j', 'max', ...(env.npm_config_nodedir ? [`--nodedir=${env.npm_config_nodedir}`] : [])], { cwd: ROOT, stdio: 'inherit', env });
  } else {
    log(`building with cmake-js against libtorch ${info.version} (${info.source})`);
    const cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: [ROOT] });
    const jobs = String(require('os').availableParallelism());
    r = spawnSync(process.execPath, [cmakeJs, 'compile', `--CDCMAKE_PREFIX_PATH=${info.cmakePrefix}`, '--parallel', jobs], {
      cwd: ROOT,
      stdio: 'inherit',
      env,
    });
  }
  if (r.status !== 0) fail(`the native build failed (${tool}, exit ${r.status}); see the compiler output above.`);
  const out = path.join(ROOT, 'build', 'Release', 'torchcap.node');
  const err = tryLoad(out);
  if (err) fail(`the addon was built but does not load: ${err}`);
  log(`built ${path.relative(ROOT, out)}`);
}

async function main() {
  const info = ensureLibtorch();
  ensureSystemExtras(info);
  log(`libtorch ${info.version} (${info.cuda ? 'CUDA' : 'CPU'}) from ${info.source}: ${info.libDir}`);
  // A git checkout builds its own sources (an incremental build is quick); a package uses its prebuild.
  const checkout = fs.existsSync(path.join(ROOT, '.git'));
  const fromSource = checkout || args.includes('--build-from-source') || Boolean(process.env.TORCHCAP_BUILD_FROM_SOURCE);
  const toolArg = args.indexOf('--tool');
  const tool = toolArg >= 0 ? args[toolArg + 1] : process.env.TORCHCAP_BUILD_TOOL || 'cmake-js';
  if (!fromSource) {
    if (!matchingPrebuild(info) && process.env.TORCHCAP_PREBUILD_URL) await fetchPrebuild(info, process.env.TORCHCAP_PREBUILD_URL);
    const pre = matchingPrebuild(info);
    if (pre) {
      const err = tryLoad(pre);
      if (!err) {
        log(`using prebuilt ${path.relative(ROOT, pre)}; nothing to compile`);
        return;
      }
      log(`prebuilt ${path.relative(ROOT, pre)} does not load here (${err}); building from source`);
    }
  }
  build(info, tool);
}

module.exports = { download, fetchPrebuild };

if (require.main === module) {
  main().catch((e) => fail(e.stack || String(e)));
}
