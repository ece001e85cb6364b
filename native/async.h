// Running native work off the JavaScript thread.
//
// RunAsync(env, work, done) schedules `work` on an executor thread (executor.h) and returns a promise.
// `work` must not touch JS values: callers copy what it needs (tensors are reference-counted
// handles, so copying one keeps its memory alive even if JS disposes the wrapper meanwhile).
// The worker thread inherits the caller's grad mode and the configured intra-op thread count,
// both of which libtorch keeps per thread. `done` converts the result on the JS thread.
//
// A rejection carries the caller's stack: the promise settles from the event loop, where no JS
// frame of the caller is left, so the call site is recorded when the call is made (CallSite) and
// its frames are put under the error's message when the call fails.
#pragma once

#include "common.h"
#include "executor.h"

namespace torchcap {

// The JS stack at the moment an async call is made. Made and used on the JS thread only; a call
// dropped before it settles (environment teardown) leaves its small reference to the environment.
class CallSite {
 public:
  explicit CallSite(napi_env env);
  // Puts the recorded frames under `err`'s first line (its own stack has no JS frames).
  void Attach(Napi::Env env, const Napi::Error& err) const;
  void Release(napi_env env);

 private:
  napi_ref origin_ = nullptr;  // an Error made at the call: V8 recorded the stack when it was made
};

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
  auto site = std::make_shared<CallSite>(env);
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
  job.done = [state, deferred, site, done = std::move(done)](Napi::Env e) {
    auto reject = [&](const Napi::Error& err) {
      site->Attach(e, err);
      deferred->Reject(err.Value());
    };
    if (state->failed) {
      reject(ToJsError(e, state->error));
    } else {
      try {
        deferred->Resolve(done(e, state->result));
      } catch (const Napi::Error& err) {
        reject(err);
      } catch (...) {
        reject(ToJsError(e, Describe(std::current_exception())));
      }
    }
    state->result = R();
    site->Release(e);
  };
  try {
    CurrentExecutor(env).Post(std::move(job));
  } catch (...) {
    site->Release(env);
    throw;
  }
  return deferred->Promise();
}

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
