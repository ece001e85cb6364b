#include "async.h"

namespace torchcap {

static constexpr const char* kFramesStart = "\n    at ";

CallSite::CallSite(napi_env env) {
  napi_value message = nullptr, error = nullptr;
  if (napi_create_string_utf8(env, "", 0, &message) == napi_ok && napi_create_error(env, nullptr, message, &error) == napi_ok) {
    napi_create_reference(env, error, 1, &origin_);
  }
}

void CallSite::Attach(Napi::Env env, const Napi::Error& err) const {
  if (!origin_) return;
  try {
    napi_value origin = nullptr;
    if (napi_get_reference_value(env, origin_, &origin) != napi_ok || origin == nullptr) return;
    // Reading `stack` formats it now (Error.prepareStackTrace may run, and may throw: then the
    // error keeps the stack it has).
    Napi::Value recorded = Napi::Object(env, origin).Get("stack");
    Napi::Object target = err.Value();
    Napi::Value own = target.Get("stack");
    if (!recorded.IsString() || !own.IsString()) return;
    const std::string frames = recorded.As<Napi::String>().Utf8Value();
    const size_t at = frames.find(kFramesStart);
    if (at == std::string::npos) return;
    std::string header = own.As<Napi::String>().Utf8Value();
    header = header.substr(0, header.find(kFramesStart));
    target.Set("stack", header + frames.substr(at));
  } catch (const Napi::Error&) {
    // node-addon-api has already taken the JS exception back: nothing is pending.
  }
}

void CallSite::Release(napi_env env) {
  if (origin_) napi_delete_reference(env, origin_);
  origin_ = nullptr;
}

}  // namespace torchcap
