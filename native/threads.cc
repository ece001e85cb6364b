#include "threads.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>

#include "errors.h"

namespace torchcap {

static std::atomic<int> g_threads{0};

int DesiredThreads() { return g_threads.load(); }

int MaxThreads() {
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1024 : static_cast<int>(std::min<unsigned>(hw, 1u << 20) * 4);
}

void SetDesiredThreads(int64_t n) {
  if (n < 1) ThrowRange("Thread count must be at least 1");
  if (n > MaxThreads()) {
    ThrowRange("Thread count must be at most " + std::to_string(MaxThreads()) + " (4 per hardware thread of this machine), got " + std::to_string(n));
  }
  g_threads.store(static_cast<int>(n));
  at::set_num_threads(static_cast<int>(n));
}

void ApplyThreads() {
  int n = g_threads.load();
  if (n > 0 && at::get_num_threads() != n) at::set_num_threads(n);
}

void ParallelForShares(const std::vector<int64_t>& weights, const std::function<void(size_t)>& fn) {
  std::vector<int64_t> starts(weights.size());
  int64_t total = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    starts[i] = total;
    total += weights[i];
  }
  const int64_t threads = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), static_cast<int64_t>(weights.size())));
  at::parallel_for(0, threads, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t from = total * t / threads, to = total * (t + 1) / threads;
      for (size_t i = 0; i < weights.size(); ++i) {
        if (starts[i] >= from && (starts[i] < to || (t == threads - 1 && starts[i] == total))) fn(i);
      }
    }
  });
}

}  // namespace torchcap
