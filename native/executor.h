// Executors: the threads that run torchcap's async work.
//
// An Executor is one native thread with a FIFO queue. Every async call runs on an executor and
// resolves its promise on the JS thread through a thread-safe function. Why not libuv's pool:
// libtorch's OpenMP keeps a team of helper threads per calling thread, and tasks hopping across
// libuv's four threads made four teams that spin against each other on a small machine (a decoder
// step ran twice as slow async as sync). One thread per executor reuses one team, and an
// executor's queue is exactly the "one call at a time per model" order.
//
// Each environment (main thread, worker thread) has a default executor; more are created for
// work that may run at the same time (a Captioner per model, a Trainer). The executor used by an
// async call is the environment's "current" one, set by lib/ just around the call.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "common.h"

namespace torchcap {

class Executor {
 public:
  struct Job {
    std::function<void()> work;                 // runs on the executor thread
    std::function<void(Napi::Env)> done;        // runs on the JS thread afterwards
  };

  explicit Executor(Napi::Env env);
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // From the JS thread: queue a job. Throws if the executor is closed.
  void Post(Job job);
  // From the JS thread: finish queued jobs, then end the thread (does not wait).
  void Close();
  // Environment teardown (a worker terminated or ending, the process exiting), on the JS thread:
  // drops the queued jobs (their promises never settle: nothing is left to run them), then waits
  // for the running one, if any, and for the thread to end.
  void Teardown();
  // The process is exiting: drop queued jobs and end the thread after the running one, waiting
  // until `deadline` at most. Returns whether the thread has ended.
  bool Abandon(std::chrono::steady_clock::time_point deadline);
  // The main thread's exit, for the executors of the other environments (worker threads, whose
  // teardown the exit waits for): from any thread, keeps the thread from starting another job and
  // waits until `deadline` at most for the running one. Returns whether none is running.
  bool Hold(std::chrono::steady_clock::time_point deadline);
  // Hold() for every executor of the process that does not belong to `env`.
  static bool HoldAllBut(napi_env env, std::chrono::steady_clock::time_point deadline);
  bool closed() const { return closed_; }
  size_t pending() const { return pending_; }

 private:
  void Loop();
  void Finish();
  static void CallJs(Napi::Env env, Napi::Function, Executor* self, Job* job);

  using Tsfn = Napi::TypedThreadSafeFunction<Executor, Job, &Executor::CallJs>;
  Tsfn tsfn_;
  napi_env env_;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Job*> queue_;
  bool stop_ = false;   // guarded by mutex_
  bool held_ = false;   // guarded by mutex_: start no more jobs (Hold)
  bool busy_ = false;   // guarded by mutex_: a job is running
  bool ended_ = false;  // guarded by mutex_: the thread left its loop
  bool closed_ = false;  // JS thread only
  size_t pending_ = 0;   // JS thread only: posted, not yet done
  bool refed_ = false;   // JS thread only
  bool finished_ = false;  // JS thread only: closed, drained, thread-safe function released
};

void InitExecutor(Napi::Env env, Napi::Object exports);

// The executor async work posts to now: the current one, else the environment's default.
Executor& CurrentExecutor(Napi::Env env);

}  // namespace torchcap
