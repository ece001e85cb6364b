// Per-environment state: the main thread and every worker thread that loads the addon have their
// own, set as the environment's instance data when the addon initializes.
#pragma once

#include <napi.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace torchcap {

class Executor;
class TensorRegistry;

struct AddonData {
  AddonData();
  ~AddonData();
  Napi::FunctionReference tensorCtor;
  Napi::FunctionReference moduleCtor;
  Napi::FunctionReference optimizerCtor;
  Napi::FunctionReference executorCtor;
  Napi::FunctionReference groupCtor;
  std::atomic<int64_t> liveTensors{0};
  std::atomic<int64_t> liveBytes{0};
  std::unique_ptr<TensorRegistry> tensors;  // live tensors whose JS objects may have been collected
  // Every executor of this environment (their threads end at teardown), the default one, and the
  // one async calls post to right now (null: the default). Held, not borrowed: an executor set as
  // current, then closed and collected, still refuses posts with its own error.
  std::vector<std::shared_ptr<Executor>> executors;
  std::shared_ptr<Executor> defaultExecutor;
  std::shared_ptr<Executor> currentExecutor;
};

AddonData& Data(Napi::Env env);
// The environment's state, or nullptr once it is gone (finalizers at environment teardown).
AddonData* DataOrNull(napi_env env);

}  // namespace torchcap
