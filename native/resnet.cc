#include "resnet.h"

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#include <cpuid.h>
#define TORCHCAP_X86_CPUID 1
#endif

#include <cmath>
#include <cstdlib>

#include "onednn.h"
#include "common.h"
#include "threads.h"

namespace torchcap {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

ConvImpl::ConvImpl(int64_t in, int64_t out, int64_t k, int64_t s, bool init)
    : inChannels(in), outChannels(out), kernel(k), stride(s), padding(k / 2) {
  weight = register_parameter("weight", torch::empty({out, in, k, k}));
  // nn::Conv2d's own initialisation, so that a seeded model draws the same numbers as before
  // (torchvision's He normal follows in ResNetImpl).
  if (init) nn::init::kaiming_uniform_(weight, /*a=*/std::sqrt(5.0));
}

static Conv MakeConv(int64_t in, int64_t out, int64_t k, int64_t stride, bool init) { return Conv(in, out, k, stride, init); }

BlockImpl::BlockImpl(bool bottleneck_, int64_t inplanes, int64_t planes, int64_t stride, bool down, bool init) : bottleneck(bottleneck_) {
  if (bottleneck) {
    // 1x1 reduce, 3x3 (carrying the stride), 1x1 expand by 4
    conv1 = register_module("conv1", MakeConv(inplanes, planes, 1, 1, init));
    bn1 = register_module("bn1", nn::BatchNorm2d(planes));
    conv2 = register_module("conv2", MakeConv(planes, planes, 3, stride, init));
    bn2 = register_module("bn2", nn::BatchNorm2d(planes));
    conv3 = register_module("conv3", MakeConv(planes, planes * 4, 1, 1, init));
    bn3 = register_module("bn3", nn::BatchNorm2d(planes * 4));
  } else {
    conv1 = register_module("conv1", MakeConv(inplanes, planes, 3, stride, init));
    bn1 = register_module("bn1", nn::BatchNorm2d(planes));
    conv2 = register_module("conv2", MakeConv(planes, planes, 3, 1, init));
    bn2 = register_module("bn2", nn::BatchNorm2d(planes));
  }
  if (down) {
    const int64_t out = bottleneck ? planes * 4 : planes;
    downsample = register_module("downsample", nn::Sequential(MakeConv(inplanes, out, 1, stride, init), nn::BatchNorm2d(out)));
  }
}

ConvImpl* BlockImpl::downConv() const { return downsample ? (*downsample)[0]->as<ConvImpl>() : nullptr; }
nn::BatchNorm2dImpl* BlockImpl::downBn() const { return downsample ? (*downsample)[1]->as<nn::BatchNorm2dImpl>() : nullptr; }

torch::Tensor BlockImpl::forward(const torch::Tensor& x) {
  torch::Tensor out = bn1(conv1(x)).relu_();
  if (bottleneck) {
    out = bn2(conv2(out)).relu_();
    out = bn3(conv3(out));
  } else {
    out = bn2(conv2(out));
  }
  torch::Tensor identity = downsample ? downsample->forward(x) : x;
  return out.add_(identity).relu_();
}

static std::vector<int64_t> BlocksFor(int64_t depth) {
  switch (depth) {
    case 18: return {2, 2, 2, 2};
    case 34: return {3, 4, 6, 3};
    case 50: return {3, 4, 6, 3};
    case 101: return {3, 4, 23, 3};
    case 152: return {3, 8, 36, 3};
    default: ThrowRange("ResNet depth must be 18, 34, 50, 101 or 152, got " + std::to_string(depth));
  }
}

ResNetImpl::ResNetImpl(int64_t depth, int64_t numClasses, bool init) : depth_(depth) {
  const auto blocks = BlocksFor(depth);
  const bool bottleneck = depth >= 50;
  const int64_t expansion = bottleneck ? 4 : 1;
  conv1 = register_module("conv1", MakeConv(3, 64, 7, 2, init));
  bn1 = register_module("bn1", nn::BatchNorm2d(64));
  int64_t inplanes = 64;
  const int64_t planes[4] = {64, 128, 256, 512};
  for (int s = 0; s < 4; ++s) {
    nn::Sequential layer;
    const int64_t stride = s == 0 ? 1 : 2;
    for (int64_t b = 0; b < blocks[s]; ++b) {
      const bool down = b == 0 && (stride != 1 || inplanes != planes[s] * expansion);
      layer->push_back(Block(bottleneck, inplanes, planes[s], b == 0 ? stride : 1, down, init));
      inplanes = planes[s] * expansion;
    }
    layers.push_back(register_module("layer" + std::to_string(s + 1), layer));
  }
  featureDim_ = 512 * expansion;
  if (numClasses > 0) fc = register_module("fc", nn::Linear(featureDim_, numClasses));

  // torchvision's initialisation: He normal (fan_out) for convolutions; BatchNorm starts at
  // weight 1 and bias 0 either way.
  if (!init) return;
  torch::NoGradGuard guard;
  for (auto* c : convs()) nn::init::kaiming_normal_(c->weight, 0.0, torch::kFanOut, torch::kReLU);
}

std::vector<const ConvImpl*> ResNetImpl::convs() const {
  std::vector<const ConvImpl*> out{conv1.get()};
  for (const auto& layer : layers) {
    for (const auto& m : layer->children()) {
      const auto* b = m->as<BlockImpl>();
      out.push_back(b->conv1.get());
      out.push_back(b->conv2.get());
      if (b->bottleneck) out.push_back(b->conv3.get());
      if (b->downsample) out.push_back(b->downConv());
    }
  }
  return out;
}

torch::Tensor ResNetImpl::forward(const torch::Tensor& input) {
  if (is_training()) ++generation_;  // batch norm updates its running statistics in place
  torch::Tensor x = bn1(conv1(input)).relu_();
  x = F::max_pool2d(x, F::MaxPool2dFuncOptions(3).stride(2).padding(1));
  for (auto& layer : layers) x = layer->forward(x);
  x = F::adaptive_avg_pool2d(x, F::AdaptiveAvgPool2dFuncOptions({1, 1})).flatten(1);
  if (fc) x = fc(x);
  return x;
}

double ResNetImpl::multiplyAdds(int64_t h, int64_t w) const {
  // Walk the convolutions in order, tracking the spatial size.
  double total = 0;
  auto conv = [&](const ConvImpl& c, int64_t& hh, int64_t& ww) {
    const int64_t k = c.kernel, s = c.stride, p = c.padding;
    hh = (hh + 2 * p - k) / s + 1;
    ww = (ww + 2 * p - k) / s + 1;
    total += static_cast<double>(c.outChannels) * c.inChannels * k * k * hh * ww;
  };
  int64_t hh = h, ww = w;
  conv(*conv1, hh, ww);
  hh = (hh + 2 - 3) / 2 + 1;  // max pool 3x3 stride 2 pad 1
  ww = (ww + 2 - 3) / 2 + 1;
  for (const auto& layer : layers) {
    for (const auto& m : layer->children()) {
      const auto* b = m->as<BlockImpl>();
      int64_t h0 = hh, w0 = ww;
      conv(*b->conv1, hh, ww);
      conv(*b->conv2, hh, ww);
      if (b->bottleneck) conv(*b->conv3, hh, ww);
      if (b->downsample) conv(*b->downConv(), h0, w0);
    }
  }
  if (fc) total += static_cast<double>(fc->options.in_features()) * fc->options.out_features();
  return total;
}

// ---------- what the CPU can do ----------

CpuBf16 CpuBf16Support() {
  static const CpuBf16 detected = []() {
    CpuBf16 r;
    if (!at::hasMKLDNN()) {
      r.reason = "libtorch was built without oneDNN (MKLDNN)";
      return r;
    }
#ifdef TORCHCAP_X86_CPUID
    // AVX-512 usable (the CPU has it and the OS saves its registers), then the BF16 instructions:
    // CPUID leaf 7, sub-leaf 1, EAX bit 5. Without them oneDNN emulates bfloat16, slower than float32.
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__builtin_cpu_supports("avx512bw") || !__builtin_cpu_supports("avx512vl") || !__builtin_cpu_supports("avx512dq")) {
      r.reason = "this CPU has no usable AVX-512 (oneDNN's bfloat16 kernels need AVX-512 BF16)";
    } else if (!__get_cpuid_count(7, 1, &a, &b, &c, &d) || !(a & (1u << 5))) {
      r.reason = "this CPU lacks the AVX-512 BF16 instructions (oneDNN would emulate bfloat16, slower than float32)";
    } else {
      r.supported = true;
    }
#else
    r.reason = "bfloat16 on the CPU is supported on x86-64 CPUs with AVX-512 BF16 only";
#endif
    return r;
  }();
  const char* env = std::getenv("TORCHCAP_CPU_BF16");
  if (detected.supported && env && std::string(env) == "0") return {false, "turned off by TORCHCAP_CPU_BF16=0"};
  return detected;
}

static bool OnednnPrepack() {
  // TORCHCAP_ONEDNN_PREPACK=0 keeps the CPU weights in PyTorch's own layout.
  const char* env = std::getenv("TORCHCAP_ONEDNN_PREPACK");
  return at::hasMKLDNN() && !(env && std::string(env) == "0");
}

// oneDNN layout in, float32 dense [N, C] out: the global average pool, computed in float32.
static torch::Tensor PoolOnednn(const torch::Tensor& x) {
  if (x.scalar_type() == at::kFloat) return torch::adaptive_avg_pool2d(x, {1, 1}).to_dense().flatten(1);
  return x.to_dense(at::kFloat).mean({2, 3});
}

// ---------- the folded fast path ----------

static FoldedConv Fold(const ConvImpl& conv, const nn::BatchNorm2dImpl& bn, bool onednn, at::ScalarType compute) {
  torch::NoGradGuard guard;
  torch::Tensor scale = bn.weight / torch::sqrt(bn.running_var + bn.options.eps());
  FoldedConv f;
  f.stride = conv.stride;
  f.padding = conv.padding;
  f.bias = (bn.bias - bn.running_mean * scale).contiguous();
  torch::Tensor w = conv.weight * scale.view({-1, 1, 1, 1});
  if (onednn) {
    // Reordered once here instead of on every call: at batch 1 that reorder of all the weights
    // is a large part of a forward pass.
    f.packed = PrepackConvWeight(w, f.stride, f.padding, compute);
  } else {
    f.weight = w.contiguous(torch::MemoryFormat::ChannelsLast);
  }
  return f;
}

static torch::Tensor Apply(const FoldedConv& c, const torch::Tensor& x) {
  if (c.packed.defined()) {
    return at::mkldnn_convolution(x, c.packed, torch::optional<torch::Tensor>(c.bias), {c.padding, c.padding}, {c.stride, c.stride}, {1, 1}, 1);
  }
  return torch::conv2d(x, c.weight, c.bias, c.stride, c.padding);
}

WeightsStamp ResNetImpl::stamp() const {
  WeightsStamp s{generation_.load()};
  auto add = [&s](const torch::Tensor& t) {
    s.push_back(reinterpret_cast<int64_t>(t.defined() ? t.data_ptr() : nullptr));
    s.push_back(t.defined() ? static_cast<int64_t>(t._version()) : -1);
  };
  for (const auto& p : parameters(true)) add(p);
  for (const auto& b : buffers(true)) add(b);
  return s;
}

bool ResNetImpl::prepackable() const {
  const auto& w = conv1->weight;
  return OnednnPrepack() && w.device().is_cpu() && w.scalar_type() == torch::kFloat32;
}

std::shared_ptr<FoldedResNet> ResNetImpl::fold(at::ScalarType compute) const {
  auto f = std::make_shared<FoldedResNet>();
  f->stamp = stamp();
  const bool onednn = prepackable();
  f->onednn = onednn;
  f->compute = compute;
  // Where each folded convolution goes, then the folds themselves, two at a time where there are
  // two cores: each is a few small operations and a reorder of one weight into fresh memory, too
  // small to keep both cores busy one at a time.
  struct Job {
    FoldedConv* into;
    const ConvImpl* conv;
    const nn::BatchNorm2dImpl* bn;
  };
  std::vector<Job> jobs{{&f->stem, conv1.get(), bn1.get()}};
  for (const auto& layer : layers) f->blocks.resize(f->blocks.size() + layer->size());
  size_t next = 0;
  for (const auto& layer : layers) {
    for (const auto& m : layer->children()) {
      const auto* b = m->as<BlockImpl>();
      FoldedBlock& fb = f->blocks[next++];
      fb.bottleneck = b->bottleneck;
      jobs.push_back({&fb.c1, b->conv1.get(), b->bn1.get()});
      jobs.push_back({&fb.c2, b->conv2.get(), b->bn2.get()});
      if (b->bottleneck) jobs.push_back({&fb.c3, b->conv3.get(), b->bn3.get()});
      if (b->downsample) {
        fb.hasDown = true;
        jobs.push_back({&fb.down, b->downConv(), b->downBn()});
      }
    }
  }
  // equal shares of the weights' bytes for each thread (the last stage's weights are the largest)
  std::vector<int64_t> sizes;
  for (const Job& j : jobs) sizes.push_back(j.conv->weight.numel());
  ParallelForShares(sizes, [&](size_t i) { *jobs[i].into = Fold(*jobs[i].conv, *jobs[i].bn, onednn, compute); });
  if (fc) {
    f->fcWeight = fc->weight.detach().clone();
    f->fcBias = fc->bias.detach().clone();
  }
  return f;
}

torch::Tensor FoldedResNet::forward(const torch::Tensor& input) const {
  torch::NoGradGuard guard;
  const bool packedInput = onednn && input.device().is_cpu() && input.scalar_type() == torch::kFloat32;
  if (onednn && !packedInput) ThrowType("the fast path was prepared for float32 CPU input, got " + std::string(c10::toString(input.scalar_type())) + " on " + input.device().str());
  // A convolution with the residual add and ReLU after it: fused into oneDNN's convolution on
  // prepacked weights, else three steps.
  const torch::Tensor none;
  auto conv = [this](const FoldedConv& c, const torch::Tensor& x, const torch::Tensor& residual, bool relu) {
    if (onednn) return ConvFused(x, c.packed, c.bias, c.stride, c.padding, residual, relu);
    torch::Tensor y = Apply(c, x);
    if (residual.defined()) y.add_(residual);
    return relu ? y.relu_() : y;
  };
  torch::Tensor x = conv(stem, onednn ? input.contiguous().to_mkldnn(compute) : input.contiguous(torch::MemoryFormat::ChannelsLast), none, true);
  x = torch::max_pool2d(x, 3, 2, 1);
  for (const auto& b : blocks) {
    const torch::Tensor identity = b.hasDown ? conv(b.down, x, none, false) : x;
    torch::Tensor out = conv(b.c1, x, none, true);
    if (b.bottleneck) {
      out = conv(b.c2, out, none, true);
      x = conv(b.c3, out, identity, true);
    } else {
      x = conv(b.c2, out, identity, true);
    }
  }
  x = onednn ? PoolOnednn(x) : x.mean({2, 3});
  if (fcWeight.defined()) x = torch::linear(x, fcWeight, fcBias);
  return x;
}

// ---------- the book-mode path on oneDNN ----------

bool BlockedTrainSupport(std::string* reason) {
  if (!BlockedNormAvailable(reason)) return false;
  if (!OnednnPrepack()) {
    if (reason) *reason = "turned off by TORCHCAP_ONEDNN_PREPACK=0";
    return false;
  }
  return true;
}

bool ResNetImpl::blockedFits(const torch::Tensor& x) const {
  if (!is_training() || !prepackable() || !BlockedTrainSupport()) return false;
  if (!x.device().is_cpu() || x.scalar_type() != torch::kFloat32 || x.requires_grad()) return false;
  if (!torch::GradMode::is_enabled()) return true;
  for (const auto& p : parameters(true)) {
    if (p.requires_grad()) return false;  // part of the backbone trains: autograd needs the plain path
  }
  return true;
}

torch::Tensor ResNetImpl::forwardBlocked(const torch::Tensor& input) {
  torch::NoGradGuard guard;
  ++generation_;  // the running statistics change under the fold
  // A convolution on oneDNN's blocked activations, then its batch norm in place (bit for bit
  // PyTorch's, onednn.h), with the residual and the ReLU that follow it.
  auto unit = [](const ConvImpl& c, nn::BatchNorm2dImpl& bn, const torch::Tensor& x, const torch::Tensor& residual, bool relu) {
    return BatchNormTrainBlocked(bn, at::mkldnn_convolution(x, c.weight, {}, {c.padding, c.padding}, {c.stride, c.stride}, {1, 1}, 1), residual, relu);
  };
  const torch::Tensor none;
  torch::Tensor x = unit(*conv1, *bn1, input.contiguous().to_mkldnn(), none, true);
  x = torch::max_pool2d(x, 3, 2, 1);
  for (auto& layer : layers) {
    for (const auto& m : layer->children()) {
      auto* b = m->as<BlockImpl>();
      const torch::Tensor identity = b->downsample ? unit(*b->downConv(), *b->downBn(), x, none, false) : x;
      torch::Tensor out = unit(*b->conv1, *b->bn1, x, none, true);
      if (b->bottleneck) {
        out = unit(*b->conv2, *b->bn2, out, none, true);
        x = unit(*b->conv3, *b->bn3, out, identity, true);
      } else {
        x = unit(*b->conv2, *b->bn2, out, identity, true);
      }
    }
  }
  // PyTorch's own pooling on dense memory, as forward() pools
  x = F::adaptive_avg_pool2d(x.to_dense(), F::AdaptiveAvgPool2dFuncOptions({1, 1})).flatten(1);
  if (fc) x = fc(x);
  return x;
}

}  // namespace torchcap
