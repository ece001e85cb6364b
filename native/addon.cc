// The addon's export table. Each concern registers itself from its own file.
#include "common.h"
#include "executor.h"
#include "module.h"
#include "runtime.h"
#include "tensor.h"

namespace torchcap {

void InitFunctional(Napi::Env env, Napi::Object exports);
void InitOptim(Napi::Env env, Napi::Object exports);
void InitImage(Napi::Env env, Napi::Object exports);
void InitDistributed(Napi::Env env, Napi::Object exports);
void InitAllocator(Napi::Env env, Napi::Object exports);
void InitFileStorage(Napi::Env env, Napi::Object exports);

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // One state per environment: the main thread and every worker thread that loads the addon.
  env.SetInstanceData(new AddonData());
  SkipLibtorchBacktraces();
  InitAllocator(env, exports);  // first: every tensor of the addon comes from the caching allocator
  TensorWrap::Init(env, exports);
  InitRuntime(env, exports);
  ModuleWrap::Init(env, exports);
  InitFunctional(env, exports);
  InitOptim(env, exports);
  InitImage(env, exports);
  InitFileStorage(env, exports);
  InitExecutor(env, exports);
  InitDistributed(env, exports);
  return exports;
}

bool CudaBuilt() {
#ifdef TORCHCAP_CUDA
  return true;
#else
  return false;
#endif
}

}  // namespace torchcap

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return torchcap::Init(env, exports); }

NODE_API_MODULE(torchcap, InitAddon)
