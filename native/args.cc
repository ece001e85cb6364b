#include "args.h"

#include "errors.h"

#include <cmath>

namespace torchcap {

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
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d != std::trunc(d)) ThrowType(std::string("Expected an integer for ") + name);
  // 2^63 and beyond are no int64 (casting them would be undefined behaviour).
  if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0)) ThrowRange(std::string("Integer out of range for ") + name);
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

int64_t OptInt(Napi::Object o, const char* key, int64_t def) {
  Napi::Value v = o.Get(key);
  return v.IsUndefined() || v.IsNull() ? def : ToInt(v, key);
}

double OptNumber(Napi::Object o, const char* key, double def) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return def;
  if (!v.IsNumber()) ThrowType(std::string("Expected a number for option ") + key);
  return v.As<Napi::Number>().DoubleValue();
}

bool OptBool(Napi::Object o, const char* key, bool def) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return def;
  if (!v.IsBoolean()) ThrowType(std::string("Expected a boolean for option ") + key);
  return v.As<Napi::Boolean>().Value();
}

std::string OptString(Napi::Object o, const char* key, const std::string& def) {
  Napi::Value v = o.Get(key);
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

}  // namespace torchcap
