// Running a controller's writes concurrently: slow-start batches for creations
// (replicaset.slowStartBatch) and a bounded parallel loop for deletions.
//
// Thread-safe: the functions only share what `fn` shares.
#pragma once

#include <functional>

#include "common/status.h"

namespace skiff::controllers::common {

// controller.SlowStartInitialBatchSize.
inline constexpr int kSlowStartInitialBatchSize = 1;
// How many calls of one batch run at once.
inline constexpr int kMaxParallelCalls = 16;

struct BatchResult {
  int successes = 0;
  Status first_error;  // OK when every call that ran succeeded
};

// Calls fn() `count` times in batches of 1, 2, 4, ... (starting at initial_batch_size and
// doubling, capped by what remains), the calls of a batch concurrently. After a batch in
// which any call failed, no further batch starts: a failure caused by the request itself
// (quota, admission) then costs one call, not `count`.
BatchResult slow_start_batch(int count, int initial_batch_size, const std::function<Status()>& fn,
                             int max_parallel = kMaxParallelCalls);

// Calls fn(i) for i in [0, count), up to max_parallel at once, and waits for all. Returns the
// first error by index (OK if none).
Status parallel_for(int count, const std::function<Status(int)>& fn,
                    int max_parallel = kMaxParallelCalls);

}  // namespace skiff::controllers::common
