#include "common.h"

#include <ATen/Parallel.h>

#include <cstring>

namespace torchcap {

AddonData& Data(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

// ---------- errors ----------

static std::string StripBacktrace(std::string msg) {
  for (const char* marker : {"\nException raised from", "Exception raised from "}) {
    auto pos = msg.find(marker);
    if (pos != std::string::npos) msg.erase(pos);
  }
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  return msg;
}

ErrorInfo Describe(std::exception_ptr e) {
  ErrorInfo out;
  try {
    std::rethrow_exception(e);
  } catch (const JsError& err) {
    out.kind = err.kind;
    out.message = err.what();
  } catch (const c10::IndexError& err) {
    out.kind = ErrorKind::RangeError;
    out.message = StripBacktrace(err.what_without_backtrace());
  } catch (const c10::TypeError& err) {
    out.kind = ErrorKind::TypeError;
    out.message = StripBacktrace(err.what_without_backtrace());
  } catch (const c10::Error& err) {
    out.message = StripBacktrace(err.what_without_backtrace());
  } catch (const std::bad_alloc&) {
    out.message = "out of memory";
  } catch (const std::exception& err) {
    out.message = StripBacktrace(err.what());
  } catch (...) {
    out.message = "unknown native error";
  }
  if (out.message.empty()) out.message = "native error";
  return out;
}

void ThrowCurrentAsJs(napi_env env) noexcept {
  try {
    try {
      throw;  // the exception being handled by the caller
    } catch (const Napi::Error& e) {
      napi_value v = e.Value();  // a JS error as it was (e.g. thrown by a callback)
      if (v != nullptr) napi_throw(env, v);
    } catch (...) {
      napi_value v = ToJsError(Napi::Env(env), Describe(std::current_exception())).Value();
      if (v != nullptr) napi_throw(env, v);
    }
  } catch (...) {
    // The environment is being torn down: JS cannot run and its termination is already pending.
  }
}

Napi::Error ToJsError(Napi::Env env, const ErrorInfo& info) {
  switch (info.kind) {
    case ErrorKind::TypeError:
      return Napi::TypeError::New(env, info.message);
    case ErrorKind::RangeError:
      return Napi::RangeError::New(env, info.message);
    default:
      return Napi::Error::New(env, info.message);
  }
}

// ---------- arguments ----------

bool ArgPresent(const Napi::CallbackInfo& info, size_t i) {
  return info.Length() > i && !info[i].IsUndefined() && !info[i].IsNull();
}

static Napi::Value Arg(const Napi::CallbackInfo& info, size_t i) { return info.Length() > i ? info[i] : info.Env().Undefined(); }

double ArgNumber(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Value v = Arg(info, i);
  if (!v.IsNumber()) ThrowType(std::string("Expected a number for ") + name);
  return v.As<Napi::Number>().DoubleValue();
}

int64_t ToInt(Napi::Value v, const char* name) {
  if (v.IsBigInt()) {
    bool lossless = false;
    int64_t r = v.As<Napi::BigInt>().Int64Value(&lossless);
    if (!lossless) ThrowRange(std::string("Integer out of range for ") + name);
    return r;
  }
  if (!v.IsNumber()) ThrowType(std::string("Expected an integer for ") + name);
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d == static_cast<double>(static_cast<int64_t>(d)))) ThrowType(std::string("Expected an integer for ") + name);
  return static_cast<int64_t>(d);
}

int64_t ArgInt(const Napi::CallbackInfo& info, size_t i, const char* name) { return ToInt(Arg(info, i), name); }

bool ArgBool(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Value v = Arg(info, i);
  if (!v.IsBoolean()) ThrowType(std::string("Expected a boolean for ") + name);
  return v.As<Napi::Boolean>().Value();
}

std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Value v = Arg(info, i);
  if (!v.IsString()) ThrowType(std::string("Expected a string for ") + name);
  return v.As<Napi::String>().Utf8Value();
}

std::vector<int64_t> ToInts(Napi::Value v, const char* name) {
  if (!v.IsArray()) ThrowType(std::string("Expected an array of integers for ") + name);
  auto arr = v.As<Napi::Array>();
  std::vector<int64_t> out(arr.Length());
  for (uint32_t k = 0; k < arr.Length(); ++k) out[k] = ToInt(arr.Get(k), name);
  return out;
}

std::vector<int64_t> ArgInts(const Napi::CallbackInfo& info, size_t i, const char* name) { return ToInts(Arg(info, i), name); }

std::vector<double> ArgNumbers(const Napi::CallbackInfo& info, size_t i, const char* name) { return ToNumbers(Arg(info, i), name); }

std::vector<double> ToNumbers(Napi::Value v, const char* name) {
  if (!v.IsArray()) ThrowType(std::string("Expected an array of numbers for ") + name);
  auto arr = v.As<Napi::Array>();
  std::vector<double> out(arr.Length());
  for (uint32_t k = 0; k < arr.Length(); ++k) {
    Napi::Value e = arr.Get(k);
    if (!e.IsNumber()) ThrowType(std::string("Expected an array of numbers for ") + name);
    out[k] = e.As<Napi::Number>().DoubleValue();
  }
  return out;
}

static Napi::Value Field(Napi::Object o, const char* key) { return o.Get(key); }

int64_t OptInt(Napi::Object o, const char* key, int64_t def) {
  Napi::Value v = Field(o, key);
  return v.IsUndefined() || v.IsNull() ? def : ToInt(v, key);
}

double OptNumber(Napi::Object o, const char* key, double def) {
  Napi::Value v = Field(o, key);
  if (v.IsUndefined() || v.IsNull()) return def;
  if (!v.IsNumber()) ThrowType(std::string("Expected a number for option ") + key);
  return v.As<Napi::Number>().DoubleValue();
}

bool OptBool(Napi::Object o, const char* key, bool def) {
  Napi::Value v = Field(o, key);
  if (v.IsUndefined() || v.IsNull()) return def;
  if (!v.IsBoolean()) ThrowType(std::string("Expected a boolean for option ") + key);
  return v.As<Napi::Boolean>().Value();
}

std::string OptString(Napi::Object o, const char* key, const std::string& def) {
  Napi::Value v = Field(o, key);
  if (v.IsUndefined() || v.IsNull()) return def;
  if (!v.IsString()) ThrowType(std::string("Expected a string for option ") + key);
  return v.As<Napi::String>().Utf8Value();
}

Napi::Object ArgOptions(const Napi::CallbackInfo& info, size_t i) {
  if (!ArgPresent(info, i)) return Napi::Object::New(info.Env());
  return ArgObject(info, i, "options");
}

Napi::Object ArgObject(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Value v = Arg(info, i);
  if (!v.IsObject()) ThrowType(std::string("Expected an object for ") + name);
  return v.As<Napi::Object>();
}

// ---------- dtypes and devices ----------

torch::ScalarType ParseDtype(const std::string& name) {
  if (name == "float32") return torch::kFloat32;
  if (name == "float64") return torch::kFloat64;
  if (name == "float16") return torch::kFloat16;
  if (name == "bfloat16") return torch::kBFloat16;
  if (name == "int64") return torch::kInt64;
  if (name == "int32") return torch::kInt32;
  if (name == "uint8") return torch::kUInt8;
  if (name == "bool") return torch::kBool;
  ThrowType("Unknown dtype '" + name + "' (expected float32, float64, float16, bfloat16, int64, int32, uint8 or bool)");
}

std::string DtypeName(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat32: return "float32";
    case torch::kFloat64: return "float64";
    case torch::kFloat16: return "float16";
    case torch::kBFloat16: return "bfloat16";
    case torch::kInt64: return "int64";
    case torch::kInt32: return "int32";
    case torch::kUInt8: return "uint8";
    case torch::kBool: return "bool";
    default: return c10::toString(t);
  }
}

torch::Device ParseDevice(const std::string& name) {
  try {
    return torch::Device(name);
  } catch (const c10::Error&) {
    ThrowType("Unknown device '" + name + "' (expected 'cpu', 'cuda' or 'cuda:N')");
  }
}

std::string DeviceName(const torch::Device& d) { return d.str(); }

// ---------- bytes ----------

Napi::Value ToTypedArray(Napi::Env env, const torch::Tensor& src) {
  torch::Tensor t = src.detach();
  if (!t.device().is_cpu()) t = t.to(torch::kCPU);
  t = t.contiguous();
  const size_t n = static_cast<size_t>(t.numel());
  const size_t bytes = t.nbytes();
  Napi::ArrayBuffer buf = Napi::ArrayBuffer::New(env, bytes);
  if (bytes) std::memcpy(buf.Data(), t.data_ptr(), bytes);
  switch (t.scalar_type()) {
    case torch::kFloat32: return Napi::Float32Array::New(env, n, buf, 0);
    case torch::kFloat64: return Napi::Float64Array::New(env, n, buf, 0);
    case torch::kInt64: return Napi::BigInt64Array::New(env, n, buf, 0);
    case torch::kInt32: return Napi::Int32Array::New(env, n, buf, 0);
    case torch::kUInt8:
    case torch::kBool: return Napi::Uint8Array::New(env, n, buf, 0);
    case torch::kFloat16:
    case torch::kBFloat16: return Napi::Uint16Array::New(env, n, buf, 0);
    default: ThrowType("toTypedArray does not support dtype " + DtypeName(t.scalar_type()));
  }
}

torch::Tensor FromBytes(const uint8_t* data, size_t byteLength, torch::ScalarType dtype, const std::vector<int64_t>& shape) {
  int64_t numel = 1;
  for (int64_t s : shape) {
    if (s < 0) ThrowRange("Negative dimension in shape");
    numel *= s;
  }
  const size_t need = static_cast<size_t>(numel) * c10::elementSize(dtype);
  if (need != byteLength) {
    ThrowRange("Data holds " + std::to_string(byteLength) + " bytes but shape and dtype " + DtypeName(dtype) + " need " +
               std::to_string(need));
  }
  torch::Tensor t = torch::empty(shape, torch::TensorOptions().dtype(dtype));
  if (need) std::memcpy(t.data_ptr(), data, need);
  return t;
}

// ---------- threads ----------

static std::atomic<int> g_threads{0};

int DesiredThreads() { return g_threads.load(); }

void SetDesiredThreads(int n) {
  if (n < 1) ThrowRange("Thread count must be at least 1");
  g_threads.store(n);
  at::set_num_threads(n);
}

void ApplyThreads() {
  int n = g_threads.load();
  if (n > 0 && at::get_num_threads() != n) at::set_num_threads(n);
}

}  // namespace torchcap
