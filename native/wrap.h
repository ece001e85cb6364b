// Native classes exposed to JS.
//
// Nothing here runs inside a garbage collection. The addon is built without NAPI_EXPERIMENTAL,
// so Node queues the finalizers of collected objects and runs them on the event loop. Under
// NAPI_EXPERIMENTAL, Node 20 runs them inside the GC, through the same path that afterwards
// reports any N-API exception still recorded for the environment; and a native call that throws
// leaves its exception recorded until Node has rethrown it into JS, which allocates. A collection
// at that allocation ran a finalizer, found the exception, took it for the finalizer's and tried
// to run JS inside the GC: V8's fatal error, exit 133 (test/finalizer.test.ts makes it happen).
// node_api_post_finalizer would not help (it is called from such a finalizer), nor would basic
// finalizers (Node 20 calls them through the same path).
//
// Classes whose objects hold much memory (tensors) set `kWatched`: they get the weak reference
// napi_wrap returns and free their memory as soon as a safe point sees it cleared
// (tensor_registry.h), rather than when the event loop turns.
//
// NativeClass wraps with napi_wrap instead of Napi::ObjectWrap: no strong reference per instance,
// and a plain constructor T(napi_env). T's destructor runs in the (deferred) finalizer.
#pragma once

#include <napi.h>

#include <initializer_list>
#include <type_traits>
#include <vector>

#include "errors.h"

namespace torchcap {

template <typename T, typename = void>
struct IsWatched : std::false_type {};
template <typename T>
struct IsWatched<T, std::void_t<decltype(T::kWatched)>> : std::bool_constant<T::kWatched> {};

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
  static void Finalize(napi_env, void* data, void*) { delete static_cast<T*>(data); }

  static napi_value Construct(napi_env env, napi_callback_info cb) {
    napi_value self = nullptr;
    if (napi_get_cb_info(env, cb, nullptr, nullptr, &self, nullptr) != napi_ok) return nullptr;
    auto* obj = new T(env);
    napi_ref weak = nullptr;
    if (napi_wrap(env, self, obj, &Finalize, nullptr, IsWatched<T>::value ? &weak : nullptr) != napi_ok) {
      delete obj;
      napi_throw_error(env, nullptr, "could not create a native object");
      return nullptr;
    }
    if constexpr (IsWatched<T>::value) obj->Watch(weak);
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

// Adjusts the external memory V8 accounts for (it may start a collection).
inline void ReportExternal(napi_env env, int64_t delta) {
  int64_t ignored = 0;
  if (delta) napi_adjust_external_memory(env, delta, &ignored);
}

}  // namespace torchcap
