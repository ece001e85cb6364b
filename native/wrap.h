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
//
// Identity: each T names its own napi_type_tag (T::kTypeTag: torchcap's high half 0x746f72636863a9e1,
// a low half of the class's own) and its JS class name (T::kClassName).
// Construct tags every object it makes, and Of() knows an object by that tag alone: never by
// instanceof, which asks the class's Symbol.hasInstance (any script can redefine it), and never by
// napi_unwrap alone, which unwraps an object of any class. Only native code makes instances (New):
// `new` from JS (or a subclass's super()) is refused, so no object of these classes exists without
// the native state its methods use. Methods get their receiver checked by V8 (napi_define_class
// gives them the class's signature), then unwrapped.
#pragma once

#include <napi.h>

#include <initializer_list>
#include <type_traits>
#include <utility>
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

  static Napi::Function Define(Napi::Env env, std::initializer_list<napi_property_descriptor> props) {
    napi_value ctor = nullptr;
    std::vector<napi_property_descriptor> list(props);
    NAPI_THROW_IF_FAILED(env, napi_define_class(env, T::kClassName, NAPI_AUTO_LENGTH, &Construct, nullptr, list.size(), list.data(), &ctor),
                         Napi::Function());
    return Napi::Function(env, ctor);
  }

  // A new instance of the class `ctor` (this environment's constructor of T) and its native side.
  static std::pair<Napi::Object, T*> New(Napi::Env env, const Napi::FunctionReference& ctor) {
    struct Creating {
      Creating() { creating_ = true; }
      ~Creating() {
        creating_ = false;
        created_ = nullptr;
      }
    } creating;
    Napi::Object obj = ctor.New({});  // throws (a C++ Napi::Error) if it failed
    T* self = created_;
    if (!self) ThrowError(std::string("could not create a native ") + T::kClassName);
    return {obj, self};
  }

  // The instance behind `v` if it is an object this addon made as a T, else nullptr. Calls no JS.
  static T* Of(napi_env env, napi_value v) {
    napi_valuetype type = napi_undefined;
    if (v == nullptr || napi_typeof(env, v, &type) != napi_ok || (type != napi_object && type != napi_function)) return nullptr;
    bool tagged = false;
    if (napi_check_object_type_tag(env, v, &T::kTypeTag, &tagged) != napi_ok || !tagged) return nullptr;
    void* self = nullptr;
    if (napi_unwrap(env, v, &self) != napi_ok) return nullptr;
    return static_cast<T*>(self);
  }

 private:
  // Set by New on this thread (each environment's JS runs on one thread) around napi_new_instance,
  // which calls Construct directly; nothing else can set it, so a `new` from JS finds it false.
  static inline thread_local bool creating_ = false;
  static inline thread_local T* created_ = nullptr;

  static void Finalize(napi_env, void* data, void*) { delete static_cast<T*>(data); }

  static napi_value Construct(napi_env env, napi_callback_info cb) {
    napi_value self = nullptr;
    if (napi_get_cb_info(env, cb, nullptr, nullptr, &self, nullptr) != napi_ok) return nullptr;
    if (!creating_) {
      const std::string msg = std::string("Illegal constructor: torchcap makes ") + T::kClassName + " objects itself; `new` from JavaScript is not supported";
      napi_throw_type_error(env, nullptr, msg.c_str());
      return nullptr;
    }
    creating_ = false;  // one instance per New
    T* obj = nullptr;
    try {
      obj = new T(env);
    } catch (...) {
      ThrowCurrentAsJs(env);
      return nullptr;
    }
    napi_ref weak = nullptr;
    if (napi_type_tag_object(env, self, &T::kTypeTag) != napi_ok ||
        napi_wrap(env, self, obj, &Finalize, nullptr, IsWatched<T>::value ? &weak : nullptr) != napi_ok) {
      delete obj;
      napi_throw_error(env, nullptr, "could not create a native object");
      return nullptr;
    }
    if constexpr (IsWatched<T>::value) obj->Watch(weak);
    created_ = obj;
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
