// Runtime facts and settings: versions, BLAS in use, threads, CUDA.
#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <link.h>
#include <malloc.h>

#include <cstdlib>
#include <cstring>
#include <torch/version.h>

#include "common.h"
#include "runtime.h"

#ifndef TORCHCAP_BUILD_TOOL
#define TORCHCAP_BUILD_TOOL "unknown"
#endif

namespace torchcap {

struct BlasLibraries {
  std::string openblas, mkl, reference;
};

// The BLAS libraries the process actually loaded, found from the shared objects mapped in.
static BlasLibraries LoadedBlas() {
  BlasLibraries found;
  dl_iterate_phdr(
      [](struct dl_phdr_info* info, size_t, void* data) -> int {
        auto* f = static_cast<BlasLibraries*>(data);
        std::string name = info->dlpi_name ? info->dlpi_name : "";
        if (name.find("openblas") != std::string::npos) f->openblas = name;
        else if (name.find("libmkl") != std::string::npos) f->mkl = name;
        else if (name.find("libblas.so") != std::string::npos) f->reference = name;
        return 0;
      },
      &found);
  return found;
}

static std::string BlasInUse(const BlasLibraries& found) {
  if (!found.openblas.empty()) return "OpenBLAS (" + found.openblas + ")";
  if (!found.mkl.empty()) return "MKL (" + found.mkl + ")";
  if (!found.reference.empty()) return "reference BLAS (" + found.reference + "): slow, install OpenBLAS";
  return "none found among loaded libraries";
}

// The kernels OpenBLAS runs ("SkylakeX", "Haswell", ...: its own choice for the CPU, or the one
// OPENBLAS_CORETYPE named when it loaded), or "" where OpenBLAS is not loaded or does not say.
static std::string OpenblasKernels(const BlasLibraries& found) {
  if (found.openblas.empty()) return "";
  void* lib = dlopen(found.openblas.c_str(), RTLD_LAZY | RTLD_NOLOAD);
  if (!lib) return "";
  std::string name;
  if (auto corename = reinterpret_cast<const char* (*)()>(dlsym(lib, "openblas_get_corename"))) {
    const char* n = corename();
    if (n) name = n;
  }
  dlclose(lib);
  return name;
}

// glibc maps every block over 128 KiB afresh and unmaps it on free, so each new block of that
// size page-faults all its memory again; on virtual machines that fault path dominates small
// models (an LSTM step ran 6x faster with this). Blocks up to 32 MiB (glibc's largest setting)
// come from the heap and are reused, and the heap is trimmed only past 512 MiB of free space at
// its top; larger tensors are reused by torchcap's caching allocator (allocator.cc).
// TORCHCAP_MALLOC_TUNING=0 leaves glibc's defaults. Done once per process.
static bool TuneMalloc() {
  const char* env = std::getenv("TORCHCAP_MALLOC_TUNING");
  if (env && std::strcmp(env, "0") == 0) return false;
#if defined(__GLIBC__)
  return mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1 && mallopt(M_TRIM_THRESHOLD, 512 << 20) == 1;
#else
  return false;
#endif
}

static bool MallocTuned() {
  static const bool tuned = TuneMalloc();
  return tuned;
}

static Napi::Value Versions(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("libtorch", TORCH_VERSION);
    BlasLibraries blas = LoadedBlas();
    o.Set("blas", BlasInUse(blas));
    std::string kernels = OpenblasKernels(blas);
    o.Set("blasKernels", kernels.empty() ? env.Null() : Napi::String::New(env, kernels));
    o.Set("threads", at::get_num_threads());
    o.Set("interopThreads", at::get_num_interop_threads());
    bool cuda = torch::cuda::is_available();
    o.Set("cuda", cuda);
    o.Set("cudaDevices", cuda ? static_cast<double>(torch::cuda::device_count()) : 0.0);
    o.Set("cudaBuild", CudaBuilt());
    o.Set("mkldnn", at::hasMKLDNN());
    o.Set("openmp", at::get_parallel_info().find("OpenMP") != std::string::npos);
    o.Set("mallocTuned", MallocTuned());
    o.Set("cpuCache", CpuCacheInstalled());
    Napi::Object build = Napi::Object::New(env);
    build.Set("tool", TORCHCAP_BUILD_TOOL);
    build.Set("compiler", __VERSION__);
    build.Set("cxx11Abi", _GLIBCXX_USE_CXX11_ABI);
    build.Set("napiVersion", NAPI_VERSION);
    o.Set("build", build);
    return o;
  });
}

static Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  TORCHCAP_GUARD(info, {
    SetDesiredThreads(ArgInt(info, 0, "threads"));
    return info.Env().Undefined();
  });
}

static Napi::Value GetNumThreads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), at::get_num_threads()); }

void InitRuntime(Napi::Env env, Napi::Object exports) {
  MallocTuned();
  exports.Set("versions", Napi::Function::New<Versions>(env, "versions"));
  exports.Set("setNumThreads", Napi::Function::New<SetNumThreads>(env, "setNumThreads"));
  exports.Set("getNumThreads", Napi::Function::New<GetNumThreads>(env, "getNumThreads"));
}

}  // namespace torchcap
