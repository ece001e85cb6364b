#include "executor.h"

#include <cstdio>
#include <cstdlib>

#include "wrap.h"

namespace torchcap {

static void CleanupHook(void* arg) { static_cast<Executor*>(arg)->Shutdown(); }

Executor::Executor(Napi::Env env) : env_(env) {
  // Drop executors that were closed and are done, with their (ended) threads.
  auto& all = Data(env).executors;
  for (auto it = all.begin(); it != all.end();) {
    if ((*it)->finished_) {
      (*it)->Shutdown();
      napi_remove_env_cleanup_hook(env, CleanupHook, it->get());
      it = all.erase(it);
    } else {
      ++it;
    }
  }
  tsfn_ = Tsfn::New(env, "torchcap", 0, 1, this);
  tsfn_.Unref(env);  // an idle executor does not keep the process alive
  // Registered after the thread-safe function, so it runs before Node closes that function.
  napi_add_env_cleanup_hook(env, CleanupHook, this);
  thread_ = std::thread([this] { Loop(); });
}

Executor::~Executor() {
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
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) {  // stopped and drained
        ended_ = true;
        cv_.notify_all();
        return;
      }
      job = queue_.front();
      queue_.pop_front();
    }
    job->work();  // catches its own exceptions
    // The JS thread settles the promise; if the environment is gone the job is dropped.
    if (tsfn_.NonBlockingCall(job) != napi_ok) delete job;
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

void Executor::Shutdown() {
  Close();
  if (thread_.joinable()) thread_.join();
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
    Napi::Object obj = Data(info.Env()).executorCtor.New({});
    NativeClass<ExecutorWrap>::Of(info.Env(), obj, Data(info.Env()).executorCtor)->exec = NewExecutor(info.Env());
    return obj;
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
    auto* w = NativeClass<ExecutorWrap>::Of(info.Env(), info[0], d.executorCtor);
    if (!w || !w->exec) ThrowType("Expected an Executor for executor");
    if (w->exec->closed()) ThrowError("this executor has been closed");
    d.currentExecutor = w->exec.get();
    return info.Env().Undefined();
  });
}

// stopExecutors(exitCode?): called from process 'exit' (process.exit(), an uncaught exception). Exit
// runs libtorch's static destructors while an executor may still be inside a libtorch call (a crash
// at exit); so queued jobs are dropped and each running one is waited for (10 s at most) first. A
// call still running after that cannot be stopped: with an exit code (the main thread's exit), the
// process ends at once with that code, skipping the static destructors that would crash under it.
// TORCHCAP_EXIT_GRACE_MS changes the 10 s.
static Napi::Value StopExecutors(const Napi::CallbackInfo& info) {
  const char* grace = std::getenv("TORCHCAP_EXIT_GRACE_MS");
  const long ms = grace && *grace ? std::strtol(grace, nullptr, 10) : 10000;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms > 0 ? ms : 0);
  bool all = true;
  for (auto& e : Data(info.Env()).executors) all = e->Abandon(deadline) && all;
  if (!all && info.Length() > 0 && info[0].IsNumber()) {
    std::fflush(stdout);
    std::fflush(stderr);
    std::_Exit(info[0].As<Napi::Number>().Int32Value());
  }
  return Napi::Boolean::New(info.Env(), all);
}

void InitExecutor(Napi::Env env, Napi::Object exports) {
  using C = NativeClass<ExecutorWrap>;
  Napi::Function ctor = C::Define(env, "Executor",
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
