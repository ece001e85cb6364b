// Creating tensors (each refuses an impossible size first, see sizes.h), joining them, and the
// module-level settings that go with them: seeds, grad mode, memory counters.
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>

#include "addon_data.h"
#include "args.h"
#include "convert.h"
#include "dtypes.h"
#include "errors.h"
#include "sizes.h"
#include "tensor.h"
#include "tensor_registry.h"

namespace torchcap {

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
    // Every argument first (reading shape may run getters), then the bytes, copied at once.
    const torch::ScalarType dtype = ParseDtype(ArgString(info, 1, "dtype"));
    const std::vector<int64_t> shape = ArgInts(info, 2, "shape");
    const bool moved = ArgPresent(info, 3);
    const torch::Device device = moved ? ParseDevice(ArgString(info, 3, "device")) : torch::Device(torch::kCPU);
    const ByteView bytes = TypedArrayBytes(info[0]);
    torch::Tensor t = FromBytes(bytes.data, bytes.length, dtype, shape);
    if (moved) t = t.to(device);
    return WrapTensor(info.Env(), t);
  });
}

// The size check every creation makes first, with the options' dtype and device.
static void CheckSize(const std::string& what, const std::vector<int64_t>& shape, const torch::TensorOptions& o) {
  CheckTensorSize(what, shape, c10::typeMetaToScalarType(o.dtype()), o.device());
}

static Napi::Value Full(const Napi::CallbackInfo& info) {
  // full(shape, value, dtype?, device?, name?): `name` is the public function that asked ('zeros',
  // 'ones' or 'full', the default), which a refused size names.
  TORCHCAP_GUARD(info, {
    auto shape = ArgInts(info, 0, "shape");
    const double value = ArgNumber(info, 1, "value");
    auto o = Options(info, 2, 3);
    std::string name = ArgPresent(info, 4) ? ArgString(info, 4, "name") : "full";
    if (name != "zeros" && name != "ones") name = "full";
    CheckSize(name, shape, o);
    return WrapTensor(info.Env(), torch::full(shape, value, o));
  });
}

static Napi::Value Random(const Napi::CallbackInfo& info) {
  // random(kind: 'randn'|'rand', shape, dtype?, device?)
  TORCHCAP_GUARD(info, {
    std::string kind = ArgString(info, 0, "kind");
    auto shape = ArgInts(info, 1, "shape");
    auto o = Options(info, 2, 3);
    if (kind != "randn" && kind != "rand") ThrowType("Unknown random kind '" + kind + "'");
    CheckSize(kind, shape, o);
    return WrapTensor(info.Env(), kind == "randn" ? torch::randn(shape, o) : torch::rand(shape, o));
  });
}

static Napi::Value RandInt(const Napi::CallbackInfo& info) {
  // randint(low, high, shape, device?)
  TORCHCAP_GUARD(info, {
    auto o = torch::TensorOptions().dtype(torch::kInt64);
    if (ArgPresent(info, 3)) o = o.device(ParseDevice(ArgString(info, 3, "device")));
    const int64_t low = ArgInt(info, 0, "low"), high = ArgInt(info, 1, "high");
    auto shape = ArgInts(info, 2, "shape");
    CheckSize("randint", shape, o);
    return WrapTensor(info.Env(), torch::randint(low, high, shape, o));
  });
}

// randperm(n, seed?): with a seed, from a fresh generator seeded with it, as
// torch.randperm(n, generator=torch.Generator().manual_seed(seed)) (what DistributedSampler does).
static Napi::Value RandPerm(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, {
    const int64_t n = ArgInt(info, 0, "n");
    CheckTensorSize("randperm", {n}, torch::kInt64);
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
    if (!std::isfinite(start) || !std::isfinite(end) || !std::isfinite(step)) ThrowRange("arange needs finite start, end and step");
    auto o = Options(info, 3, 4);
    // As libtorch counts: ceil((end - start) / step) elements (a step that points away is its error).
    const double count = std::max(0.0, std::ceil((end - start) / step));
    if (!(count < 9.2e18)) ThrowRange("arange(" + c10::str(start, ", ", end, ", ", step) + ") would have more elements than an int64 can count");
    CheckSize("arange", {static_cast<int64_t>(count)}, o);
    return WrapTensor(info.Env(), torch::arange(start, end, step, o));
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

// memory(): live tensors and their bytes, after freeing those whose JS objects were collected.
static Napi::Value Memory(const Napi::CallbackInfo& info) {
  AddonData& d = Data(info.Env());
  d.tensors->SweepAll(info.Env());
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
