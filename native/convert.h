// Tensor bytes <-> JS typed arrays. Always copies: no JS memory ever points into a tensor (an
// external ArrayBuffer would; Electron forbids them) and no tensor into JS memory.
#pragma once

#include <napi.h>
#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace torchcap {

// Copies a tensor's bytes into a fresh typed array (contiguous, on the CPU): Float32Array,
// Float64Array, BigInt64Array (int64), Int32Array, Uint8Array (uint8, bool), Uint16Array (16-bit floats).
Napi::Value ToTypedArray(Napi::Env env, const torch::Tensor& t);
// The bytes a typed array (or Buffer) views at this moment. A JS getter can detach or shrink its
// buffer (and free the memory behind it), so callers read every other argument and option first,
// then take this and copy from it before any JS runs again. Detached: length 0.
struct ByteView {
  const uint8_t* data = nullptr;
  size_t length = 0;
};
ByteView TypedArrayBytes(Napi::Value typedArray);

// Copies `byteLength` bytes into a new CPU tensor of `dtype` and `shape`; RangeError when they
// do not match the shape's size.
torch::Tensor FromBytes(const uint8_t* data, size_t byteLength, torch::ScalarType dtype, const std::vector<int64_t>& shape);

}  // namespace torchcap
