#include "module.h"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include <algorithm>
#include <limits>

#include "async.h"
#include "record.h"
#include "wrap.h"

namespace torchcap {

namespace nn = torch::nn;

static ModuleKind ParseKind(const std::string& k) {
  if (k == "linear") return ModuleKind::Linear;
  if (k == "embedding") return ModuleKind::Embedding;
  if (k == "batchnorm1d") return ModuleKind::BatchNorm1d;
  if (k == "lstm") return ModuleKind::LSTM;
  if (k == "resnet") return ModuleKind::ResNet;
  ThrowType("Unknown module kind '" + k + "' (expected linear, embedding, batchnorm1d, lstm or resnet)");
}

static const char* KindString(ModuleKind k) {
  switch (k) {
    case ModuleKind::Linear: return "linear";
    case ModuleKind::Embedding: return "embedding";
    case ModuleKind::BatchNorm1d: return "batchnorm1d";
    case ModuleKind::LSTM: return "lstm";
    case ModuleKind::ResNet: return "resnet";
  }
  return "unknown";
}

static int64_t Positive(Napi::Object o, const char* key) {
  int64_t v = OptInt(o, key, -1);
  if (v < 1) ThrowRange(std::string("Module option ") + key + " must be a positive integer");
  return v;
}

// createModule(kind, options) -> Module
static Napi::Value CreateModule(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, {
    ModuleKind kind = ParseKind(ArgString(info, 0, "kind"));
    Napi::Object o = ArgOptions(info, 1);
    std::shared_ptr<nn::Module> m;
    switch (kind) {
      case ModuleKind::Linear: {
        const int64_t in = Positive(o, "inFeatures"), out = Positive(o, "outFeatures");
        CheckTensorSize("Linear weight", {out, in}, torch::kFloat32);
        const bool bias = OptBool(o, "bias", true);
        if (OptBool(o, "init", true)) {
          m = nn::Linear(nn::LinearOptions(in, out).bias(bias)).ptr();
        } else {
          // Uninitialised, for a checkpoint about to overwrite every weight: built with no outputs
          // (libtorch's constructor always initialises; an empty tensor draws no random numbers),
          // then given storage of the real shape in place.
          auto l = nn::Linear(nn::LinearOptions(1, 0).bias(bias));
          torch::NoGradGuard no_grad;
          l->options = nn::LinearOptions(in, out).bias(bias);
          l->weight.set_(torch::empty({out, in}));
          if (bias) l->bias.set_(torch::empty({out}));
          m = l.ptr();
        }
        break;
      }
      case ModuleKind::Embedding: {
        const int64_t num = Positive(o, "numEmbeddings"), dim = Positive(o, "embeddingDim");
        CheckTensorSize("Embedding weight", {num, dim}, torch::kFloat32);
        if (OptBool(o, "init", true)) {
          m = nn::Embedding(nn::EmbeddingOptions(num, dim)).ptr();
        } else {
          auto e = nn::Embedding(nn::EmbeddingOptions(0, 1));  // uninitialised, as Linear above
          torch::NoGradGuard no_grad;
          e->options = nn::EmbeddingOptions(num, dim);
          e->weight.set_(torch::empty({num, dim}));
          m = e.ptr();
        }
        break;
      }
      case ModuleKind::BatchNorm1d: {
        const int64_t features = Positive(o, "numFeatures");  // read once: a getter could answer differently the second time
        CheckTensorSize("BatchNorm1d weight", {features}, torch::kFloat32);
        m = nn::BatchNorm1d(nn::BatchNorm1dOptions(features).momentum(OptNumber(o, "momentum", 0.1)).eps(OptNumber(o, "eps", 1e-5))).ptr();
        break;
      }
      case ModuleKind::LSTM: {
        const int64_t in = Positive(o, "inputSize"), hidden = Positive(o, "hiddenSize"), layers = OptInt(o, "numLayers", 1);
        if (layers < 1) ThrowRange("Module option numLayers must be a positive integer");
        // Every layer's weights fit in [numLayers, 4, hiddenSize, max(inputSize, hiddenSize) + hiddenSize + 2].
        const int64_t cap = std::numeric_limits<int64_t>::max() / 4;
        CheckTensorSize("LSTM weights", {layers, 4, hidden, std::min(std::max(in, hidden), cap) + std::min(hidden, cap) + 2}, torch::kFloat32);
        m = nn::LSTM(nn::LSTMOptions(in, hidden)
                         .num_layers(layers)
                         .batch_first(OptBool(o, "batchFirst", false))
                         .dropout(OptNumber(o, "dropout", 0.0)))
                .ptr();
        break;
      }
      case ModuleKind::ResNet:
        m = ResNet(OptInt(o, "depth", 152), OptInt(o, "numClasses", 0), OptBool(o, "init", true)).ptr();
        break;
    }
    auto [obj, w] = NativeClass<ModuleWrap>::New(info.Env(), Data(info.Env()).moduleCtor);
    w->kind = kind;
    w->module = std::move(m);
    return obj;
  });
}

static Napi::Object Support(Napi::Env env, bool supported, const std::string& reason) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("supported", supported);
  o.Set("reason", reason);
  return o;
}

// cpuBf16Support() -> { supported, reason }: whether autocast 'bf16' can run on this CPU.
static Napi::Value CpuBf16Info(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, {
    const CpuBf16 bf16 = CpuBf16Support();
    return Support(info.Env(), bf16.supported, bf16.reason);
  });
}

// blockedTrainSupport() -> { supported, reason }: whether book-mode forwards of a frozen float32
// CPU backbone can keep their activations in oneDNN's layout in this build, on this CPU.
static Napi::Value BlockedTrainInfo(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, {
    std::string reason;
    const bool ok = BlockedTrainSupport(&reason);
    return Support(info.Env(), ok, reason);
  });
}

void ModuleWrap::Init(Napi::Env env, Napi::Object exports) {
  using C = NativeClass<ModuleWrap>;
  Napi::Function ctor = C::Define(env,
                                  {
                                      C::Method<&ModuleWrap::Forward<false, false>>("forward"),
                                      C::Method<&ModuleWrap::Forward<true, false>>("forwardAsync"),
                                      C::Method<&ModuleWrap::Forward<false, true>>("forwardPacked"),
                                      C::Method<&ModuleWrap::Forward<true, true>>("forwardPackedAsync"),
                                      C::Method<&ModuleWrap::PrepareFast<false>>("prepareFast"),
                                      C::Method<&ModuleWrap::PrepareFast<true>>("prepareFastAsync"),
                                      C::Method<&ModuleWrap::FastReady>("fastReady"),
                                      C::Method<&ModuleWrap::SetBlockedTrain>("setBlockedTrain"),
                                      C::Method<&ModuleWrap::NamedParameters>("namedParameters"),
                                      C::Method<&ModuleWrap::NamedBuffers>("namedBuffers"),
                                      C::Method<&ModuleWrap::StateDict>("stateDict"),
                                      C::Method<&ModuleWrap::To>("to"),
                                      C::Method<&ModuleWrap::KindName>("kind"),
                                      C::Method<&ModuleWrap::SetRequiresGrad>("setRequiresGrad"),
                                      C::Method<&ModuleWrap::MultiplyAdds>("multiplyAdds"),
                                      C::Method<&ModuleWrap::FeatureDim>("featureDim"),
                                  });
  Data(env).moduleCtor = Napi::Persistent(ctor);
  exports.Set("Module", ctor);
  exports.Set("createModule", Napi::Function::New<CreateModule>(env, "createModule"));
  exports.Set("cpuBf16Support", Napi::Function::New<CpuBf16Info>(env, "cpuBf16Support"));
  exports.Set("blockedTrainSupport", Napi::Function::New<BlockedTrainInfo>(env, "blockedTrainSupport"));
}

ModuleWrap* ModuleWrap::Of(Napi::Env env, Napi::Value v) { return NativeClass<ModuleWrap>::Of(env, v); }

// Mixed precision for a forward (bf16 or fp16 matrix work, float32 where precision needs it), as
// torch.autocast does on CUDA and on the CPU; restored when the guard ends. Autocast state is per
// thread, and the forward runs on one thread from start to end. dtype kFloat: no autocast.
class Autocast {
 public:
  Autocast(const torch::Device& device, at::ScalarType dtype) : on_(dtype != at::kFloat), cpu_(device.is_cpu()) {
    if (!on_) return;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    const auto type = cpu_ ? at::kCPU : at::kCUDA;
    prevEnabled_ = at::autocast::is_autocast_enabled(type);
    prevDtype_ = at::autocast::get_autocast_dtype(type);
    at::autocast::set_autocast_enabled(type, true);
    at::autocast::set_autocast_dtype(type, dtype);
#else
    if (cpu_) {
      prevEnabled_ = at::autocast::is_cpu_enabled();
      prevDtype_ = at::autocast::get_autocast_cpu_dtype();
      at::autocast::set_cpu_enabled(true);
      at::autocast::set_autocast_cpu_dtype(dtype);
    } else {
      prevEnabled_ = at::autocast::is_enabled();
      prevDtype_ = at::autocast::get_autocast_gpu_dtype();
      at::autocast::set_enabled(true);
      at::autocast::set_autocast_gpu_dtype(dtype);
    }
#endif
    at::autocast::increment_nesting();
  }
  ~Autocast() {
    if (!on_) return;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    const auto type = cpu_ ? at::kCPU : at::kCUDA;
    at::autocast::set_autocast_enabled(type, prevEnabled_);
    at::autocast::set_autocast_dtype(type, prevDtype_);
#else
    if (cpu_) {
      at::autocast::set_cpu_enabled(prevEnabled_);
      at::autocast::set_autocast_cpu_dtype(prevDtype_);
    } else {
      at::autocast::set_enabled(prevEnabled_);
      at::autocast::set_autocast_gpu_dtype(prevDtype_);
    }
#endif
  }

 private:
  bool on_, cpu_;
  bool prevEnabled_ = false;
  at::ScalarType prevDtype_ = at::kHalf;
};

// The precision a ResNet forward's autocast option asks for ('' = float32) on `device`; refused
// where it cannot run, with the reason.
static at::ScalarType AutocastPrecision(const std::string& autocast, const torch::Device& device) {
  if (autocast.empty()) return at::kFloat;
  if (autocast != "bf16" && autocast != "fp16") ThrowType("autocast must be 'bf16' or 'fp16'");
  if (device.is_cuda()) return autocast == "fp16" ? at::kHalf : at::kBFloat16;
  if (!device.is_cpu()) ThrowError("autocast runs on CUDA devices and on the CPU, not on " + device.str());
  if (autocast == "fp16") ThrowError("autocast 'fp16' runs on CUDA devices only; on the CPU use 'bf16'");
  const CpuBf16 bf16 = CpuBf16Support();
  if (!bf16.supported) ThrowError("autocast 'bf16' on the CPU needs native bfloat16 support: " + bf16.reason + ". Run without autocast (float32)");
  return at::kBFloat16;
}

// The device of a module's weights (CPU for a module without any).
static torch::Device DeviceOf(const nn::Module& m) {
  for (const auto& p : m.parameters(true)) return p.device();
  for (const auto& b : m.buffers(true)) return b.device();
  return torch::kCPU;
}

static torch::Tensor Need(const Tensors& in, size_t i, const char* what) {
  if (in.size() <= i || !in[i].defined()) ThrowType(std::string("forward needs ") + what);
  return in[i];
}

// The body of forward for each kind; runs on whichever thread executes the call. Inputs are moved
// to the module's device first (a packed sequence's batch sizes stay on the CPU, as PyTorch needs).
std::shared_ptr<FoldedResNet> ModuleWrap::FoldSlot::Current(const ResNetImpl& m, at::ScalarType compute) {
  std::lock_guard<std::mutex> lock(mu);
  if (!folded || folded->compute != compute || folded->stamp != m.stamp()) {
    folded.reset();  // the stale fold's memory goes before the new one is built
    folded = m.fold(compute);
  }
  return folded;
}

bool ModuleWrap::FoldSlot::IsCurrent(const ResNetImpl& m, at::ScalarType compute) {
  std::unique_lock<std::mutex> lock(mu, std::try_to_lock);  // being built: not ready (and never wait for it)
  return lock.owns_lock() && folded && folded->compute == compute && folded->stamp == m.stamp();
}

void ModuleWrap::FoldSlot::Drop() {
  std::lock_guard<std::mutex> lock(mu);
  folded.reset();
}

// out[r] = bias + w x[r] for each row r of x ([B, in] -> out [B, out]), one matrix-vector product per
// row: each row's result is independent of the others in the batch, and at the decoder's sizes (a
// few rows, a weight of a few MB to tens of MB) it is several times faster than a matrix product,
// which repacks the whole weight on every call. The sums run in another order than the matrix
// product's: the same to float rounding, not bit for bit.
static void MatVecRows(torch::Tensor& out, const torch::Tensor& bias, const torch::Tensor& w, const torch::Tensor& x) {
  for (int64_t r = 0; r < x.size(0); ++r) {
    torch::Tensor row = out.select(0, r);
    if (bias.defined()) {
      at::addmv_out(row, bias, w, x.select(0, r));
    } else {
      at::mv_out(row, w, x.select(0, r));
    }
  }
}

// A CPU linear layer without gradients, row by row (MatVecRows).
static torch::Tensor LinearRows(nn::LinearImpl& linear, const torch::Tensor& x) {
  const torch::Tensor& w = linear.weight;
  if (x.dim() != 2 || x.layout() != torch::kStrided || x.scalar_type() != torch::kFloat32 || w.scalar_type() != torch::kFloat32) return linear.forward(x);
  if (x.size(1) != w.size(1)) return linear.forward(x);  // PyTorch's own message names the mismatch
  torch::Tensor out = torch::empty({x.size(0), w.size(0)}, x.options());
  MatVecRows(out, linear.bias, w, x);
  return out;
}

// One step of a CPU LSTM without gradients ([B, 1, in] batch-first or [1, B, in]), its gate
// products row by row (MatVecRows), then PyTorch's cell arithmetic: gates = W_hh h + b_hh + W_ih x
// + b_ih, in the order i, f, g, o. Empty when the module or input is not a plain one-direction
// float32 LSTM stepped once (the caller then runs PyTorch's own forward).
static Tensors LstmStepRows(nn::LSTMImpl& lstm, const torch::Tensor& input, const torch::Tensor& h0, const torch::Tensor& c0) {
  const auto& o = lstm.options;
  if (o.bidirectional() || o.proj_size() > 0 || !o.bias() || input.dim() != 3 || input.layout() != torch::kStrided || input.scalar_type() != torch::kFloat32) return {};
  const bool bf = o.batch_first();
  if (input.size(bf ? 1 : 0) != 1 || input.size(2) != o.input_size()) return {};
  const int64_t b = input.size(bf ? 0 : 1), hidden = o.hidden_size(), layers = o.num_layers();
  const std::vector<int64_t> stateShape{layers, b, hidden};
  for (const auto* s : {&h0, &c0}) {
    if (s->defined() && (s->sizes() != torch::IntArrayRef(stateShape) || s->scalar_type() != torch::kFloat32 || s->layout() != torch::kStrided)) return {};
  }
  const auto weights = lstm.all_weights();  // per layer: w_ih, w_hh, b_ih, b_hh
  torch::Tensor x = input.reshape({b, o.input_size()});
  torch::Tensor h = h0.defined() ? h0 : torch::zeros(stateShape, input.options());
  torch::Tensor c = c0.defined() ? c0 : torch::zeros(stateShape, input.options());
  torch::Tensor hn = torch::empty(stateShape, input.options()), cn = torch::empty(stateShape, input.options());
  torch::Tensor gates = torch::empty({b, 4 * hidden}, input.options()), fromInput = torch::empty({b, 4 * hidden}, input.options());
  for (int64_t l = 0; l < layers; ++l) {
    MatVecRows(gates, weights[4 * l + 3], weights[4 * l + 1], h.select(0, l));
    MatVecRows(fromInput, weights[4 * l + 2], weights[4 * l], x);
    gates.add_(fromInput);
    auto chunks = gates.chunk(4, 1);
    torch::Tensor i = chunks[0].sigmoid(), f = chunks[1].sigmoid(), cell = chunks[2].tanh(), out = chunks[3].sigmoid();
    torch::Tensor cl = cn.select(0, l), hl = hn.select(0, l);
    at::mul_out(cl, f, c.select(0, l));
    cl.add_(i * cell);
    at::mul_out(hl, out, cl.tanh());
    x = hl;
  }
  return {bf ? x.unsqueeze(1) : x.unsqueeze(0), hn, cn};
}

static Tensors RunForward(ModuleKind kind, const std::shared_ptr<nn::Module>& m, const std::shared_ptr<ModuleWrap::FoldSlot>& slot,
                          Tensors in, bool train, bool fast, bool packed, const std::string& autocast) {
  m->train(train);
  const torch::Device device = DeviceOf(*m);
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i].defined() && in[i].device() != device && !(packed && i == 1)) in[i] = in[i].to(device, /*non_blocking=*/true);
  }
  switch (kind) {
    case ModuleKind::Linear: {
      auto linear = std::dynamic_pointer_cast<nn::LinearImpl>(m);
      const torch::Tensor& x = Need(in, 0, "an input tensor");
      if (fast && !torch::GradMode::is_enabled() && device.is_cpu()) return {LinearRows(*linear, x)};
      return {linear->forward(x)};
    }
    case ModuleKind::Embedding:
      return {std::dynamic_pointer_cast<nn::EmbeddingImpl>(m)->forward(Need(in, 0, "an index tensor"))};
    case ModuleKind::BatchNorm1d:
      return {std::dynamic_pointer_cast<nn::BatchNorm1dImpl>(m)->forward(Need(in, 0, "an input tensor"))};
    case ModuleKind::ResNet: {
      torch::Tensor x = Need(in, 0, "an image batch [N, 3, H, W]");
      if (x.dim() != 4 || x.size(1) != 3) ThrowRange("ResNet input must be [N, 3, H, W], got " + c10::str(x.sizes()));
      const at::ScalarType precision = AutocastPrecision(autocast, device);
      auto resnet = std::dynamic_pointer_cast<ResNetImpl>(m);
      torch::Tensor y;
      if (fast) {
        if (train) ThrowError("the fast path runs the backbone in eval mode only (pass train: false)");
        if (x.numel() == 0) {
          // An empty batch or image: PyTorch's own path, which gives [0, C] or says why it cannot
          // (oneDNN's convolutions divide by the batch and the image's size).
          torch::NoGradGuard guard;
          y = resnet->forward(x);
        } else {
          // On the CPU the precision is built into the fold's prepacked weights; elsewhere autocast.
          auto folded = slot->Current(*resnet, device.is_cpu() ? precision : at::kFloat);
          Autocast amp(device, folded->onednn ? at::kFloat : precision);
          y = folded->forward(x);
        }
      } else if (train && slot->blockedTrain && precision == at::kFloat && resnet->blockedFits(x)) {
        y = resnet->forwardBlocked(x);  // the book's mode in oneDNN's blocked layout, PyTorch's numbers
      } else {
        Autocast amp(device, precision);
        y = resnet->forward(x);
      }
      // Features leave in float32 whatever precision computed them.
      return {y.scalar_type() == torch::kFloat32 ? y : y.to(torch::kFloat32)};
    }
    case ModuleKind::LSTM: {
      auto lstm = std::dynamic_pointer_cast<nn::LSTMImpl>(m);
      if (packed) {
        // [data, batchSizes, sortedIndices?, unsortedIndices?, h0?, c0?]
        nn::utils::rnn::PackedSequence seq(Need(in, 0, "packed data"), Need(in, 1, "batch sizes"), in.size() > 2 ? in[2] : torch::Tensor(),
                                           in.size() > 3 ? in[3] : torch::Tensor());
        torch::optional<std::tuple<torch::Tensor, torch::Tensor>> state;
        if (in.size() > 5 && in[4].defined() && in[5].defined()) state = std::make_tuple(in[4], in[5]);
        auto r = lstm->forward_with_packed_input(seq, state);
        const auto& out = std::get<0>(r);
        const auto& hc = std::get<1>(r);
        return {out.data(), out.batch_sizes(), out.sorted_indices(), out.unsorted_indices(), std::get<0>(hc), std::get<1>(hc)};
      }
      // [input, h0?, c0?]
      torch::optional<std::tuple<torch::Tensor, torch::Tensor>> state;
      if (in.size() > 2 && in[1].defined() && in[2].defined()) state = std::make_tuple(in[1], in[2]);
      if (fast && !train && !torch::GradMode::is_enabled() && device.is_cpu()) {
        const bool given = in.size() > 2 && in[1].defined() && in[2].defined();  // as below: both or neither
        Tensors step = LstmStepRows(*lstm, Need(in, 0, "an input tensor"), given ? in[1] : torch::Tensor(), given ? in[2] : torch::Tensor());
        if (!step.empty()) return step;
      }
      auto r = lstm->forward(Need(in, 0, "an input tensor"), state);
      return {std::get<0>(r), std::get<0>(std::get<1>(r)), std::get<1>(std::get<1>(r))};
    }
  }
  ThrowError("unknown module kind");
}

// The named records forward takes (in) and gives (out), per kind; fields in the order RunForward
// reads and returns them.
struct ForwardRecords {
  Fields in, out;
};

static const ForwardRecords& RecordsOf(ModuleKind kind, bool packed) {
  static const ForwardRecords plain{{"input"}, {"output"}}, resnet{{"images"}, {"features"}}, lstm{{"input", "h", "c"}, {"output", "h", "c"}},
      lstmPacked{{"data", "batchSizes", "sortedIndices", "unsortedIndices", "h", "c"}, {"data", "batchSizes", "sortedIndices", "unsortedIndices", "h", "c"}};
  if (packed) return lstmPacked;
  if (kind == ModuleKind::ResNet) return resnet;
  if (kind == ModuleKind::LSTM) return lstm;
  return plain;
}

// forward(inputs, { train: boolean, fast?: boolean, autocast?: 'bf16'|'fp16' }) -> outputs, named
// records per kind: linear, embedding, batchnorm1d { input } -> { output }; resnet { images } ->
// { features }; lstm { input, h?, c? } -> { output, h, c }. forwardPacked (LSTM): { data,
// batchSizes, sortedIndices?, unsortedIndices?, h?, c? } -> the same names, output and final state.
template <bool Async, bool Packed>
Napi::Value ModuleWrap::Forward(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, {
    if (Packed && kind != ModuleKind::LSTM) ThrowType("forwardPacked() is for LSTM modules");
    const ForwardRecords& records = RecordsOf(kind, Packed);
    Tensors in = ArgRecord(info, 0, "inputs", records.in);
    if (Packed) {
      CheckPackedSequence(Need(in, 0, "packed data"), Need(in, 1, "batch sizes"), in[2], in[3]);
      in[1] = in[1].clone();  // what was checked is what runs: JS cannot change this copy before the executor reads it
    }
    Napi::Object o = ArgOptions(info, 1);
    if (!o.Has("train") || !o.Get("train").IsBoolean()) ThrowType("forward needs options.train (true or false)");
    const bool train = o.Get("train").As<Napi::Boolean>().Value();
    const bool useFast = OptBool(o, "fast", false);
    const std::string autocast = OptString(o, "autocast", "");
    auto m = module;
    auto f = fast;
    auto k = kind;
    return RunRecord<Async>(info.Env(), records.out,
                            [k, m, f, in, train, useFast, autocast]() { return RunForward(k, m, f, in, train, useFast, Packed, autocast); });
  });
}

// The precision the fold is built in for forwards with this autocast option, on the module's device.
static at::ScalarType FoldPrecision(const std::string& autocast, const nn::Module& m) {
  const torch::Device device = DeviceOf(m);
  const at::ScalarType precision = AutocastPrecision(autocast, device);
  return device.is_cpu() ? precision : at::kFloat;
}

// prepareFast({ autocast? }): builds the fold used by forward({ fast: true, autocast }).
template <bool Async>
Napi::Value ModuleWrap::PrepareFast(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, {
    if (kind != ModuleKind::ResNet) ThrowType("prepareFast() is for ResNet modules");
    auto m = std::dynamic_pointer_cast<ResNetImpl>(module);
    const at::ScalarType compute = FoldPrecision(OptString(ArgOptions(info, 0), "autocast", ""), *m);
    auto slot = fast;
    if constexpr (Async) {
      return RunAsync<bool>(
          info.Env(), [m, slot, compute]() { return slot->Current(*m, compute) != nullptr; }, [](Napi::Env env, bool&) -> Napi::Value { return env.Undefined(); });
    } else {
      slot->Current(*m, compute);
      return info.Env().Undefined();
    }
  });
}

// fastReady({ autocast? }): whether the fast path is built for the current weights and that
// precision (a forward with fast: true would run at once, without folding first).
Napi::Value ModuleWrap::FastReady(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, {
    if (kind != ModuleKind::ResNet) return Napi::Boolean::New(info.Env(), false);
    auto m = std::dynamic_pointer_cast<ResNetImpl>(module);
    return Napi::Boolean::New(info.Env(), fast->IsCurrent(*m, FoldPrecision(OptString(ArgOptions(info, 0), "autocast", ""), *m)));
  });
}

// setBlockedTrain(on): ResNet only. true (the default) runs train-mode forwards of a frozen float32
// CPU backbone on ResNetImpl::forwardBlocked (oneDNN's blocked layout) where it can run.
Napi::Value ModuleWrap::SetBlockedTrain(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, {
    if (kind != ModuleKind::ResNet) ThrowType("setBlockedTrain() is for ResNet modules");
    fast->blockedTrain = ArgBool(info, 0, "on");
    return info.Env().Undefined();
  });
}

static Napi::Value NamedList(Napi::Env env, const torch::OrderedDict<std::string, torch::Tensor>& d) {
  Napi::Array arr = Napi::Array::New(env, d.size());
  uint32_t k = 0;
  for (const auto& item : d) {
    Napi::Array pair = Napi::Array::New(env, 2);
    pair.Set(0u, item.key());
    pair.Set(1u, WrapTensor(env, item.value()));
    arr.Set(k++, pair);
  }
  return arr;
}

Napi::Value ModuleWrap::NamedParameters(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, { return NamedList(info.Env(), module->named_parameters(true)); });
}

Napi::Value ModuleWrap::NamedBuffers(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, { return NamedList(info.Env(), module->named_buffers(true)); });
}

// stateDict(): parameters and buffers in PyTorch's state_dict() order: each module's own
// parameters, then its own buffers, then its children, depth first.
Napi::Value ModuleWrap::StateDict(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, {
    torch::OrderedDict<std::string, torch::Tensor> out;
    module->apply([&out](const std::string& prefix, const nn::Module& m) {
      const std::string p = prefix.empty() ? "" : prefix + ".";
      for (const auto& item : m.named_parameters(false)) out.insert(p + item.key(), item.value());
      for (const auto& item : m.named_buffers(false)) out.insert(p + item.key(), item.value());
    });
    return NamedList(info.Env(), out);
  });
}

// to(device?, dtype?): moves parameters and buffers in place (the fast-path fold is dropped).
Napi::Value ModuleWrap::To(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, {
    if (ArgPresent(info, 0)) module->to(ParseDevice(ArgString(info, 0, "device")));
    if (ArgPresent(info, 1)) module->to(ParseDtype(ArgString(info, 1, "dtype")));
    fast->Drop();  // stale now; its memory is freed at once
    return info.Env().Undefined();
  });
}

Napi::Value ModuleWrap::KindName(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), KindString(kind)); }

// setRequiresGrad(on, prefix?): every parameter, or those whose name starts with prefix.
Napi::Value ModuleWrap::SetRequiresGrad(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, {
    bool on = ArgBool(info, 0, "requiresGrad");
    std::string prefix = ArgPresent(info, 1) ? ArgString(info, 1, "prefix") : "";
    int64_t n = 0;
    for (auto& p : module->named_parameters(true)) {
      if (p.key().rfind(prefix, 0) == 0) {
        p.value().set_requires_grad(on);
        ++n;
      }
    }
    return Napi::Number::New(info.Env(), static_cast<double>(n));
  });
}

Napi::Value ModuleWrap::MultiplyAdds(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, {
    if (kind != ModuleKind::ResNet) ThrowType("multiplyAdds() is for ResNet modules");
    return Napi::Number::New(info.Env(), std::dynamic_pointer_cast<ResNetImpl>(module)->multiplyAdds(ArgInt(info, 0, "height"), ArgInt(info, 1, "width")));
  });
}

Napi::Value ModuleWrap::FeatureDim(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, {
    if (kind != ModuleKind::ResNet) ThrowType("featureDim() is for ResNet modules");
    return Napi::Number::New(info.Env(), static_cast<double>(std::dynamic_pointer_cast<ResNetImpl>(module)->featureDim()));
  });
}

}  // namespace torchcap
