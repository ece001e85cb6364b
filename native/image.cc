// Images to tensors: 8-bit RGB pixels (HWC) to a normalized float batch [N, 3, H, W], with a crop
// window and an optional horizontal flip per image; the pixels are copied before any worker thread
// starts and the conversion runs in parallel over images. Also the entry points to Pillow's pixels
// (native/pillow: decode, convert, resize, encode as Pillow 9.4 does), one image a call, and the
// training loader's fused JPEG batch decoder.
#include <ATen/Parallel.h>

#include <cstring>
#include <tuple>

#include "async.h"
#include "common.h"
#include "pillow/pillow.h"

namespace torchcap {

// What both paths do to each image: an outH x outW window at (cropX, cropY), flipped or not,
// scaled to [0, 1] and normalized per channel.
struct Window {
  int64_t outH = 0, outW = 0;
  float mean[3] = {0, 0, 0}, invStd[3] = {1, 1, 1};
  std::vector<int64_t> cropX, cropY;
  std::vector<uint8_t> flips;

  // Reads mean and std of `o` (outH and outW are read by the caller).
  void ReadNormalization(const Napi::Object& o) {
    auto m = ToNumbers(o.Get("mean"), "mean"), sd = ToNumbers(o.Get("std"), "std");
    if (m.size() != 3 || sd.size() != 3) ThrowRange("mean and std need 3 values each");
    for (int c = 0; c < 3; ++c) {
      if (!(sd[c] > 0)) ThrowRange("std values must be positive");
      mean[c] = static_cast<float>(m[c]);
      invStd[c] = static_cast<float>(1.0 / sd[c]);
    }
  }

  // Appends image i's window (crops[i], default (0, 0)) and flip (flips[i], default no), checked
  // against its w x h pixels (w, h >= 1). Reading crops and flips may run JS getters.
  void ReadImage(const Napi::Value& crops, const Napi::Value& flipsArg, uint32_t i, int64_t w, int64_t h) {
    int64_t cx = 0, cy = 0;
    if (crops.IsArray()) {
      auto xy = ToInts(crops.As<Napi::Array>().Get(i), "crops");
      if (xy.size() != 2) ThrowRange("crops entries are [x, y]");
      cx = xy[0];
      cy = xy[1];
    }
    // Compared without adding: a corner near 2^63 plus the window's size would wrap past int64.
    if (cx < 0 || cy < 0 || cx > w - outW || cy > h - outH) {
      ThrowRange("crop of " + std::to_string(outW) + "x" + std::to_string(outH) + " at (" + std::to_string(cx) + ", " + std::to_string(cy) +
                 ") does not fit image " + std::to_string(i) + " of " + std::to_string(w) + "x" + std::to_string(h));
    }
    cropX.push_back(cx);
    cropY.push_back(cy);
    bool flip = false;
    if (flipsArg.IsArray()) {
      Napi::Value f = flipsArg.As<Napi::Array>().Get(i);
      if (!f.IsBoolean()) ThrowType("flips entries must be booleans");
      flip = f.As<Napi::Boolean>().Value();
    }
    flips.push_back(flip ? 1 : 0);
  }

  // Writes image i's window from its HWC pixels (`width` wide) to out[k], in parallel over rows,
  // for every (k, i, pixels, width) that `source(k)` gives.
  template <typename Source>
  torch::Tensor Write(int64_t count, Source source) const {
    torch::Tensor out = torch::empty({count, 3, outH, outW}, torch::kFloat32);
    float* dst = out.data_ptr<float>();
    const int64_t plane = outH * outW;
    at::parallel_for(0, count * outH, 1, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const int64_t k = r / outH, y = r % outH;
        const auto [i, pixels, width] = source(k);
        const uint8_t* row = pixels + ((cropY[i] + y) * width + cropX[i]) * 3;
        float* o = dst + k * 3 * plane + y * outW;
        const bool flip = flips[i] != 0;
        for (int64_t x = 0; x < outW; ++x) {
          const uint8_t* px = row + (flip ? outW - 1 - x : x) * 3;
          for (int c = 0; c < 3; ++c) o[c * plane + x] = (px[c] * (1.0f / 255.0f) - mean[c]) * invStd[c];
        }
      }
    });
    return out;
  }
};

struct ImageJob {
  std::vector<std::vector<uint8_t>> pixels;  // one HWC RGB buffer per image
  std::vector<int64_t> widths;
  Window win;
};

static torch::Tensor Convert(const ImageJob& job) {
  return job.win.Write(static_cast<int64_t>(job.pixels.size()), [&](int64_t k) {
    return std::make_tuple(k, job.pixels[k].data(), job.widths[k]);
  });
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
    Window& win = job->win;
    win.outH = OptInt(o, "outH", 0);
    win.outW = OptInt(o, "outW", 0);
    if (win.outH < 1 || win.outW < 1) ThrowRange("outH and outW must be positive");
    const uint32_t n = arr.Length();
    if (n == 0) ThrowRange("imagesToTensor needs at least one image");
    Napi::Value crops = o.Get("crops"), flips = o.Get("flips");
    win.ReadNormalization(o);
    for (uint32_t i = 0; i < n; ++i) {
      const std::string name = "images[" + std::to_string(i) + "]";
      Napi::Value v = arr.Get(i);
      if (!v.IsObject()) ThrowType("Expected { data, width, height } for " + name);
      Napi::Object img = v.As<Napi::Object>();
      Napi::Value data = img.Get("data");
      if (!data.IsTypedArray()) ThrowType("Expected a Uint8Array for " + name + ".data");
      const int64_t w = ToInt(img.Get("width"), "width"), h = ToInt(img.Get("height"), "height");
      if (w < 1 || h < 1) ThrowRange("image " + std::to_string(i) + " has no pixels");
      int64_t need = 0;
      if (__builtin_mul_overflow(w, h, &need) || __builtin_mul_overflow(need, int64_t{3}, &need)) {
        ThrowRange(name + " is " + std::to_string(w) + "x" + std::to_string(h) + ": its RGB bytes would pass int64 (width and height too large)");
      }
      win.ReadImage(crops, flips, i, w, h);
      // The image's bytes last (the getters above may have detached or shrunk its buffer), copied at once.
      const ByteView bytes = TypedArrayBytes(data);
      if (static_cast<int64_t>(bytes.length) != need) {
        ThrowRange(name + " holds " + std::to_string(bytes.length) + " bytes but " + std::to_string(w) + "x" + std::to_string(h) + " RGB needs " +
                   std::to_string(need));
      }
      job->pixels.emplace_back(bytes.data, bytes.data + bytes.length);
      job->widths.push_back(w);
    }
    return RunTensors<Async>(info.Env(), [job]() -> Tensors { return {Convert(*job)}; });
  });
}

// ---------- Pillow's pixels: decode, convert, resize, encode (native/pillow) ----------

// Reads { data: Uint8Array, width, height, mode } into a pillow::Image (a copy).
static pillow::Image ReadImage(const Napi::Value& v, const char* name) {
  if (!v.IsObject()) ThrowType(std::string("Expected { data, width, height, mode } for ") + name);
  Napi::Object o = v.As<Napi::Object>();
  Napi::Value data = o.Get("data");
  if (!data.IsTypedArray()) ThrowType(std::string("Expected a Uint8Array for ") + name + ".data");
  pillow::Image img;
  img.width = ToInt(o.Get("width"), "width");
  img.height = ToInt(o.Get("height"), "height");
  if (img.width < 1 || img.height < 1) ThrowRange(std::string(name) + " has no pixels");
  const Napi::Value modeValue = o.Get("mode");
  const std::string mode = modeValue.IsString() ? modeValue.As<Napi::String>().Utf8Value() : "RGB";
  int64_t pixels = 0;
  if (__builtin_mul_overflow(img.width, img.height, &pixels)) {
    ThrowRange(std::string(name) + " is " + std::to_string(img.width) + "x" + std::to_string(img.height) + ": more pixels than an int64 can count");
  }
  // The bytes last (the getters above may have detached or shrunk the buffer), copied at once.
  const ByteView bytes = TypedArrayBytes(data);
  const int64_t length = static_cast<int64_t>(bytes.length);
  // A palette image comes with its palette applied: 3 bytes a pixel, or 4 with transparency.
  const int channels = mode == "P" && length % 4 == 0 && length / 4 == pixels ? 4 : 3;
  try {
    img.mode = pillow::ParseMode(mode, channels);
  } catch (const std::invalid_argument& e) {
    ThrowRange(e.what());
  }
  int64_t need = 0;
  const bool countable = !__builtin_mul_overflow(pixels, static_cast<int64_t>(pillow::PixelBytes(img.mode)), &need);
  if (!countable || length != need) {
    ThrowRange(std::string(name) + " holds " + std::to_string(length) + " bytes but " + std::to_string(img.width) + "x" + std::to_string(img.height) +
               " " + mode + " needs " + (countable ? std::to_string(need) : std::string("more than an int64 can count")));
  }
  img.data.assign(bytes.data, bytes.data + bytes.length);
  return img;
}

static Napi::Value WrapImage(Napi::Env env, const pillow::Image& img) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("data", Napi::Buffer<uint8_t>::Copy(env, img.data.data(), img.data.size()));
  out.Set("width", Napi::Number::New(env, static_cast<double>(img.width)));
  out.Set("height", Napi::Number::New(env, static_cast<double>(img.height)));
  out.Set("mode", pillow::ModeName(img.mode));
  out.Set("channels", pillow::PixelBytes(img.mode));
  return out;
}

struct PillowJob {
  std::vector<uint8_t> jpeg;  // encoded input, when not `image`
  pillow::Image image;
  int64_t maxPixels = 0;
  int orientation = 1;
  bool rgb = false;
  int64_t width = 0, height = 0;  // 0: keep the size
  pillow::Filter filter = pillow::Filter::kLanczos;
};

static pillow::Image RunPillow(PillowJob& job) {
  pillow::Image img;
  if (job.jpeg.empty()) {
    img = std::move(job.image);
  } else {
    try {
      img = pillow::DecodeJpeg(job.jpeg.data(), job.jpeg.size(), job.maxPixels);
    } catch (const std::exception& e) {
      throw std::runtime_error(std::string("cannot decode image (") + e.what() + ")");
    }
  }
  if (job.orientation != 1) img = pillow::Orient(img, job.orientation);
  // The book's order: convert('RGB'), then resize.
  if (job.rgb) img = pillow::ToRGB(img);
  if (job.width > 0) img = pillow::Resize(img, job.width, job.height, job.filter);
  return img;
}

// pillowImage(input: Uint8Array (a JPEG file) | { data, width, height, mode }, { rgb?, width?, height?,
//   filter?, orientation?, maxPixels? }) -> Promise<{ data, width, height, mode, channels }>
static Napi::Value PillowImage(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, {
    auto job = std::make_shared<PillowJob>();
    if (info.Length() > 0 && info[0].IsTypedArray()) {
      if (!pillow::HasJpeg()) ThrowError("this build has no native JPEG decoding (libjpeg-turbo was not found at build time)");
      auto ta = info[0].As<Napi::TypedArray>();
      if (ta.ByteLength() == 0) ThrowRange("empty image data");
      const uint8_t* p = static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
      job->jpeg.assign(p, p + ta.ByteLength());
    } else {
      job->image = ReadImage(info.Length() > 0 ? info[0] : info.Env().Undefined(), "image");
    }
    Napi::Object o = ArgOptions(info, 1);
    job->rgb = OptBool(o, "rgb", false);
    job->width = OptInt(o, "width", 0);
    job->height = OptInt(o, "height", 0);
    if (job->width < 0 || job->height < 0 || (job->width == 0) != (job->height == 0)) ThrowRange("width and height must both be positive (or both absent)");
    // The resized image (at most 4 bytes a pixel) must be one that can exist here.
    if (job->width > 0) CheckTensorSize("pillowImage: a resize to " + std::to_string(job->width) + "x" + std::to_string(job->height), {job->height, job->width, 4}, torch::kUInt8);
    job->maxPixels = OptInt(o, "maxPixels", 0);
    job->orientation = static_cast<int>(OptInt(o, "orientation", 1));
    try {
      job->filter = pillow::ParseFilter(OptString(o, "filter", "lanczos"));
    } catch (const std::invalid_argument& e) {
      ThrowRange(e.what());
    }
    return RunAsync<pillow::Image>(
        info.Env(), [job]() { return RunPillow(*job); }, [](Napi::Env env, pillow::Image& img) { return WrapImage(env, img); });
  });
}

// pillowEncodeJpeg({ data, width, height, mode }, { quality, subsampling: '4:4:4' | '4:2:2' | '4:2:0' }) -> Promise<Buffer>
static Napi::Value PillowEncodeJpeg(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, {
    if (!pillow::HasJpeg()) ThrowError("this build has no native JPEG encoding (libjpeg-turbo was not found at build time)");
    auto image = std::make_shared<pillow::Image>(ReadImage(info.Length() > 0 ? info[0] : info.Env().Undefined(), "image"));
    Napi::Object o = ArgOptions(info, 1);
    const int quality = static_cast<int>(OptInt(o, "quality", 75));
    if (quality < 1 || quality > 100) ThrowRange("quality must be an integer from 1 to 100");
    const std::string s = OptString(o, "subsampling", "4:2:0");
    pillow::Subsampling sub = pillow::Subsampling::k420;
    if (s == "4:4:4") sub = pillow::Subsampling::k444;
    else if (s == "4:2:2") sub = pillow::Subsampling::k422;
    else if (s != "4:2:0") ThrowRange("subsampling must be '4:4:4', '4:2:2' or '4:2:0'");
    return RunAsync<std::vector<uint8_t>>(
        info.Env(), [image, quality, sub]() { return pillow::EncodeJpeg(*image, quality, sub); },
        [](Napi::Env env, std::vector<uint8_t>& bytes) -> Napi::Value { return Napi::Buffer<uint8_t>::Copy(env, bytes.data(), bytes.size()); });
  });
}

// jpegSize(bytes) -> { width, height, components } or null when the bytes are not a readable JPEG header.
static Napi::Value JpegSize(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, {
    if (info.Length() < 1 || !info[0].IsTypedArray()) ThrowType("Expected a Uint8Array for bytes");
    auto ta = info[0].As<Napi::TypedArray>();
    pillow::JpegHeader h;
    const auto* p = static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
    if (!pillow::ReadJpegHeader(p, ta.ByteLength(), &h)) return info.Env().Null();
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("width", Napi::Number::New(info.Env(), static_cast<double>(h.width)));
    o.Set("height", Napi::Number::New(info.Env(), static_cast<double>(h.height)));
    o.Set("components", h.components);
    return o;
  });
}

// ---------- the training loader's JPEGs: decode and batch in one native pass ----------
//
// sharp decodes any image, but for the training loader's many small JPEGs its per-image overhead
// dominates; libjpeg-turbo called directly, on all cores at once, and fused with the
// crop/flip/normalize pass, keeps the model fed. Images that are not JPEGs of the expected size go
// through lib/data/images.ts. The pixels are Pillow's (native/pillow): decode, then convert('RGB').

struct JpegJob {
  std::vector<std::vector<uint8_t>> files;
  int64_t size = 0;  // every image must decode to size x size
  Window win;
};

struct JpegResult {
  torch::Tensor batch;  // [good images, 3, outH, outW], undefined when none decoded
  std::vector<std::pair<int64_t, std::string>> failed;
};

static JpegResult DecodeJpegs(const JpegJob& job) {
  const int64_t n = static_cast<int64_t>(job.files.size());
  std::vector<std::vector<uint8_t>> rgb(n);
  std::vector<std::string> error(n);
  at::parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const auto& f = job.files[i];
      pillow::JpegHeader h;
      if (!pillow::ReadJpegHeader(f.data(), f.size(), &h)) {
        error[i] = "not a readable JPEG";
        continue;
      }
      if (h.width != job.size || h.height != job.size) {
        error[i] = "is " + std::to_string(h.width) + "x" + std::to_string(h.height) + ", not " + std::to_string(job.size) + "x" + std::to_string(job.size);
        continue;
      }
      try {
        pillow::Image img = pillow::DecodeJpeg(f.data(), f.size(), 0);
        rgb[i] = img.mode == pillow::Mode::kRGB ? std::move(img.data) : pillow::ToRGB(img).data;
      } catch (const std::exception& e) {
        error[i] = e.what();
      }
    }
  });
  JpegResult r;
  std::vector<int64_t> good;
  for (int64_t i = 0; i < n; ++i) {
    if (error[i].empty()) good.push_back(i);
    else r.failed.emplace_back(i, error[i]);
  }
  if (good.empty()) return r;
  r.batch = job.win.Write(static_cast<int64_t>(good.size()), [&](int64_t k) {
    const int64_t i = good[k];
    return std::make_tuple(i, static_cast<const uint8_t*>(rgb[i].data()), job.size);
  });
  return r;
}

// decodeJpegBatch(files: Uint8Array[], { size, outH, outW, crops?, flips?, mean, std })
//   -> Promise<{ tensor: Tensor | null, failed: [index, reason][] }>  (tensor rows: the good files, in order)
static Napi::Value DecodeJpegBatch(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, {
    if (!info[0].IsArray()) ThrowType("Expected an array of Uint8Arrays for files");
    auto arr = info[0].As<Napi::Array>();
    Napi::Object o = ArgOptions(info, 1);
    auto job = std::make_shared<JpegJob>();
    Window& win = job->win;
    job->size = OptInt(o, "size", 0);
    win.outH = OptInt(o, "outH", 0);
    win.outW = OptInt(o, "outW", 0);
    if (job->size < 1 || win.outH < 1 || win.outW < 1 || win.outH > job->size || win.outW > job->size) ThrowRange("need 0 < outH, outW <= size");
    win.ReadNormalization(o);
    Napi::Value crops = o.Get("crops"), flips = o.Get("flips");
    for (uint32_t i = 0; i < arr.Length(); ++i) {
      Napi::Value v = arr.Get(i);
      if (!v.IsTypedArray()) ThrowType("Expected a Uint8Array for files[" + std::to_string(i) + "]");
      auto ta = v.As<Napi::TypedArray>();
      const uint8_t* p = static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
      job->files.emplace_back(p, p + ta.ByteLength());
      win.ReadImage(crops, flips, i, job->size, job->size);
    }
    return RunAsync<JpegResult>(
        info.Env(), [job]() { return DecodeJpegs(*job); },
        [](Napi::Env env, JpegResult& r) -> Napi::Value {
          Napi::Object out = Napi::Object::New(env);
          out.Set("tensor", r.batch.defined() ? Napi::Value(WrapTensor(env, r.batch)) : env.Null());
          Napi::Array failed = Napi::Array::New(env, r.failed.size());
          for (size_t k = 0; k < r.failed.size(); ++k) {
            Napi::Array pair = Napi::Array::New(env, 2);
            pair.Set(0u, Napi::Number::New(env, static_cast<double>(r.failed[k].first)));
            pair.Set(1u, r.failed[k].second);
            failed.Set(static_cast<uint32_t>(k), pair);
          }
          out.Set("failed", failed);
          return out;
        });
  });
}

void InitImage(Napi::Env env, Napi::Object exports) {
  if (pillow::HasJpeg()) {
    exports.Set("jpegSize", Napi::Function::New<JpegSize>(env, "jpegSize"));
    exports.Set("decodeJpegBatch", Napi::Function::New<DecodeJpegBatch>(env, "decodeJpegBatch"));
    exports.Set("pillowEncodeJpeg", Napi::Function::New<PillowEncodeJpeg>(env, "pillowEncodeJpeg"));
  }
  exports.Set("hasTurboJpeg", Napi::Boolean::New(env, pillow::HasJpeg()));
  exports.Set("pillowImage", Napi::Function::New<PillowImage>(env, "pillowImage"));
  exports.Set("imagesToTensor", Napi::Function::New<ImagesToTensor<false>>(env, "imagesToTensor"));
  exports.Set("imagesToTensorAsync", Napi::Function::New<ImagesToTensor<true>>(env, "imagesToTensorAsync"));
}

}  // namespace torchcap
