// The native Tensor's lifecycle and metadata, and the helpers that wrap and unwrap tensors.
#include "tensor.h"

#include <algorithm>
#include <limits>
#include <sstream>

#include "addon_data.h"
#include "args.h"
#include "convert.h"
#include "dtypes.h"
#include "errors.h"
#include "sizes.h"
#include "tensor_registry.h"
#include "wrap.h"

namespace torchcap {

void TensorWrap::Init(Napi::Env env, Napi::Object exports) {
  using C = NativeClass<TensorWrap>;
  Napi::Function ctor = C::Define(env, {
      C::Method<&TensorWrap::Dispose>("dispose"),
      C::Method<&TensorWrap::IsDisposed>("isDisposed"),
      C::Method<&TensorWrap::Shape>("shape"),
      C::Method<&TensorWrap::Dtype>("dtype"),
      C::Method<&TensorWrap::Device>("device"),
      C::Method<&TensorWrap::RequiresGrad>("requiresGrad"),
      C::Method<&TensorWrap::SetRequiresGrad>("setRequiresGrad"),
      C::Method<&TensorWrap::ToTypedArrayM>("toTypedArray"),
      C::Method<&TensorWrap::Item>("item"),
      C::Method<&TensorWrap::ToString>("toString"),
      C::Method<&TensorWrap::Grad>("grad"),
      C::Method<&TensorWrap::ZeroGrad>("zeroGrad"),
      C::Method<&TensorWrap::Backward>("backward"),
      C::Method<&TensorWrap::IsLeaf>("isLeaf"),
      C::Method<&TensorWrap::SameStorage>("sameStorage"),
      C::Method<&TensorWrap::Unary>("unary"),
      C::Method<&TensorWrap::Binary>("binary"),
      C::Method<&TensorWrap::InPlace>("inPlace"),
      C::Method<&TensorWrap::Reduce>("reduce"),
      C::Method<&TensorWrap::ReduceWithIndices>("reduceWithIndices"),
      C::Method<&TensorWrap::Topk>("topk"),
      C::Method<&TensorWrap::Sort>("sort"),
      C::Method<&TensorWrap::Softmax>("softmax"),
      C::Method<&TensorWrap::Reshape>("reshape"),
      C::Method<&TensorWrap::View>("view"),
      C::Method<&TensorWrap::Permute>("permute"),
      C::Method<&TensorWrap::Transpose>("transpose"),
      C::Method<&TensorWrap::Squeeze>("squeeze"),
      C::Method<&TensorWrap::Unsqueeze>("unsqueeze"),
      C::Method<&TensorWrap::Flatten>("flatten"),
      C::Method<&TensorWrap::Expand>("expand"),
      C::Method<&TensorWrap::AsStrided>("asStrided"),
      C::Method<&TensorWrap::Strides>("strides"),
      C::Method<&TensorWrap::Slice>("slice"),
      C::Method<&TensorWrap::Select>("select"),
      C::Method<&TensorWrap::IndexSelect>("indexSelect"),
      C::Method<&TensorWrap::Gather>("gather"),
      C::Method<&TensorWrap::MaskedFill>("maskedFill"),
      C::Method<&TensorWrap::Clamp>("clamp"),
      C::Method<&TensorWrap::To>("to"),
      C::Method<&TensorWrap::Clone>("clone"),
      C::Method<&TensorWrap::Detach>("detach"),
      C::Method<&TensorWrap::Contiguous>("contiguous"),
      C::Method<&TensorWrap::Equal>("equal"),
      C::Method<&TensorWrap::AllClose>("allclose")
  });
  Data(env).tensorCtor = Napi::Persistent(ctor);
  exports.Set("Tensor", ctor);
  InitTensorFunctions(env, exports);
}

TensorWrap* TensorWrap::Of(Napi::Env env, Napi::Value v) { return NativeClass<TensorWrap>::Of(env, v); }

TensorWrap::~TensorWrap() {
  Release();
  if (self_) napi_delete_reference(env_, self_);  // in the finalizer, as napi_wrap asks
}

// The bytes memory() counts for a tensor and V8 is told about: its elements' bytes, but never more
// than its storage holds. A broadcast view (expand, asStrided with zero strides) of one element may
// have 2^60 elements and holds 4 bytes; V8 ends the process for an amount from 2^60 on.
static int64_t HeldBytes(const torch::Tensor& t) {
  int64_t logical = 0;
  if (__builtin_mul_overflow(t.numel(), static_cast<int64_t>(t.element_size()), &logical)) logical = std::numeric_limits<int64_t>::max();
  const c10::Storage& storage = t.unsafeGetTensorImpl()->unsafe_storage();
  if (storage.unsafeGetStorageImpl() == nullptr) return logical;  // no storage of its own (an opaque tensor)
  return std::min(logical, static_cast<int64_t>(storage.nbytes()));
}

void TensorWrap::Set(torch::Tensor t) {
  Release();
  if (!t.defined()) return;
  tensor_ = std::move(t);
  reported_ = HeldBytes(tensor_);
  AddonData& d = Data(Napi::Env(env_));
  d.liveTensors++;
  d.liveBytes += reported_;
  d.tensors->Add(env_, this, reported_);
}

// Also runs from the deferred finalizer, possibly while the environment is torn down.
void TensorWrap::Release() {
  if (!tensor_.defined()) return;
  tensor_ = torch::Tensor();
  if (AddonData* d = DataOrNull(env_)) {
    d->liveTensors--;
    d->liveBytes -= reported_;
    d->tensors->Remove(this);
  }
  ReportExternal(env_, -reported_);
  reported_ = 0;
}

void TensorWrap::Reap() {
  Release();
  napi_ref self = self_;
  self_ = nullptr;
  if (self) napi_delete_reference(env_, self);
  delete this;
}

torch::Tensor& TensorWrap::Get() {
  if (!tensor_.defined()) ThrowError("Tensor has been disposed");
  return tensor_;
}

// ---------- wrapping ----------

Napi::Object WrapTensor(Napi::Env env, torch::Tensor t) {
  // Views (reshape, view, asStrided) can give an empty tensor any sizes: refuse the ones that
  // would make later operators loop for hours.
  if (t.defined() && t.numel() == 0) CheckedNumel("tensor", t.sizes());
  auto made = NativeClass<TensorWrap>::New(env, Data(env).tensorCtor);
  made.second->Set(std::move(t));
  return made.first;
}

torch::Tensor& UnwrapTensor(Napi::Value v, const char* name) {
  TensorWrap* w = TensorWrap::Of(v.Env(), v);
  if (!w) ThrowType(std::string("Expected a Tensor for ") + name);
  if (w->Disposed()) ThrowError(std::string("Tensor passed as ") + name + " has been disposed");
  return w->Get();
}

torch::Tensor& ArgTensor(const Napi::CallbackInfo& info, size_t i, const char* name) {
  return UnwrapTensor(info.Length() > i ? info[i] : info.Env().Undefined(), name);
}

std::vector<torch::Tensor> ArgTensors(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsArray()) ThrowType(std::string("Expected an array of Tensors for ") + name);
  auto arr = info[i].As<Napi::Array>();
  std::vector<torch::Tensor> out;
  out.reserve(arr.Length());
  for (uint32_t k = 0; k < arr.Length(); ++k) out.push_back(UnwrapTensor(arr.Get(k), name));
  return out;
}

std::vector<torch::Tensor> ArgTensorsOrNull(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsArray()) ThrowType(std::string("Expected an array of Tensors for ") + name);
  auto arr = info[i].As<Napi::Array>();
  std::vector<torch::Tensor> out;
  out.reserve(arr.Length());
  for (uint32_t k = 0; k < arr.Length(); ++k) {
    Napi::Value v = arr.Get(k);
    out.push_back(v.IsNull() || v.IsUndefined() ? torch::Tensor() : UnwrapTensor(v, name));
  }
  return out;
}

Napi::Array WrapTensors(Napi::Env env, const std::vector<torch::Tensor>& ts) {
  Napi::Array arr = Napi::Array::New(env, ts.size());
  for (size_t k = 0; k < ts.size(); ++k) {
    arr.Set(static_cast<uint32_t>(k), ts[k].defined() ? Napi::Value(WrapTensor(env, ts[k])) : env.Null());
  }
  return arr;
}

// ---------- lifecycle and metadata ----------

Napi::Value TensorWrap::Dispose(const Napi::CallbackInfo& info) {
  Release();
  return info.Env().Undefined();
}

Napi::Value TensorWrap::IsDisposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), Disposed()); }

Napi::Value TensorWrap::Shape(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, {
    auto sizes = Get().sizes();
    Napi::Array arr = Napi::Array::New(info.Env(), sizes.size());
    for (size_t k = 0; k < sizes.size(); ++k) arr.Set(static_cast<uint32_t>(k), Napi::Number::New(info.Env(), static_cast<double>(sizes[k])));
    return arr;
  });
}

Napi::Value TensorWrap::Dtype(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, { return Napi::String::New(info.Env(), DtypeName(Get().scalar_type())); });
}

Napi::Value TensorWrap::Device(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, { return Napi::String::New(info.Env(), DeviceName(Get().device())); });
}

Napi::Value TensorWrap::RequiresGrad(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, { return Napi::Boolean::New(info.Env(), Get().requires_grad()); });
}

Napi::Value TensorWrap::SetRequiresGrad(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, {
    Get().set_requires_grad(ArgBool(info, 0, "requiresGrad"));
    return info.Env().Undefined();
  });
}

Napi::Value TensorWrap::ToTypedArrayM(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, { return ToTypedArray(info.Env(), Get()); });
}

Napi::Value TensorWrap::Item(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, {
    torch::Tensor& t = Get();
    if (t.numel() != 1) ThrowRange("item() needs a tensor with exactly one element, got " + std::to_string(t.numel()));
    if (t.scalar_type() == torch::kBool) return Napi::Boolean::New(info.Env(), t.item<bool>());
    return Napi::Number::New(info.Env(), t.item<double>());
  });
}

Napi::Value TensorWrap::ToString(const Napi::CallbackInfo& info) {
  if (Disposed()) return Napi::String::New(info.Env(), "Tensor(disposed)");
  TORCHCAP_GUARD(info, {
    std::ostringstream os;
    os << tensor_;
    return Napi::String::New(info.Env(), os.str());
  });
}

Napi::Value TensorWrap::Grad(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, {
    const torch::Tensor& g = Get().grad();
    if (!g.defined()) return info.Env().Null();
    return WrapTensor(info.Env(), g);
  });
}

Napi::Value TensorWrap::ZeroGrad(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, {
    torch::Tensor& t = Get();
    if (t.grad().defined()) t.mutable_grad() = torch::Tensor();
    return info.Env().Undefined();
  });
}

Napi::Value TensorWrap::Backward(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, {
    torch::Tensor& t = Get();
    if (!t.requires_grad()) ThrowError("backward() on a tensor that does not require grad and has no grad_fn");
    torch::Tensor grad;
    if (ArgPresent(info, 0)) grad = ArgTensor(info, 0, "gradient");
    bool retain = ArgPresent(info, 1) && ArgBool(info, 1, "retainGraph");
    t.backward(grad, retain);
    return info.Env().Undefined();
  });
}

Napi::Value TensorWrap::IsLeaf(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, { return Napi::Boolean::New(info.Env(), Get().is_leaf()); });
}

Napi::Value TensorWrap::SameStorage(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, {
    torch::Tensor& other = ArgTensor(info, 0, "other");
    return Napi::Boolean::New(info.Env(), Get().storage().is_alias_of(other.storage()));
  });
}

}  // namespace torchcap
