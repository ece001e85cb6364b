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
  std::shared_ptr<torch::optim::Optimizer> opt;
  std::string kind;

  static void Init(Napi::Env env, Napi::Object exports);

 private:
  template <bool Async>
  Napi::Value Step(const Napi::CallbackInfo& info) {
    TORCHCAP_GUARD(info, {
      auto o = opt;
      return RunTensors<Async>(info.Env(), [o]() -> Tensors {
        torch::NoGradGuard guard;
        o->step();
        return {};
      });
    });
  }

  Napi::Value ZeroGrad(const Napi::CallbackInfo& info) {
    TORCHCAP_GUARD(info, {
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
  Napi::Value SetAdamHyper(const Napi::CallbackInfo& info) {
    TORCHCAP_GUARD(info, {
      auto& ao = AdamGroup();
      Napi::Object o = ArgObject(info, 0, "options");
      const double lr = OptNumber(o, "lr", ao.lr());
      const double b1 = OptNumber(o, "beta1", std::get<0>(ao.betas())), b2 = OptNumber(o, "beta2", std::get<1>(ao.betas()));
      const double eps = OptNumber(o, "eps", ao.eps()), wd = OptNumber(o, "weightDecay", ao.weight_decay());
      if (!(lr > 0)) ThrowRange("learning rate must be positive");
      if (!(b1 >= 0 && b1 < 1) || !(b2 >= 0 && b2 < 1)) ThrowRange("Adam's betas must be in [0, 1)");
      if (!(eps >= 0) || !(wd >= 0)) ThrowRange("Adam's eps and weight decay must not be negative");
      ao.lr(lr).betas({b1, b2}).eps(eps).weight_decay(wd);
      return info.Env().Undefined();
    });
  }

  torch::optim::AdamOptions& AdamGroup() {
    if (kind != "adam") ThrowType("this is not an Adam optimizer");
    return static_cast<torch::optim::AdamOptions&>(opt->param_groups().at(0).options());
  }

  Napi::Value SetLr(const Napi::CallbackInfo& info) {
    TORCHCAP_GUARD(info, {
      double lr = ArgNumber(info, 0, "lr");
      if (!(lr > 0)) ThrowRange("learning rate must be positive");
      for (auto& g : opt->param_groups()) g.options().set_lr(lr);
      return info.Env().Undefined();
    });
  }

  Napi::Value Params(const Napi::CallbackInfo& info) {
    TORCHCAP_GUARD(info, { return WrapTensors(info.Env(), opt->param_groups().at(0).params()); });
  }

  // state() -> per parameter, in order: null (no step yet) or [step, expAvg, expAvgSq]
  Napi::Value State(const Napi::CallbackInfo& info) {
    TORCHCAP_GUARD(info, {
      if (kind != "adam") ThrowType("state() is available for Adam");
      const auto& params = opt->param_groups().at(0).params();
      Napi::Array out = Napi::Array::New(info.Env(), params.size());
      for (size_t i = 0; i < params.size(); ++i) {
        auto it = opt->state().find(StateKey(opt->state(), params[i]));
        if (it == opt->state().end()) {
          out.Set(static_cast<uint32_t>(i), info.Env().Null());
          continue;
        }
        auto& s = static_cast<torch::optim::AdamParamState&>(*it->second);
        Napi::Array e = Napi::Array::New(info.Env(), 3);
        e.Set(0u, Napi::Number::New(info.Env(), static_cast<double>(s.step())));
        e.Set(1u, WrapTensor(info.Env(), s.exp_avg()));
        e.Set(2u, WrapTensor(info.Env(), s.exp_avg_sq()));
        out.Set(static_cast<uint32_t>(i), e);
      }
      return out;
    });
  }

  // loadState(entries): the inverse of state(); tensors are copied.
  Napi::Value LoadState(const Napi::CallbackInfo& info) {
    TORCHCAP_GUARD(info, {
      if (kind != "adam") ThrowType("loadState() is available for Adam");
      if (!info[0].IsArray()) ThrowType("Expected an array for state");
      auto arr = info[0].As<Napi::Array>();
      const auto& params = opt->param_groups().at(0).params();
      if (arr.Length() != params.size()) {
        ThrowRange("optimizer state has " + std::to_string(arr.Length()) + " entries but the optimizer has " + std::to_string(params.size()) +
                   " parameters");
      }
      for (uint32_t i = 0; i < arr.Length(); ++i) {
        const auto key = StateKey(opt->state(), params[i]);
        Napi::Value e = arr.Get(i);
        if (e.IsNull() || e.IsUndefined()) {
          opt->state().erase(key);
          continue;
        }
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
        opt->state()[key] = std::move(s);
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
    Napi::Object obj = Data(info.Env()).optimizerCtor.New({});
    auto* w = NativeClass<OptimizerWrap>::Of(info.Env(), obj, Data(info.Env()).optimizerCtor);
    w->opt = std::move(opt);
    w->kind = kind;
    return obj;
  });
}

void OptimizerWrap::Init(Napi::Env env, Napi::Object exports) {
  using C = NativeClass<OptimizerWrap>;
  Napi::Function ctor = C::Define(env, "Optimizer",
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
