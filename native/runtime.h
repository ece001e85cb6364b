#pragma once
#include <napi.h>

namespace torchcap {
void InitRuntime(Napi::Env env, Napi::Object exports);
// Whether this addon was linked against a CUDA build of libtorch.
bool CudaBuilt();
// Whether torchcap's caching CPU allocator serves libtorch's CPU tensors (allocator.cc).
bool CpuCacheInstalled();
}  // namespace torchcap
