#include "controllers/common/batch.h"

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

namespace skiff::controllers::common {

Status parallel_for(int count, const std::function<Status(int)>& fn, int max_parallel) {
  if (count <= 0) return Status::Ok();
  std::vector<Status> results(static_cast<size_t>(count));
  if (count == 1 || max_parallel <= 1) {
    for (int i = 0; i < count; ++i) results[i] = fn(i);
  } else {
    std::atomic<int> next{0};
    auto worker = [&] {
      for (int i = next.fetch_add(1); i < count; i = next.fetch_add(1)) results[i] = fn(i);
    };
    int threads = std::min(count, max_parallel);
    std::vector<std::thread> pool;
    pool.reserve(static_cast<size_t>(threads - 1));
    for (int t = 1; t < threads; ++t) pool.emplace_back(worker);
    worker();
    for (auto& t : pool) t.join();
  }
  for (const Status& s : results) {
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

BatchResult slow_start_batch(int count, int initial_batch_size, const std::function<Status()>& fn,
                             int max_parallel) {
  BatchResult result;
  int remaining = count;
  for (int batch = std::min(remaining, std::max(initial_batch_size, 1)); batch > 0;
       batch = std::min(2 * batch, remaining)) {
    std::atomic<int> ok{0};
    Status err = parallel_for(
        batch,
        [&](int) {
          Status s = fn();
          if (s.ok()) ok.fetch_add(1);
          return s;
        },
        max_parallel);
    result.successes += ok.load();
    if (!err.ok()) {
      result.first_error = err;
      return result;
    }
    remaining -= batch;
  }
  return result;
}

}  // namespace skiff::controllers::common
