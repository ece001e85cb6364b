// Tensor lifecycle, metadata, conversion and creation.
#include "tensor.h"
#include "wrap.h"

#include <ATen/CPUGeneratorImpl.h>

#include <sstream>

namespace torchcap {

void TensorWrap::Init(Napi::Env env, Napi::Object exports) {
  using C = NativeClass<TensorWrap>;
  Napi::Function ctor = C::Define(env, "Tensor", {
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

TensorWrap* TensorWrap::Of(Napi::Env env, Napi::Value v) { return NativeClass<TensorWrap>::Of(env, v, Data(env).tensorCtor); }

TensorWrap::~TensorWrap() { Release(); }

void TensorWrap::Set(torch::Tensor t) {
  Release();
  if (!t.defined()) return;
  tensor_ = std::move(t);
  reported_ = static_cast<int64_t>(tensor_.numel() * tensor_.element_size());
  AddonData& d = Data(Napi::Env(env_));
  d.liveTensors++;
  d.liveBytes += reported_;
  ReportExternal(env_, reported_);
  // V8 collects after 64 MB of external growth; a loop that drops small tensors would then hold
  // 64 MB of dead ones. Every 16 MB of new tensors, a brief spike in the reported amount asks V8
  // for a collection sooner (only this report changes, no memory is allocated).
  d.sinceNudge += reported_;
  if (d.sinceNudge > (16 << 20)) {
    d.sinceNudge = 0;
    ReportExternal(env_, int64_t{64} << 20);
    ReportExternal(env_, -(int64_t{64} << 20));
  }
}

// Also runs from the GC finalizer: only calls that Node allows there (no JS values).
void TensorWrap::Release() {
  if (!tensor_.defined()) return;
  tensor_ = torch::Tensor();
  void* data = nullptr;
  if (napi_get_instance_data(env_, &data) == napi_ok && data) {
    auto* d = static_cast<AddonData*>(data);
    d->liveTensors--;
    d->liveBytes -= reported_;
  }
  ReportExternal(env_, -reported_);
  reported_ = 0;
}

torch::Tensor& TensorWrap::Get() {
  if (!tensor_.defined()) ThrowError("Tensor has been disposed");
  return tensor_;
}

// ---------- wrapping helpers (declared in common.h) ----------

Napi::Object WrapTensor(Napi::Env env, torch::Tensor t) {
  Napi::Object obj = Data(env).tensorCtor.New({});
  TensorWrap::Of(env, obj)->Set(std::move(t));
  return obj;
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

// ---------- creation ----------

static torch::TensorOptions Options(const Napi::CallbackInfo& info, size_t dtypeArg, size_t deviceArg) {
  torch::TensorOptions o;
  if (ArgPresent(info, dtypeArg)) o = o.dtype(ParseDtype(ArgString(info, dtypeArg, "dtype")));
  if (ArgPresent(info, deviceArg)) o = o.device(ParseDevice(ArgString(info, deviceArg, "device")));
  return o;
}

static Napi::Value FromData(const Napi::CallbackInfo& info) {
  // fromData(bytes: TypedArray|Buffer, dtype, shape, device?)
  TORCHCAP_GUARD(info, {
    if (info.Length() < 1 || !info[0].IsTypedArray()) ThrowType("Expected a TypedArray or Buffer for data");
    auto ta = info[0].As<Napi::TypedArray>();
    auto buf = ta.ArrayBuffer();
    const uint8_t* ptr = static_cast<const uint8_t*>(buf.Data()) + ta.ByteOffset();
    torch::Tensor t = FromBytes(ptr, ta.ByteLength(), ParseDtype(ArgString(info, 1, "dtype")), ArgInts(info, 2, "shape"));
    if (ArgPresent(info, 3)) t = t.to(ParseDevice(ArgString(info, 3, "device")));
    return WrapTensor(info.Env(), t);
  });
}

static Napi::Value Full(const Napi::CallbackInfo& info) {
  // full(shape, value, dtype?, device?)
  TORCHCAP_GUARD(info, {
    auto shape = ArgInts(info, 0, "shape");
    return WrapTensor(info.Env(), torch::full(shape, ArgNumber(info, 1, "value"), Options(info, 2, 3)));
  });
}

static Napi::Value Random(const Napi::CallbackInfo& info) {
  // random(kind: 'randn'|'rand', shape, dtype?, device?)
  TORCHCAP_GUARD(info, {
    std::string kind = ArgString(info, 0, "kind");
    auto shape = ArgInts(info, 1, "shape");
    auto o = Options(info, 2, 3);
    if (kind == "randn") return WrapTensor(info.Env(), torch::randn(shape, o));
    if (kind == "rand") return WrapTensor(info.Env(), torch::rand(shape, o));
    ThrowType("Unknown random kind '" + kind + "'");
  });
}

static Napi::Value RandInt(const Napi::CallbackInfo& info) {
  // randint(low, high, shape, device?)
  TORCHCAP_GUARD(info, {
    auto o = torch::TensorOptions().dtype(torch::kInt64);
    if (ArgPresent(info, 3)) o = o.device(ParseDevice(ArgString(info, 3, "device")));
    return WrapTensor(info.Env(), torch::randint(ArgInt(info, 0, "low"), ArgInt(info, 1, "high"), ArgInts(info, 2, "shape"), o));
  });
}

// randperm(n, seed?): with a seed, from a fresh generator seeded with it, as
// torch.randperm(n, generator=torch.Generator().manual_seed(seed)) (what DistributedSampler does).
static Napi::Value RandPerm(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, {
    const int64_t n = ArgInt(info, 0, "n");
    if (ArgPresent(info, 1)) {
      auto gen = at::detail::createCPUGenerator(static_cast<uint64_t>(ArgInt(info, 1, "seed")));
      return WrapTensor(info.Env(), torch::randperm(n, gen, torch::TensorOptions().dtype(torch::kInt64)));
    }
    return WrapTensor(info.Env(), torch::randperm(n, torch::kInt64));
  });
}

static Napi::Value Arange(const Napi::CallbackInfo& info) {
  // arange(start, end, step, dtype?, device?)
  TORCHCAP_GUARD(info, {
    double start = ArgNumber(info, 0, "start"), end = ArgNumber(info, 1, "end"), step = ArgNumber(info, 2, "step");
    if (step == 0) ThrowRange("arange step must not be zero");
    return WrapTensor(info.Env(), torch::arange(start, end, step, Options(info, 3, 4)));
  });
}

static Napi::Value Cat(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, { return WrapTensor(info.Env(), torch::cat(ArgTensors(info, 0, "tensors"), ArgInt(info, 1, "dim"))); });
}

static Napi::Value Stack(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, { return WrapTensor(info.Env(), torch::stack(ArgTensors(info, 0, "tensors"), ArgInt(info, 1, "dim"))); });
}

static Napi::Value Where(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, {
    return WrapTensor(info.Env(), torch::where(ArgTensor(info, 0, "condition"), ArgTensor(info, 1, "input"), ArgTensor(info, 2, "other")));
  });
}

static Napi::Value ManualSeed(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, {
    int64_t seed = ArgInt(info, 0, "seed");
    torch::manual_seed(static_cast<uint64_t>(seed));
    return info.Env().Undefined();
  });
}

static Napi::Value SetGradEnabled(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, {
    bool prev = torch::GradMode::is_enabled();
    torch::GradMode::set_enabled(ArgBool(info, 0, "enabled"));
    return Napi::Boolean::New(info.Env(), prev);
  });
}

static Napi::Value IsGradEnabled(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), torch::GradMode::is_enabled());
}

static Napi::Value Memory(const Napi::CallbackInfo& info) {
  AddonData& d = Data(info.Env());
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("tensors", Napi::Number::New(info.Env(), static_cast<double>(d.liveTensors.load())));
  o.Set("bytes", Napi::Number::New(info.Env(), static_cast<double>(d.liveBytes.load())));
  return o;
}

void InitTensorFunctions(Napi::Env env, Napi::Object exports) {
  exports.Set("fromData", Napi::Function::New<FromData>(env, "fromData"));
  exports.Set("full", Napi::Function::New<Full>(env, "full"));
  exports.Set("random", Napi::Function::New<Random>(env, "random"));
  exports.Set("randint", Napi::Function::New<RandInt>(env, "randint"));
  exports.Set("randperm", Napi::Function::New<RandPerm>(env, "randperm"));
  exports.Set("arange", Napi::Function::New<Arange>(env, "arange"));
  exports.Set("cat", Napi::Function::New<Cat>(env, "cat"));
  exports.Set("stack", Napi::Function::New<Stack>(env, "stack"));
  exports.Set("where", Napi::Function::New<Where>(env, "where"));
  exports.Set("manualSeed", Napi::Function::New<ManualSeed>(env, "manualSeed"));
  exports.Set("setGradEnabled", Napi::Function::New<SetGradEnabled>(env, "setGradEnabled"));
  exports.Set("isGradEnabled", Napi::Function::New<IsGradEnabled>(env, "isGradEnabled"));
  exports.Set("memory", Napi::Function::New<Memory>(env, "memory"));
}

}  // namespace torchcap
