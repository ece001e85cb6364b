#!/usr/bin/env bash
# Packs what scripts/gpu-check.sh needs on a CUDA machine that has no Node and no npm registry:
# this machine's node binary and headers (N-API's and node-gyp's; not OpenSSL's), and node_modules
# (without the browser driver the check does not use), xz-compressed into .gpu-bundle/
# (git-ignored), about 40 MB. The device tool carries it with the working tree
# (carry: [".gpu-bundle"]).
#
#   scripts/gpu-bundle.sh
#   then on the CUDA machine, with .gpu-bundle/ next to the sources: scripts/gpu-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
node_bin="$(readlink -f "$(command -v node)")"
prefix="$(cd "$(dirname "$node_bin")/.." && pwd)"
[ -f "$prefix/include/node/node_api.h" ] || { echo "gpu-bundle: no Node headers under $prefix/include/node" >&2; exit 1; }
rm -rf .gpu-bundle
mkdir -p .gpu-bundle/stage/node/bin .gpu-bundle/stage/node/include
cp "$node_bin" .gpu-bundle/stage/node/bin/node
cp -r "$prefix/include/node" .gpu-bundle/stage/node/include/node
rm -rf .gpu-bundle/stage/node/include/node/openssl
tar -C .gpu-bundle/stage -cJf .gpu-bundle/node.tar.xz node
rm -rf .gpu-bundle/stage
XZ_OPT=-6 tar -cJf .gpu-bundle/node_modules.tar.xz --exclude='node_modules/.cache' --exclude='node_modules/playwright-core' node_modules
du -sh .gpu-bundle/*
