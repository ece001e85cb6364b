// The intra-op thread count chosen by the user. libtorch keeps it per thread, so the executor
// threads that run async work apply it before each job.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

namespace torchcap {

int DesiredThreads();
// The most intra-op threads setNumThreads takes: 4 per hardware thread of the machine (1024 where
// the count is unknown). More only oversubscribes the cores, and each thread costs time to start
// (2,000 took 30 s on two cores).
int MaxThreads();
void SetDesiredThreads(int64_t n);  // RangeError below 1 and above MaxThreads()
void ApplyThreads();            // on the calling thread, if it differs

// fn(i) for every item i, on libtorch's intra-op threads: each thread takes the contiguous run of
// items that start in its equal share of the items' total weight (bytes, elements), so that items
// of very different sizes keep every thread busy to the end. An exception from fn reaches the caller.
void ParallelForShares(const std::vector<int64_t>& weights, const std::function<void(size_t)>& fn);

}  // namespace torchcap
