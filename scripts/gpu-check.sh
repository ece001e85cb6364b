#!/usr/bin/env bash
# On a CUDA machine: builds torchcap against the CUDA libtorch there (LIBTORCH, or the Python torch
# package's), runs the CUDA tests, a short training run and captioning on the GPU, and the GPU
# benchmark (bench/gpu.js). Meant to finish in under 8 minutes.
#
#   scripts/gpu-check.sh    (node and node_modules present, or .gpu-bundle/ from scripts/gpu-bundle.sh;
#                            nothing is downloaded)
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
stamp() { echo "== $* ($(( $(date +%s) - start ))s)"; }

# A machine without Node: unpack the bundle made by scripts/gpu-bundle.sh.
if ! command -v node >/dev/null 2>&1 && [ -f .gpu-bundle/node.tar.xz ]; then
  mkdir -p /tmp/torchcap-node && tar -C /tmp/torchcap-node -xJf .gpu-bundle/node.tar.xz
  export PATH="/tmp/torchcap-node/node/bin:$PATH"
fi
if [ ! -d node_modules ] && [ -f .gpu-bundle/node_modules.tar.xz ]; then
  tar -xJf .gpu-bundle/node_modules.tar.xz
fi
command -v node >/dev/null || { echo "gpu-check: no node (run scripts/gpu-bundle.sh where Node is, and carry .gpu-bundle/)" >&2; exit 1; }

if [ -z "${LIBTORCH:-}" ]; then
  LIBTORCH="$(python3 -c 'import os, torch; print(os.path.dirname(torch.__file__))')"
  export LIBTORCH
fi
stamp "libtorch at $LIBTORCH"
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "devices", torch.cuda.device_count())'

stamp "build (cmake-js against the CUDA libtorch)"
TORCHCAP_NO_APT=1 node scripts/install.js --build-from-source
node_modules/.bin/tsc -p .
node -e "const v = require('./dist').versions(); console.log(JSON.stringify(v)); if (!v.cuda) { console.error('CUDA is not available to torchcap'); process.exit(1); }"

stamp "CUDA tests"
node_modules/.bin/jest test/cuda test/tensor test/models --testTimeout=300000

stamp "a short training run and captioning on the GPU"
out="$(mktemp -d)"
node -e "
const { generateScenes } = require('./dist/demo/scenes');
generateScenes({ outDir: '$out/data', count: 600, heldOut: 20, size: 64 }).then((g) => console.log(JSON.stringify(g.counts)));
"
node dist/cli.js train --images "$out/data/images" --captions "$out/data/captions_train.json" --out "$out/models" \
  --backbone resnet18 --resize 64 --crop 64 --epochs 2 --batch-size 64 --embed-size 64 --hidden-size 128 \
  --threshold 1 --log-every 10 --device cuda --autocast bf16 --quiet
node dist/cli.js caption "$out"/data/images/scene-0005{81,90,99}.jpg --encoder "$out/models/encoder-2-"*.ckpt \
  --decoder "$out/models/decoder-2-"*.ckpt --vocab "$out/models/vocab.json" --device cuda --json

stamp "GPU benchmark"
node bench/gpu.js

stamp "done"
