// ResNet-18/34/50/101/152 with torchvision's architecture and parameter names exactly
// (conv1, bn1, layer1.0.conv1, layer1.0.downsample.0/.1, fc; the stride on the 3x3 conv of a
// bottleneck, as torchvision >= 0.5), so torchvision's state dicts load by name.
//
// Besides the plain forward (any mode, any device, autograd), two paths for a frozen backbone:
//  - FoldedResNet: eval mode, each BatchNorm folded into the convolution before it; derived from
//    the weights, rebuilt by its owner (module.h, FoldSlot) when they change;
//  - ResNetImpl::forwardBlocked: the book's train mode (batch statistics, running statistics
//    updated as PyTorch does) with frozen weights and no gradient, activations in oneDNN's layout;
//    PyTorch's numbers bit for bit.
#pragma once

#include <torch/torch.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

namespace torchcap {

// A ResNet convolution: no bias, padding half the kernel, torchvision's parameter name (`weight`).
// Initialised as nn::Conv2d is (the same random draws), or left uninitialised for a checkpoint to
// fill (init false).
struct ConvImpl : torch::nn::Module {
  ConvImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride, bool init);
  torch::Tensor forward(const torch::Tensor& x) { return torch::conv2d(x, weight, {}, stride, padding); }

  torch::Tensor weight;
  int64_t inChannels, outChannels, kernel, stride, padding;
};
TORCH_MODULE(Conv);

struct BlockImpl : torch::nn::Module {
  BlockImpl(bool bottleneck, int64_t inplanes, int64_t planes, int64_t stride, bool downsample, bool init);
  torch::Tensor forward(const torch::Tensor& x);

  bool bottleneck;
  Conv conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  torch::nn::Sequential downsample{nullptr};
  // downsample's two modules (null without one)
  ConvImpl* downConv() const;
  torch::nn::BatchNorm2dImpl* downBn() const;
};
TORCH_MODULE(Block);

// What derived state was built from: the storage and version of the tensors it reads (and, for
// the fold, the module's generation, advanced by train-mode forwards, whose batch-norm updates
// of the running statistics do not advance a tensor version on every libtorch). State whose
// stamp no longer equals its module's is stale.
using WeightsStamp = std::vector<int64_t>;

// Whether oneDNN's bfloat16 kernels can run here, and faster than float32: the CPU computes
// bfloat16 natively (AVX-512 BF16) and libtorch has oneDNN. `reason` says why not.
// TORCHCAP_CPU_BF16=0 turns it off (as if the CPU lacked it).
struct CpuBf16 {
  bool supported = false;
  std::string reason;
};
CpuBf16 CpuBf16Support();

// Whether book-mode forwards can run on ResNetImpl::forwardBlocked here: BlockedNormAvailable()
// (the build and the CPU) and oneDNN prepacking not turned off (TORCHCAP_ONEDNN_PREPACK=0).
bool BlockedTrainSupport(std::string* reason = nullptr);

// The eval-mode backbone with each BatchNorm folded into the convolution before it. On the CPU
// with oneDNN the weights are reordered once into oneDNN's layout (float32, or bfloat16 when
// `compute` is bfloat16) and activations stay in oneDNN's layout; elsewhere the convolutions run
// channels-last. Built from (and equal to) an eval-mode ResNet; holds copies.
struct FoldedConv {
  torch::Tensor weight, bias;
  torch::Tensor packed;  // CPU with oneDNN: the weight reordered once into oneDNN's own layout
  int64_t stride = 1, padding = 0;
};
struct FoldedBlock {
  FoldedConv c1, c2, c3, down;
  bool bottleneck = false, hasDown = false;
};

struct FoldedResNet {
  WeightsStamp stamp;
  FoldedConv stem;
  std::vector<FoldedBlock> blocks;
  torch::Tensor fcWeight, fcBias;
  bool onednn = false;  // the convolutions run on prepacked weights, activations in oneDNN layout
  at::ScalarType compute = at::kFloat;  // the precision baked into the prepacked weights
  torch::Tensor forward(const torch::Tensor& x) const;
};

struct ResNetImpl : torch::nn::Module {
  // numClasses 0: no fc; forward returns the pooled features [N, 512 or 2048].
  // init false: the convolution weights are left uninitialised (a checkpoint is about to fill them).
  ResNetImpl(int64_t depth, int64_t numClasses, bool init = true);
  torch::Tensor forward(const torch::Tensor& x);
  // Feature width after pooling (512 for ResNet-18/34, 2048 for the bottleneck depths).
  int64_t featureDim() const { return featureDim_; }
  int64_t depth() const { return depth_; }
  // Multiply-adds of one forward at the given input size (convolutions and fc).
  double multiplyAdds(int64_t height, int64_t width) const;

  // Whether the weights can be prepacked for oneDNN: CPU, float32, oneDNN built in, and not
  // turned off by TORCHCAP_ONEDNN_PREPACK=0.
  bool prepackable() const;
  // The eval-mode fold: prepacked for oneDNN in the `compute` precision (float32 or bfloat16)
  // where prepackable(), else channels-last.
  std::shared_ptr<FoldedResNet> fold(at::ScalarType compute) const;
  WeightsStamp stamp() const;

  // Whether a train-mode forward of x can run on forwardBlocked: BlockedTrainSupport(),
  // prepackable weights, float32 CPU input, no gradient wanted.
  bool blockedFits(const torch::Tensor& x) const;
  // The train-mode forward with activations in oneDNN's blocked layout from the first convolution
  // to the last block (oneDNN's convolutions on the module's weights, reordered on use; each batch
  // norm with the residual and ReLU after it in one pass, onednn.h): bit for bit forward()
  // in train mode, with a third less work (no reorder of the activations around each convolution).
  torch::Tensor forwardBlocked(const torch::Tensor& x);

  Conv conv1{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr};
  std::vector<torch::nn::Sequential> layers;
  torch::nn::Linear fc{nullptr};

 private:
  // Every convolution in forward order: the stem, then per block conv1, conv2, conv3, downsample.
  std::vector<const ConvImpl*> convs() const;

  int64_t depth_, featureDim_;
  std::atomic<int64_t> generation_{0};
};
TORCH_MODULE(ResNet);

}  // namespace torchcap
