// JPEG through libjpeg-turbo's TurboJPEG API with the settings Pillow's JPEG plugin gives libjpeg
// (the same library build, so the same pixels): see pillow.h.
#include <cstring>
#include <memory>

#include "pillow.h"

#ifdef TORCHCAP_TURBOJPEG
#include <turbojpeg.h>
#endif

namespace torchcap::pillow {

#ifdef TORCHCAP_TURBOJPEG

bool HasJpeg() { return true; }

namespace {

struct Handle {
  tjhandle h;
  explicit Handle(bool compress) : h(compress ? tjInitCompress() : tjInitDecompress()) {
    if (!h) throw std::runtime_error("cannot start libjpeg-turbo");
  }
  ~Handle() { tjDestroy(h); }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
};

int ComponentsOf(int colorspace) {
  switch (colorspace) {
    case TJCS_GRAY: return 1;
    case TJCS_CMYK:
    case TJCS_YCCK: return 4;
    default: return 3;
  }
}

}  // namespace

bool ReadJpegHeader(const uint8_t* bytes, size_t size, JpegHeader* header) {
  if (size < 4 || bytes[0] != 0xff || bytes[1] != 0xd8) return false;
  Handle tj(false);
  int w = 0, h = 0, sub = 0, cs = 0;
  if (tjDecompressHeader3(tj.h, const_cast<unsigned char*>(bytes), size, &w, &h, &sub, &cs) != 0 || w < 1 || h < 1) return false;
  header->width = w;
  header->height = h;
  header->components = ComponentsOf(cs);
  return true;
}

Image DecodeJpeg(const uint8_t* bytes, size_t size, int64_t maxPixels) {
  Handle tj(false);
  auto* src = const_cast<unsigned char*>(bytes);
  int w = 0, h = 0, sub = 0, cs = 0;
  if (size < 4 || bytes[0] != 0xff || bytes[1] != 0xd8) throw std::runtime_error("not a JPEG file");
  if (tjDecompressHeader3(tj.h, src, size, &w, &h, &sub, &cs) != 0) {
    throw std::runtime_error(std::string("not a readable JPEG: ") + tjGetErrorStr2(tj.h));
  }
  if (w < 1 || h < 1) throw std::runtime_error("not a readable JPEG: the header ends before the image size");
  if (maxPixels > 0 && static_cast<int64_t>(w) * h > maxPixels) {
    throw std::range_error("image is " + std::to_string(w) + "x" + std::to_string(h) + ", larger than " + std::to_string(maxPixels) + " pixels");
  }
  Image img;
  img.width = w;
  img.height = h;
  const int components = ComponentsOf(cs);
  img.mode = components == 1 ? Mode::kL : components == 4 ? Mode::kCMYK : Mode::kRGB;
  const int pf = components == 1 ? TJPF_GRAY : components == 4 ? TJPF_CMYK : TJPF_RGB;
  img.data.resize(static_cast<size_t>(w) * h * components);
  // No flags: ISLOW DCT and fancy upsampling are TurboJPEG's defaults, as they are libjpeg's.
  if (tjDecompress2(tj.h, src, size, img.data.data(), w, 0, h, pf, 0) != 0) {
    const std::string why = tjGetErrorStr2(tj.h);
    if (tjGetErrorCode(tj.h) != TJERR_WARNING) throw std::runtime_error("corrupt JPEG: " + why);
    // Pillow lets libjpeg's warnings (extraneous bytes, corrupt data it can step over) pass, but
    // refuses a file that ends before the image does.
    if (why.find("Premature end of JPEG file") != std::string::npos) throw std::runtime_error("truncated JPEG: " + why);
  }
  if (img.mode == Mode::kCMYK) {
    for (auto& v : img.data) v = static_cast<uint8_t>(255 - v);  // Pillow reads CMYK as "CMYK;I"
  }
  return img;
}

std::vector<uint8_t> EncodeJpeg(const Image& in, int quality, Subsampling subsampling) {
  if (quality < 1 || quality > 100) throw std::invalid_argument("JPEG quality must be 1..100");
  if (in.width > 65535 || in.height > 65535) throw std::range_error("JPEG images are at most 65535 pixels on a side");
  const uint8_t* pixels = in.data.data();
  std::vector<uint8_t> inverted;
  int pf = 0, sub = 0;
  switch (in.mode) {
    case Mode::kOne:
    case Mode::kL:
      pf = TJPF_GRAY;
      sub = TJSAMP_GRAY;
      break;
    case Mode::kRGB:
      pf = TJPF_RGB;
      sub = subsampling == Subsampling::k444 ? TJSAMP_444 : subsampling == Subsampling::k422 ? TJSAMP_422 : TJSAMP_420;
      break;
    case Mode::kCMYK:
      // Pillow writes CMYK inverted (Adobe's convention) and reads it back inverted.
      inverted.resize(in.data.size());
      for (size_t i = 0; i < inverted.size(); ++i) inverted[i] = static_cast<uint8_t>(255 - in.data[i]);
      pixels = inverted.data();
      pf = TJPF_CMYK;
      sub = TJSAMP_444;
      break;
    default:
      throw ModeError(std::string("cannot write mode ") + ModeName(in.mode) + " as JPEG");
  }
  Handle tj(true);
  unsigned char* out = nullptr;
  unsigned long outSize = 0;
  // TJFLAG_ACCURATEDCT: the ISLOW DCT that libjpeg (and so Pillow) uses by default.
  const int rc = tjCompress2(tj.h, pixels, static_cast<int>(in.width), 0, static_cast<int>(in.height), pf, &out, &outSize, sub, quality,
                             TJFLAG_ACCURATEDCT);
  std::unique_ptr<unsigned char, void (*)(unsigned char*)> owned(out, [](unsigned char* p) { tjFree(p); });
  if (rc != 0) throw std::runtime_error(std::string("cannot encode JPEG: ") + tjGetErrorStr2(tj.h));
  return std::vector<uint8_t>(out, out + outSize);
}

#else

bool HasJpeg() { return false; }
bool ReadJpegHeader(const uint8_t*, size_t, JpegHeader*) { return false; }
Image DecodeJpeg(const uint8_t*, size_t, int64_t) { throw std::runtime_error("this build has no native JPEG decoding (libjpeg-turbo was not found at build time)"); }
std::vector<uint8_t> EncodeJpeg(const Image&, int, Subsampling) {
  throw std::runtime_error("this build has no native JPEG encoding (libjpeg-turbo was not found at build time)");
}

#endif

}  // namespace torchcap::pillow
