// torchcap's own work on oneDNN tensors, through the oneDNN wrapper libtorch was built with (ideep):
//  - the book's train-mode batch norm on activations in oneDNN's blocked layout, with PyTorch's CPU
//    arithmetic: the same numbers, bit for bit, as nn::BatchNorm2d's train-mode forward on the
//    same values in NCHW (libtorch's contiguous CPU kernel);
//  - the fast path's convolutions with the residual add and ReLU fused in, the 3x3 ones as
//    Winograd convolutions where they pay.
//
// PyTorch's kernel sums each channel in double, one value after another (batch, then row, then
// column), then the squared distances from the float mean the same way; it updates the running
// statistics in float (momentum, unbiased variance) and normalises with one fused multiply-add a
// value. In oneDNN's blocked layout 16 channels lie side by side, so their 16 sums run in one
// vector register in exactly that order: PyTorch's numbers, a vector at a time, without a reorder
// of the activations around each convolution (the convolutions, oneDNN's in both layouts, give
// the same numbers too).
#pragma once

#include <torch/torch.h>

#include <string>

namespace torchcap {

// Whether this build and CPU can run BatchNormTrainBlocked: built against the oneDNN wrapper that
// libtorch itself was built with (Debian's libideep-dev for Debian's libtorch), on an x86-64 CPU
// with AVX-512 and FMA (whose PyTorch kernels fuse the multiply-add as this one does).
// `reason` says why not.
bool BlockedNormAvailable(std::string* reason = nullptr);

// In place on x (returned), a float32 oneDNN tensor [N, C, H, W] (a convolution's output): normalise with the
// batch statistics and update bn's running statistics as nn::BatchNorm2d's train-mode forward
// does, then add `residual` (a oneDNN tensor of x's size, or undefined), then ReLU if `relu`:
// bit for bit PyTorch's bn(x), then `+= residual`, then relu_(), on dense tensors. Any other
// layout takes PyTorch's own kernels on a dense copy (the same numbers, returned as a new tensor).
torch::Tensor BatchNormTrainBlocked(torch::nn::BatchNorm2dImpl& bn, const torch::Tensor& x, const torch::Tensor& residual, bool relu);

// oneDNN's convolution of x (a oneDNN tensor) with `packed` (weights reordered for oneDNN) and a
// dense float32 bias, with the residual add (a oneDNN tensor of the output's size, or undefined)
// and the ReLU after it applied by the convolution itself as it writes each output block (oneDNN
// post-ops): relu(conv(x) + bias + residual) in one pass over the output instead of three, the same
// float operations in the same order. A float32 3x3 stride-1 convolution without a residual and
// with at least 784 output pixels (batch x height x width) runs as oneDNN's Winograd convolution
// (the same values to float32 rounding; here 1.4-2.4x faster from batch 16 on, 1.1-1.4x at one
// photo's first two stages) unless TORCHCAP_WINOGRAD=0 or the CPU has no Winograd kernel. Without
// libtorch's oneDNN wrapper: PyTorch's direct convolution, then the three passes.
torch::Tensor ConvFused(const torch::Tensor& x, const torch::Tensor& packed, const torch::Tensor& bias, int64_t stride, int64_t padding,
                        const torch::Tensor& residual, bool relu);

// A dense float32 convolution weight [O, I, kh, kw] reordered into the layout oneDNN's direct
// convolution with this stride and padding reads, in `compute` (float32 or bfloat16): the same
// bytes as at::mkldnn_reorder_conv2d_weight(w.to_mkldnn(compute), ...), read straight from w's
// memory instead of through a oneDNN copy of it first.
torch::Tensor PrepackConvWeight(const torch::Tensor& w, int64_t stride, int64_t padding, at::ScalarType compute);

}  // namespace torchcap
