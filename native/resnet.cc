#include "resnet.h"

#include "common.h"

namespace torchcap {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

static nn::Conv2d Conv(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t pad) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, k).stride(stride).padding(pad).bias(false));
}

BlockImpl::BlockImpl(bool bottleneck_, int64_t inplanes, int64_t planes, int64_t stride, bool down) : bottleneck(bottleneck_) {
  if (bottleneck) {
    // 1x1 reduce, 3x3 (carrying the stride), 1x1 expand by 4
    conv1 = register_module("conv1", Conv(inplanes, planes, 1, 1, 0));
    bn1 = register_module("bn1", nn::BatchNorm2d(planes));
    conv2 = register_module("conv2", Conv(planes, planes, 3, stride, 1));
    bn2 = register_module("bn2", nn::BatchNorm2d(planes));
    conv3 = register_module("conv3", Conv(planes, planes * 4, 1, 1, 0));
    bn3 = register_module("bn3", nn::BatchNorm2d(planes * 4));
  } else {
    conv1 = register_module("conv1", Conv(inplanes, planes, 3, stride, 1));
    bn1 = register_module("bn1", nn::BatchNorm2d(planes));
    conv2 = register_module("conv2", Conv(planes, planes, 3, 1, 1));
    bn2 = register_module("bn2", nn::BatchNorm2d(planes));
  }
  if (down) {
    const int64_t out = bottleneck ? planes * 4 : planes;
    downsample = register_module("downsample", nn::Sequential(Conv(inplanes, out, 1, stride, 0), nn::BatchNorm2d(out)));
  }
}

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

ResNetImpl::ResNetImpl(int64_t depth, int64_t numClasses) : depth_(depth) {
  const auto blocks = BlocksFor(depth);
  const bool bottleneck = depth >= 50;
  const int64_t expansion = bottleneck ? 4 : 1;
  conv1 = register_module("conv1", Conv(3, 64, 7, 2, 3));
  bn1 = register_module("bn1", nn::BatchNorm2d(64));
  int64_t inplanes = 64;
  const int64_t planes[4] = {64, 128, 256, 512};
  for (int s = 0; s < 4; ++s) {
    nn::Sequential layer;
    const int64_t stride = s == 0 ? 1 : 2;
    for (int64_t b = 0; b < blocks[s]; ++b) {
      const bool down = b == 0 && (stride != 1 || inplanes != planes[s] * expansion);
      layer->push_back(Block(bottleneck, inplanes, planes[s], b == 0 ? stride : 1, down));
      inplanes = planes[s] * expansion;
    }
    layers.push_back(register_module("layer" + std::to_string(s + 1), layer));
  }
  featureDim_ = 512 * expansion;
  if (numClasses > 0) fc = register_module("fc", nn::Linear(featureDim_, numClasses));

  // torchvision's initialisation: He normal (fan_out) for convolutions, BN weight 1 and bias 0.
  torch::NoGradGuard guard;
  for (auto& m : modules(/*include_self=*/false)) {
    if (auto* c = m->as<nn::Conv2d>()) {
      nn::init::kaiming_normal_(c->weight, 0.0, torch::kFanOut, torch::kReLU);
    } else if (auto* bn = m->as<nn::BatchNorm2d>()) {
      bn->weight.fill_(1.0);
      bn->bias.zero_();
    }
  }
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
  auto conv = [&](const nn::Conv2dImpl& c, int64_t& hh, int64_t& ww) {
    const auto& o = c.options;
    const int64_t k = o.kernel_size()->at(0), s = o.stride()->at(0);
    const int64_t p = k / 2;  // every ResNet convolution pads by half its kernel
    hh = (hh + 2 * p - k) / s + 1;
    ww = (ww + 2 * p - k) / s + 1;
    total += static_cast<double>(o.out_channels()) * o.in_channels() * k * k * hh * ww;
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
      if (b->downsample) {
        int64_t hd = h0, wd = w0;
        conv(*(*b->downsample)[0]->as<nn::Conv2dImpl>(), hd, wd);
      }
    }
  }
  if (fc) total += static_cast<double>(fc->options.in_features()) * fc->options.out_features();
  return total;
}

// ---------- the folded fast path ----------

static FoldedConv Fold(const nn::Conv2dImpl& conv, const nn::BatchNorm2dImpl& bn, bool onednn) {
  torch::NoGradGuard guard;
  const auto& o = conv.options;
  torch::Tensor scale = bn.weight / torch::sqrt(bn.running_var + bn.options.eps());
  FoldedConv f;
  f.weight = (conv.weight * scale.view({-1, 1, 1, 1})).contiguous(torch::MemoryFormat::ChannelsLast);
  f.bias = (bn.bias - bn.running_mean * scale).contiguous();
  f.stride = o.stride()->at(0);
  f.padding = o.kernel_size()->at(0) / 2;  // every ResNet convolution pads by half its kernel
  if (onednn) {
    // Reordered once here instead of on every call: at batch 1 that reorder of all the weights
    // is a large part of a forward pass.
    f.packed = at::mkldnn_reorder_conv2d_weight(f.weight.contiguous().to_mkldnn(), {f.padding, f.padding}, {f.stride, f.stride}, {1, 1}, 1);
    f.weight = torch::Tensor();
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

std::shared_ptr<FoldedResNet> ResNetImpl::fold() const {
  auto f = std::make_shared<FoldedResNet>();
  f->stamp = stamp();
  // On the CPU, float32, with oneDNN built in (and not turned off by TORCHCAP_ONEDNN_PREPACK=0):
  // prepacked weights; elsewhere (CUDA, other dtypes) plain channels-last convolutions.
  const char* env = std::getenv("TORCHCAP_ONEDNN_PREPACK");
  const bool onednn = at::hasMKLDNN() && conv1->weight.device().is_cpu() && conv1->weight.scalar_type() == torch::kFloat32 && !(env && std::string(env) == "0");
  f->onednn = onednn;
  f->stem = Fold(*conv1, *bn1, onednn);
  for (const auto& layer : layers) {
    for (const auto& m : layer->children()) {
      const auto* b = m->as<BlockImpl>();
      FoldedBlock fb;
      fb.bottleneck = b->bottleneck;
      fb.c1 = Fold(*b->conv1, *b->bn1, onednn);
      fb.c2 = Fold(*b->conv2, *b->bn2, onednn);
      if (b->bottleneck) fb.c3 = Fold(*b->conv3, *b->bn3, onednn);
      if (b->downsample) {
        fb.hasDown = true;
        fb.down = Fold(*(*b->downsample)[0]->as<nn::Conv2dImpl>(), *(*b->downsample)[1]->as<nn::BatchNorm2dImpl>(), onednn);
      }
      f->blocks.push_back(std::move(fb));
    }
  }
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
  torch::Tensor x = Apply(stem, onednn ? input.contiguous().to_mkldnn() : input.contiguous(torch::MemoryFormat::ChannelsLast)).relu_();
  x = torch::max_pool2d(x, 3, 2, 1);
  for (const auto& b : blocks) {
    torch::Tensor out = Apply(b.c1, x).relu_();
    if (b.bottleneck) {
      out = Apply(b.c2, out).relu_();
      out = Apply(b.c3, out);
    } else {
      out = Apply(b.c2, out);
    }
    out.add_(b.hasDown ? Apply(b.down, x) : x).relu_();
    x = out;
  }
  x = onednn ? torch::adaptive_avg_pool2d(x, {1, 1}).to_dense().flatten(1) : x.mean({2, 3});
  if (fcWeight.defined()) x = torch::linear(x, fcWeight, fcBias);
  return x;
}

}  // namespace torchcap
