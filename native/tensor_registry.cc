#include "tensor_registry.h"

#include <algorithm>

#include "tensor.h"
#include "wrap.h"

namespace torchcap {

namespace {
// V8 collects after 64 MB of external growth; a loop that drops small tensors would then hold
// 64 MB of dead ones. Every 16 MB of new tensors, a brief spike in the reported amount asks V8
// for a collection sooner (only the report changes, nothing is allocated), and the registry
// checks right after it.
constexpr int64_t kNudgeBytes = int64_t{16} << 20;
constexpr int64_t kNudgeSpike = int64_t{64} << 20;
// Checks also come after each collection (see NewProbe) and, as a bound, after this many tensors.
constexpr int64_t kCheckEvery = 4096;
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
  if (bytesSinceCheck_ >= kNudgeBytes) {
    ReportExternal(env, kNudgeSpike);
    ReportExternal(env, -kNudgeSpike);
    Sweep(env, 2 * young_.size());
  } else if (++addedSinceCheck_ >= kCheckEvery || Collected(env, gcProbe_)) {
    Sweep(env, 2 * young_.size());
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

// A fresh empty object, weakly referenced: once that reference is cleared, a collection has run
// since this check (the youngest collections included), and tensors may be waiting.
void TensorRegistry::NewProbe(napi_env env) {
  if (gcProbe_) napi_delete_reference(env, gcProbe_);
  gcProbe_ = nullptr;
  napi_value probe = nullptr;
  if (napi_create_object(env, &probe) == napi_ok) napi_create_reference(env, probe, 0, &gcProbe_);
}

// Frees the tensors of collected objects: every young one is checked (survivors become old), then
// up to `oldBudget` old ones, resuming where the last check stopped.
void TensorRegistry::Sweep(napi_env env, size_t oldBudget) {
  bytesSinceCheck_ = 0;
  addedSinceCheck_ = 0;
  napi_handle_scope scope = nullptr;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  std::vector<TensorWrap*> young;
  young.swap(young_);
  for (TensorWrap* w : young) w->list_ = TensorWrap::List::None;
  for (TensorWrap* w : young) {
    if (Collected(env, w->self_)) w->Reap();
    else Push(w, false);
  }
  for (size_t n = std::min(oldBudget, old_.size()); n > 0 && !old_.empty(); --n) {
    if (cursor_ >= old_.size()) cursor_ = 0;
    TensorWrap* w = old_[cursor_];
    if (Collected(env, w->self_)) w->Reap();  // the last entry moves into this slot: checked next
    else ++cursor_;
  }
  NewProbe(env);
  napi_close_handle_scope(env, scope);
}

void TensorRegistry::SweepAll(napi_env env) { Sweep(env, old_.size() + young_.size()); }

}  // namespace torchcap
