// What an entry-point file of the addon needs, one header per concern:
//   errors.h      C++ exceptions -> JS errors (TORCHCAP_GUARD)
//   args.h        reading arguments and options, naming them in errors
//   dtypes.h      dtype and device names
//   sizes.h       size checks before allocation
//   convert.h     tensor bytes <-> typed arrays
//   tensor.h      the native Tensor and the helpers that wrap and unwrap tensors
//   addon_data.h  per-environment state
//   threads.h     the intra-op thread count
//
// Rules every entry point follows:
//  - JavaScript (lib/) validates arguments and builds readable errors; native code still checks
//    types so that a wrong call can never crash the process.
//  - Every entry point runs inside TORCHCAP_GUARD, which turns any C++ exception (c10::Error and
//    std::exception alike) into a JS Error without the C++ backtrace.
//  - No code runs inside a garbage collection (wrap.h).
#pragma once

#include <napi.h>
#include <torch/torch.h>

#include "addon_data.h"
#include "args.h"
#include "convert.h"
#include "dtypes.h"
#include "errors.h"
#include "sizes.h"
#include "tensor.h"
#include "threads.h"
