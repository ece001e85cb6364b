// Prompt release of tensors whose JS objects the garbage collector has collected.
//
// No code of this addon runs inside a garbage collection: the addon is built without
// NAPI_EXPERIMENTAL, so Node defers every finalizer to the event loop (wrap.h says why). A
// synchronous loop that drops tensors would then keep all of their memory until it returns. So
// each tensor's JS object is also watched through the weak reference napi_wrap hands back, which
// the collector clears by itself, without calling anything. At safe points (when a tensor is
// created, in a native call that has not failed) the registry checks those references: the
// tensor behind a cleared one is freed at once; its small wrapper is deleted later by the
// deferred finalizer.
//
// When: at the first tensor created after a collection (a weakly held probe object tells), and at
// least every 4096 tensors or 16 MB. Which references: every tensor created since the last check
// (most die young) and a rotating share of the older ones, so a check costs O(tensors created
// since the last one).
#pragma once

#include <napi.h>

#include <cstdint>
#include <vector>

namespace torchcap {

class TensorWrap;

class TensorRegistry {
 public:
  // `w` now holds a tensor of `bytes`: tracked until Remove. Reports the bytes to V8, and may check
  // the weak references of tracked tensors (so call it where JS values may be created).
  void Add(napi_env env, TensorWrap* w, int64_t bytes);
  // `w` no longer holds a tensor (disposed, or its JS object was collected).
  void Remove(TensorWrap* w);
  // Checks every tracked tensor now (tests and teardown use it).
  void SweepAll(napi_env env);
  size_t size() const { return young_.size() + old_.size(); }

 private:
  void Sweep(napi_env env, size_t oldBudget);
  static bool Collected(napi_env env, napi_ref weak);
  void NewProbe(napi_env env);
  void Push(TensorWrap* w, bool young);

  std::vector<TensorWrap*> young_;  // created since the last check
  std::vector<TensorWrap*> old_;    // survived a check
  size_t cursor_ = 0;               // where the next check resumes in old_
  int64_t bytesSinceCheck_ = 0;
  int64_t addedSinceCheck_ = 0;
  napi_ref gcProbe_ = nullptr;      // cleared by the first collection after the last check
};

}  // namespace torchcap
