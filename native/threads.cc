#include "threads.h"

#include <ATen/Parallel.h>

#include <atomic>

#include "errors.h"

namespace torchcap {

static std::atomic<int> g_threads{0};

int DesiredThreads() { return g_threads.load(); }

void SetDesiredThreads(int n) {
  if (n < 1) ThrowRange("Thread count must be at least 1");
  g_threads.store(n);
  at::set_num_threads(n);
}

void ApplyThreads() {
  int n = g_threads.load();
  if (n > 0 && at::get_num_threads() != n) at::set_num_threads(n);
}

}  // namespace torchcap
