#include "executor.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "wrap.h"

namespace torchcap {

// Every executor of the process, whatever its environment: the main thread's exit holds the
// others (Hold). An executor is listed once its thread runs and unlisted first thing when it goes.
static std::mutex g_allMutex;
static std::vector<Executor*> g_all;

static void CleanupHook(void* arg) { static_cast<Executor*>(arg)->Teardown(); }

Executor::Executor(Napi::Env env) : env_(env) {
  // Drop executors that were closed and are done, with their (ended) threads.
  auto& all = Data(env).executors;
  for (auto it = all.begin(); it != all.end();) {
    if ((*it)->finished_) {
      (*it)->Teardown();
      napi_remove_env_cleanup_hook(env, CleanupHook, it->get());
      it = all.erase(it);
    } else {
      ++it;
    }
  }
  tsfn_ = Tsfn::New(env, "torchcap", 0, 1, this);
  tsfn_.Unref(env);  // an idle executor does not keep the process alive
  try {
    thread_ = std::thread([this] { Loop(); });
  } catch (...) {
    tsfn_.Release();  // no thread: nothing of this executor may outlive the throw
    throw;
  }
  // Registered after the thread-safe function, so it runs before Node closes that function; and
  // only once the thread exists, so that no hook is left behind if making it failed.
  napi_add_env_cleanup_hook(env, CleanupHook, this);
  std::lock_guard<std::mutex> lock(g_allMutex);
  g_all.push_back(this);
}

Executor::~Executor() {
  {
    std::lock_guard<std::mutex> lock(g_allMutex);
    g_all.erase(std::remove(g_all.begin(), g_all.end(), this), g_all.end());
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Executor::Post(Job job) {
  if (closed_) ThrowError("this executor has been closed");
  Napi::Env env(env_);
  if (pending_++ == 0 && !refed_) {
    tsfn_.Ref(env);  // keep the process alive until the job's promise settles
    refed_ = true;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(new Job(std::move(job)));
  }
  cv_.notify_one();
}

void Executor::Loop() {
  for (;;) {
    Job* job = nullptr;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [this] { return stop_ || (!held_ && !queue_.empty()); });
      if (held_ || queue_.empty()) {  // stopped, and drained or held (the queue is the teardown's to drop)
        ended_ = true;
        cv_.notify_all();
        return;
      }
      job = queue_.front();
      queue_.pop_front();
      busy_ = true;
    }
    job->work();  // catches its own exceptions
    // The JS thread settles the promise; if the environment is gone the job is dropped.
    if (tsfn_.NonBlockingCall(job) != napi_ok) delete job;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      busy_ = false;
    }
    cv_.notify_all();
  }
}

void Executor::CallJs(Napi::Env env, Napi::Function, Executor* self, Job* job) {
  std::unique_ptr<Job> owned(job);
  if (static_cast<napi_env>(env) == nullptr) return;  // the function is being torn down: free the job
  try {
    job->done(env);
  } catch (...) {
    // Settling the promise failed: the environment is shutting down (a worker thread being
    // terminated). Nothing is left to tell; an exception here would abort the process.
  }
  if (--self->pending_ == 0) {
    if (self->refed_) {
      self->tsfn_.Unref(env);
      self->refed_ = false;
    }
    if (self->closed_) self->Finish();
  }
}

// A closed executor with nothing pending: end its thread-safe function, so that it no longer
// holds anything of the environment.
void Executor::Finish() {
  if (finished_) return;
  finished_ = true;
  tsfn_.Release();
}

void Executor::Close() {
  if (closed_) return;
  closed_ = true;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;  // the thread finishes what is queued, then ends
  }
  cv_.notify_all();
  if (pending_ == 0) Finish();
}

void Executor::Teardown() {
  closed_ = true;
  std::deque<Job*> dropped;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    dropped.swap(queue_);
    stop_ = true;
  }
  cv_.notify_all();
  for (Job* j : dropped) delete j;
  if (thread_.joinable()) thread_.join();
}

bool Executor::Hold(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(mutex_);
  held_ = true;
  return cv_.wait_until(lock, deadline, [this] { return !busy_; });
}

bool Executor::HoldAllBut(napi_env env, std::chrono::steady_clock::time_point deadline) {
  std::lock_guard<std::mutex> lock(g_allMutex);
  bool idle = true;
  for (Executor* e : g_all) {
    if (e->env_ != env) idle = e->Hold(deadline) && idle;
  }
  return idle;
}

bool Executor::Abandon(std::chrono::steady_clock::time_point deadline) {
  std::deque<Job*> dropped;
  bool ended;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    dropped.swap(queue_);
    stop_ = true;
    cv_.notify_all();
    ended = cv_.wait_until(lock, deadline, [this] { return ended_; });
  }
  for (Job* j : dropped) delete j;
  if (ended && thread_.joinable()) thread_.join();
  return ended;
}

// ---------- JS surface ----------

class ExecutorWrap {
 public:
  explicit ExecutorWrap(napi_env) {}
  static constexpr const char* kClassName = "Executor";
  static constexpr napi_type_tag kTypeTag = {0x0000000000000004ULL, 0x746f72636863a9e1ULL};
  // A collected executor finishes its queue and ends its thread (no JS calls here: GC finalizer).
  ~ExecutorWrap() {
    if (exec) exec->Close();
  }
  std::shared_ptr<Executor> exec;

  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (exec) exec->Close();
    return info.Env().Undefined();
  }
  Napi::Value Pending(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), exec ? static_cast<double>(exec->pending()) : 0); }
  Napi::Value Closed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !exec || exec->closed()); }
};

static std::shared_ptr<Executor> NewExecutor(Napi::Env env) {
  auto e = std::make_shared<Executor>(env);
  Data(env).executors.push_back(e);
  return e;
}

Executor& CurrentExecutor(Napi::Env env) {
  AddonData& d = Data(env);
  if (d.currentExecutor) return *d.currentExecutor;
  if (!d.defaultExecutor) d.defaultExecutor = NewExecutor(env);
  return *d.defaultExecutor;
}

static Napi::Value CreateExecutor(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, {
    auto made = NativeClass<ExecutorWrap>::New(info.Env(), Data(info.Env()).executorCtor);
    made.second->exec = NewExecutor(info.Env());
    return made.first;
  });
}

// setExecutor(executor | null): the executor async calls post to until the next setExecutor
// (null: the environment's default). lib/ sets it just around each async call.
static Napi::Value SetExecutor(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, {
    AddonData& d = Data(info.Env());
    if (!ArgPresent(info, 0)) {
      d.currentExecutor = nullptr;
      return info.Env().Undefined();
    }
    auto* w = NativeClass<ExecutorWrap>::Of(info.Env(), info[0]);
    if (!w || !w->exec) ThrowType("Expected an Executor for executor");
    if (w->exec->closed()) ThrowError("this executor has been closed");
    d.currentExecutor = w->exec;
    return info.Env().Undefined();
  });
}

// stopExecutors(exitCode?): called from process 'exit' (process.exit(), an uncaught exception). Exit
// runs libtorch's static destructors while an executor may still be inside a libtorch call (a crash
// at exit); so queued jobs are dropped and each running one is waited for (10 s at most) first. With
// an exit code (the main thread's exit), the executors of worker threads are held too: the exit
// tears the workers down and waits for that, and their teardown drops their queued jobs and waits
// for the running ones; held, they start no more, and their running ones get the same 10 s. A
// call still running after that cannot be stopped: with an exit code, the process ends at once
// with that code, skipping the static destructors that would crash under it.
// TORCHCAP_EXIT_GRACE_MS changes the 10 s.
static Napi::Value StopExecutors(const Napi::CallbackInfo& info) {
  const char* grace = std::getenv("TORCHCAP_EXIT_GRACE_MS");
  const long ms = grace && *grace ? std::strtol(grace, nullptr, 10) : 10000;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms > 0 ? ms : 0);
  bool all = true;
  for (auto& e : Data(info.Env()).executors) all = e->Abandon(deadline) && all;
  const bool mainExit = info.Length() > 0 && info[0].IsNumber();
  if (mainExit) all = Executor::HoldAllBut(info.Env(), deadline) && all;
  if (!all && mainExit) {
    std::fflush(stdout);
    std::fflush(stderr);
    std::_Exit(info[0].As<Napi::Number>().Int32Value());
  }
  return Napi::Boolean::New(info.Env(), all);
}

void InitExecutor(Napi::Env env, Napi::Object exports) {
  using C = NativeClass<ExecutorWrap>;
  Napi::Function ctor = C::Define(env,
                                  {
                                      C::Method<&ExecutorWrap::Close>("close"),
                                      C::Method<&ExecutorWrap::Pending>("pending"),
                                      C::Method<&ExecutorWrap::Closed>("closed"),
                                  });
  Data(env).executorCtor = Napi::Persistent(ctor);
  exports.Set("Executor", ctor);
  exports.Set("createExecutor", Napi::Function::New<CreateExecutor>(env, "createExecutor"));
  exports.Set("setExecutor", Napi::Function::New<SetExecutor>(env, "setExecutor"));
  exports.Set("stopExecutors", Napi::Function::New<StopExecutors>(env, "stopExecutors"));
}

}  // namespace torchcap
