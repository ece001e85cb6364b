// Image.resize as Pillow 9.4 computes it, written from its algorithm (libImaging/Resample.c and
// the nearest-neighbour scaling of Geometry.c): a separable convolution, horizontal pass first
// (only over the rows the vertical pass reads), then vertical. Each output pixel's weights are
// the filter sampled at the input pixel centres, scaled by the reduction factor when shrinking,
// normalised to sum 1, then for 8-bit images turned into 22-bit fixed point; sums start at half a
// unit and are clipped to 0..255 after each pass. 32-bit integer images (I) keep double weights
// and round half away from zero.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "pillow.h"

namespace torchcap::pillow {

namespace {

// ---------- the filters (Pillow's supports and kernels) ----------

double BoxKernel(double x) { return (x > -0.5 && x <= 0.5) ? 1.0 : 0.0; }

double TriangleKernel(double x) {
  if (x < 0.0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}

double HammingKernel(double x) {
  if (x < 0.0) x = -x;
  if (x == 0.0) return 1.0;
  if (x >= 1.0) return 0.0;
  x *= M_PI;
  // Pillow writes the window's constants as floats: keep their float values.
  return std::sin(x) / x * (0.54f + 0.46f * std::cos(x));
}

double CubicKernel(double x) {
  const double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

double Sinc(double x) {
  if (x == 0.0) return 1.0;
  x *= M_PI;
  return std::sin(x) / x;
}

double LanczosKernel(double x) { return (-3.0 <= x && x < 3.0) ? Sinc(x) * Sinc(x / 3) : 0.0; }

struct Kernel {
  double (*f)(double);
  double support;
};

Kernel KernelOf(Filter filter) {
  switch (filter) {
    case Filter::kBox: return {BoxKernel, 0.5};
    case Filter::kBilinear: return {TriangleKernel, 1.0};
    case Filter::kHamming: return {HammingKernel, 1.0};
    case Filter::kBicubic: return {CubicKernel, 2.0};
    case Filter::kLanczos: return {LanczosKernel, 3.0};
    default: throw std::invalid_argument("no convolution kernel for nearest-neighbour resampling");
  }
}

// ---------- weights ----------

constexpr int kPrecisionBits = 32 - 8 - 2;

// For each output pixel: the first input pixel it reads, how many, and their weights (`ksize` a
// pixel, unused ones zero).
struct Weights {
  int ksize = 0;
  std::vector<int> first, count;
  std::vector<double> w;
  std::vector<int32_t> fixed;  // w in fixed point, for 8-bit images
};

// `inSize` pixels to `outSize`, over the whole input (Pillow's box (0, inSize), held as floats).
Weights ComputeWeights(int64_t inSize, int64_t outSize, const Kernel& kernel) {
  const float in0 = 0.0f, in1 = static_cast<float>(inSize);
  const double scale = static_cast<double>(in1 - in0) / static_cast<double>(outSize);
  const double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = kernel.support * filterscale;
  Weights r;
  r.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  r.first.resize(outSize);
  r.count.resize(outSize);
  r.w.assign(static_cast<size_t>(outSize) * r.ksize, 0.0);
  for (int64_t xx = 0; xx < outSize; ++xx) {
    const double center = in0 + (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);  // truncation, as Pillow rounds
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > inSize) xmax = static_cast<int>(inSize);
    xmax -= xmin;
    double* k = &r.w[xx * r.ksize];
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      const double v = kernel.f((x + xmin - center + 0.5) * ss);
      k[x] = v;
      ww += v;
    }
    for (int x = 0; x < xmax; ++x) {
      if (ww != 0.0) k[x] /= ww;
    }
    r.first[xx] = xmin;
    r.count[xx] = xmax;
  }
  r.fixed.resize(r.w.size());
  for (size_t i = 0; i < r.w.size(); ++i) {
    const double v = r.w[i] * (1 << kPrecisionBits);
    r.fixed[i] = static_cast<int32_t>(r.w[i] < 0 ? -0.5 + v : 0.5 + v);
  }
  return r;
}

inline uint8_t Clip8(int32_t v) {
  const int32_t s = v >> kPrecisionBits;  // arithmetic shift: floor
  return static_cast<uint8_t>(s < 0 ? 0 : s > 255 ? 255 : s);
}

inline int32_t RoundHalfAway(double v) { return static_cast<int32_t>(v >= 0.0 ? v + 0.5f : v - 0.5f); }

// ---------- 8-bit images ----------

// Pixels of C bytes from rows [rowFirst, rowFirst + rows) of a `width`-wide image, transposed:
// out[x * rows + y] = in[rowFirst + y][x], in square tiles for the caches.
template <int C>
void Transpose(const uint8_t* in, int64_t width, int64_t rowFirst, int64_t rows, uint8_t* out) {
  constexpr int64_t kTile = 32;
  for (int64_t y0 = 0; y0 < rows; y0 += kTile) {
    for (int64_t x0 = 0; x0 < width; x0 += kTile) {
      const int64_t y1 = std::min(rows, y0 + kTile), x1 = std::min(width, x0 + kTile);
      for (int64_t y = y0; y < y1; ++y) {
        const uint8_t* src = in + ((rowFirst + y) * width + x0) * C;
        for (int64_t x = x0; x < x1; ++x, src += C) std::memcpy(out + (x * rows + y) * C, src, C);
      }
    }
  }
}

template <typename F>
void ForPixelSize(int bytes, F&& f) {
  switch (bytes) {
    case 1: return f(std::integral_constant<int, 1>());
    case 2: return f(std::integral_constant<int, 2>());
    case 3: return f(std::integral_constant<int, 3>());
    default: return f(std::integral_constant<int, 4>());
  }
}

// Integer sums do not depend on their order: rows are accumulated a whole row at a time.
void Vertical8(const uint8_t* in, int64_t stride, int64_t rowShift, const Weights& w, int64_t outH, uint8_t* out) {
  std::vector<int32_t> acc(stride);
  for (int64_t yy = 0; yy < outH; ++yy) {
    const int32_t* k = &w.fixed[yy * w.ksize];
    const uint8_t* src = in + (w.first[yy] - rowShift) * stride;
    std::fill(acc.begin(), acc.end(), 1 << (kPrecisionBits - 1));
    for (int y = 0; y < w.count[yy]; ++y) {
      const uint8_t* row = src + y * stride;
      const int32_t ky = k[y];
      for (int64_t i = 0; i < stride; ++i) acc[i] += row[i] * ky;
    }
    uint8_t* dst = out + yy * stride;
    for (int64_t i = 0; i < stride; ++i) dst[i] = Clip8(acc[i]);
  }
}

// ---------- 32-bit integer images (I) ----------

void Horizontal32(const int32_t* in, int64_t inW, int64_t rowFirst, int64_t rows, const Weights& w, int64_t outW, int32_t* out) {
  for (int64_t y = 0; y < rows; ++y) {
    const int32_t* src = in + (rowFirst + y) * inW;
    for (int64_t xx = 0; xx < outW; ++xx) {
      const double* k = &w.w[xx * w.ksize];
      double ss = 0.0;
      for (int x = 0; x < w.count[xx]; ++x) ss += src[w.first[xx] + x] * k[x];
      out[y * outW + xx] = RoundHalfAway(ss);
    }
  }
}

void Vertical32(const int32_t* in, int64_t width, int64_t rowShift, const Weights& w, int64_t outH, int32_t* out) {
  for (int64_t yy = 0; yy < outH; ++yy) {
    const double* k = &w.w[yy * w.ksize];
    const int32_t* src = in + (w.first[yy] - rowShift) * width;
    for (int64_t x = 0; x < width; ++x) {
      double ss = 0.0;
      for (int y = 0; y < w.count[yy]; ++y) ss += src[y * width + x] * k[y];
      out[yy * width + x] = RoundHalfAway(ss);
    }
  }
}

// The convolution (ImagingResampleInner): horizontal pass over the rows the vertical pass needs,
// then the vertical pass; either is skipped when its size does not change.
Image Convolve(const Image& in, int64_t outW, int64_t outH, const Kernel& kernel) {
  const int bytes = PixelBytes(in.mode);
  const bool int32 = in.mode == Mode::kI;
  const bool needH = outW != in.width, needV = outH != in.height;
  const Weights wh = ComputeWeights(in.width, outW, kernel);
  const Weights wv = ComputeWeights(in.height, outH, kernel);
  const int64_t rowFirst = wv.first[0];
  const int64_t rowLast = wv.first[outH - 1] + wv.count[outH - 1];

  Image tmp;
  const Image* src = &in;
  int64_t shift = 0;  // row of `src` that holds input row 0 of the vertical pass
  if (needH) {
    tmp.mode = in.mode;
    tmp.width = outW;
    tmp.height = rowLast - rowFirst;
    tmp.data.resize(static_cast<size_t>(tmp.width * tmp.height * bytes));
    if (int32) {
      Horizontal32(reinterpret_cast<const int32_t*>(in.data.data()), in.width, rowFirst, tmp.height, wh, outW,
                   reinterpret_cast<int32_t*>(tmp.data.data()));
    } else {
      // The horizontal pass as a vertical one on the transposed rows: each output column is then a
      // weighted sum of whole input columns, which vectorizes (integer sums: the same result).
      const int64_t rows = tmp.height;
      std::vector<uint8_t> columns(static_cast<size_t>(in.width * rows * bytes)), outColumns(static_cast<size_t>(outW * rows * bytes));
      ForPixelSize(bytes, [&](auto c) { Transpose<decltype(c)::value>(in.data.data(), in.width, rowFirst, rows, columns.data()); });
      Vertical8(columns.data(), rows * bytes, 0, wh, outW, outColumns.data());
      ForPixelSize(bytes, [&](auto c) { Transpose<decltype(c)::value>(outColumns.data(), rows, 0, outW, tmp.data.data()); });
    }
    src = &tmp;
    shift = rowFirst;
  }
  if (!needV) return needH ? tmp : in;
  Image out;
  out.mode = in.mode;
  out.width = src->width;
  out.height = outH;
  out.data.resize(static_cast<size_t>(out.width * outH * bytes));
  if (int32) {
    Vertical32(reinterpret_cast<const int32_t*>(src->data.data()), src->width, shift, wv, outH, reinterpret_cast<int32_t*>(out.data.data()));
  } else {
    Vertical8(src->data.data(), src->width * bytes, shift, wv, outH, out.data.data());
  }
  return out;
}

// ---------- nearest neighbour ----------

// Pillow's 8- and 32-bit images: ImagingScaleAffine, which steps the source coordinate by adding
// the scale once per pixel (its rounding drift included) and truncates it.
Image NearestScale(const Image& in, int64_t outW, int64_t outH) {
  const int bytes = PixelBytes(in.mode);
  const double a0 = static_cast<double>(static_cast<float>(in.width)) / outW;
  const double a4 = static_cast<double>(static_cast<float>(in.height)) / outH;
  auto coord = [](double v) -> int64_t { return v < 0.0 ? -1 : static_cast<int64_t>(static_cast<int>(v)); };
  std::vector<int64_t> xin(outW, -1);
  double xo = a0 * 0.5;
  for (int64_t x = 0; x < outW; ++x, xo += a0) {
    const int64_t v = coord(xo);
    if (v >= 0 && v < in.width) xin[x] = v;
  }
  Image out;
  out.mode = in.mode;
  out.width = outW;
  out.height = outH;
  out.data.assign(static_cast<size_t>(outW * outH * bytes), 0);  // Pillow fills what maps outside with 0
  double yo = a4 * 0.5;
  for (int64_t y = 0; y < outH; ++y, yo += a4) {
    const int64_t yi = coord(yo);
    if (yi < 0 || yi >= in.height) continue;
    const uint8_t* row = in.data.data() + yi * in.width * bytes;
    uint8_t* dst = out.data.data() + y * outW * bytes;
    for (int64_t x = 0; x < outW; ++x) {
      if (xin[x] >= 0) std::memcpy(dst + x * bytes, row + xin[x] * bytes, bytes);
    }
  }
  return out;
}

// I;16 (a "special" type to Pillow): the generic affine transform, which computes each pixel's
// source coordinate afresh.
Image NearestGeneric(const Image& in, int64_t outW, int64_t outH) {
  const int bytes = PixelBytes(in.mode);
  const double a0 = static_cast<double>(static_cast<float>(in.width)) / outW, a1 = 0.0, a2 = 0.0;
  const double a3 = 0.0, a4 = static_cast<double>(static_cast<float>(in.height)) / outH, a5 = 0.0;
  auto coord = [](double v) -> int64_t { return v < 0.0 ? -1 : static_cast<int64_t>(static_cast<int>(v)); };
  Image out;
  out.mode = in.mode;
  out.width = outW;
  out.height = outH;
  out.data.assign(static_cast<size_t>(outW * outH * bytes), 0);
  for (int64_t y = 0; y < outH; ++y) {
    for (int64_t x = 0; x < outW; ++x) {
      const double xi = x + 0.5, yi = y + 0.5;
      const int64_t sx = coord(a0 * xi + a1 * yi + a2), sy = coord(a3 * xi + a4 * yi + a5);
      if (sx < 0 || sx >= in.width || sy < 0 || sy >= in.height) continue;
      std::memcpy(out.data.data() + (y * outW + x) * bytes, in.data.data() + (sy * in.width + sx) * bytes, bytes);
    }
  }
  return out;
}

// ---------- premultiplied alpha (Pillow's RGBA <-> RGBa and LA <-> La) ----------

inline uint8_t MulDiv255(unsigned a, unsigned b) {
  const unsigned t = a * b + 128;
  return static_cast<uint8_t>(((t >> 8) + t) >> 8);
}

inline uint8_t Unpremultiply(unsigned v, unsigned alpha) {
  const unsigned q = (255 * v) / alpha;
  return static_cast<uint8_t>(q > 255 ? 255 : q);
}

// `colours` colour bytes then one alpha byte a pixel.
void Premultiply(std::vector<uint8_t>& data, int colours) {
  const int n = colours + 1;
  for (size_t i = 0; i + n <= data.size(); i += n) {
    const unsigned a = data[i + colours];
    for (int c = 0; c < colours; ++c) data[i + c] = MulDiv255(data[i + c], a);
  }
}

void Unpremultiply(std::vector<uint8_t>& data, int colours) {
  const int n = colours + 1;
  for (size_t i = 0; i + n <= data.size(); i += n) {
    const unsigned a = data[i + colours];
    if (a == 255 || a == 0) continue;
    for (int c = 0; c < colours; ++c) data[i + c] = Unpremultiply(data[i + c], a);
  }
}

}  // namespace

Image Resize(const Image& in, int64_t width, int64_t height, Filter filter) {
  if (width < 1 || height < 1) throw std::invalid_argument("height and width must be > 0");
  if (in.width < 1 || in.height < 1) throw std::invalid_argument("cannot resize an empty image");
  if (width == in.width && height == in.height) return in;
  if (in.mode == Mode::kOne || in.mode == Mode::kP || in.mode == Mode::kPA) filter = Filter::kNearest;
  if (filter == Filter::kNearest) return in.mode == Mode::kI16 ? NearestGeneric(in, width, height) : NearestScale(in, width, height);
  if (in.mode == Mode::kI16) throw ModeError("Pillow resamples 16-bit (I;16) images with NEAREST only (any other filter: \"image has wrong mode\")");
  const Kernel kernel = KernelOf(filter);
  if (in.mode == Mode::kLA || in.mode == Mode::kRGBA) {
    const int colours = in.mode == Mode::kLA ? 1 : 3;
    Image pre = in;
    Premultiply(pre.data, colours);
    Image out = Convolve(pre, width, height, kernel);
    Unpremultiply(out.data, colours);
    return out;
  }
  return Convolve(in, width, height, kernel);
}

Filter ParseFilter(const std::string& name) {
  if (name == "nearest") return Filter::kNearest;
  if (name == "box") return Filter::kBox;
  if (name == "bilinear") return Filter::kBilinear;
  if (name == "hamming") return Filter::kHamming;
  if (name == "bicubic") return Filter::kBicubic;
  if (name == "lanczos" || name == "antialias") return Filter::kLanczos;
  throw std::invalid_argument("unknown resampling filter '" + name + "' (nearest, box, bilinear, hamming, bicubic or lanczos)");
}

}  // namespace torchcap::pillow
