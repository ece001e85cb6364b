// Data-parallel training on PyTorch's own c10d: a TCPStore rendezvous and a process group (Gloo on
// CPU, NCCL for CUDA tensors when libtorch has it). No networking of torchcap's own.
//
// JS surface: createProcessGroup({ host, port, rank, worldSize, timeoutMs, backend }) -> Group with
// allreduce / broadcast / barrier (async, on the current executor), store get/set/add for the
// heartbeats lib/ uses to name a lost rank, and an autograd-aware allreduce for SyncBatchNorm.
#include "async.h"
#include "common.h"
#include "wrap.h"

#if defined(USE_C10D_GLOO) && __has_include(<gloo/algorithm.h>)
#define TORCHCAP_GLOO 1
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
// NCCL where libtorch has it and its headers and CUDA's are on the include path (a Python wheel's
// NCCL headers are in another package: CMakeLists.txt adds them when it finds them).
#if defined(USE_C10D_NCCL) && __has_include(<torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>) && __has_include(<nccl.h>) && \
    __has_include(<cuda_runtime_api.h>)
#define TORCHCAP_NCCL 1
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#endif

#include <torch/version.h>

#include <chrono>
#include <mutex>
#include <unordered_map>

namespace torchcap {

#ifdef TORCHCAP_GLOO

// Gloo and NCCL groups derive from ProcessGroup in libtorch 1.x and from Backend in 2.x.
#if TORCH_VERSION_MAJOR >= 2
using PG = c10::intrusive_ptr<c10d::Backend>;
#else
using PG = c10::intrusive_ptr<c10d::ProcessGroup>;
#endif

class GroupWrap {
 public:
  explicit GroupWrap(napi_env) {}
  static constexpr const char* kClassName = "ProcessGroup";
  static constexpr napi_type_tag kTypeTag = {0x0000000000000005ULL, 0x746f72636863a9e1ULL};
  c10::intrusive_ptr<c10d::Store> store;
  PG pg;
  int64_t id = 0;
  int rank = 0, size = 1;
  std::string backend;

  static void Init(Napi::Env env, Napi::Object exports);

  // The group's connections and its store: an Error once destroyProcessGroup has dropped them.
  const PG& Group() const {
    if (!pg) ThrowError(kDestroyed);
    return pg;
  }
  c10::intrusive_ptr<c10d::Store> Store() const {
    if (!store) ThrowError(kDestroyed);
    return store;
  }
  static constexpr const char* kDestroyed = "process group destroyed: it cannot be used after destroy()";

  // allreduce(tensors, op: 'sum'|'max'|'min'): in place, on the current executor.
  Napi::Value Allreduce(const Napi::CallbackInfo& info) {
    TORCHCAP_GUARD(info, {
      Tensors ts = ArgTensors(info, 0, "tensors");
      std::string op = ArgPresent(info, 1) ? ArgString(info, 1, "op") : "sum";
      c10d::AllreduceOptions o;
      if (op == "sum") o.reduceOp = c10d::ReduceOp::SUM;
      else if (op == "max") o.reduceOp = c10d::ReduceOp::MAX;
      else if (op == "min") o.reduceOp = c10d::ReduceOp::MIN;
      else ThrowType("allreduce op must be 'sum', 'max' or 'min'");
      auto g = Group();
      return RunTensors<true>(info.Env(), [g, ts, o]() mutable -> Tensors {
        torch::NoGradGuard guard;
        g->allreduce(ts, o)->wait();
        return {};
      });
    });
  }

  // broadcast(tensors, root): in place.
  Napi::Value Broadcast(const Napi::CallbackInfo& info) {
    TORCHCAP_GUARD(info, {
      Tensors ts = ArgTensors(info, 0, "tensors");
      c10d::BroadcastOptions o;
      o.rootRank = ArgInt(info, 1, "root");
      if (o.rootRank < 0 || o.rootRank >= size) ThrowRange("broadcast root must be a rank of the group");
      auto g = Group();
      return RunTensors<true>(info.Env(), [g, ts, o]() mutable -> Tensors {
        torch::NoGradGuard guard;
        // One tensor per call: Gloo broadcasts a list as copies of one tensor on several devices.
        for (auto& t : ts) {
          std::vector<torch::Tensor> one{t};
          g->broadcast(one, o)->wait();
        }
        return {};
      });
    });
  }

  Napi::Value Barrier(const Napi::CallbackInfo& info) {
    TORCHCAP_GUARD(info, {
      auto g = Group();
      return RunTensors<true>(info.Env(), [g]() -> Tensors {
        g->barrier()->wait();
        return {};
      });
    });
  }

  // Store access, synchronous and short: heartbeats and small coordination values.
  Napi::Value StoreSet(const Napi::CallbackInfo& info) {
    TORCHCAP_GUARD(info, {
      const std::string key = ArgString(info, 0, "key"), v = ArgString(info, 1, "value");
      Store()->set(key, std::vector<uint8_t>(v.begin(), v.end()));
      return info.Env().Undefined();
    });
  }

  // storeGet(key, timeoutMs): the value, or null when the key does not appear in time.
  Napi::Value StoreGet(const Napi::CallbackInfo& info) {
    TORCHCAP_GUARD(info, {
      std::string key = ArgString(info, 0, "key");
      auto timeout = std::chrono::milliseconds(ArgPresent(info, 1) ? ArgInt(info, 1, "timeoutMs") : 0);
      auto s = Store();
      if (!s->check({key})) {
        if (timeout.count() <= 0) return info.Env().Null();
        try {
          s->wait({key}, timeout);
        } catch (const std::exception&) {
          return info.Env().Null();
        }
      }
      auto v = s->get(key);
      return Napi::String::New(info.Env(), std::string(v.begin(), v.end()));
    });
  }

  Napi::Value Rank(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), rank); }
  Napi::Value Size(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), size); }
  Napi::Value Backend(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), backend); }
};

// Groups by id, for the autograd function (its saved data holds the id, not the pointer).
static std::mutex g_groupsMutex;
static std::unordered_map<int64_t, PG> g_groups;
static int64_t g_nextGroup = 1;

static PG GroupById(int64_t id) {
  std::lock_guard<std::mutex> lock(g_groupsMutex);
  auto it = g_groups.find(id);
  if (it == g_groups.end()) ThrowError("the process group is gone");
  return it->second;
}

// y = sum over ranks of x; dL/dx = sum over ranks of dL/dy. SyncBatchNorm's statistics go
// through this, so each rank's gradient sees every rank's batch, as in PyTorch's SyncBatchNorm.
struct AllreduceSumFn : public torch::autograd::Function<AllreduceSumFn> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor x, int64_t group) {
    ctx->saved_data["group"] = group;
    std::vector<torch::Tensor> v{x.clone()};
    GroupById(group)->allreduce(v)->wait();
    return v[0];
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    std::vector<torch::Tensor> v{grads[0].contiguous().clone()};
    GroupById(ctx->saved_data["group"].toInt())->allreduce(v)->wait();
    return {v[0], torch::Tensor()};
  }
};

// allreduceSumDifferentiable(tensor) -> Promise<[tensor]>: the sum over ranks, recorded by autograd.
Napi::Value AllreduceDiff(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, {
    auto* w = NativeClass<GroupWrap>::Of(info.Env(), info[0]);
    if (!w) ThrowType("Expected a ProcessGroup for group");
    w->Group();  // refused once destroyed
    torch::Tensor x = ArgTensor(info, 1, "tensor");
    int64_t id = w->id;
    return RunTensors<true>(info.Env(), [x, id]() -> Tensors { return {AllreduceSumFn::apply(x, id)}; });
  });
}

// createProcessGroup({ host, port, rank, worldSize, timeoutMs, backend: 'gloo' | 'nccl' })
// The rank-0 process hosts the TCPStore. Blocks (on an executor thread) until all ranks joined.
static Napi::Value CreateProcessGroup(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, {
    Napi::Object o = ArgOptions(info, 0);
    std::string host = OptString(o, "host", "127.0.0.1");
    int64_t port = OptInt(o, "port", -1), rank = OptInt(o, "rank", -1), world = OptInt(o, "worldSize", -1);
    int64_t timeoutMs = OptInt(o, "timeoutMs", 60000);
    std::string backend = OptString(o, "backend", "gloo");
    if (port < 1 || port > 65535) ThrowRange("port must be 1..65535");
    if (world < 1) ThrowRange("worldSize must be at least 1");
    if (rank < 0 || rank >= world) ThrowRange("rank must be in 0..worldSize-1");
#ifndef TORCHCAP_NCCL
    if (backend == "nccl") ThrowError("this torchcap was built without NCCL (a CPU libtorch, or NCCL's headers were not found when it was built): use backend 'gloo'");
#endif
    if (backend != "gloo" && backend != "nccl") ThrowType("backend must be 'gloo' or 'nccl'");
    auto made = NativeClass<GroupWrap>::New(info.Env(), Data(info.Env()).groupCtor);
    Napi::Object obj = made.first;
    GroupWrap* w = made.second;
    auto keep = std::make_shared<Napi::ObjectReference>(Napi::Persistent(obj));
    return RunAsync<std::pair<c10::intrusive_ptr<c10d::Store>, PG>>(
        info.Env(),
        [host, port, rank, world, timeoutMs, backend]() {
          auto timeout = std::chrono::milliseconds(timeoutMs);
          c10d::TCPStoreOptions so;
          so.port = static_cast<uint16_t>(port);
          so.isServer = rank == 0;
          so.numWorkers = static_cast<size_t>(world);
          so.waitWorkers = true;
          so.timeout = timeout;
          c10::intrusive_ptr<c10d::Store> store = c10::make_intrusive<c10d::TCPStore>(host, so);
          auto prefixed = c10::make_intrusive<c10d::PrefixStore>("torchcap/" + backend, store);
          PG pg;
#ifdef TORCHCAP_NCCL
          if (backend == "nccl") {
            auto nopts = c10d::ProcessGroupNCCL::Options::create();
            nopts->timeout = timeout;
            pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(prefixed, rank, world, nopts);
          }
#endif
          if (!pg) {
            auto gopts = c10d::ProcessGroupGloo::Options::create(timeout);
            gopts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(host == "0.0.0.0" ? "127.0.0.1" : host));
            pg = c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, rank, world, gopts);
          }
          return std::make_pair(store, pg);
        },
        [w, keep, rank, world, backend](Napi::Env env, std::pair<c10::intrusive_ptr<c10d::Store>, PG>& r) -> Napi::Value {
          w->store = r.first;
          w->pg = r.second;
          w->rank = static_cast<int>(rank);
          w->size = static_cast<int>(world);
          w->backend = backend;
          {
            std::lock_guard<std::mutex> lock(g_groupsMutex);
            w->id = g_nextGroup++;
            g_groups[w->id] = w->pg;
          }
          Napi::Object out = keep->Value();
          keep->Reset();
          return out;
        });
  });
}

// Drops a group: its id, store and connections.
static Napi::Value DestroyProcessGroup(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, {
    auto* w = NativeClass<GroupWrap>::Of(info.Env(), info[0]);
    if (!w) ThrowType("Expected a ProcessGroup for group");
    {
      std::lock_guard<std::mutex> lock(g_groupsMutex);
      g_groups.erase(w->id);
    }
    w->pg.reset();
    w->store.reset();
    return info.Env().Undefined();
  });
}

void GroupWrap::Init(Napi::Env env, Napi::Object exports) {
  using C = NativeClass<GroupWrap>;
  Napi::Function ctor = C::Define(env,
                                  {
                                      C::Method<&GroupWrap::Allreduce>("allreduce"),
                                      C::Method<&GroupWrap::Broadcast>("broadcast"),
                                      C::Method<&GroupWrap::Barrier>("barrier"),
                                      C::Method<&GroupWrap::StoreSet>("storeSet"),
                                      C::Method<&GroupWrap::StoreGet>("storeGet"),
                                      C::Method<&GroupWrap::Rank>("rank"),
                                      C::Method<&GroupWrap::Size>("size"),
                                      C::Method<&GroupWrap::Backend>("backend"),
                                  });
  Data(env).groupCtor = Napi::Persistent(ctor);
  exports.Set("ProcessGroup", ctor);
  exports.Set("createProcessGroup", Napi::Function::New<CreateProcessGroup>(env, "createProcessGroup"));
  exports.Set("destroyProcessGroup", Napi::Function::New<DestroyProcessGroup>(env, "destroyProcessGroup"));
  exports.Set("allreduceSumDifferentiable", Napi::Function::New<AllreduceDiff>(env, "allreduceSumDifferentiable"));
}

void InitDistributed(Napi::Env env, Napi::Object exports) {
  GroupWrap::Init(env, exports);
  exports.Set("distributedBackends", [&env]() {
    Napi::Array a = Napi::Array::New(env);
    a.Set(0u, "gloo");
#ifdef TORCHCAP_NCCL
    a.Set(1u, "nccl");
#endif
    return a;
  }());
}

#else  // no c10d Gloo in this libtorch

static Napi::Value Unavailable(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, {
    ThrowError("this torchcap was built without distributed support: libtorch's c10d Gloo headers were not found (Debian: apt-get install libgloo-dev, then rebuild)");
  });
}

void InitDistributed(Napi::Env env, Napi::Object exports) {
  exports.Set("createProcessGroup", Napi::Function::New<Unavailable>(env, "createProcessGroup"));
  exports.Set("destroyProcessGroup", Napi::Function::New<Unavailable>(env, "destroyProcessGroup"));
  exports.Set("allreduceSumDifferentiable", Napi::Function::New<Unavailable>(env, "allreduceSumDifferentiable"));
  exports.Set("distributedBackends", Napi::Array::New(env));
}

#endif

}  // namespace torchcap
