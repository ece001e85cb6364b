#include "convert.h"

#include <cstring>

#include "dtypes.h"
#include "errors.h"
#include "sizes.h"

namespace torchcap {

Napi::Value ToTypedArray(Napi::Env env, const torch::Tensor& src) {
  torch::Tensor t = src.detach();
  if (!t.device().is_cpu()) t = t.to(torch::kCPU);
  t = t.contiguous();
  const size_t n = static_cast<size_t>(t.numel());
  const size_t bytes = t.nbytes();
  Napi::ArrayBuffer buf = Napi::ArrayBuffer::New(env, bytes);
  if (bytes) std::memcpy(buf.Data(), t.data_ptr(), bytes);
  switch (t.scalar_type()) {
    case torch::kFloat32: return Napi::Float32Array::New(env, n, buf, 0);
    case torch::kFloat64: return Napi::Float64Array::New(env, n, buf, 0);
    case torch::kInt64: return Napi::BigInt64Array::New(env, n, buf, 0);
    case torch::kInt32: return Napi::Int32Array::New(env, n, buf, 0);
    case torch::kUInt8:
    case torch::kBool: return Napi::Uint8Array::New(env, n, buf, 0);
    case torch::kFloat16:
    case torch::kBFloat16: return Napi::Uint16Array::New(env, n, buf, 0);
    default: ThrowType("toTypedArray does not support dtype " + DtypeName(t.scalar_type()));
  }
}

ByteView TypedArrayBytes(Napi::Value v) {
  napi_typedarray_type type = napi_uint8_array;
  size_t length = 0;
  void* data = nullptr;
  if (napi_get_typedarray_info(v.Env(), v, &type, &length, &data, nullptr, nullptr) != napi_ok) ThrowType("Expected a TypedArray or Buffer");
  size_t element = 1;
  switch (type) {
    case napi_int16_array:
    case napi_uint16_array: element = 2; break;
    case napi_int32_array:
    case napi_uint32_array:
    case napi_float32_array: element = 4; break;
    case napi_float64_array:
    case napi_bigint64_array:
    case napi_biguint64_array: element = 8; break;
    default: break;
  }
  ByteView out;
  out.length = data ? length * element : 0;
  out.data = static_cast<const uint8_t*>(data);
  return out;
}

torch::Tensor FromBytes(const uint8_t* data, size_t byteLength, torch::ScalarType dtype, const std::vector<int64_t>& shape) {
  CheckTensorSize("fromData", shape, dtype);
  const size_t need = static_cast<size_t>(CheckedNumel("fromData", shape)) * c10::elementSize(dtype);
  if (need != byteLength) {
    ThrowRange("Data holds " + std::to_string(byteLength) + " bytes but shape and dtype " + DtypeName(dtype) + " need " +
               std::to_string(need));
  }
  torch::Tensor t = torch::empty(shape, torch::TensorOptions().dtype(dtype));
  if (need) std::memcpy(t.data_ptr(), data, need);
  return t;
}

}  // namespace torchcap
