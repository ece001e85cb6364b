// Size checks before allocation: a tensor that cannot exist on this machine is refused with a
// RangeError naming its shape before libtorch tries to allocate it (which would overflow, fail
// deep inside an operator, or, under memory overcommit, succeed and bring the OOM killer later).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>

namespace torchcap {

// The most bytes one CPU tensor may take here: the smaller of the process's address-space limit
// (ulimit -v) and the machine's physical memory. `why` (optional) names which one it is.
int64_t MaxTensorBytes(const char** why = nullptr);

// Refuses a tensor of `shape` and `dtype` on `device` that cannot be allocated: a negative size,
// an element count or byte size past int64, or, on the CPU, more than MaxTensorBytes().
// `what` starts the message ("full", "randn", "Linear weight", ...).
void CheckTensorSize(const std::string& what, c10::IntArrayRef shape, torch::ScalarType dtype, const torch::Device& device = torch::kCPU);

// The most that the sizes of an empty tensor other than its zeros may multiply to.
constexpr int64_t kMaxEmptyExtent = (int64_t{1} << 31) - 1;

// The element count of `shape`, or a RangeError naming it when a size is negative, the count
// passes int64 (views such as expand allocate nothing but must still be countable), or the shape
// is empty and its other sizes multiply past kMaxEmptyExtent.
int64_t CheckedNumel(const std::string& what, c10::IntArrayRef shape);

// Refuses a packed sequence whose parts do not fit together, before libtorch reads them (its
// _pad_packed_sequence and packed LSTM trust them: inconsistent batch sizes write out of bounds):
// data with a row dimension; batchSizes a non-empty 1-D int64 CPU tensor of values >= 1 that never
// increase and add up to data's rows; sortedIndices and unsortedIndices (where defined) 1-D int64
// with one entry per sequence (batchSizes[0]). Returns batchSizes[0], the number of sequences.
int64_t CheckPackedSequence(const torch::Tensor& data, const torch::Tensor& batchSizes, const torch::Tensor& sortedIndices,
                            const torch::Tensor& unsortedIndices);

}  // namespace torchcap
