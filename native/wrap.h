// Native classes exposed to JS whose instances the GC frees in place.
//
// Napi::ObjectWrap keeps a userland reference to every instance and, under NAPI_EXPERIMENTAL,
// defers deleting it to a later turn of the event loop; in a synchronous loop those leftovers pin
// freed tensor memory and the heap grows. NativeClass wraps with napi_wrap and no reference, so
// the runtime drops the wrap right after the finalizer, which runs inside the GC. T needs a
// constructor T(napi_env) and must free only native state in its destructor (no JS calls).
#pragma once

#include <initializer_list>

#include "common.h"

namespace torchcap {

template <typename T>
class NativeClass {
 public:
  using MethodPtr = Napi::Value (T::*)(const Napi::CallbackInfo&);

  template <MethodPtr M>
  static napi_property_descriptor Method(const char* name) {
    return napi_property_descriptor{name, nullptr, &Call<M>, nullptr, nullptr, nullptr, napi_default_method, nullptr};
  }

  static Napi::Function Define(Napi::Env env, const char* name, std::initializer_list<napi_property_descriptor> props) {
    napi_value ctor = nullptr;
    std::vector<napi_property_descriptor> list(props);
    NAPI_THROW_IF_FAILED(env, napi_define_class(env, name, NAPI_AUTO_LENGTH, &Construct, nullptr, list.size(), list.data(), &ctor),
                         Napi::Function());
    return Napi::Function(env, ctor);
  }

  // The instance behind `v` if it was made by `ctor`, else nullptr.
  static T* Of(Napi::Env env, Napi::Value v, const Napi::FunctionReference& ctor) {
    if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(ctor.Value())) return nullptr;
    void* self = nullptr;
    if (napi_unwrap(env, v, &self) != napi_ok) return nullptr;
    return static_cast<T*>(self);
  }

 private:
  static void Finalize(node_api_basic_env, void* data, void*) { delete static_cast<T*>(data); }

  static napi_value Construct(napi_env env, napi_callback_info cb) {
    napi_value self = nullptr;
    if (napi_get_cb_info(env, cb, nullptr, nullptr, &self, nullptr) != napi_ok) return nullptr;
    auto* obj = new T(env);
    if (napi_wrap(env, self, obj, &Finalize, nullptr, nullptr) != napi_ok) {
      delete obj;
      napi_throw_error(env, nullptr, "could not create a native object");
      return nullptr;
    }
    return self;
  }

  template <MethodPtr M>
  static napi_value Call(napi_env env, napi_callback_info cb) {
    try {
      Napi::CallbackInfo info(env, cb);
      void* self = nullptr;
      if (napi_unwrap(env, info.This(), &self) != napi_ok || self == nullptr) {
        napi_throw_type_error(env, nullptr, "Illegal invocation: the receiver is not a native object of this class");
        return nullptr;
      }
      return (static_cast<T*>(self)->*M)(info);
    } catch (...) {
      ThrowCurrentAsJs(env);
    }
    return nullptr;
  }
};

// Adjusts the external memory V8 accounts for; allowed from GC finalizers.
inline void ReportExternal(napi_env env, int64_t delta) {
  int64_t ignored = 0;
  if (delta) napi_adjust_external_memory(env, delta, &ignored);
}

}  // namespace torchcap
