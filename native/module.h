// Native neural-network modules exposed to TypeScript: Linear, Embedding, BatchNorm1d, LSTM and
// ResNet. One JS class, `Module`, holds any of them; lib/nn/*.ts gives each kind its typed API.
//
// forward(inputs, options) takes and returns named records of tensors, one shape per kind (see
// Forward in module.cc and ModuleForward in lib/core/binding.ts), and has an async twin,
// forwardAsync, that runs on a worker thread; forwardPacked is the LSTM over a packed sequence. The train/eval mode is an
// explicit option of every forward call, never state left over from an earlier call.
// Calls on one module must not overlap (lib/ queues them); different modules may run at once.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>

#include "common.h"
#include "resnet.h"

namespace torchcap {

enum class ModuleKind { Linear, Embedding, BatchNorm1d, LSTM, ResNet };

class ModuleWrap {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  static ModuleWrap* Of(Napi::Env env, Napi::Value v);
  explicit ModuleWrap(napi_env env) : env_(env) {}
  static constexpr const char* kClassName = "Module";
  static constexpr napi_type_tag kTypeTag = {0x0000000000000002ULL, 0x746f72636863a9e1ULL};

  ModuleKind kind = ModuleKind::Linear;
  std::shared_ptr<torch::nn::Module> module;
  // The ResNet's fast path: derived state owned here, never stale. Any change of the weights
  // (a load, an optimizer step, to(), a train-mode forward) changes the module's stamp, and the
  // next fast forward rebuilds the fold first, on the thread that runs it (a worker thread for
  // forwardAsync), in the precision asked for (float32, or bfloat16 on a CPU that has it).
  // prepareFast() builds it ahead of time. A shared slot, so an async build can fill it even if
  // the JS object is collected meanwhile. It also holds the switch for the oneDNN book-mode path.
  struct FoldSlot {
    std::mutex mu;
    std::shared_ptr<FoldedResNet> folded;
    std::atomic<bool> blockedTrain{true};  // train-mode forwards on ResNetImpl::forwardBlocked where they fit
    // The fold of the module's current weights: the one held if current, else a new one.
    std::shared_ptr<FoldedResNet> Current(const ResNetImpl& m, at::ScalarType compute);
    bool IsCurrent(const ResNetImpl& m, at::ScalarType compute);
    void Drop();
  };
  std::shared_ptr<FoldSlot> fast = std::make_shared<FoldSlot>();

 private:
  template <bool Async, bool Packed>
  Napi::Value Forward(const Napi::CallbackInfo& info);
  template <bool Async>
  Napi::Value PrepareFast(const Napi::CallbackInfo& info);
  Napi::Value FastReady(const Napi::CallbackInfo& info);
  Napi::Value SetBlockedTrain(const Napi::CallbackInfo& info);
  Napi::Value NamedParameters(const Napi::CallbackInfo& info);
  Napi::Value NamedBuffers(const Napi::CallbackInfo& info);
  Napi::Value StateDict(const Napi::CallbackInfo& info);
  Napi::Value To(const Napi::CallbackInfo& info);
  Napi::Value KindName(const Napi::CallbackInfo& info);
  Napi::Value SetRequiresGrad(const Napi::CallbackInfo& info);
  Napi::Value MultiplyAdds(const Napi::CallbackInfo& info);
  Napi::Value FeatureDim(const Napi::CallbackInfo& info);

  napi_env env_;
};

}  // namespace torchcap
