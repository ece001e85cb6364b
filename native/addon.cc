// The addon's export table. Each concern registers itself from its own file.
#include "common.h"
#include "runtime.h"
#include "tensor.h"

namespace torchcap {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // One state per environment: the main thread and every worker thread that loads the addon.
  env.SetInstanceData(new AddonData());
  TensorWrap::Init(env, exports);
  InitRuntime(env, exports);
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
