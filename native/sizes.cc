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

int64_t CheckPackedSequence(const torch::Tensor& data, const torch::Tensor& batchSizes, const torch::Tensor& sortedIndices,
                            const torch::Tensor& unsortedIndices) {
  if (data.dim() < 1) ThrowRange("packed sequence: data must have a row dimension, got a 0-d tensor");
  if (batchSizes.dim() != 1 || batchSizes.scalar_type() != torch::kInt64 || !batchSizes.device().is_cpu() || batchSizes.layout() != torch::kStrided) {
    ThrowType("packed sequence: batchSizes must be a 1-D int64 tensor on the CPU, got " + c10::str(batchSizes.sizes()) + " " +
              DtypeName(batchSizes.scalar_type()) + " on " + batchSizes.device().str());
  }
  const int64_t steps = batchSizes.size(0);
  if (steps < 1) ThrowRange("packed sequence: batchSizes is empty (a packed sequence has at least one step)");
  const torch::Tensor sizes = batchSizes.contiguous();
  const int64_t* b = sizes.data_ptr<int64_t>();
  int64_t rows = 0;
  for (int64_t i = 0; i < steps; ++i) {
    if (b[i] < 1) ThrowRange("packed sequence: batchSizes[" + std::to_string(i) + "] is " + std::to_string(b[i]) + "; every batch size must be at least 1");
    if (i > 0 && b[i] > b[i - 1]) {
      ThrowRange("packed sequence: batchSizes must not increase, but batchSizes[" + std::to_string(i) + "] = " + std::to_string(b[i]) + " follows " +
                 std::to_string(b[i - 1]));
    }
    if (__builtin_add_overflow(rows, b[i], &rows)) ThrowRange("packed sequence: batchSizes add up past int64");
  }
  if (rows != data.size(0)) {
    ThrowRange("packed sequence: batchSizes add up to " + std::to_string(rows) + " rows but data has " + std::to_string(data.size(0)));
  }
  const int64_t batch = b[0];
  for (const auto& [idx, name] : {std::make_pair(&sortedIndices, "sortedIndices"), std::make_pair(&unsortedIndices, "unsortedIndices")}) {
    if (!idx->defined()) continue;
    if (idx->dim() != 1 || idx->scalar_type() != torch::kInt64 || idx->size(0) != batch) {
      ThrowRange(std::string("packed sequence: ") + name + " must be a 1-D int64 tensor of one entry per sequence (" + std::to_string(batch) +
                 "), got " + c10::str(idx->sizes()) + " " + DtypeName(idx->scalar_type()));
    }
  }
  return batch;
}

}  // namespace torchcap
