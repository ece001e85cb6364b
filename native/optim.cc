// Optimizers (libtorch's Adam and SGD) over parameter tensors handed in from TypeScript, with
// their state readable and restorable for resume.
#include <torch/optim.h>

#include <sstream>

#include "async.h"
#include "common.h"
#include "wrap.h"

namespace torchcap {

// The key of a parameter's state: a string of its TensorImpl's address in libtorch 1.x, the
// address itself in 2.x. A template, so that only the branch for this libtorch is compiled.
template <typename Map>
typename Map::key_type StateKey(const Map&, const torch::Tensor& p) {
  if constexpr (std::is_same_v<typename Map::key_type, std::string>) {
    std::ostringstream key;  // what libtorch 1.x keys by (c10::guts::to_string of the address)
    key << static_cast<const void*>(p.unsafeGetTensorImpl());
    return key.str();
  } else {
    return static_cast<typename Map::key_type>(p.unsafeGetTensorImpl());
  }
}

class OptimizerWrap {
 public:
  explicit OptimizerWrap(napi_env) {}
  static constexpr const char* kClassName = "Optimizer";
  static constexpr napi_type_tag kTypeTag = {0x0000000000000003ULL, 0x746f72636863a9e1ULL};
  std::shared_ptr<torch::optim::Optimizer> opt;
  std::string kind;

  static void Init(Napi::Env env, Napi::Object exports);

 private:
  // stepAsync() calls posted and not yet settled (the JS thread alone reads and changes it). While
  // one runs, its executor thread reads and writes the optimizer's state and reads the parameters'
  // gradients, so every method that touches those (step, stepAsync, zeroGrad, state, loadState,
  // setLr, setAdamOptions) throws an Error instead (Idle): await the step first. lr(),
  // adamOptions() and params() only read what a step never changes, and run at any time.
  std::shared_ptr<int> inFlight = std::make_shared<int>(0);

  void Idle(const char* method) const {
    if (*inFlight > 0) ThrowError(std::string("optimizer.") + method + "(): a stepAsync() of this optimizer is still running; await it first");
  }

  // What a step on the executor thread ended with (taken to the JS thread as a value, so that the
  // settling code runs, and the in-flight count drops, whether it failed or not).
  struct StepOutcome {
    bool failed = false;
    ErrorInfo error;
  };

  // step() / stepAsync(): one optimizer step, without recording gradients. Refused while a
  // stepAsync() of this optimizer runs (see inFlight).
  template <bool Async>
  Napi::Value Step(const Napi::CallbackInfo& info) {
    TORCHCAP_GUARD(info, {
      Idle(Async ? "stepAsync" : "step");
      auto o = opt;
      if constexpr (!Async) {
        torch::NoGradGuard guard;
        o->step();
        return Napi::Array::New(info.Env(), 0);
      } else {
        auto busy = inFlight;
        Napi::Value promise = RunAsync<StepOutcome>(
            info.Env(),
            [o]() {
              StepOutcome r;
              try {
                torch::NoGradGuard guard;
                o->step();
              } catch (...) {
                r.failed = true;
                r.error = Describe(std::current_exception());
              }
              return r;
            },
            [busy](Napi::Env env, StepOutcome& r) -> Napi::Value {
              --*busy;
              if (r.failed) throw JsError(r.error.kind, r.error.message);
              return Napi::Array::New(env, 0);
            });
        ++*busy;  // posted: from now until it settles
        return promise;
      }
    });
  }

  // zeroGrad(): refused while a stepAsync() runs (it reads the gradients).
  Napi::Value ZeroGrad(const Napi::CallbackInfo& info) {
    TORCHCAP_GUARD(info, {
      Idle("zeroGrad");
      // Gradients are dropped (set to None), as PyTorch >= 2.0 does by default.
      for (auto& g : opt->param_groups())
        for (auto& p : g.params())
          if (p.grad().defined()) p.mutable_grad() = torch::Tensor();
      return info.Env().Undefined();
    });
  }

  Napi::Value Lr(const Napi::CallbackInfo& info) {
    TORCHCAP_GUARD(info, { return Napi::Number::New(info.Env(), opt->param_groups().at(0).options().get_lr()); });
  }

  // adamOptions(): { lr, beta1, beta2, eps, weightDecay } of the (single) parameter group.
  Napi::Value AdamHyper(const Napi::CallbackInfo& info) {
    TORCHCAP_GUARD(info, {
      auto& ao = AdamGroup();
      Napi::Object r = Napi::Object::New(info.Env());
      r.Set("lr", ao.lr());
      r.Set("beta1", std::get<0>(ao.betas()));
      r.Set("beta2", std::get<1>(ao.betas()));
      r.Set("eps", ao.eps());
      r.Set("weightDecay", ao.weight_decay());
      return r;
    });
  }

  // setAdamOptions({ lr?, beta1?, beta2?, eps?, weightDecay? }): absent fields keep their value.
  // Refused while a stepAsync() runs.
  Napi::Value SetAdamHyper(const Napi::CallbackInfo& info) {
    TORCHCAP_GUARD(info, {
      Idle("setAdamOptions");
      auto& ao = AdamGroup();
      Napi::Object o = ArgObject(info, 0, "options");
      const double lr = OptNumber(o, "lr", ao.lr());
      const double b1 = OptNumber(o, "beta1", std::get<0>(ao.betas())), b2 = OptNumber(o, "beta2", std::get<1>(ao.betas()));
      const double eps = OptNumber(o, "eps", ao.eps()), wd = OptNumber(o, "weightDecay", ao.weight_decay());
      if (!(lr > 0)) ThrowRange("learning rate must be positive");
      if (!(b1 >= 0 && b1 < 1) || !(b2 >= 0 && b2 < 1)) ThrowRange("Adam's betas must be in [0, 1)");
      if (!(eps >= 0) || !(wd >= 0)) ThrowRange("Adam's eps and weight decay must not be negative");
      Idle("setAdamOptions");  // a getter of the options may have started a step
      ao.lr(lr).betas({b1, b2}).eps(eps).weight_decay(wd);
      return info.Env().Undefined();
    });
  }

  torch::optim::AdamOptions& AdamGroup() {
    if (kind != "adam") ThrowType("this is not an Adam optimizer");
    return static_cast<torch::optim::AdamOptions&>(opt->param_groups().at(0).options());
  }

  // setLr(lr): every group's. Refused while a stepAsync() runs.
  Napi::Value SetLr(const Napi::CallbackInfo& info) {
    TORCHCAP_GUARD(info, {
      Idle("setLr");
      double lr = ArgNumber(info, 0, "lr");
      if (!(lr > 0)) ThrowRange("learning rate must be positive");
      for (auto& g : opt->param_groups()) g.options().set_lr(lr);
      return info.Env().Undefined();
    });
  }

  Napi::Value Params(const Napi::CallbackInfo& info) {
    TORCHCAP_GUARD(info, { return WrapTensors(info.Env(), opt->param_groups().at(0).params()); });
  }

  // state() -> per parameter, in order: null (no step yet) or [step, expAvg, expAvgSq]. Refused
  // while a stepAsync() runs (the step adds and updates entries).
  Napi::Value State(const Napi::CallbackInfo& info) {
    TORCHCAP_GUARD(info, {
      if (kind != "adam") ThrowType("state() is available for Adam");
      Idle("state");
      // Read first, then build the JS arrays (storing into them could run JS that starts a step).
      struct Entry {
        bool present = false;
        int64_t step = 0;
        torch::Tensor expAvg, expAvgSq;
      };
      const auto& params = opt->param_groups().at(0).params();
      std::vector<Entry> entries(params.size());
      for (size_t i = 0; i < params.size(); ++i) {
        auto it = opt->state().find(StateKey(opt->state(), params[i]));
        if (it == opt->state().end()) continue;
        auto& s = static_cast<torch::optim::AdamParamState&>(*it->second);
        entries[i] = Entry{true, s.step(), s.exp_avg(), s.exp_avg_sq()};
      }
      Napi::Array out = Napi::Array::New(info.Env(), entries.size());
      for (size_t i = 0; i < entries.size(); ++i) {
        if (!entries[i].present) {
          out.Set(static_cast<uint32_t>(i), info.Env().Null());
          continue;
        }
        Napi::Array e = Napi::Array::New(info.Env(), 3);
        e.Set(0u, Napi::Number::New(info.Env(), static_cast<double>(entries[i].step)));
        e.Set(1u, WrapTensor(info.Env(), entries[i].expAvg));
        e.Set(2u, WrapTensor(info.Env(), entries[i].expAvgSq));
        out.Set(static_cast<uint32_t>(i), e);
      }
      return out;
    });
  }

  // loadState(entries): the inverse of state(); tensors are copied. Refused while a stepAsync()
  // runs (it would free state the step is using).
  Napi::Value LoadState(const Napi::CallbackInfo& info) {
    TORCHCAP_GUARD(info, {
      if (kind != "adam") ThrowType("loadState() is available for Adam");
      Idle("loadState");
      if (!info[0].IsArray()) ThrowType("Expected an array for state");
      auto arr = info[0].As<Napi::Array>();
      const auto& params = opt->param_groups().at(0).params();
      const uint32_t n = arr.Length();
      if (n != params.size()) {
        ThrowRange("optimizer state has " + std::to_string(n) + " entries but the optimizer has " + std::to_string(params.size()) + " parameters");
      }
      // Every entry is read (reading may run JS getters) and copied before the state changes.
      std::vector<std::unique_ptr<torch::optim::AdamParamState>> entries(n);
      for (uint32_t i = 0; i < n; ++i) {
        Napi::Value e = arr.Get(i);
        if (e.IsNull() || e.IsUndefined()) continue;
        if (!e.IsArray() || e.As<Napi::Array>().Length() != 3) ThrowType("Expected [step, expAvg, expAvgSq] for state entry " + std::to_string(i));
        auto a = e.As<Napi::Array>();
        torch::Tensor m = UnwrapTensor(a.Get(1u), "expAvg"), v = UnwrapTensor(a.Get(2u), "expAvgSq");
        if (!m.sizes().equals(params[i].sizes()) || !v.sizes().equals(params[i].sizes())) {
          ThrowRange("optimizer state entry " + std::to_string(i) + " has shape " + c10::str(m.sizes()) + " but the parameter has " +
                     c10::str(params[i].sizes()));
        }
        auto s = std::make_unique<torch::optim::AdamParamState>();
        s->step(ToInt(a.Get(0u), "step"));
        s->exp_avg(m.detach().clone().to(params[i].options()));
        s->exp_avg_sq(v.detach().clone().to(params[i].options()));
        entries[i] = std::move(s);
      }
      Idle("loadState");  // a getter above may have started a step
      for (uint32_t i = 0; i < n; ++i) {
        const auto key = StateKey(opt->state(), params[i]);
        if (entries[i]) opt->state()[key] = std::move(entries[i]);
        else opt->state().erase(key);
      }
      return info.Env().Undefined();
    });
  }
};

// createOptimizer(kind: 'adam' | 'sgd', params: Tensor[], { lr, betas?, eps?, weightDecay?, momentum? })
static Napi::Value CreateOptimizer(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, {
    std::string kind = ArgString(info, 0, "kind");
    Tensors params = ArgTensors(info, 1, "params");
    if (params.empty()) ThrowRange("an optimizer needs at least one parameter");
    for (auto& p : params)
      if (!p.is_leaf()) ThrowType("optimizer parameters must be leaf tensors");
    Napi::Object o = ArgOptions(info, 2);
    double lr = OptNumber(o, "lr", kind == "adam" ? 1e-3 : 0.01);
    if (!(lr > 0)) ThrowRange("learning rate must be positive");
    std::shared_ptr<torch::optim::Optimizer> opt;
    if (kind == "adam") {
      torch::optim::AdamOptions ao(lr);
      ao.betas({OptNumber(o, "beta1", 0.9), OptNumber(o, "beta2", 0.999)}).eps(OptNumber(o, "eps", 1e-8)).weight_decay(OptNumber(o, "weightDecay", 0));
      opt = std::make_shared<torch::optim::Adam>(params, ao);
    } else if (kind == "sgd") {
      torch::optim::SGDOptions so(lr);
      so.momentum(OptNumber(o, "momentum", 0)).weight_decay(OptNumber(o, "weightDecay", 0));
      opt = std::make_shared<torch::optim::SGD>(params, so);
    } else {
      ThrowType("Unknown optimizer '" + kind + "' (expected adam or sgd)");
    }
    auto [obj, w] = NativeClass<OptimizerWrap>::New(info.Env(), Data(info.Env()).optimizerCtor);
    w->opt = std::move(opt);
    w->kind = kind;
    return obj;
  });
}

void OptimizerWrap::Init(Napi::Env env, Napi::Object exports) {
  using C = NativeClass<OptimizerWrap>;
  Napi::Function ctor = C::Define(env,
                                  {
                                      C::Method<&OptimizerWrap::Step<false>>("step"),
                                      C::Method<&OptimizerWrap::Step<true>>("stepAsync"),
                                      C::Method<&OptimizerWrap::ZeroGrad>("zeroGrad"),
                                      C::Method<&OptimizerWrap::Lr>("lr"),
                                      C::Method<&OptimizerWrap::SetLr>("setLr"),
                                      C::Method<&OptimizerWrap::AdamHyper>("adamOptions"),
                                      C::Method<&OptimizerWrap::SetAdamHyper>("setAdamOptions"),
                                      C::Method<&OptimizerWrap::Params>("params"),
                                      C::Method<&OptimizerWrap::State>("state"),
                                      C::Method<&OptimizerWrap::LoadState>("loadState"),
                                  });
  Data(env).optimizerCtor = Napi::Persistent(ctor);
  exports.Set("Optimizer", ctor);
  exports.Set("createOptimizer", Napi::Function::New<CreateOptimizer>(env, "createOptimizer"));
}

void InitOptim(Napi::Env env, Napi::Object exports) { OptimizerWrap::Init(env, exports); }

}  // namespace torchcap
