// ResNet-18/34/50/101/152 with torchvision's architecture and parameter names exactly
// (conv1, bn1, layer1.0.conv1, layer1.0.downsample.0/.1, fc; the stride on the 3x3 conv of a
// bottleneck, as torchvision >= 0.5), so torchvision's state dicts load by name.
#pragma once

#include <torch/torch.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

namespace torchcap {

struct BlockImpl : torch::nn::Module {
  BlockImpl(bool bottleneck, int64_t inplanes, int64_t planes, int64_t stride, bool downsample);
  torch::Tensor forward(const torch::Tensor& x);

  bool bottleneck;
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  torch::nn::Sequential downsample{nullptr};
};
TORCH_MODULE(Block);

// The eval-mode backbone with each BatchNorm folded into the convolution before it, weights in
// channels-last layout: the fast path for a frozen backbone. Built from (and equal to) an
// eval-mode ResNet; holds copies, so it must be rebuilt if the weights change.
struct FoldedConv {
  torch::Tensor weight, bias;
  torch::Tensor packed;  // CPU with oneDNN: the weight reordered once into oneDNN's own layout
  int64_t stride = 1, padding = 0;
};
struct FoldedBlock {
  FoldedConv c1, c2, c3, down;
  bool bottleneck = false, hasDown = false;
};
// What a fold was built from: the storage and version of every parameter and buffer, and the
// module's own generation (advanced by train-mode forwards, whose batch-norm updates of the
// running statistics do not advance a tensor version on every libtorch). A fold whose stamp no
// longer equals its module's is stale.
using WeightsStamp = std::vector<int64_t>;

struct FoldedResNet {
  WeightsStamp stamp;
  FoldedConv stem;
  std::vector<FoldedBlock> blocks;
  torch::Tensor fcWeight, fcBias;
  bool onednn = false;  // the convolutions run on prepacked weights, activations in oneDNN layout
  torch::Tensor forward(const torch::Tensor& x) const;
};

struct ResNetImpl : torch::nn::Module {
  // numClasses 0: no fc; forward returns the pooled features [N, 512 or 2048].
  ResNetImpl(int64_t depth, int64_t numClasses);
  torch::Tensor forward(const torch::Tensor& x);
  // Feature width after pooling (512 for ResNet-18/34, 2048 for the bottleneck depths).
  int64_t featureDim() const { return featureDim_; }
  int64_t depth() const { return depth_; }
  // Multiply-adds of one forward at the given input size (convolutions and fc).
  double multiplyAdds(int64_t height, int64_t width) const;
  std::shared_ptr<FoldedResNet> fold() const;
  WeightsStamp stamp() const;

  torch::nn::Conv2d conv1{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr};
  std::vector<torch::nn::Sequential> layers;
  torch::nn::Linear fc{nullptr};

 private:
  int64_t depth_, featureDim_;
  std::atomic<int64_t> generation_{0};
};
TORCH_MODULE(ResNet);

}  // namespace torchcap
