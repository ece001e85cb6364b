#include "errors.h"

#include <c10/util/Exception.h>
#include <c10/util/Logging.h>

#include <cstdlib>
#include <cstring>
#include <functional>

namespace torchcap {

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

void SkipLibtorchBacktraces() {
  static const bool done = [] {
    const char* keep = std::getenv("TORCH_SHOW_CPP_STACKTRACES");
    if (keep && std::strcmp(keep, "1") == 0) return false;
    std::function<std::string()> none = [] { return std::string(); };
    c10::SetStackTraceFetcher(std::move(none));
    return true;
  }();
  (void)done;
}

}  // namespace torchcap
