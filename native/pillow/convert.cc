// Pillow's modes and its convert('RGB') (libImaging/Convert.c's rules, written from them), and
// the EXIF orientation transposes of ImageOps.exif_transpose.
#include <cstring>

#include "pillow.h"

namespace torchcap::pillow {

int PixelBytes(Mode mode) {
  switch (mode) {
    case Mode::kOne:
    case Mode::kL: return 1;
    case Mode::kLA:
    case Mode::kI16: return 2;
    case Mode::kP:
    case Mode::kRGB: return 3;
    default: return 4;  // PA, RGBA, CMYK, I
  }
}

const char* ModeName(Mode mode) {
  switch (mode) {
    case Mode::kOne: return "1";
    case Mode::kL: return "L";
    case Mode::kLA: return "LA";
    case Mode::kP:
    case Mode::kPA: return "P";
    case Mode::kRGB: return "RGB";
    case Mode::kRGBA: return "RGBA";
    case Mode::kCMYK: return "CMYK";
    case Mode::kI: return "I";
    case Mode::kI16: return "I;16";
  }
  return "?";
}

Mode ParseMode(const std::string& name, int channels) {
  if (name == "1") return Mode::kOne;
  if (name == "L") return Mode::kL;
  if (name == "LA") return Mode::kLA;
  if (name == "P") return channels == 4 ? Mode::kPA : Mode::kP;
  if (name == "RGB") return Mode::kRGB;
  if (name == "RGBA") return Mode::kRGBA;
  if (name == "CMYK") return Mode::kCMYK;
  if (name == "I") return Mode::kI;
  if (name == "I;16") return Mode::kI16;
  throw std::invalid_argument("unsupported image mode '" + name + "' (1, L, LA, P, RGB, RGBA, CMYK, I, I;16)");
}

namespace {

inline uint8_t Clip8(int v) { return static_cast<uint8_t>(v <= 0 ? 0 : v < 256 ? v : 255); }

inline int MulDiv255(int a, int b) {
  const int t = a * b + 128;
  return ((t >> 8) + t) >> 8;
}

}  // namespace

Image ToRGB(const Image& in) {
  Image out;
  out.mode = Mode::kRGB;
  out.width = in.width;
  out.height = in.height;
  const size_t n = static_cast<size_t>(in.width * in.height);
  if (in.mode == Mode::kRGB || in.mode == Mode::kP) {
    out.data = in.data;
    return out;
  }
  out.data.resize(n * 3);
  uint8_t* o = out.data.data();
  const uint8_t* p = in.data.data();
  auto grey = [&](size_t i, uint8_t v) { o[i * 3] = o[i * 3 + 1] = o[i * 3 + 2] = v; };
  switch (in.mode) {
    case Mode::kOne:
      for (size_t i = 0; i < n; ++i) grey(i, p[i] != 0 ? 255 : 0);
      break;
    case Mode::kL:
      for (size_t i = 0; i < n; ++i) grey(i, p[i]);
      break;
    case Mode::kLA:  // alpha dropped
      for (size_t i = 0; i < n; ++i) grey(i, p[i * 2]);
      break;
    case Mode::kPA:
    case Mode::kRGBA:  // alpha dropped, not composited
      for (size_t i = 0; i < n; ++i) std::memcpy(o + i * 3, p + i * 4, 3);
      break;
    case Mode::kCMYK:  // Pillow's cmyk2rgb: no colour management
      for (size_t i = 0; i < n; ++i) {
        const uint8_t* q = p + i * 4;
        const int nk = 255 - q[3];
        for (int c = 0; c < 3; ++c) o[i * 3 + c] = Clip8(nk - MulDiv255(q[c], nk));
      }
      break;
    case Mode::kI:  // clipped, not scaled
      for (size_t i = 0; i < n; ++i) {
        int32_t v;
        std::memcpy(&v, p + i * 4, 4);
        grey(i, static_cast<uint8_t>(v <= 0 ? 0 : v >= 255 ? 255 : v));
      }
      break;
    case Mode::kI16:  // Pillow has no I;16 -> RGB: it goes through L, clipping
      for (size_t i = 0; i < n; ++i) grey(i, p[i * 2 + 1] != 0 ? 255 : p[i * 2]);
      break;
    default:
      break;
  }
  return out;
}

Image Orient(const Image& in, int orientation) {
  if (orientation < 2 || orientation > 8) return in;
  // 5..8 swap the axes. For each output pixel (x, y): the source pixel.
  const bool swap = orientation >= 5;
  Image out;
  out.mode = in.mode;
  out.width = swap ? in.height : in.width;
  out.height = swap ? in.width : in.height;
  const int bytes = PixelBytes(in.mode);
  out.data.resize(in.data.size());
  const int64_t W = in.width, H = in.height;
  for (int64_t y = 0; y < out.height; ++y) {
    for (int64_t x = 0; x < out.width; ++x) {
      int64_t sx = x, sy = y;
      switch (orientation) {
        case 2: sx = W - 1 - x; break;                    // mirrored
        case 3: sx = W - 1 - x; sy = H - 1 - y; break;    // upside down
        case 4: sy = H - 1 - y; break;                    // mirrored vertically
        case 5: sx = y; sy = x; break;                    // transposed
        case 6: sx = y; sy = H - 1 - x; break;            // needs 90 degrees clockwise
        case 7: sx = W - 1 - y; sy = H - 1 - x; break;    // transversed
        case 8: sx = W - 1 - y; sy = x; break;            // needs 90 degrees anticlockwise
      }
      std::memcpy(out.data.data() + (y * out.width + x) * bytes, in.data.data() + (sy * W + sx) * bytes, bytes);
    }
  }
  return out;
}

}  // namespace torchcap::pillow
