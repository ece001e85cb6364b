// The intra-op thread count chosen by the user. libtorch keeps it per thread, so the executor
// threads that run async work apply it before each job.
#pragma once

namespace torchcap {

int DesiredThreads();
void SetDesiredThreads(int n);  // RangeError below 1
void ApplyThreads();            // on the calling thread, if it differs

}  // namespace torchcap
