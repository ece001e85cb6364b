// Tensor operations. Element-wise and reduction operations dispatch on an operation name that
// lib/binding.ts types as a string union, so the native surface stays small.
#include <ATen/ScalarOps.h>

#include <cmath>
#include <unordered_map>

#include "args.h"
#include "dtypes.h"
#include "errors.h"
#include "sizes.h"
#include "tensor.h"

namespace torchcap {

using UnaryFn = torch::Tensor (*)(const torch::Tensor&);

static const std::unordered_map<std::string, UnaryFn>& UnaryOps() {
  static const std::unordered_map<std::string, UnaryFn> ops = {
      {"neg", [](const torch::Tensor& t) { return t.neg(); }},
      {"exp", [](const torch::Tensor& t) { return t.exp(); }},
      {"log", [](const torch::Tensor& t) { return t.log(); }},
      {"log1p", [](const torch::Tensor& t) { return t.log1p(); }},
      {"sqrt", [](const torch::Tensor& t) { return t.sqrt(); }},
      {"rsqrt", [](const torch::Tensor& t) { return t.rsqrt(); }},
      {"abs", [](const torch::Tensor& t) { return t.abs(); }},
      {"sign", [](const torch::Tensor& t) { return t.sign(); }},
      {"relu", [](const torch::Tensor& t) { return t.relu(); }},
      {"sigmoid", [](const torch::Tensor& t) { return t.sigmoid(); }},
      {"tanh", [](const torch::Tensor& t) { return t.tanh(); }},
      {"sin", [](const torch::Tensor& t) { return t.sin(); }},
      {"cos", [](const torch::Tensor& t) { return t.cos(); }},
      {"floor", [](const torch::Tensor& t) { return t.floor(); }},
      {"ceil", [](const torch::Tensor& t) { return t.ceil(); }},
      {"round", [](const torch::Tensor& t) { return t.round(); }},
      {"reciprocal", [](const torch::Tensor& t) { return t.reciprocal(); }},
      {"square", [](const torch::Tensor& t) { return t.square(); }},
      {"logicalNot", [](const torch::Tensor& t) { return t.logical_not(); }},
      {"isnan", [](const torch::Tensor& t) { return t.isnan(); }},
      {"isfinite", [](const torch::Tensor& t) { return t.isfinite(); }},
  };
  return ops;
}

Napi::Value TensorWrap::Unary(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, {
    std::string op = ArgString(info, 0, "op");
    auto& ops = UnaryOps();
    auto it = ops.find(op);
    if (it == ops.end()) ThrowType("Unknown unary operation '" + op + "'");
    return WrapTensor(info.Env(), it->second(Get()));
  });
}

// other: Tensor or number
Napi::Value TensorWrap::Binary(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, {
    std::string op = ArgString(info, 0, "op");
    const torch::Tensor& a = Get();
    torch::Tensor b;
    if (info.Length() > 1 && (info[1].IsNumber() || info[1].IsBoolean())) {
      // A plain number follows PyTorch's rule for Python scalars: a "wrapped number" that takes
      // part in type promotion only by kind (an integral number keeps an int tensor integral).
      torch::Scalar s;
      if (info[1].IsBoolean()) s = info[1].As<Napi::Boolean>().Value();
      else {
        double d = info[1].As<Napi::Number>().DoubleValue();
        if (std::isfinite(d) && d == static_cast<double>(static_cast<int64_t>(d))) s = static_cast<int64_t>(d);
        else s = d;
      }
      b = c10::scalar_to_tensor(s, a.device());
      b.unsafeGetTensorImpl()->set_wrapped_number(true);
    } else {
      b = ArgTensor(info, 1, "other");
    }
    torch::Tensor r;
    if (op == "add") r = a.add(b);
    else if (op == "sub") r = a.sub(b);
    else if (op == "mul") r = a.mul(b);
    else if (op == "div") r = a.div(b);
    else if (op == "pow") r = a.pow(b);
    else if (op == "remainder") r = a.remainder(b);
    else if (op == "maximum") r = torch::maximum(a, b);
    else if (op == "minimum") r = torch::minimum(a, b);
    else if (op == "matmul") r = a.matmul(b);
    else if (op == "eq") r = a.eq(b);
    else if (op == "ne") r = a.ne(b);
    else if (op == "lt") r = a.lt(b);
    else if (op == "le") r = a.le(b);
    else if (op == "gt") r = a.gt(b);
    else if (op == "ge") r = a.ge(b);
    else if (op == "logicalAnd") r = a.logical_and(b);
    else if (op == "logicalOr") r = a.logical_or(b);
    else ThrowType("Unknown binary operation '" + op + "'");
    return WrapTensor(info.Env(), r);
  });
}

// a.copy_(src), except that a copy of a tensor onto its own memory (a loader that read a file
// straight into a module's tensor copies that tensor into the module's) moves nothing: a version
// bump only, as copy_ would leave it. libtorch 2.x returns early there itself; 1.13 copies the
// bytes onto themselves. With gradients recorded, copy_ always runs (it records the copy).
static void CopyInto(torch::Tensor& a, const torch::Tensor& src) {
  const bool same = a.layout() == torch::kStrided && src.layout() == torch::kStrided && a.has_storage() && src.has_storage() &&
                    !a.is_inference() && a.device() == src.device() && a.scalar_type() == src.scalar_type() && a.sizes() == src.sizes() &&
                    a.strides() == src.strides() && a.storage().is_alias_of(src.storage()) && a.storage_offset() == src.storage_offset();
  if (same && (!torch::GradMode::is_enabled() || (!a.requires_grad() && !src.requires_grad()))) {
    a.unsafeGetTensorImpl()->bump_version();
    return;
  }
  a.copy_(src);
}

// inPlace(op, other?, alpha?) -> this
Napi::Value TensorWrap::InPlace(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, {
    std::string op = ArgString(info, 0, "op");
    torch::Tensor& a = Get();
    // An integral alpha stays integral, so integer tensors (counters) accept it.
    auto alpha = [&]() -> torch::Scalar {
      if (!ArgPresent(info, 2)) return torch::Scalar(int64_t{1});
      double d = ArgNumber(info, 2, "alpha");
      if (std::isfinite(d) && d == static_cast<double>(static_cast<int64_t>(d))) return torch::Scalar(static_cast<int64_t>(d));
      return torch::Scalar(d);
    };
    auto operand = [&]() -> torch::Tensor {
      if (info.Length() > 1 && info[1].IsNumber()) return torch::scalar_tensor(info[1].As<Napi::Number>().DoubleValue(), a.options());
      return ArgTensor(info, 1, "other");
    };
    if (op == "zero") a.zero_();
    else if (op == "fill") a.fill_(ArgNumber(info, 1, "value"));
    else if (op == "copy") CopyInto(a, ArgTensor(info, 1, "source"));
    else if (op == "add") a.add_(operand(), alpha());
    else if (op == "sub") a.sub_(operand(), alpha());
    else if (op == "mul") a.mul_(operand());
    else if (op == "div") a.div_(operand());
    else ThrowType("Unknown in-place operation '" + op + "'");
    return info.This();
  });
}

// reduce(op, dims: number[] | null, keepdim)
Napi::Value TensorWrap::Reduce(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, {
    std::string op = ArgString(info, 0, "op");
    const torch::Tensor& t = Get();
    bool all = !ArgPresent(info, 1);
    std::vector<int64_t> dims = all ? std::vector<int64_t>{} : ArgInts(info, 1, "dim");
    bool keep = ArgPresent(info, 2) && ArgBool(info, 2, "keepdim");
    torch::Tensor r;
    if (op == "sum") r = all ? t.sum() : t.sum(dims, keep);
    else if (op == "mean") r = all ? t.mean() : t.mean(dims, keep);
    else if (op == "prod") {
      if (all) r = t.prod();
      else {
        if (dims.size() != 1) ThrowRange("prod reduces one dimension at a time");
        r = t.prod(dims[0], keep);
      }
    } else if (op == "max" || op == "min" || op == "argmax" || op == "argmin" || op == "all" || op == "any") {
      if (!all && dims.size() != 1) ThrowRange(op + " reduces one dimension at a time");
      if (op == "max") r = all ? t.max() : std::get<0>(t.max(dims[0], keep));
      else if (op == "min") r = all ? t.min() : std::get<0>(t.min(dims[0], keep));
      else if (op == "argmax") r = all ? t.argmax() : t.argmax(dims[0], keep);
      else if (op == "argmin") r = all ? t.argmin() : t.argmin(dims[0], keep);
      else if (op == "all") r = all ? t.all() : t.all(dims[0], keep);
      else r = all ? t.any() : t.any(dims[0], keep);
    } else if (op == "var" || op == "std") {
      r = op == "var" ? (all ? t.var() : t.var(dims, true, keep)) : (all ? t.std() : t.std(dims, true, keep));
    } else if (op == "logsumexp") {
      if (all) ThrowRange("logsumexp needs dimensions");
      r = t.logsumexp(dims, keep);
    } else if (op == "norm") {
      r = all ? t.norm() : t.norm(2, dims, keep);
    } else {
      ThrowType("Unknown reduction '" + op + "'");
    }
    return WrapTensor(info.Env(), r);
  });
}

// reduceWithIndices('max'|'min', dim, keepdim) -> [values, indices]
Napi::Value TensorWrap::ReduceWithIndices(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, {
    std::string op = ArgString(info, 0, "op");
    int64_t dim = ArgInt(info, 1, "dim");
    bool keep = ArgPresent(info, 2) && ArgBool(info, 2, "keepdim");
    std::tuple<torch::Tensor, torch::Tensor> r;
    if (op == "max") r = Get().max(dim, keep);
    else if (op == "min") r = Get().min(dim, keep);
    else ThrowType("Unknown reduction with indices '" + op + "'");
    return WrapTensors(info.Env(), {std::get<0>(r), std::get<1>(r)});
  });
}

Napi::Value TensorWrap::Topk(const Napi::CallbackInfo& info) {
  // topk(k, dim, largest, sorted)
  TORCHCAP_GUARD(info, {
    auto r = Get().topk(ArgInt(info, 0, "k"), ArgInt(info, 1, "dim"), ArgBool(info, 2, "largest"), ArgBool(info, 3, "sorted"));
    return WrapTensors(info.Env(), {std::get<0>(r), std::get<1>(r)});
  });
}

Napi::Value TensorWrap::Sort(const Napi::CallbackInfo& info) {
  // sort(dim, descending, stable)
  TORCHCAP_GUARD(info, {
    auto r = Get().sort(ArgBool(info, 2, "stable"), ArgInt(info, 0, "dim"), ArgBool(info, 1, "descending"));
    return WrapTensors(info.Env(), {std::get<0>(r), std::get<1>(r)});
  });
}

Napi::Value TensorWrap::Softmax(const Napi::CallbackInfo& info) {
  // softmax(dim, log)
  TORCHCAP_GUARD(info, {
    int64_t dim = ArgInt(info, 0, "dim");
    bool log = ArgPresent(info, 1) && ArgBool(info, 1, "log");
    return WrapTensor(info.Env(), log ? Get().log_softmax(dim) : Get().softmax(dim));
  });
}

Napi::Value TensorWrap::Reshape(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, { return WrapTensor(info.Env(), Get().reshape(ArgInts(info, 0, "shape"))); });
}

Napi::Value TensorWrap::View(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, { return WrapTensor(info.Env(), Get().view(ArgInts(info, 0, "shape"))); });
}

Napi::Value TensorWrap::Permute(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, { return WrapTensor(info.Env(), Get().permute(ArgInts(info, 0, "dims"))); });
}

Napi::Value TensorWrap::Transpose(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, { return WrapTensor(info.Env(), Get().transpose(ArgInt(info, 0, "dim0"), ArgInt(info, 1, "dim1"))); });
}

Napi::Value TensorWrap::Squeeze(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, {
    return WrapTensor(info.Env(), ArgPresent(info, 0) ? Get().squeeze(ArgInt(info, 0, "dim")) : Get().squeeze());
  });
}

Napi::Value TensorWrap::Unsqueeze(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, { return WrapTensor(info.Env(), Get().unsqueeze(ArgInt(info, 0, "dim"))); });
}

Napi::Value TensorWrap::Flatten(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, {
    int64_t start = ArgPresent(info, 0) ? ArgInt(info, 0, "startDim") : 0;
    int64_t end = ArgPresent(info, 1) ? ArgInt(info, 1, "endDim") : -1;
    return WrapTensor(info.Env(), Get().flatten(start, end));
  });
}

Napi::Value TensorWrap::Expand(const Napi::CallbackInfo& info) {
  // A view (nothing is allocated), but what is computed from it must still be countable.
  TORCHCAP_GUARD(info, {
    torch::Tensor r = Get().expand(ArgInts(info, 0, "shape"));
    CheckedNumel("expand", r.sizes());
    return WrapTensor(info.Env(), r);
  });
}

Napi::Value TensorWrap::AsStrided(const Napi::CallbackInfo& info) {
  // asStrided(shape, strides, storageOffset): a view into this tensor's storage. The extent is
  // checked here so that no view can reach past the storage.
  TORCHCAP_GUARD(info, {
    auto shape = ArgInts(info, 0, "shape");
    auto strides = ArgInts(info, 1, "strides");
    int64_t offset = ArgInt(info, 2, "storageOffset");
    if (shape.size() != strides.size()) ThrowRange("asStrided: shape and strides differ in length");
    if (offset < 0) ThrowRange("asStrided: negative storage offset");
    torch::Tensor& t = Get();
    int64_t last = offset;
    bool empty = false;
    for (size_t k = 0; k < shape.size(); ++k) {
      if (shape[k] < 0 || strides[k] < 0) ThrowRange("asStrided: negative size or stride");
      if (shape[k] == 0) empty = true;
      else last += (shape[k] - 1) * strides[k];
    }
    const int64_t capacity = static_cast<int64_t>(t.storage().nbytes() / t.element_size());
    if (!empty && last >= capacity) {
      ThrowRange("asStrided: view reaches element " + std::to_string(last) + " but the storage holds " + std::to_string(capacity));
    }
    return WrapTensor(info.Env(), t.as_strided(shape, strides, offset));
  });
}

Napi::Value TensorWrap::Strides(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, {
    auto st = Get().strides();
    Napi::Array arr = Napi::Array::New(info.Env(), st.size());
    for (size_t k = 0; k < st.size(); ++k) arr.Set(static_cast<uint32_t>(k), Napi::Number::New(info.Env(), static_cast<double>(st[k])));
    return arr;
  });
}

Napi::Value TensorWrap::Slice(const Napi::CallbackInfo& info) {
  // slice(dim, start, end?, step?)
  TORCHCAP_GUARD(info, {
    int64_t dim = ArgInt(info, 0, "dim");
    torch::optional<int64_t> start = ArgPresent(info, 1) ? torch::optional<int64_t>(ArgInt(info, 1, "start")) : torch::nullopt;
    torch::optional<int64_t> end = ArgPresent(info, 2) ? torch::optional<int64_t>(ArgInt(info, 2, "end")) : torch::nullopt;
    int64_t step = ArgPresent(info, 3) ? ArgInt(info, 3, "step") : 1;
    if (step < 1) ThrowRange("slice step must be positive");
    return WrapTensor(info.Env(), Get().slice(dim, start, end, step));
  });
}

Napi::Value TensorWrap::Select(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, { return WrapTensor(info.Env(), Get().select(ArgInt(info, 0, "dim"), ArgInt(info, 1, "index"))); });
}

Napi::Value TensorWrap::IndexSelect(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, { return WrapTensor(info.Env(), Get().index_select(ArgInt(info, 0, "dim"), ArgTensor(info, 1, "index"))); });
}

Napi::Value TensorWrap::Gather(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, { return WrapTensor(info.Env(), Get().gather(ArgInt(info, 0, "dim"), ArgTensor(info, 1, "index"))); });
}

Napi::Value TensorWrap::MaskedFill(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, { return WrapTensor(info.Env(), Get().masked_fill(ArgTensor(info, 0, "mask"), ArgNumber(info, 1, "value"))); });
}

Napi::Value TensorWrap::Clamp(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, {
    torch::optional<torch::Scalar> lo, hi;
    if (ArgPresent(info, 0)) lo = ArgNumber(info, 0, "min");
    if (ArgPresent(info, 1)) hi = ArgNumber(info, 1, "max");
    return WrapTensor(info.Env(), Get().clamp(lo, hi));
  });
}

Napi::Value TensorWrap::To(const Napi::CallbackInfo& info) {
  // to(dtype?, device?)
  TORCHCAP_GUARD(info, {
    torch::Tensor t = Get();
    if (ArgPresent(info, 1)) t = t.to(ParseDevice(ArgString(info, 1, "device")));
    if (ArgPresent(info, 0)) t = t.to(ParseDtype(ArgString(info, 0, "dtype")));
    return WrapTensor(info.Env(), t);
  });
}

Napi::Value TensorWrap::Clone(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, { return WrapTensor(info.Env(), Get().clone()); });
}

Napi::Value TensorWrap::Detach(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, { return WrapTensor(info.Env(), Get().detach()); });
}

Napi::Value TensorWrap::Contiguous(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, { return WrapTensor(info.Env(), Get().contiguous()); });
}

Napi::Value TensorWrap::Equal(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, { return Napi::Boolean::New(info.Env(), Get().equal(ArgTensor(info, 0, "other"))); });
}

Napi::Value TensorWrap::AllClose(const Napi::CallbackInfo& info) {
  // allclose(other, rtol, atol)
  TORCHCAP_GUARD(info, {
    return Napi::Boolean::New(info.Env(), Get().allclose(ArgTensor(info, 0, "other"), ArgNumber(info, 1, "rtol"), ArgNumber(info, 2, "atol")));
  });
}

}  // namespace torchcap
