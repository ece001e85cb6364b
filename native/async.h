// Running native work off the JavaScript thread.
//
// RunAsync(env, work, done) schedules `work` on a libuv worker thread and returns a promise.
// `work` must not touch JS values: callers copy what it needs (tensors are reference-counted
// handles, so copying one keeps its memory alive even if JS disposes the wrapper meanwhile).
// The worker thread inherits the caller's grad mode and the configured intra-op thread count,
// both of which libtorch keeps per thread. `done` converts the result on the JS thread.
#pragma once

#include "common.h"

namespace torchcap {

template <typename R>
class AsyncTask : public Napi::AsyncWorker {
 public:
  using Work = std::function<R()>;
  using Done = std::function<Napi::Value(Napi::Env, R&)>;

  AsyncTask(Napi::Env env, Work work, Done done)
      : Napi::AsyncWorker(env, "torchcap"),
        deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)),
        done_(std::move(done)),
        gradEnabled_(torch::GradMode::is_enabled()) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      torch::AutoGradMode grad(gradEnabled_);
      ApplyThreads();
      result_ = work_();
    } catch (...) {
      error_ = Describe(std::current_exception());
      SetError(error_.message);
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    try {
      deferred_.Resolve(done_(env, result_));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    } catch (...) {
      deferred_.Reject(ToJsError(env, Describe(std::current_exception())).Value());
    }
    work_ = nullptr;
    result_ = R();
  }

  void OnError(const Napi::Error&) override {
    Napi::HandleScope scope(Env());
    deferred_.Reject(ToJsError(Env(), error_).Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  Work work_;
  Done done_;
  R result_{};
  ErrorInfo error_;
  bool gradEnabled_;
};

template <typename R>
Napi::Promise RunAsync(Napi::Env env, std::function<R()> work, std::function<Napi::Value(Napi::Env, R&)> done) {
  auto* task = new AsyncTask<R>(env, std::move(work), std::move(done));
  Napi::Promise p = task->Promise();
  task->Queue();
  return p;
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
