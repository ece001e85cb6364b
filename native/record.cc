#include "record.h"

#include <string>

namespace torchcap {

Tensors ArgRecord(const Napi::CallbackInfo& info, size_t i, const char* name, const Fields& fields) {
  if (info.Length() <= i || !info[i].IsObject() || info[i].IsArray()) ThrowType(std::string("Expected an object of tensors for ") + name);
  Napi::Object o = info[i].As<Napi::Object>();
  Tensors out;
  out.reserve(fields.size());
  for (const char* field : fields) {
    Napi::Value v = o.Get(field);
    if (v.IsUndefined() || v.IsNull()) {
      out.emplace_back();
    } else {
      const std::string where = std::string(name) + "." + field;
      out.push_back(UnwrapTensor(v, where.c_str()));
    }
  }
  return out;
}

Napi::Object WrapRecord(Napi::Env env, const Fields& fields, const Tensors& tensors) {
  Napi::Object o = Napi::Object::New(env);
  for (size_t k = 0; k < fields.size(); ++k) {
    if (k < tensors.size() && tensors[k].defined()) o.Set(fields[k], WrapTensor(env, tensors[k]));
    else o.Set(fields[k], env.Null());
  }
  return o;
}

}  // namespace torchcap
