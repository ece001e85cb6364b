// The names torchcap's API uses for dtypes and devices, both ways.
#pragma once

#include <torch/torch.h>

#include <string>

namespace torchcap {

// float32, float64, float16, bfloat16, int64, int32, uint8, bool; TypeError for anything else.
torch::ScalarType ParseDtype(const std::string& name);
std::string DtypeName(torch::ScalarType t);
// 'cpu', 'cuda', 'cuda:N'; TypeError for anything else.
torch::Device ParseDevice(const std::string& name);
std::string DeviceName(const torch::Device& d);

}  // namespace torchcap
