// Errors: C++ exceptions become JS errors at every entry point.
//
//  - Native code throws JsError (through ThrowType / ThrowRange / ThrowError) for bad arguments;
//    libtorch throws c10::Error and its subclasses. Describe() turns any of them into a message
//    without the C++ backtrace and the JS class it should become.
//  - Every entry point runs inside TORCHCAP_GUARD, which makes that error the pending JS exception.
//    Nothing of this addon runs inside a garbage collection (see wrap.h), so a collection that
//    happens while an error is pending never calls into the addon.
#pragma once

#include <napi.h>

#include <exception>
#include <stdexcept>
#include <string>

namespace torchcap {

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

// libtorch 1.x symbolizes a C++ backtrace for every error it raises (milliseconds each), only for
// Describe() to cut it off again. Called once per process: errors then carry their message alone.
// TORCH_SHOW_CPP_STACKTRACES=1 keeps the backtraces (and the cost).
void SkipLibtorchBacktraces();

}  // namespace torchcap
