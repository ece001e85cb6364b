// Images to tensors: 8-bit RGB pixels (HWC, as sharp decodes them) to a normalized float batch
// [N, 3, H, W], with a crop window and an optional horizontal flip per image. The pixels are
// copied before any worker thread starts; the conversion runs in parallel over images.
#include <ATen/Parallel.h>

#include <cstring>

#include "async.h"
#include "common.h"

namespace torchcap {

struct ImageJob {
  std::vector<std::vector<uint8_t>> pixels;  // one HWC RGB buffer per image
  std::vector<int64_t> widths, heights, cropX, cropY;
  std::vector<uint8_t> flips;
  int64_t outH = 0, outW = 0;
  float mean[3] = {0, 0, 0}, invStd[3] = {1, 1, 1};
};

static torch::Tensor Convert(const ImageJob& job) {
  const int64_t n = static_cast<int64_t>(job.pixels.size());
  torch::Tensor out = torch::empty({n, 3, job.outH, job.outW}, torch::kFloat32);
  float* dst = out.data_ptr<float>();
  const int64_t plane = job.outH * job.outW;
  at::parallel_for(0, n * job.outH, 1, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t i = r / job.outH, y = r % job.outH;
      const uint8_t* row = job.pixels[i].data() + ((job.cropY[i] + y) * job.widths[i] + job.cropX[i]) * 3;
      float* o = dst + i * 3 * plane + y * job.outW;
      const bool flip = job.flips[i] != 0;
      for (int64_t x = 0; x < job.outW; ++x) {
        const uint8_t* px = row + (flip ? job.outW - 1 - x : x) * 3;
        for (int c = 0; c < 3; ++c) o[c * plane + x] = (px[c] * (1.0f / 255.0f) - job.mean[c]) * job.invStd[c];
      }
    }
  });
  return out;
}

// imagesToTensor(images: { data: Uint8Array, width, height }[], { outH, outW, crops?: [x, y][],
//                flips?: boolean[], mean: [3], std: [3] }) -> Tensor [N, 3, outH, outW]
template <bool Async>
static Napi::Value ImagesToTensor(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, {
    if (!info[0].IsArray()) ThrowType("Expected an array of images");
    auto arr = info[0].As<Napi::Array>();
    Napi::Object o = ArgOptions(info, 1);
    auto job = std::make_shared<ImageJob>();
    job->outH = OptInt(o, "outH", 0);
    job->outW = OptInt(o, "outW", 0);
    if (job->outH < 1 || job->outW < 1) ThrowRange("outH and outW must be positive");
    const uint32_t n = arr.Length();
    if (n == 0) ThrowRange("imagesToTensor needs at least one image");
    Napi::Value crops = o.Get("crops"), flips = o.Get("flips");
    auto mean = ToNumbers(o.Get("mean"), "mean"), stdv = ToNumbers(o.Get("std"), "std");
    if (mean.size() != 3 || stdv.size() != 3) ThrowRange("mean and std need 3 values each");
    for (int c = 0; c < 3; ++c) {
      if (!(stdv[c] > 0)) ThrowRange("std values must be positive");
      job->mean[c] = static_cast<float>(mean[c]);
      job->invStd[c] = static_cast<float>(1.0 / stdv[c]);
    }
    for (uint32_t i = 0; i < n; ++i) {
      Napi::Value v = arr.Get(i);
      if (!v.IsObject()) ThrowType("Expected { data, width, height } for images[" + std::to_string(i) + "]");
      Napi::Object img = v.As<Napi::Object>();
      Napi::Value data = img.Get("data");
      if (!data.IsTypedArray()) ThrowType("Expected a Uint8Array for images[" + std::to_string(i) + "].data");
      auto ta = data.As<Napi::TypedArray>();
      const int64_t w = ToInt(img.Get("width"), "width"), h = ToInt(img.Get("height"), "height");
      if (w < 1 || h < 1) ThrowRange("image " + std::to_string(i) + " has no pixels");
      if (static_cast<int64_t>(ta.ByteLength()) != w * h * 3) {
        ThrowRange("images[" + std::to_string(i) + "] holds " + std::to_string(ta.ByteLength()) + " bytes but " + std::to_string(w) + "x" +
                   std::to_string(h) + " RGB needs " + std::to_string(w * h * 3));
      }
      int64_t cx = 0, cy = 0;
      if (crops.IsArray()) {
        auto xy = ToInts(crops.As<Napi::Array>().Get(i), "crops");
        if (xy.size() != 2) ThrowRange("crops entries are [x, y]");
        cx = xy[0];
        cy = xy[1];
      }
      if (cx < 0 || cy < 0 || cx + job->outW > w || cy + job->outH > h) {
        ThrowRange("crop of " + std::to_string(job->outW) + "x" + std::to_string(job->outH) + " at (" + std::to_string(cx) + ", " +
                   std::to_string(cy) + ") does not fit image " + std::to_string(i) + " of " + std::to_string(w) + "x" + std::to_string(h));
      }
      const uint8_t* src = static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
      job->pixels.emplace_back(src, src + ta.ByteLength());
      job->widths.push_back(w);
      job->heights.push_back(h);
      job->cropX.push_back(cx);
      job->cropY.push_back(cy);
      bool flip = false;
      if (flips.IsArray()) {
        Napi::Value f = flips.As<Napi::Array>().Get(i);
        if (!f.IsBoolean()) ThrowType("flips entries must be booleans");
        flip = f.As<Napi::Boolean>().Value();
      }
      job->flips.push_back(flip ? 1 : 0);
    }
    return RunTensors<Async>(info.Env(), [job]() -> Tensors { return {Convert(*job)}; });
  });
}

void InitImage(Napi::Env env, Napi::Object exports) {
  exports.Set("imagesToTensor", Napi::Function::New<ImagesToTensor<false>>(env, "imagesToTensor"));
  exports.Set("imagesToTensorAsync", Napi::Function::New<ImagesToTensor<true>>(env, "imagesToTensorAsync"));
}

}  // namespace torchcap
