// Pillow's pixels, in plain C++: the image modes Pillow reads, its convert('RGB'), its
// Image.resize (every filter, its fixed-point arithmetic and mode rules) and JPEG decoding and
// encoding with the settings Pillow gives libjpeg-turbo. The reference is Pillow 9.4 (Debian 12),
// whose pixels the book's model was trained on; tests compare with it live. Nothing here touches
// JavaScript or libtorch, so any thread may call it.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace torchcap::pillow {

// Pillow's modes, packed without padding: 1 and L one byte (1 holds 0 or 255), LA two (L, A),
// RGB three, RGBA and CMYK four, I a native int32, I;16 a little-endian uint16. A palette image
// (P) is held with its palette applied: RGB, or RGBA when the palette has transparency (kPA; not
// Pillow's PA mode). That changes none of Pillow's rules for P: resized with NEAREST whatever
// filter is asked, transparency ignored by convert('RGB').
enum class Mode { kOne, kL, kLA, kP, kPA, kRGB, kRGBA, kCMYK, kI, kI16 };

struct Image {
  Mode mode = Mode::kRGB;
  int64_t width = 0, height = 0;
  std::vector<uint8_t> data;  // width * height * PixelBytes(mode)
};

int PixelBytes(Mode mode);
// Pillow's name ("P" for both palette forms).
const char* ModeName(Mode mode);
// Parses a Pillow mode name; `channels` tells the two palette forms apart (3 or 4). Throws
// std::invalid_argument for a mode torchcap does not handle.
Mode ParseMode(const std::string& name, int channels = 3);

// Pillow's Resampling numbers.
enum class Filter { kNearest = 0, kLanczos = 1, kBilinear = 2, kBicubic = 3, kBox = 4, kHamming = 5 };
// "nearest", "box", "bilinear", "hamming", "bicubic", "lanczos" (or "antialias", its old name).
Filter ParseFilter(const std::string& name);

// Raised for what Pillow refuses (a mode it cannot resample or write); the message says why.
struct ModeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Image.convert('RGB'): 1 and L replicated, LA and RGBA drop alpha (no compositing), P through
// its palette, CMYK by Pillow's naive formula (no ICC), I and I;16 clipped to 0..255.
Image ToRGB(const Image& in);

// Image.resize((width, height), filter) with box and reducing_gap None, as Pillow 9.4 does it:
// an unchanged size is a copy; 1 and P use NEAREST; LA and RGBA are resampled premultiplied;
// I;16 refuses any filter but NEAREST (Pillow raises "image has wrong mode").
Image Resize(const Image& in, int64_t width, int64_t height, Filter filter);

// ImageOps.exif_transpose for an EXIF Orientation value (1..8; anything else is no change).
Image Orient(const Image& in, int orientation);

// ---------- JPEG (libjpeg-turbo; only in builds that have it) ----------

struct JpegHeader {
  int64_t width = 0, height = 0;
  int components = 0;  // 1 (Pillow mode L), 3 (RGB) or 4 (CMYK)
};

// Reads the header; false when the bytes are not a JPEG libjpeg-turbo can read.
bool ReadJpegHeader(const uint8_t* bytes, size_t size, JpegHeader* header);

// Decodes as Pillow's JpegImagePlugin does: full size (no draft mode), ISLOW DCT, fancy
// upsampling, no EXIF rotation; one component is L, three RGB, four CMYK (Adobe's inverted
// convention, as Pillow assumes). libjpeg's warnings are ignored, as Pillow does, except a file
// that ends early, which Pillow refuses as truncated. Throws std::runtime_error with the reason.
Image DecodeJpeg(const uint8_t* bytes, size_t size, int64_t maxPixels);

enum class Subsampling { k444, k422, k420 };

// Encodes as Pillow's JpegImagePlugin saves (no ICC profile, baseline, ISLOW DCT): 1 and L as
// greyscale, RGB as YCbCr with `subsampling`, CMYK inverted as Pillow writes it (libjpeg-turbo's
// TurboJPEG API stores it as YCCK, so CMYK round trips within a level of Pillow's). Other modes
// throw ModeError as Pillow's "cannot write mode X as JPEG".
std::vector<uint8_t> EncodeJpeg(const Image& in, int quality, Subsampling subsampling);

bool HasJpeg();

}  // namespace torchcap::pillow
