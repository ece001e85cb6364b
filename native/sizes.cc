#include "sizes.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <limits>

#include "dtypes.h"
#include "errors.h"

namespace torchcap {

static std::string Bytes(double b) {
  const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int u = 0;
  while (b >= 1024 && u < 6) {
    b /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", b, units[u]);
  return buf;
}

int64_t MaxTensorBytes(const char** why) {
  const double physical = static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGESIZE));
  double limit = physical > 0 ? physical : static_cast<double>(std::numeric_limits<int64_t>::max());
  const char* reason = "the machine's physical memory";
  struct rlimit as {};
  if (getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY && static_cast<double>(as.rlim_cur) < limit) {
    limit = static_cast<double>(as.rlim_cur);
    reason = "the process's address-space limit (ulimit -v)";
  }
  if (why) *why = reason;
  return limit >= 9.2e18 ? std::numeric_limits<int64_t>::max() : static_cast<int64_t>(limit);
}

int64_t CheckedNumel(const std::string& what, c10::IntArrayRef shape) {
  // The sizes other than zero must multiply within int64 even when a zero empties the tensor:
  // libtorch computes strides from them.
  int64_t product = 1;
  bool empty = false;
  for (int64_t s : shape) {
    if (s < 0) ThrowRange(what + ": shape " + c10::str(shape) + " has a negative size");
    if (s == 0) empty = true;
    else if (__builtin_mul_overflow(product, s, &product)) ThrowRange(what + ": shape " + c10::str(shape) + " has more elements than an int64 can count");
  }
  // An empty tensor's other sizes still drive operators' loops (sort over an empty [1, 4, 2^40, 0]
  // visits 2^42 rows and runs for hours): they are held to what a real tensor's rows could be.
  if (empty && product > kMaxEmptyExtent) {
    ThrowRange(what + ": shape " + c10::str(shape) + " is empty, but its other sizes multiply to " + std::to_string(product) +
               ", more than " + std::to_string(kMaxEmptyExtent) + " (operators would loop over them)");
  }
  return empty ? 0 : product;
}

void CheckTensorSize(const std::string& what, c10::IntArrayRef shape, torch::ScalarType dtype, const torch::Device& device) {
  const int64_t numel = CheckedNumel(what, shape);
  int64_t bytes = 0;
  if (__builtin_mul_overflow(numel, static_cast<int64_t>(c10::elementSize(dtype)), &bytes)) {
    ThrowRange(what + ": shape " + c10::str(shape) + " of " + DtypeName(dtype) + " needs more bytes than an int64 can count");
  }
  if (!device.is_cpu()) return;  // device memory is the device's to refuse
  const char* why = nullptr;
  const int64_t max = MaxTensorBytes(&why);
  if (bytes > max) {
    ThrowRange(what + ": shape " + c10::str(shape) + " of " + DtypeName(dtype) + " needs " + Bytes(static_cast<double>(bytes)) + ", more than " +
               why + " (" + Bytes(static_cast<double>(max)) + ")");
  }
}

}  // namespace torchcap
