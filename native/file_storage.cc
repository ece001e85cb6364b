// Reading tensor storages straight from a weight file: each byte range of an open file is read (pread)
// into the memory of a new 1-D tensor, on worker threads, with no copy through JavaScript, and its
// CRC-32 (zip's) is computed chunk by chunk while the chunk is still in the cache. The TypeScript
// reader (lib/serialization) finds the ranges, checks every CRC against the zip's central directory
// and builds the tensors from the storages; what is read is only ever raw bytes.
#include <ATen/Parallel.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "async.h"
#include "common.h"
#include "threads.h"

#ifdef TORCHCAP_ZLIB
#include <zlib.h>
#endif

namespace torchcap {

namespace {

#ifdef TORCHCAP_ZLIB
// zlib's CRC-32, where the build found zlib. The zlib that Node carries (Chromium's) computes it
// with carry-less multiplication once its CPU check has run, which crc32(0, Z_NULL, 0), zlib's
// documented way to get the initial value, triggers (about 6 GB/s here instead of 0.7); other
// zlibs just return 0 for it.
uint32_t Crc32(uint32_t crc, const uint8_t* p, size_t n) {
  static const uLong initial = ::crc32(0L, Z_NULL, 0);
  (void)initial;
  while (n > 0) {
    const uInt len = static_cast<uInt>(std::min<size_t>(n, 1u << 30));
    crc = static_cast<uint32_t>(::crc32(crc, p, len));
    p += len;
    n -= len;
  }
  return crc;
}
#else
// CRC-32 (the polynomial of zip and zlib), eight bytes at a time ("slicing by 8").
struct Crc32Tables {
  std::array<std::array<uint32_t, 256>, 8> t{};
  Crc32Tables() {
    for (uint32_t n = 0; n < 256; ++n) {
      uint32_t c = n;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
      t[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; ++n)
      for (int k = 1; k < 8; ++k) t[k][n] = (t[k - 1][n] >> 8) ^ t[0][t[k - 1][n] & 0xff];
  }
};

uint32_t Crc32(uint32_t crc, const uint8_t* p, size_t n) {
  static const Crc32Tables tables;
  const auto& t = tables.t;
  crc = ~crc;
  while (n && (reinterpret_cast<uintptr_t>(p) & 7)) {
    crc = t[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    --n;
  }
  while (n >= 8) {
    uint32_t lo, hi;
    std::memcpy(&lo, p, 4);
    std::memcpy(&hi, p + 4, 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    lo = __builtin_bswap32(lo);
    hi = __builtin_bswap32(hi);
#endif
    lo ^= crc;
    crc = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24] ^ t[3][hi & 0xff] ^ t[2][(hi >> 8) & 0xff] ^
          t[1][(hi >> 16) & 0xff] ^ t[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n--) crc = t[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return ~crc;
}
#endif

struct Range {
  int64_t offset = 0;
  int64_t bytes = 0;
  torch::ScalarType dtype = torch::kByte;
  torch::Tensor into;  // where given: a CPU tensor to fill instead of a new one
};

struct FileResult {
  std::vector<torch::Tensor> tensors;
  std::vector<uint32_t> crcs;
};

// Reads up to `bytes` at `offset` into `into`: fewer only where the file ends first.
int64_t PreadUpTo(int fd, uint8_t* into, int64_t bytes, int64_t offset) {
  int64_t got = 0;
  while (got < bytes) {
    const ssize_t r = ::pread(fd, into + got, static_cast<size_t>(bytes - got), static_cast<off_t>(offset + got));
    if (r < 0) {
      if (errno == EINTR) continue;
      ThrowError(std::string("cannot read the file: ") + std::strerror(errno));
    }
    if (r == 0) break;
    got += r;
  }
  return got;
}

// Reads [offset, offset + bytes) into `into`, computing the CRC-32 a chunk at a time, each chunk
// while it is still in the core's cache.
uint32_t ReadRange(int fd, int64_t offset, int64_t bytes, uint8_t* into) {
  constexpr int64_t kChunk = 512 << 10;
  uint32_t crc = 0;
  int64_t done = 0;
  while (done < bytes) {
    const int64_t want = std::min(kChunk, bytes - done);
    const int64_t got = PreadUpTo(fd, into + done, want, offset + done);
    if (got < want) {
      ThrowError("truncated: the " + std::to_string(bytes) + " bytes at offset " + std::to_string(offset) + " end after " + std::to_string(done + got));
    }
    crc = Crc32(crc, into + done, static_cast<size_t>(want));
    done += want;
  }
  return crc;
}

// A part of one range, read by one thread.
struct Piece {
  size_t range;
  int64_t begin, bytes;  // within the range
  uint32_t crc = 0;
};

// The ranges cut into pieces of at most kPiece bytes, where their CRC-32s can be joined again
// (zlib's crc32_combine); without zlib, one piece a range.
std::vector<Piece> Pieces(const std::vector<Range>& ranges) {
#ifdef TORCHCAP_ZLIB
  constexpr int64_t kPiece = 2 << 20;
#else
  constexpr int64_t kPiece = INT64_MAX;
#endif
  std::vector<Piece> pieces;
  for (size_t i = 0; i < ranges.size(); ++i) {
    for (int64_t b = 0; b < ranges[i].bytes; b += kPiece) pieces.push_back({i, b, std::min(kPiece, ranges[i].bytes - b)});
  }
  return pieces;
}

uint32_t JoinCrcs(uint32_t crc, uint32_t next, int64_t nextBytes) {
#ifdef TORCHCAP_ZLIB
  return static_cast<uint32_t>(::crc32_combine(crc, next, static_cast<z_off_t>(nextBytes)));
#else
  (void)crc;
  (void)nextBytes;
  return next;  // one piece a range: nothing to join
#endif
}

FileResult ReadStorages(int fd, const std::vector<Range>& ranges) {
  struct stat st;
  if (::fstat(fd, &st) != 0) ThrowError(std::string("cannot read the file: ") + std::strerror(errno));
  for (size_t i = 0; i < ranges.size(); ++i) {
    const Range& r = ranges[i];
    if (r.offset + r.bytes > st.st_size) {
      ThrowError("truncated: " + std::to_string(r.bytes) + " bytes needed at offset " + std::to_string(r.offset) + " but the file ends at " +
                 std::to_string(st.st_size));
    }
  }
#ifdef POSIX_FADV_SEQUENTIAL
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
  FileResult out;
  out.tensors.resize(ranges.size());
  out.crcs.assign(ranges.size(), 0);
  for (size_t i = 0; i < ranges.size(); ++i) {
    const int64_t size = c10::elementSize(ranges[i].dtype);
    out.tensors[i] = ranges[i].into.defined() ? ranges[i].into : torch::empty({ranges[i].bytes / size}, torch::TensorOptions().dtype(ranges[i].dtype));
  }
  // From the page cache the reads are copies into fresh memory, bound by memory and the CRC: the
  // pieces go to the threads in equal shares of bytes (a weight file's storages range from a few
  // bytes to megabytes, so equal numbers of storages would leave one thread waiting).
  std::vector<Piece> pieces = Pieces(ranges);
  std::vector<int64_t> bytes;
  for (const Piece& p : pieces) bytes.push_back(p.bytes);
  ParallelForShares(bytes, [&](size_t i) {
    Piece& p = pieces[i];
    const Range& r = ranges[p.range];
    p.crc = ReadRange(fd, r.offset + p.begin, p.bytes, static_cast<uint8_t*>(out.tensors[p.range].data_ptr()) + p.begin);
  });
  for (const Piece& p : pieces) out.crcs[p.range] = p.begin == 0 ? p.crc : JoinCrcs(out.crcs[p.range], p.crc, p.bytes);
  // A filled tensor has changed: what is derived from it (a module's fold) must see that.
  for (const Range& r : ranges)
    if (r.into.defined()) r.into.unsafeGetTensorImpl()->bump_version();
  return out;
}

// Argument i as an open file descriptor's number.
int FdArg(const Napi::CallbackInfo& info, size_t i) {
  const int64_t fd = ArgInt(info, i, "fd");
  if (fd < 0 || fd > INT32_MAX) ThrowRange("fd must be an open file descriptor");
  return static_cast<int>(fd);
}

// readFileStorages(fd, ranges: { offset, bytes, dtype, into? }[]) [async] -> [tensors, crcs]. The
// caller keeps `fd` open until the promise settles. A range with `into` fills that tensor (and
// bumps its version) instead of a new one.
Napi::Value ReadFileStorages(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, {
    const int fd = FdArg(info, 0);
    if (info.Length() < 2 || !info[1].IsArray()) ThrowType("Expected an array for ranges");
    auto arr = info[1].As<Napi::Array>();
    std::vector<Range> ranges(arr.Length());
    for (uint32_t i = 0; i < arr.Length(); ++i) {
      Napi::Value v = arr.Get(i);
      if (!v.IsObject()) ThrowType("Expected an object for ranges[" + std::to_string(i) + "]");
      auto o = v.As<Napi::Object>();
      Range& r = ranges[i];
      r.offset = ToInt(o.Get("offset"), "offset");
      r.bytes = ToInt(o.Get("bytes"), "bytes");
      r.dtype = ParseDtype(OptString(o, "dtype", "uint8"));
      const int64_t size = c10::elementSize(r.dtype);
      if (r.offset < 0 || r.bytes < 0) ThrowRange("ranges[" + std::to_string(i) + "] has a negative offset or size");
      if (r.bytes % size != 0) ThrowRange("ranges[" + std::to_string(i) + "] holds " + std::to_string(r.bytes) + " bytes, no whole number of elements");
      CheckTensorSize("readFileStorages", {r.bytes / size}, r.dtype);
      Napi::Value into = o.Get("into");
      if (!into.IsUndefined() && !into.IsNull()) {
        r.into = UnwrapTensor(into, "into");
        if (!r.into.device().is_cpu() || !r.into.is_contiguous() || r.into.scalar_type() != r.dtype || r.into.nbytes() != static_cast<size_t>(r.bytes)) {
          ThrowRange("ranges[" + std::to_string(i) + "].into must be a contiguous CPU tensor of its dtype and exactly its bytes");
        }
      }
    }
    return RunAsync<FileResult>(
        info.Env(), [fd, ranges]() { return ReadStorages(fd, ranges); },
        [](Napi::Env e, FileResult& r) -> Napi::Value {
          auto out = Napi::Array::New(e, 2);
          out.Set(0u, WrapTensors(e, r.tensors));
          auto crcs = Napi::Array::New(e, r.crcs.size());
          for (size_t i = 0; i < r.crcs.size(); ++i) crcs.Set(static_cast<uint32_t>(i), Napi::Number::New(e, r.crcs[i]));
          out.Set(1u, crcs);
          return out;
        });
  });
}

// Reads `length` bytes at each offset into one buffer, one after another: a zip's local headers,
// scattered through a weight file, in one trip to a worker thread instead of one apiece.
std::vector<uint8_t> ReadFileBytes(int fd, const std::vector<int64_t>& offsets, int64_t length) {
  std::vector<uint8_t> out(offsets.size() * static_cast<size_t>(length));
  for (size_t i = 0; i < offsets.size(); ++i) {
    const int64_t got = PreadUpTo(fd, out.data() + i * static_cast<size_t>(length), length, offsets[i]);
    if (got < length) {
      ThrowError("truncated: " + std::to_string(length) + " bytes needed at offset " + std::to_string(offsets[i]) + " but the file ends after " +
                 std::to_string(got));
    }
  }
  return out;
}

// readFileBytes(fd, offsets: number[], length) [async] -> Buffer of offsets.length * length bytes.
// The caller keeps `fd` open until the promise settles.
Napi::Value ReadFileBytesJs(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, {
    const int fd = FdArg(info, 0);
    if (info.Length() < 2 || !info[1].IsArray()) ThrowType("Expected an array for offsets");
    auto arr = info[1].As<Napi::Array>();
    const int64_t length = ArgInt(info, 2, "length");
    if (length < 0 || length > (1 << 20)) ThrowRange("length must be from 0 to 1 MiB");
    if (static_cast<int64_t>(arr.Length()) * length > (int64_t{1} << 30)) ThrowRange("offsets.length * length must be at most 1 GiB");
    std::vector<int64_t> offsets(arr.Length());
    for (uint32_t i = 0; i < arr.Length(); ++i) {
      offsets[i] = ToInt(arr.Get(i), "offsets");
      if (offsets[i] < 0) ThrowRange("offsets[" + std::to_string(i) + "] is negative");
    }
    return RunAsync<std::vector<uint8_t>>(
        info.Env(), [fd, offsets, length]() { return ReadFileBytes(fd, offsets, length); },
        [](Napi::Env e, std::vector<uint8_t>& r) -> Napi::Value { return Napi::Buffer<uint8_t>::Copy(e, r.data(), r.size()); });
  });
}

}  // namespace

void InitFileStorage(Napi::Env env, Napi::Object exports) {
  exports.Set("readFileStorages", Napi::Function::New<ReadFileStorages>(env, "readFileStorages"));
  exports.Set("readFileBytes", Napi::Function::New<ReadFileBytesJs>(env, "readFileBytes"));
}

}  // namespace torchcap
