// Shared plumbing of the addon: per-environment state, argument reading, error translation.
//
// Rules every entry point follows:
//  - JavaScript (lib/) validates arguments and builds readable errors; native code still checks
//    types so that a wrong call can never crash the process.
//  - Every entry point runs inside TORCHCAP_GUARD, which turns any C++ exception (c10::Error and
//    std::exception alike) into a JS Error without the C++ backtrace.
#pragma once

#include <napi.h>
#include <torch/torch.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace torchcap {

// ---------- per-environment state (main thread and each worker thread have their own) ----------

class Executor;

struct AddonData {
  Napi::FunctionReference tensorCtor;
  Napi::FunctionReference moduleCtor;
  Napi::FunctionReference optimizerCtor;
  Napi::FunctionReference executorCtor;
  Napi::FunctionReference groupCtor;
  std::atomic<int64_t> liveTensors{0};
  std::atomic<int64_t> liveBytes{0};
  int64_t sinceNudge = 0;  // tensor bytes created since V8 was last asked to collect
  // Every executor of this environment (their threads end at teardown), the default one, and the
  // one async calls post to right now (nullptr: the default).
  std::vector<std::shared_ptr<Executor>> executors;
  std::shared_ptr<Executor> defaultExecutor;
  Executor* currentExecutor = nullptr;
};

AddonData& Data(Napi::Env env);

// ---------- errors ----------

// Kinds map onto JS error classes.
enum class ErrorKind { Error, TypeError, RangeError };

struct JsError : std::runtime_error {
  ErrorKind kind;
  JsError(ErrorKind k, const std::string& m) : std::runtime_error(m), kind(k) {}
};

[[noreturn]] inline void ThrowType(const std::string& msg) { throw JsError(ErrorKind::TypeError, msg); }
[[noreturn]] inline void ThrowRange(const std::string& msg) { throw JsError(ErrorKind::RangeError, msg); }
[[noreturn]] inline void ThrowError(const std::string& msg) { throw JsError(ErrorKind::Error, msg); }

// Classify any exception: message without C++ backtrace, and the JS class it should become.
struct ErrorInfo {
  ErrorKind kind = ErrorKind::Error;
  std::string message;
};
ErrorInfo Describe(std::exception_ptr e);
Napi::Error ToJsError(Napi::Env env, const ErrorInfo& info);

// Makes the error of the exception being handled the pending JS exception. Never throws: while an
// environment is torn down (a worker terminated mid-call) JS cannot run, node-addon-api would throw
// a C++ exception out of a C callback (std::terminate), and the termination is already pending.
void ThrowCurrentAsJs(napi_env env) noexcept;

// Runs `body` and converts every C++ exception into a pending JS exception.
template <typename F>
Napi::Value Guard(const Napi::CallbackInfo& info, F&& body) {
  Napi::Env env = info.Env();
  try {
    return body();
  } catch (...) {
    ThrowCurrentAsJs(env);
  }
  return env.Undefined();
}

#define TORCHCAP_GUARD(info, ...) return ::torchcap::Guard(info, [&]() -> Napi::Value { __VA_ARGS__ })

// ---------- argument reading (names appear in messages) ----------

double ArgNumber(const Napi::CallbackInfo& info, size_t i, const char* name);
int64_t ArgInt(const Napi::CallbackInfo& info, size_t i, const char* name);
bool ArgBool(const Napi::CallbackInfo& info, size_t i, const char* name);
std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* name);
std::vector<int64_t> ArgInts(const Napi::CallbackInfo& info, size_t i, const char* name);
std::vector<double> ArgNumbers(const Napi::CallbackInfo& info, size_t i, const char* name);
Napi::Object ArgObject(const Napi::CallbackInfo& info, size_t i, const char* name);
bool ArgPresent(const Napi::CallbackInfo& info, size_t i);

std::vector<int64_t> ToInts(Napi::Value v, const char* name);
std::vector<double> ToNumbers(Napi::Value v, const char* name);
int64_t ToInt(Napi::Value v, const char* name);

// Fields of an options object; absent (undefined/null) fields give the default.
int64_t OptInt(Napi::Object o, const char* key, int64_t def);
double OptNumber(Napi::Object o, const char* key, double def);
bool OptBool(Napi::Object o, const char* key, bool def);
std::string OptString(Napi::Object o, const char* key, const std::string& def);
// The options object at argument i, or an empty one when absent.
Napi::Object ArgOptions(const Napi::CallbackInfo& info, size_t i);

// ---------- dtype and device names ----------

torch::ScalarType ParseDtype(const std::string& name);
std::string DtypeName(torch::ScalarType t);
torch::Device ParseDevice(const std::string& name);
std::string DeviceName(const torch::Device& d);

// ---------- tensor <-> JS ----------

// Wraps a tensor into a new native Tensor object (takes a reference; never shares JS memory).
Napi::Object WrapTensor(Napi::Env env, torch::Tensor t);
// The tensor held by a native Tensor object; throws TypeError naming `name` otherwise.
torch::Tensor& UnwrapTensor(Napi::Value v, const char* name);
torch::Tensor& ArgTensor(const Napi::CallbackInfo& info, size_t i, const char* name);
std::vector<torch::Tensor> ArgTensors(const Napi::CallbackInfo& info, size_t i, const char* name);
// Like ArgTensors, but null/undefined entries become undefined tensors.
std::vector<torch::Tensor> ArgTensorsOrNull(const Napi::CallbackInfo& info, size_t i, const char* name);
// Undefined tensors become null.
Napi::Array WrapTensors(Napi::Env env, const std::vector<torch::Tensor>& ts);

// Copies a tensor's bytes into a fresh JS ArrayBuffer-backed typed array (a copy, never external).
Napi::Value ToTypedArray(Napi::Env env, const torch::Tensor& t);
// Copies a typed array / Buffer into a new CPU tensor of `dtype` and `shape`.
torch::Tensor FromBytes(const uint8_t* data, size_t byteLength, torch::ScalarType dtype, const std::vector<int64_t>& shape);

// Intra-op thread count chosen by the user (the worker threads of async tasks apply it too).
int DesiredThreads();
void SetDesiredThreads(int n);
void ApplyThreads();

}  // namespace torchcap
