// Running native work off the JavaScript thread.
//
// RunAsync(env, work, done) schedules `work` on an executor thread (executor.h) and returns a promise.
// `work` must not touch JS values: callers copy what it needs (tensors are reference-counted
// handles, so copying one keeps its memory alive even if JS disposes the wrapper meanwhile).
// The worker thread inherits the caller's grad mode and the configured intra-op thread count,
// both of which libtorch keeps per thread. `done` converts the result on the JS thread.
#pragma once

#include "common.h"
#include "executor.h"

namespace torchcap {

template <typename R>
struct TaskState {
  R result{};
  bool failed = false;
  ErrorInfo error;
};

// Runs `work` on the current executor's thread and returns a promise that `done` settles on the
// JS thread. The caller's grad mode travels with the work (libtorch keeps it per thread).
template <typename R>
Napi::Promise RunAsync(Napi::Env env, std::function<R()> work, std::function<Napi::Value(Napi::Env, R&)> done) {
  auto deferred = std::make_shared<Napi::Promise::Deferred>(Napi::Promise::Deferred::New(env));
  auto state = std::make_shared<TaskState<R>>();
  const bool grad = torch::GradMode::is_enabled();
  Executor::Job job;
  job.work = [state, work = std::move(work), grad]() {
    try {
      torch::AutoGradMode mode(grad);
      ApplyThreads();
      state->result = work();
    } catch (...) {
      state->failed = true;
      state->error = Describe(std::current_exception());
    }
  };
  job.done = [state, deferred, done = std::move(done)](Napi::Env e) {
    if (state->failed) {
      deferred->Reject(ToJsError(e, state->error).Value());
      return;
    }
    try {
      deferred->Resolve(done(e, state->result));
    } catch (const Napi::Error& err) {
      deferred->Reject(err.Value());
    } catch (...) {
      deferred->Reject(ToJsError(e, Describe(std::current_exception())).Value());
    }
    state->result = R();
  };
  CurrentExecutor(env).Post(std::move(job));
  return deferred->Promise();
}

}  // namespace torchcap

namespace torchcap {

using Tensors = std::vector<torch::Tensor>;

// Runs `work` now (Async = false) or on a worker thread (Async = true, returning a promise),
// and hands back the tensors it produced as an array (null for undefined ones).
template <bool Async>
Napi::Value RunTensors(Napi::Env env, std::function<Tensors()> work) {
  if constexpr (Async) {
    return RunAsync<Tensors>(env, std::move(work), [](Napi::Env e, Tensors& r) -> Napi::Value { return WrapTensors(e, r); });
  } else {
    Tensors r = work();
    return WrapTensors(env, r);
  }
}

}  // namespace torchcap
