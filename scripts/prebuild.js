#!/usr/bin/env node
'use strict';
// Builds the prebuilt addon for the libtorch at hand (LIBTORCH, or what discovery finds) and puts
// it where the run-time loader looks: prebuilds/<platform>-<arch>/torch-<major.minor>-<cpu|cuda>.node.
// Then checks with ldd that every shared library it needs resolves.
//
//   node scripts/prebuild.js [--reuse]     (--reuse: take build/Release/torchcap.node if it was
//                                           built against the same libtorch, instead of rebuilding)
//
// Run paths: a system libtorch needs none; one inside the package folder (e.g. an unpacked
// libtorch/ shipped with an application) is found through an $ORIGIN-relative path; any other is
// recorded by its absolute path (the CMake build sets it).

const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const { findLibtorch } = require('./find-libtorch');

const ROOT = path.resolve(__dirname, '..');
const log = (m) => process.stderr.write(`prebuild: ${m}\n`);

function fail(m) {
  process.stderr.write(`prebuild: ${m}\n`);
  process.exit(1);
}

function flavour(info) {
  return `torch-${info.versionMajorMinor}-${info.cuda ? 'cuda' : 'cpu'}`;
}

/** Libraries `ldd` cannot resolve for `file`. */
function unresolved(file) {
  const r = spawnSync('ldd', [file], { encoding: 'utf8' });
  if (r.status !== 0) fail(`ldd ${file} failed: ${r.stderr.trim()}`);
  return r.stdout
    .split('\n')
    .filter((l) => /not found/.test(l))
    .map((l) => l.trim().split(/\s+/)[0]);
}

function builtAgainst(file) {
  const r = spawnSync(process.execPath, ['-e', `console.log(JSON.stringify(require(${JSON.stringify(file)}).versions()))`], { encoding: 'utf8' });
  return r.status === 0 ? JSON.parse(r.stdout) : null;
}

function setRunpath(file, runpath) {
  const r = spawnSync('patchelf', ['--set-rpath', runpath, file], { encoding: 'utf8' });
  if (r.error || r.status !== 0) fail(`patchelf is needed to set the run path ${runpath} (apt-get install patchelf)`);
}

function main() {
  const tried = [];
  const info = findLibtorch({ tried });
  if (!info) fail(`no libtorch found (${tried.join('; ')})`);
  const built = path.join(ROOT, 'build', 'Release', 'torchcap.node');
  const reuse = process.argv.includes('--reuse');
  const existing = reuse && fs.existsSync(built) ? builtAgainst(built) : null;
  if (!existing || !existing.libtorch.startsWith(info.versionMajorMinor) || existing.cudaBuild !== info.cuda) {
    log(`building against libtorch ${info.version} (${info.cuda ? 'CUDA' : 'CPU'}, ${info.source})`);
    const r = spawnSync(process.execPath, [path.join(__dirname, 'install.js'), '--build-from-source'], { cwd: ROOT, stdio: 'inherit' });
    if (r.status !== 0) fail('the build failed');
  } else {
    log(`reusing ${path.relative(ROOT, built)} (built against libtorch ${existing.libtorch})`);
  }
  const dir = path.join(ROOT, 'prebuilds', `${process.platform}-${process.arch}`);
  fs.mkdirSync(dir, { recursive: true });
  const out = path.join(dir, `${flavour(info)}.node`);
  fs.copyFileSync(built, out);
  const rel = path.relative(ROOT, info.libDir);
  if (!info.system && !rel.startsWith('..') && !path.isAbsolute(rel)) {
    // libtorch travels inside the package: find it relative to the addon.
    setRunpath(out, `$ORIGIN/${path.relative(dir, info.libDir)}`);
  }
  const missing = unresolved(out);
  if (missing.length) fail(`${path.relative(ROOT, out)} needs libraries that do not resolve: ${missing.join(', ')}`);
  const loaded = builtAgainst(out);
  if (!loaded) fail(`${path.relative(ROOT, out)} does not load`);
  log(`${path.relative(ROOT, out)}: ${(fs.statSync(out).size / 1024).toFixed(0)} KiB, every library resolves, libtorch ${loaded.libtorch}, ${loaded.blas}`);
}

main();
