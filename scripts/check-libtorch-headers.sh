#!/usr/bin/env bash
# Compiles torchcap's C++ (native/, syntax only) against the headers of other libtorch releases,
# without installing them and without a GPU: Debian's libtorch-dev of a Debian suite (trixie has
# 2.6, sid the newest) with the suite's Gloo, ideep and oneDNN headers, downloaded with apt into a
# scratch folder and unpacked there. Two builds are checked, in the C++ standard each release asks
# for:
#   - a CUDA wheel's (TORCHCAP_CUDA, c10d with Gloo; no oneDNN wrapper, TurboJPEG or zlib): every file;
#   - that Debian libtorch's own (its oneDNN wrapper, TurboJPEG, zlib, OpenMP): the files those change.
# Needs apt-get and Debian's mirror, and this machine's turbojpeg.h and zlib.h; takes a few
# minutes a release on two cores.
#
#   scripts/check-libtorch-headers.sh [SUITE...]      (default: trixie sid)
#
# Prints each failing file's first errors and, per suite and build, `libtorch X.Y.Z (SUITE, BUILD,
# -std=...): N of M files compile`; exits 1 if any file does not.
set -uo pipefail
cd "$(dirname "$0")/.."
suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(trixie sid)
scratch="${TMPDIR:-/tmp}/torchcap-libtorch-headers"
napi="$(node -p "require('node-addon-api').include_dir")"
node_inc="$(cd "$(dirname "$(readlink -f "$(command -v node)")")/.." && pwd)/include/node"
[ -f "$node_inc/node_api.h" ] || { echo "no Node headers at $node_inc" >&2; exit 1; }
status=0

# compile DIR BUILD STD FLAGS FILE...: each FILE syntax-checked with FLAGS against DIR/root's headers
compile() {
  local dir="$1" build="$2" std="$3" flags="$4"; shift 4
  local inc="$dir/root/usr/include" logs="$dir/logs-$build" ok=0 f log
  rm -rf "$logs" && mkdir -p "$logs"
  printf '%s\n' "$@" | xargs -P "$(nproc)" -I{} sh -c '
    log="$1/$(basename "$2").log"
    c++ -fsyntax-only -std="$3" $4 -D_GLIBCXX_USE_CXX11_ABI=1 -DNAPI_CPP_EXCEPTIONS -DNODE_ADDON_API_DISABLE_DEPRECATED \
      -DTORCHCAP_BUILD_TOOL="\"check\"" -DBUILDING_NODE_EXTENSION -fexceptions -Wall -Wno-unused-parameter \
      -I"$5" -I"$6" -isystem "$7" -isystem "$7/torch/csrc/api/include" "$2" >"$log" 2>&1 || touch "$log.failed"
  ' _ "$logs" {} "$std" "$flags" "$node_inc" "$napi" "$inc"
  for f in "$@"; do
    log="$logs/$(basename "$f").log"
    if [ -f "$log.failed" ]; then
      echo "--- $f ($build build):"
      grep -m 8 "error" "$log"
      status=1
    else
      ok=$((ok + 1))
    fi
  done
  echo "libtorch $version ($suite, $build build, -std=$std): $ok of $# files compile"
}

for suite in "${suites[@]}"; do
  dir="$scratch/$suite"
  mkdir -p "$dir/lists/partial" "$dir/debs"
  echo "deb http://deb.debian.org/debian $suite main" >"$dir/sources.list"
  apt=(-o "Dir::Etc::SourceList=$dir/sources.list" -o Dir::Etc::SourceParts=/dev/null -o "Dir::State::Lists=$dir/lists"
    -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= -o APT::Sandbox::User=root)
  if ! apt-get "${apt[@]}" update -qq >"$dir/apt.log" 2>&1; then
    echo "$suite: apt-get update failed (see $dir/apt.log)"; status=1; continue
  fi
  rm -f "$dir"/debs/*.deb
  if ! (cd "$dir/debs" && apt-get "${apt[@]}" download libtorch-dev libgloo-dev libideep-dev libdnnl-dev >>"$dir/apt.log" 2>&1); then
    echo "$suite: could not download libtorch-dev, libgloo-dev, libideep-dev and libdnnl-dev (see $dir/apt.log)"; status=1; continue
  fi
  rm -rf "$dir/root"
  for deb in "$dir"/debs/*.deb; do dpkg -x "$deb" "$dir/root"; done
  version="$(node -p "require('./scripts/find-libtorch.js').readVersion(['$dir/root/usr/include'])")"
  std=c++17
  node -e "process.exit(require('./scripts/find-libtorch.js').needsCxx20('$version') ? 0 : 1)" && std=c++20
  compile "$dir" wheel "$std" "-DTORCHCAP_CUDA -DUSE_DISTRIBUTED -DUSE_C10D_GLOO" native/*.cc native/pillow/*.cc
  mapfile -t debian_files < <(grep -l "TORCHCAP_IDEEP\|TORCHCAP_TURBOJPEG\|TORCHCAP_ZLIB" native/*.cc native/pillow/*.cc)
  compile "$dir" debian "$std" "-fopenmp -DTORCHCAP_IDEEP -DTORCHCAP_TURBOJPEG -DTORCHCAP_ZLIB -DUSE_DISTRIBUTED -DUSE_C10D_GLOO" "${debian_files[@]}"
done
exit $status
