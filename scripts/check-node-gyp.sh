#!/usr/bin/env bash
# Builds the addon with node-gyp (the path @electron/rebuild takes) in a scratch copy of the
# sources and checks that it loads and reports node-gyp as its builder.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp -r "$root/native" "$root/scripts" "$root/binding.gyp" "$root/package.json" "$work/"
ln -s "$root/node_modules" "$work/node_modules"
(cd "$work" && node scripts/install.js --build-from-source --tool node-gyp)
node -e "
const v = require('$work/build/Release/torchcap.node').versions();
if (v.build.tool !== 'node-gyp') { console.error('built by', v.build.tool); process.exit(1); }
console.log('node-gyp build loads: libtorch ' + v.libtorch + ', ' + v.blas);
"
