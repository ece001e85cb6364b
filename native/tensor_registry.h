// Prompt release of tensors whose JS objects the garbage collector has collected.
//
// No code of this addon runs inside a garbage collection: the addon is built without
// NAPI_EXPERIMENTAL, so Node queues every finalizer for the event loop (wrap.h says why). A
// synchronous loop that drops tensors would then keep all of their memory until it returns. So
// each tensor's JS object is also watched through the weak reference napi_wrap hands back, which
// the collector clears by itself, without calling anything. At safe points (when a tensor is
// created, in a native call that has not failed; memory()) the registry checks those references:
// the tensor behind a cleared one is freed at once, with its wrapper and the reference (deleting
// the reference cancels the queued finalizer). Keeping the small wrappers until the finalizers
// ran would scatter them between the freed tensor blocks, which then could not be reused.
//
// When: at the first tensor created after a collection (a weakly held probe object tells), and at
// least every 4096 tensors or 16 MB. Which references: every tensor created since the last check
// (most die young); the older ones too when they are few (4096 checks cost about 0.1 ms, less
// than the collection that made them worth doing), after a full collection (a second probe, held
// until it has surely left the young generation, tells: older objects die only in full ones), or
// once a quarter as many tensors were created since they were all last checked. Between those, a
// rotating share of them. So a check never costs more than O(1) per tensor created or per object
// V8 itself has just traced.
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
  // Checks every tracked tensor now.
  void SweepAll(napi_env env);

 private:
  void Sweep(napi_env env, bool all);
  void Push(TensorWrap* w, bool young);
  static bool Collected(napi_env env, napi_ref weak);
  static napi_ref NewProbe(napi_env env, uint32_t refs);

  std::vector<TensorWrap*> young_;  // created since the last check
  std::vector<TensorWrap*> old_;    // survived a check
  size_t cursor_ = 0;               // where a partial check of old_ resumes
  int64_t bytesSinceCheck_ = 0;
  int64_t addedSinceCheck_ = 0;
  int64_t addedSinceFullCheck_ = 0;  // since every old tensor was last checked
  napi_ref anyGcProbe_ = nullptr;    // weak: cleared by the first collection after the last check
  napi_ref fullGcProbe_ = nullptr;   // strong for two collections, then weak: cleared by a full one
  int fullGcProbeAge_ = 0;
};

}  // namespace torchcap
