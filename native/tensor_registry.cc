#include "tensor_registry.h"

#include <algorithm>

#include "tensor.h"
#include "wrap.h"

namespace torchcap {

namespace {
// V8 collects after 64 MB of external growth; a loop that drops small tensors would then hold
// 64 MB of dead ones. Every 16 MB of new tensors, a brief spike in the reported amount asks V8
// for a collection sooner (only the report changes, nothing is allocated), and a check follows.
constexpr int64_t kNudgeBytes = int64_t{16} << 20;
constexpr int64_t kNudgeSpike = int64_t{64} << 20;
constexpr int64_t kCheckEvery = 4096;  // tensors
constexpr size_t kAlwaysCheckOld = 4096;
// V8 moves an object out of the young generation once it has survived two young collections.
constexpr int kProbeAgeOld = 2;
}  // namespace

void TensorRegistry::Push(TensorWrap* w, bool young) {
  auto& list = young ? young_ : old_;
  w->list_ = young ? TensorWrap::List::Young : TensorWrap::List::Old;
  w->slot_ = list.size();
  list.push_back(w);
}

void TensorRegistry::Add(napi_env env, TensorWrap* w, int64_t bytes) {
  Push(w, true);
  ReportExternal(env, bytes);
  bytesSinceCheck_ += bytes;
  ++addedSinceCheck_;
  ++addedSinceFullCheck_;
  if (bytesSinceCheck_ >= kNudgeBytes) {
    ReportExternal(env, kNudgeSpike);
    ReportExternal(env, -kNudgeSpike);
    Sweep(env, false);
  } else if (addedSinceCheck_ >= kCheckEvery || !anyGcProbe_ || Collected(env, anyGcProbe_)) {
    Sweep(env, false);
  }
}

void TensorRegistry::Remove(TensorWrap* w) {
  if (w->list_ == TensorWrap::List::None) return;
  auto& list = w->list_ == TensorWrap::List::Young ? young_ : old_;
  TensorWrap* last = list.back();
  list[w->slot_] = last;
  last->slot_ = w->slot_;
  list.pop_back();
  w->list_ = TensorWrap::List::None;
}

bool TensorRegistry::Collected(napi_env env, napi_ref weak) {
  napi_value v = nullptr;
  return weak != nullptr && napi_get_reference_value(env, weak, &v) == napi_ok && v == nullptr;
}

// A fresh empty object held by a reference with `refs` counts (0: weak).
napi_ref TensorRegistry::NewProbe(napi_env env, uint32_t refs) {
  napi_value probe = nullptr;
  napi_ref ref = nullptr;
  if (napi_create_object(env, &probe) == napi_ok) napi_create_reference(env, probe, refs, &ref);
  return ref;
}

void TensorRegistry::Sweep(napi_env env, bool all) {
  napi_handle_scope scope = nullptr;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  // Which collections ran since the last check.
  const bool anyGc = Collected(env, anyGcProbe_);
  bool fullGc = false;
  if (fullGcProbe_ && fullGcProbeAge_ >= kProbeAgeOld) {
    fullGc = Collected(env, fullGcProbe_);
  } else if (fullGcProbe_ && anyGc && ++fullGcProbeAge_ == kProbeAgeOld) {
    napi_reference_unref(env, fullGcProbe_, nullptr);  // old by now: only a full collection clears it
  }
  if (!fullGcProbe_ || fullGc) {
    if (fullGcProbe_) napi_delete_reference(env, fullGcProbe_);
    fullGcProbe_ = NewProbe(env, 1);
    fullGcProbeAge_ = 0;
  }
  if (anyGcProbe_) napi_delete_reference(env, anyGcProbe_);
  anyGcProbe_ = NewProbe(env, 0);

  const bool allOld = all || fullGc || (anyGc && old_.size() <= kAlwaysCheckOld) || addedSinceFullCheck_ * 4 >= static_cast<int64_t>(old_.size());
  const size_t oldBudget = allOld ? old_.size() : std::min(old_.size(), 2 * young_.size());
  for (size_t n = oldBudget; n > 0 && !old_.empty(); --n) {
    if (cursor_ >= old_.size()) cursor_ = 0;
    TensorWrap* w = old_[cursor_];
    if (Collected(env, w->self_)) w->Reap();  // the last entry moves into this slot: checked next
    else ++cursor_;
  }
  std::vector<TensorWrap*> young;
  young.swap(young_);
  for (TensorWrap* w : young) w->list_ = TensorWrap::List::None;
  for (TensorWrap* w : young) {
    if (Collected(env, w->self_)) w->Reap();
    else Push(w, false);
  }
  bytesSinceCheck_ = 0;
  addedSinceCheck_ = 0;
  if (allOld) addedSinceFullCheck_ = 0;
  napi_close_handle_scope(env, scope);
}

void TensorRegistry::SweepAll(napi_env env) { Sweep(env, true); }

}  // namespace torchcap
