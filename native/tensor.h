// The native Tensor: a JS object holding one torch::Tensor handle, and the helpers that wrap
// tensors into such objects and read them back from arguments.
//
// Memory: the handle is released by dispose() or, if the user forgets, once the GC has collected
// the JS object: at the next check of the tensor registry (tensor_registry.h), else by the
// deferred finalizer. The tensor's bytes are reported to V8 as external memory so the GC feels
// their pressure, and the per-environment counters behind memory() track live tensors and bytes.
#pragma once

#include <napi.h>
#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace torchcap {

class TensorWrap {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  // The wrapper behind a JS object, or nullptr if it is not a native Tensor.
  static TensorWrap* Of(Napi::Env env, Napi::Value v);
  explicit TensorWrap(napi_env env) : env_(env) {}
  ~TensorWrap();
  // NativeClass hands over the weak reference to this object's JS object (owned from now on).
  void Watch(napi_ref self) { self_ = self; }
  static constexpr bool kWatched = true;
  static constexpr const char* kClassName = "Tensor";
  static constexpr napi_type_tag kTypeTag = {0x0000000000000001ULL, 0x746f72636863a9e1ULL};
  TensorWrap(const TensorWrap&) = delete;
  TensorWrap& operator=(const TensorWrap&) = delete;

  void Set(torch::Tensor t);
  void Release();
  // The JS object has been collected: frees the tensor and this wrapper now, and with them the
  // weak reference, which cancels the pending finalizer (as napi_wrap documents).
  void Reap();
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
  napi_ref self_ = nullptr;  // weak: cleared by the GC once the JS object is collected

  // Where the registry keeps this wrap while it holds a tensor.
  friend class TensorRegistry;
  enum class List : uint8_t { None, Young, Old };
  List list_ = List::None;
  size_t slot_ = 0;
};

// Module-level functions: creation, joining, grad mode, seeds, memory (tensor_create.cc).
void InitTensorFunctions(Napi::Env env, Napi::Object exports);

// ---------- wrapping (tensor.cc) ----------

// Wraps a tensor into a new native Tensor object (takes a reference; never shares JS memory).
Napi::Object WrapTensor(Napi::Env env, torch::Tensor t);
// Undefined tensors become null.
Napi::Array WrapTensors(Napi::Env env, const std::vector<torch::Tensor>& ts);
// The tensor held by a native Tensor object; TypeError naming `name` otherwise, Error if disposed.
torch::Tensor& UnwrapTensor(Napi::Value v, const char* name);
torch::Tensor& ArgTensor(const Napi::CallbackInfo& info, size_t i, const char* name);
std::vector<torch::Tensor> ArgTensors(const Napi::CallbackInfo& info, size_t i, const char* name);
// Like ArgTensors, but null/undefined entries become undefined tensors.
std::vector<torch::Tensor> ArgTensorsOrNull(const Napi::CallbackInfo& info, size_t i, const char* name);

}  // namespace torchcap
