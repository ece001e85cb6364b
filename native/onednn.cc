#include "onednn.h"

#include <atomic>
#include <cmath>
#include <cstdlib>

#include "common.h"

// The blocked batch norm reads oneDNN 2.x's memory descriptors (Debian 12's libtorch 1.13); oneDNN
// 3.x (the libtorch 2.x of later Debian releases) made them opaque, and there book mode keeps to
// PyTorch's kernels (BlockedNormAvailable says so).
#if defined(TORCHCAP_IDEEP) && defined(__GNUC__) && defined(__x86_64__) && __has_include(<oneapi/dnnl/dnnl_version.h>)
#include <oneapi/dnnl/dnnl_version.h>
#if DNNL_VERSION_MAJOR == 2
#define TORCHCAP_BLOCKED_NORM 1
#else
#define TORCHCAP_ONEDNN_NOT_2 1
#endif
#endif

#ifdef TORCHCAP_BLOCKED_NORM
#include <immintrin.h>

#include <ideep.hpp>

namespace at {
namespace native {
// libtorch's own bridges between its tensors and oneDNN's (exported by libtorch_cpu; their header
// is not installed).
ideep::tensor& itensor_from_mkldnn(const at::Tensor& mkldnn_tensor);
ideep::tensor itensor_from_tensor(const at::Tensor& tensor);
at::Tensor new_with_itensor_mkldnn(ideep::tensor&& it, c10::optional<at::ScalarType> dtype, c10::optional<at::Device> device);
}  // namespace native
}  // namespace at
#endif

namespace torchcap {

namespace nn = torch::nn;

// PyTorch's own kernels on a dense copy, then the residual add and the ReLU, back in oneDNN's
// layout: BatchNormTrainBlocked wherever the blocked arithmetic does not apply (the same numbers).
static torch::Tensor BatchNormDense(nn::BatchNorm2dImpl& bn, const torch::Tensor& x, const torch::Tensor& residual, bool relu) {
  torch::Tensor y = bn.forward(x.to_dense());
  if (residual.defined()) y.add_(residual.to_dense());
  if (relu) y.relu_();
  return y.to_mkldnn();
}

#ifdef TORCHCAP_BLOCKED_NORM

namespace {

constexpr int64_t kLanes = 16;  // channels per block in oneDNN's nChw16c layout
constexpr int64_t kWinogradMinPixels = 784;  // batch x output height x width

// A float32 oneDNN tensor in nChw16c: element (n, c, h, w) at
// data[n * batchStride + (c / 16) * blockStride + (h * W + w) * 16 + c % 16].
struct Blocked {
  float* data = nullptr;
  int64_t n = 0, c = 0, h = 0, w = 0, batchStride = 0, blockStride = 0;
};

bool AsBlocked(const torch::Tensor& t, Blocked* out) {
  if (!t.defined() || !t.is_mkldnn() || t.scalar_type() != torch::kFloat32 || t.dim() != 4) return false;
  at::AutoDispatchBelowADInplaceOrView below;  // the accessor is for code below autograd
  const ideep::tensor& it = at::native::itensor_from_mkldnn(t);
  const dnnl_memory_desc_t md = it.get_desc().data;
  if (md.ndims != 4 || md.data_type != dnnl_f32 || md.format_kind != dnnl_blocked || md.offset0 != 0) return false;
  for (int d = 0; d < 4; ++d) {
    if (md.padded_offsets[d] != 0) return false;
  }
  const dnnl_blocking_desc_t& b = md.format_desc.blocking;
  if (b.inner_nblks != 1 || b.inner_idxs[0] != 1 || b.inner_blks[0] != kLanes) return false;
  if (md.padded_dims[1] % kLanes != 0) return false;
  const int64_t w = md.dims[3];
  if (b.strides[3] != kLanes || b.strides[2] != w * kLanes) return false;  // rows and columns dense
  out->data = static_cast<float*>(it.get_data_handle());
  out->n = md.dims[0];
  out->c = md.dims[1];
  out->h = md.dims[2];
  out->w = w;
  out->batchStride = b.strides[0];
  out->blockStride = b.strides[1];
  return out->data != nullptr;
}

bool SameLayout(const Blocked& a, const Blocked& b) {
  return a.n == b.n && a.c == b.c && a.h == b.h && a.w == b.w && a.batchStride == b.batchStride && a.blockStride == b.blockStride;
}

struct NormParams {
  double momentum, eps;
  const float *weight, *bias;   // null: 1 and 0
  float *runningMean, *runningVar;  // null: not tracked
};

// The running statistics and 1 / sqrt(var + eps) of `lanes` channels from their float means and
// double sums of squares, in PyTorch's precision and without fused multiply-adds (PyTorch computes
// them in code built for any x86-64); kept out of line so the AVX-512 code around it cannot fuse.
__attribute__((noinline)) void UpdateStats(const NormParams& p, int64_t first, int64_t lanes, int64_t count, const float* mean, const double* varSums, float* invstd) {
  const float m = static_cast<float>(p.momentum);
  for (int64_t l = 0; l < lanes; ++l) {
    const int64_t c = first + l;
    const float varSum = static_cast<float>(varSums[l]);
    const double var = static_cast<double>(varSum / static_cast<float>(count));
    invstd[l] = (var != 0 || p.eps != 0) ? static_cast<float>(1.0 / std::sqrt(var + p.eps)) : 0.0f;
    if (p.runningMean) p.runningMean[c] = m * mean[l] + (1 - m) * p.runningMean[c];
    if (p.runningVar) {
      const double unbiased = static_cast<double>(varSum / static_cast<float>(count - 1));
      p.runningVar[c] = static_cast<float>(static_cast<double>(m) * unbiased + static_cast<double>((1 - m) * p.runningVar[c]));
    }
  }
}

// GCC 12's own AVX-512 headers trip -Wmaybe-uninitialized in the conversions below.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

// One block of 16 channels: PyTorch's statistics (batch_norm_cpu_collect_stats_contiguous_impl),
// running-statistics update (batch_norm_cpu_update_stats_template) and transform
// (batch_norm_cpu_contiguous_impl, whose AVX-512 build fuses both multiply-adds), lane by lane in
// the same order and precision.
__attribute__((target("avx512f,fma"))) void NormBlock(const Blocked& x, const Blocked* residual, bool relu, const NormParams& p, int64_t block) {
  const int64_t first = block * kLanes;
  const int64_t lanes = std::min<int64_t>(kLanes, x.c - first);
  const __mmask16 mask = static_cast<__mmask16>((1u << lanes) - 1u);
  const int64_t plane = x.h * x.w;
  const int64_t count = x.n * plane;

  // sum in double, value after value: batch, then position
  __m512d lo = _mm512_setzero_pd(), hi = _mm512_setzero_pd();
  for (int64_t n = 0; n < x.n; ++n) {
    const float* src = x.data + n * x.batchStride + block * x.blockStride;
    for (int64_t i = 0; i < plane; ++i) {
      const __m512 v = _mm512_loadu_ps(src + i * kLanes);
      lo = _mm512_add_pd(lo, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
      hi = _mm512_add_pd(hi, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))));
    }
  }
  alignas(64) double sum[kLanes];
  _mm512_store_pd(sum, lo);
  _mm512_store_pd(sum + 8, hi);
  alignas(64) float mean[kLanes];
  for (int64_t l = 0; l < kLanes; ++l) mean[l] = static_cast<float>(sum[l] / static_cast<double>(count));

  // the squared distances from the float mean, each rounded to float, summed in double
  const __m512 meanV = _mm512_load_ps(mean);
  lo = _mm512_setzero_pd();
  hi = _mm512_setzero_pd();
  for (int64_t n = 0; n < x.n; ++n) {
    const float* src = x.data + n * x.batchStride + block * x.blockStride;
    for (int64_t i = 0; i < plane; ++i) {
      const __m512 d = _mm512_sub_ps(_mm512_loadu_ps(src + i * kLanes), meanV);
      const __m512 sq = _mm512_mul_ps(d, d);
      lo = _mm512_add_pd(lo, _mm512_cvtps_pd(_mm512_castps512_ps256(sq)));
      hi = _mm512_add_pd(hi, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(sq), 1))));
    }
  }
  _mm512_store_pd(sum, lo);
  _mm512_store_pd(sum + 8, hi);

  alignas(64) float invstd[kLanes] = {}, alpha[kLanes] = {}, beta[kLanes] = {};
  UpdateStats(p, first, lanes, count, mean, sum, invstd);
  for (int64_t l = 0; l < lanes; ++l) {
    alpha[l] = invstd[l] * (p.weight ? p.weight[first + l] : 1.0f);
    beta[l] = std::fma(-mean[l], alpha[l], p.bias ? p.bias[first + l] : 0.0f);  // PyTorch's build fuses it
  }

  // y = fma(x, alpha, beta), then + residual, then max(0, y) as PyTorch's clamp_min (NaN stays)
  const __m512 alphaV = _mm512_load_ps(alpha), betaV = _mm512_load_ps(beta), zero = _mm512_setzero_ps();
  for (int64_t n = 0; n < x.n; ++n) {
    float* dst = x.data + n * x.batchStride + block * x.blockStride;
    const float* res = residual ? residual->data + n * residual->batchStride + block * residual->blockStride : nullptr;
    for (int64_t i = 0; i < plane; ++i) {
      __m512 v = _mm512_fmadd_ps(_mm512_loadu_ps(dst + i * kLanes), alphaV, betaV);
      if (res) v = _mm512_add_ps(v, _mm512_loadu_ps(res + i * kLanes));
      if (relu) v = _mm512_max_ps(zero, v);
      _mm512_mask_storeu_ps(dst + i * kLanes, mask, v);
    }
  }
}

#pragma GCC diagnostic pop

const float* FloatData(const torch::Tensor& t) { return t.defined() ? t.data_ptr<float>() : nullptr; }

bool ParamsFit(const nn::BatchNorm2dImpl& bn, int64_t channels) {
  for (const torch::Tensor* t : {&bn.weight, &bn.bias, &bn.running_mean, &bn.running_var}) {
    if (!t->defined()) continue;
    if (t->scalar_type() != torch::kFloat32 || !t->device().is_cpu() || !t->is_contiguous() || t->numel() != channels) return false;
  }
  return true;
}

}  // namespace

bool BlockedNormAvailable(std::string* reason) {
  // The build, the CPU and libtorch's kernel choice (read once, as libtorch reads it) do not change.
  static const std::string why = []() -> std::string {
    if (!at::hasMKLDNN()) return "libtorch was built without oneDNN";
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("fma")) return "the CPU lacks AVX-512 or FMA";
    // PyTorch's own kernels fuse multiply-adds only in their AVX2 and AVX-512 builds.
    const char* cap = std::getenv("ATEN_CPU_CAPABILITY");
    if (cap && std::string(cap) == "default") return "ATEN_CPU_CAPABILITY=default selects PyTorch's kernels without fused multiply-adds";
    return "";
  }();
  if (reason && !why.empty()) *reason = why;
  return why.empty();
}

torch::Tensor BatchNormTrainBlocked(nn::BatchNorm2dImpl& bn, const torch::Tensor& x, const torch::Tensor& residual, bool relu) {
  const auto sizes = x.sizes();
  if (sizes[0] * sizes[2] * sizes[3] == 1) ThrowError("Expected more than 1 value per channel when training, got input size " + c10::str(sizes));
  Blocked bx, br;
  const bool fits = BlockedNormAvailable() && AsBlocked(x, &bx) && ParamsFit(bn, bx.c) && (!residual.defined() || (AsBlocked(residual, &br) && SameLayout(bx, br)));
  if (!fits) return BatchNormDense(bn, x, residual, relu);  // any other layout
  // nn::BatchNorm2d's bookkeeping: count the batch; without a momentum, the cumulative average.
  const auto& o = bn.options;
  double factor = o.momentum().value_or(0.0);
  if (o.track_running_stats() && bn.num_batches_tracked.defined()) {
    bn.num_batches_tracked += 1;
    if (!o.momentum()) factor = 1.0 / bn.num_batches_tracked.item<double>();
  }
  NormParams p{factor, o.eps(), FloatData(bn.weight), FloatData(bn.bias), nullptr, nullptr};
  if (bn.running_mean.defined()) p.runningMean = bn.running_mean.data_ptr<float>();
  if (bn.running_var.defined()) p.runningVar = bn.running_var.data_ptr<float>();
  const int64_t blocks = (bx.c + kLanes - 1) / kLanes;
  const Blocked* res = residual.defined() ? &br : nullptr;
  at::parallel_for(0, blocks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) NormBlock(bx, res, relu, p, b);
  });
  return x;
}

// TORCHCAP_WINOGRAD=0 keeps every convolution direct; a CPU without oneDNN's Winograd kernels
// (they need AVX-512) turns it off on the first refusal.
static std::atomic<bool> winogradOn{[] {
  const char* env = std::getenv("TORCHCAP_WINOGRAD");
  return !(env && std::string(env) == "0");
}()};

torch::Tensor ConvFused(const torch::Tensor& x, const torch::Tensor& packed, const torch::Tensor& bias, int64_t stride, int64_t padding,
                        const torch::Tensor& residual, bool relu) {
  const int64_t n = x.size(0), oh = (x.size(2) + 2 * padding - packed.size(2)) / stride + 1, ow = (x.size(3) + 2 * padding - packed.size(3)) / stride + 1;
  if (oh < 1 || ow < 1) ThrowRange("the convolution's output would be empty for input " + c10::str(x.sizes()));
  at::AutoDispatchBelowADInplaceOrView below;
  const ideep::tensor& src = at::native::itensor_from_mkldnn(x);
  const ideep::tensor& w = at::native::itensor_from_mkldnn(packed);
  const ideep::tensor b = at::native::itensor_from_tensor(bias);
  const ideep::dims dst{n, packed.size(0), oh, ow};
  const ideep::dims strides{stride, stride}, dilates{1, 1}, pads{padding, padding};
  ideep::post_ops ops;
  if (residual.defined()) ops.append_binary(ideep::algorithm::binary_add, at::native::itensor_from_mkldnn(residual).get_desc());
  if (relu) ops.append_eltwise(1.0f, ideep::algorithm::eltwise_relu, 0.0f, 0.0f);
  const ideep::attr_t attr = ideep::attr_t::attr_post_ops(ops);
  ideep::tensor y;
  if (residual.defined()) {
    ideep::convolution_forward::compute_binary(src, at::native::itensor_from_mkldnn(residual), w, b, dst, y, strides, dilates, pads, pads, 1, false, attr);
    return at::native::new_with_itensor_mkldnn(std::move(y), x.scalar_type(), x.device());
  }
  // oneDNN's Winograd F(4x4, 3x3) for float32 3x3 stride-1 convolutions from kWinogradMinPixels
  // output pixels on (below, the direct convolution is faster here): it reads the same prepacked
  // weights and takes the ReLU as a post-op, but not the residual add.
  const bool winograd = winogradOn.load(std::memory_order_relaxed) && x.scalar_type() == torch::kFloat32 && packed.size(2) == 3 &&
                        packed.size(3) == 3 && stride == 1 && n * oh * ow >= kWinogradMinPixels;
  if (winograd) {
    try {
      ideep::convolution_forward::compute_v3(src, w, b, dst, y, strides, dilates, pads, pads, 1, false, attr, ideep::algorithm::convolution_winograd);
      return at::native::new_with_itensor_mkldnn(std::move(y), x.scalar_type(), x.device());
    } catch (const std::exception&) {
      winogradOn = false;  // no Winograd kernel for this CPU: direct from now on
      y = ideep::tensor();
    }
  }
  ideep::convolution_forward::compute_v3(src, w, b, dst, y, strides, dilates, pads, pads, 1, false, attr);
  return at::native::new_with_itensor_mkldnn(std::move(y), x.scalar_type(), x.device());
}

torch::Tensor PrepackConvWeight(const torch::Tensor& w, int64_t stride, int64_t padding, at::ScalarType compute) {
  if (compute != at::kFloat && compute != at::kBFloat16) ThrowType("oneDNN's prepacked weights are float32 or bfloat16, not " + std::string(c10::toString(compute)));
  at::AutoDispatchBelowADInplaceOrView below;
  const torch::Tensor dense = w.contiguous();
  const ideep::tensor src = at::native::itensor_from_tensor(dense);  // a view of w's memory
  const ideep::data_type type = compute == at::kBFloat16 ? ideep::data_type::bf16 : ideep::data_type::f32;
  const ideep::dims strides{stride, stride}, dilates{1, 1}, pads{padding, padding};
  // libtorch's mkldnn_reorder_conv2d_weight asks for the same layout (direct convolution, forward)
  const ideep::tensor::desc desc = ideep::convolution_forward::expected_weights_desc(
      src.get_dims(), type, strides, pads, pads, dilates, 1, ideep::algorithm::convolution_direct, ideep::prop_kind::forward, type);
  ideep::tensor packed;
  packed.init(desc);
  packed.feed_from(src);
  return at::native::new_with_itensor_mkldnn(std::move(packed), compute, w.device());
}

#else  // built without libtorch's oneDNN wrapper, or with oneDNN 3.x

torch::Tensor PrepackConvWeight(const torch::Tensor& w, int64_t stride, int64_t padding, at::ScalarType compute) {
  return at::mkldnn_reorder_conv2d_weight(w.contiguous().to_mkldnn(compute), {padding, padding}, {stride, stride}, {1, 1}, 1);
}

torch::Tensor ConvFused(const torch::Tensor& x, const torch::Tensor& packed, const torch::Tensor& bias, int64_t stride, int64_t padding,
                        const torch::Tensor& residual, bool relu) {
  torch::Tensor y = at::mkldnn_convolution(x, packed, torch::optional<torch::Tensor>(bias), {padding, padding}, {stride, stride}, {1, 1}, 1);
  if (residual.defined()) y.add_(residual);
  if (relu) y.relu_();
  return y;
}

bool BlockedNormAvailable(std::string* reason) {
#ifdef TORCHCAP_ONEDNN_NOT_2
  if (reason) *reason = "torchcap's blocked batch norm reads oneDNN 2.x's memory layout; this libtorch's oneDNN is " + std::to_string(DNNL_VERSION_MAJOR) + ".x";
#else
  if (reason) *reason = "torchcap was built without libtorch's oneDNN wrapper (ideep)";
#endif
  return false;
}

torch::Tensor BatchNormTrainBlocked(nn::BatchNorm2dImpl& bn, const torch::Tensor& x, const torch::Tensor& residual, bool relu) {
  return BatchNormDense(bn, x, residual, relu);
}

#endif

}  // namespace torchcap
