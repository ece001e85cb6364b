#include "dtypes.h"

#include "errors.h"

namespace torchcap {

torch::ScalarType ParseDtype(const std::string& name) {
  if (name == "float32") return torch::kFloat32;
  if (name == "float64") return torch::kFloat64;
  if (name == "float16") return torch::kFloat16;
  if (name == "bfloat16") return torch::kBFloat16;
  if (name == "int64") return torch::kInt64;
  if (name == "int32") return torch::kInt32;
  if (name == "uint8") return torch::kUInt8;
  if (name == "bool") return torch::kBool;
  ThrowType("Unknown dtype '" + name + "' (expected float32, float64, float16, bfloat16, int64, int32, uint8 or bool)");
}

std::string DtypeName(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat32: return "float32";
    case torch::kFloat64: return "float64";
    case torch::kFloat16: return "float16";
    case torch::kBFloat16: return "bfloat16";
    case torch::kInt64: return "int64";
    case torch::kInt32: return "int32";
    case torch::kUInt8: return "uint8";
    case torch::kBool: return "bool";
    default: return c10::toString(t);
  }
}

torch::Device ParseDevice(const std::string& name) {
  try {
    return torch::Device(name);
  } catch (const c10::Error&) {
    ThrowType("Unknown device '" + name + "' (expected 'cpu', 'cuda' or 'cuda:N')");
  }
}

std::string DeviceName(const torch::Device& d) { return d.str(); }

}  // namespace torchcap
