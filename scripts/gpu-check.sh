#!/usr/bin/env bash
# On a CUDA machine: builds torchcap against the CUDA libtorch there (LIBTORCH, or the Python torch
# package's), runs the CUDA tests, a short training run on generated scenes on the GPU, captions the
# held-out scenes on the CPU and on the GPU from the same checkpoint, and runs the GPU benchmark
# (bench/gpu.js). Three files go to $OUT (default ./gpu-check-out), as a device machine hands back only
# a few: log.txt, the built addon (torchcap-cuda.node) and results.tar.gz with the rest (the build
# logs, ldd's output, versions(), the tests' JSON report, the captions, the benchmark's JSON), packed
# again after each step, so a run stopped at its time limit still leaves what it did. Not yet timed
# on a GPU machine; the rehearsal below takes 1-4 minutes on 2 cores.
#
#   scripts/gpu-check.sh    (node and node_modules present, or .gpu-bundle/ from scripts/gpu-bundle.sh;
#                            nothing is downloaded)
#
# GPU_CHECK_DEVICE=cpu rehearses the steps after the build on a machine without CUDA (nothing is
# built then; the addon at hand is used).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu-check-out}"
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1
DEVICE="${GPU_CHECK_DEVICE:-cuda}"
R="$(mktemp -d)/results"  # everything but the log and the addon, packed into $OUT/results.tar.gz
mkdir -p "$R"
pack() { tar -czf "$OUT/results.tar.gz.part" -C "$(dirname "$R")" results && mv "$OUT/results.tar.gz.part" "$OUT/results.tar.gz"; }
trap pack EXIT
trap 'exit 143' TERM
start=$(date +%s)
stamp() { [ -n "${started:-}" ] && pack; started=1; echo "== $* ($(( $(date +%s) - start ))s)"; }
failed=()
check() { # check NAME CMD...: runs CMD, records NAME as failed when it fails, never stops the script
  local name="$1"; shift
  "$@" || { echo "!! $name failed (exit $?)"; failed+=("$name"); }
}

# A machine without Node: unpack the bundle made by scripts/gpu-bundle.sh.
if ! command -v node >/dev/null 2>&1 && [ -f .gpu-bundle/node.tar.xz ]; then
  mkdir -p /tmp/torchcap-node && tar -C /tmp/torchcap-node -xJf .gpu-bundle/node.tar.xz
  export PATH="/tmp/torchcap-node/node/bin:$PATH"
fi
if [ ! -d node_modules ] && [ -f .gpu-bundle/node_modules.tar.xz ]; then
  tar -xJf .gpu-bundle/node_modules.tar.xz
fi
command -v node >/dev/null || { echo "gpu-check: no node (run scripts/gpu-bundle.sh where Node is, and carry .gpu-bundle/)" >&2; exit 1; }
stamp "node $(node --version)"

if [ "$DEVICE" = cuda ]; then
  if [ -z "${LIBTORCH:-}" ]; then
    LIBTORCH="$(python3 -c 'import os, torch; print(os.path.dirname(torch.__file__))')"
    export LIBTORCH
  fi
  # libtorch's CMake config of a CUDA build enables CMake's CUDA language: it needs nvcc
  if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then export PATH="$PATH:/usr/local/cuda/bin"; fi
  stamp "machine"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version(), "devices", torch.cuda.device_count(), torch.cuda.get_device_name(0))'
  echo "cpus $(nproc); $(cmake --version | head -1); $(c++ --version | head -1); tools: $(command -v nvcc make ninja | tr '\n' ' ')"
  echo "libtorch at $LIBTORCH; gloo headers: $(ls -d "$LIBTORCH"/include/gloo 2>/dev/null || echo none)"

  stamp "build (cmake-js against the CUDA libtorch)"
  if ! TORCHCAP_NO_APT=1 node scripts/install.js --build-from-source >"$R/build-cmake.log" 2>&1; then
    tail -40 "$R/build-cmake.log"
    if [ -f build/build.ninja ] || [ -f build/Makefile ]; then
      stamp "the cmake-js build failed: every compiler error, going on past the first"
      keep_going=(-k) && [ -f build/build.ninja ] && keep_going=(-k 0)  # make's flag, or ninja's
      cmake --build build --parallel "$(nproc)" -- "${keep_going[@]}" >"$R/build-errors.log" 2>&1
      grep -E "error|Error" "$R/build-errors.log" | head -60
    fi
    stamp "build (node-gyp, the other build tool, with no CMake config of libtorch's)"
    rm -rf build
    if ! MAKEFLAGS=-k TORCHCAP_NO_APT=1 node scripts/install.js --build-from-source --tool node-gyp >"$R/build-gyp.log" 2>&1; then
      grep -E "error" "$R/build-gyp.log" | head -60
      stamp "no addon could be built; the logs are in $OUT/results.tar.gz"
      exit 1
    fi
    echo "built with node-gyp"
  fi
  cp build/Release/torchcap.node "$OUT/torchcap-cuda.node"
  ldd build/Release/torchcap.node >"$R/ldd.txt"
  grep -c "=> /" "$R/ldd.txt" | sed 's/^/libraries resolved: /'
  grep "not found" "$R/ldd.txt" || true
fi

stamp "compile TypeScript"
node_modules/.bin/tsc -p . || exit 1
node -e "
const v = require('./dist').versions();
console.log(JSON.stringify(v));
require('fs').writeFileSync('$R/versions.json', JSON.stringify(v, null, 2));
if ('$DEVICE' === 'cuda' && !v.cuda) { console.error('CUDA is not available to torchcap'); process.exit(1); }
" || exit 1

stamp "tests: CUDA, tensors, models, layers, versions"
check tests timeout 240 node_modules/.bin/jest test/cuda.test.ts test/tensor.test.ts test/models.test.ts test/layers.test.ts test/versions.test.ts \
  --testTimeout=120000 --json --outputFile="$R/jest.json"
node -e "
const r = JSON.parse(require('fs').readFileSync('$R/jest.json', 'utf8'));
console.log('tests: ' + r.numPassedTests + ' passed, ' + r.numFailedTests + ' failed, ' + r.numPendingTests + ' skipped');
for (const f of r.testResults) for (const t of f.assertionResults) if (t.status === 'failed') console.log('FAILED ' + t.fullName + ': ' + (t.failureMessages[0] || '').split('\n')[0]);
" || true

stamp "a short training run on generated scenes (--device $DEVICE --autocast bf16)"
work="$(mktemp -d)"
node -e "
const { generateScenes } = require('./dist/demo/scenes');
generateScenes({ outDir: '$work/data', count: 620, heldOut: 20, size: 64, seed: 1 }).then((g) => console.log(JSON.stringify(g.counts)));
" || exit 1
check train node dist/cli.js train --images "$work/data/images" --captions "$work/data/captions_train.json" --out "$work/models" \
  --backbone resnet18 --resize 64 --crop 64 --epochs 6 --batch-size 64 --embed-size 64 --hidden-size 128 \
  --threshold 1 --log-every 20 --device "$DEVICE" --autocast bf16 --quiet
tail -3 "$work/models/metrics.jsonl" 2>/dev/null

stamp "captions of the held-out scenes: CPU, $DEVICE with TF32 off (float32), $DEVICE as it comes"
enc="$(ls "$work"/models/encoder-6-*.ckpt 2>/dev/null | tail -1)"
dec="$(ls "$work"/models/decoder-6-*.ckpt 2>/dev/null | tail -1)"
held=("$work"/data/images/scene-0006{0,1}?.jpg)
if [ -n "$enc" ] && [ -n "$dec" ]; then
  # caption DEVICE [VAR=VALUE...]: the held-out scenes' captions, one JSON line each
  caption() {
    local dev="$1"; shift
    env "$@" node dist/cli.js caption "${held[@]}" --encoder "$enc" --decoder "$dec" --vocab "$work/models/vocab.json" --json --device "$dev"
  }
  check caption-cpu caption cpu >"$R/captions-cpu.jsonl"
  # NVIDIA_TF32_OVERRIDE=0: cuDNN and cuBLAS compute float32 as float32 (libtorch 2.x lets cuDNN's
  # convolutions use TF32 by default)
  check caption-gpu caption "$DEVICE" NVIDIA_TF32_OVERRIDE=0 >"$R/captions-gpu-fp32.jsonl"
  check caption-gpu-default caption "$DEVICE" >"$R/captions-gpu-default.jsonl"
  node -e "
const fs = require('fs');
const read = (f) => fs.readFileSync('$R/' + f, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
const cpu = read('captions-cpu.jsonl');
for (const f of ['captions-gpu-fp32.jsonl', 'captions-gpu-default.jsonl']) {
  const gpu = read(f);
  const same = cpu.filter((c, i) => gpu[i] && gpu[i].image === c.image && gpu[i].caption === c.caption).length;
  console.log(f + ': ' + same + ' of ' + cpu.length + ' captions equal to the CPU\'s');
  if (f === 'captions-gpu-fp32.jsonl' && same !== cpu.length) process.exitCode = 1;
}
console.log('distinct captions: ' + new Set(cpu.map((c) => c.caption)).size + ' of ' + cpu.length + '; e.g. ' + JSON.stringify(cpu.slice(0, 3)));
" || failed+=(captions-equal)
else
  echo "!! no checkpoint of epoch 6"; failed+=(checkpoint)
fi

if [ "$DEVICE" = cuda ]; then
  stamp "GPU benchmark (bench/gpu.js)"
  check bench env GPU_BENCH_JSON="$R/gpu-bench.json" timeout 200 node bench/gpu.js
fi

stamp "done; failed: ${failed[*]:-none}"
[ ${#failed[@]} -eq 0 ]
