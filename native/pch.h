// Precompiled header for the cmake-js build: libtorch's headers dominate compile time.
#pragma once
#include <napi.h>
#include <torch/torch.h>
