// The native Tensor: a JS object holding one torch::Tensor handle.
//
// Memory: the handle is released by dispose() or, if the user forgets, by the GC finalizer.
// The tensor's bytes are reported to V8 as external memory so the GC feels their pressure, and
// the per-environment counters behind memory() track live tensors and bytes.
//
// The class is a NativeClass (wrap.h), not a Napi::ObjectWrap: its finalizer frees the tensor
// inside the GC itself, so a synchronous loop that drops tensors runs in flat memory.
#pragma once

#include "common.h"

namespace torchcap {

class TensorWrap {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  // The wrapper behind a JS object, or nullptr if it is not a native Tensor.
  static TensorWrap* Of(Napi::Env env, Napi::Value v);
  explicit TensorWrap(napi_env env) : env_(env) {}
  ~TensorWrap();
  TensorWrap(const TensorWrap&) = delete;
  TensorWrap& operator=(const TensorWrap&) = delete;

  void Set(torch::Tensor t);
  void Release();
  torch::Tensor& Get();  // throws if disposed
  bool Disposed() const { return !tensor_.defined(); }

 private:
  // lifecycle and metadata (tensor.cc)
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value IsDisposed(const Napi::CallbackInfo& info);
  Napi::Value Shape(const Napi::CallbackInfo& info);
  Napi::Value Dtype(const Napi::CallbackInfo& info);
  Napi::Value Device(const Napi::CallbackInfo& info);
  Napi::Value RequiresGrad(const Napi::CallbackInfo& info);
  Napi::Value SetRequiresGrad(const Napi::CallbackInfo& info);
  Napi::Value ToTypedArrayM(const Napi::CallbackInfo& info);
  Napi::Value Item(const Napi::CallbackInfo& info);
  Napi::Value ToString(const Napi::CallbackInfo& info);
  Napi::Value Grad(const Napi::CallbackInfo& info);
  Napi::Value ZeroGrad(const Napi::CallbackInfo& info);
  Napi::Value Backward(const Napi::CallbackInfo& info);
  Napi::Value IsLeaf(const Napi::CallbackInfo& info);
  Napi::Value SameStorage(const Napi::CallbackInfo& info);

  // operations (tensor_ops.cc)
  Napi::Value Unary(const Napi::CallbackInfo& info);
  Napi::Value Binary(const Napi::CallbackInfo& info);
  Napi::Value InPlace(const Napi::CallbackInfo& info);
  Napi::Value Reduce(const Napi::CallbackInfo& info);
  Napi::Value ReduceWithIndices(const Napi::CallbackInfo& info);
  Napi::Value Topk(const Napi::CallbackInfo& info);
  Napi::Value Sort(const Napi::CallbackInfo& info);
  Napi::Value Softmax(const Napi::CallbackInfo& info);
  Napi::Value Reshape(const Napi::CallbackInfo& info);
  Napi::Value View(const Napi::CallbackInfo& info);
  Napi::Value Permute(const Napi::CallbackInfo& info);
  Napi::Value Transpose(const Napi::CallbackInfo& info);
  Napi::Value Squeeze(const Napi::CallbackInfo& info);
  Napi::Value Unsqueeze(const Napi::CallbackInfo& info);
  Napi::Value Flatten(const Napi::CallbackInfo& info);
  Napi::Value Expand(const Napi::CallbackInfo& info);
  Napi::Value AsStrided(const Napi::CallbackInfo& info);
  Napi::Value Strides(const Napi::CallbackInfo& info);
  Napi::Value Slice(const Napi::CallbackInfo& info);
  Napi::Value Select(const Napi::CallbackInfo& info);
  Napi::Value IndexSelect(const Napi::CallbackInfo& info);
  Napi::Value Gather(const Napi::CallbackInfo& info);
  Napi::Value MaskedFill(const Napi::CallbackInfo& info);
  Napi::Value Clamp(const Napi::CallbackInfo& info);
  Napi::Value To(const Napi::CallbackInfo& info);
  Napi::Value Clone(const Napi::CallbackInfo& info);
  Napi::Value Detach(const Napi::CallbackInfo& info);
  Napi::Value Contiguous(const Napi::CallbackInfo& info);
  Napi::Value Equal(const Napi::CallbackInfo& info);
  Napi::Value AllClose(const Napi::CallbackInfo& info);

  napi_env env_;
  torch::Tensor tensor_;
  int64_t reported_ = 0;
};

// Module-level functions: creation, joining, grad mode, seeds (tensor.cc / tensor_ops.cc).
void InitTensorFunctions(Napi::Env env, Napi::Object exports);

}  // namespace torchcap
