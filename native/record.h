// Named records of tensors between JS and native code: `{ data, batchSizes, sortedIndices,
// unsortedIndices, h, c }` rather than positional arrays. A record's fields are listed once, in
// the order the native code uses them; reading gives the tensors in that order (undefined where a
// field is absent or null), wrapping gives back an object with the same names (null where undefined).
#pragma once

#include <vector>

#include "async.h"
#include "common.h"

namespace torchcap {

using Fields = std::vector<const char*>;

// The tensors of the record at argument i (named `name` in errors), in the order of `fields`.
Tensors ArgRecord(const Napi::CallbackInfo& info, size_t i, const char* name, const Fields& fields);

// A new object holding tensors[k] at fields[k].
Napi::Object WrapRecord(Napi::Env env, const Fields& fields, const Tensors& tensors);

// Runs `work` now (Async = false) or on a worker thread (Async = true, returning a promise) and
// hands back what it produced as a record with `fields`.
template <bool Async>
Napi::Value RunRecord(Napi::Env env, const Fields& fields, std::function<Tensors()> work) {
  if constexpr (Async) {
    return RunAsync<Tensors>(env, std::move(work), [fields](Napi::Env e, Tensors& r) -> Napi::Value { return WrapRecord(e, fields, r); });
  } else {
    Tensors r = work();
    return WrapRecord(env, fields, r);
  }
}

}  // namespace torchcap
