#include "addon_data.h"

#include "executor.h"
#include "tensor_registry.h"

namespace torchcap {

AddonData::AddonData() : tensors(std::make_unique<TensorRegistry>()) {}
AddonData::~AddonData() = default;

AddonData& Data(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

AddonData* DataOrNull(napi_env env) {
  void* data = nullptr;
  if (napi_get_instance_data(env, &data) != napi_ok) return nullptr;
  return static_cast<AddonData*>(data);
}

}  // namespace torchcap
