// An elastic pool of threads that runs posted tasks, now or at a given time.
//
// Threads are started on demand, one more whenever a task is ready and every thread is busy
// (up to max_threads), and end after idle_timeout without work, so that a process with many
// mostly idle activities (a node agent's pods and probes) keeps only as many threads as run
// at once. While timers are pending one thread stays to fire them.
//
//   Executor ex({.max_threads = 64});
//   ex.post([] { ... });
//   auto id = ex.post_at(std::chrono::steady_clock::now() + 2s, [] { ... });
//   ex.cancel(id);
//
// Thread-safety: every method is thread-safe and may be called from a task. stop() waits for
// running tasks; it must not be called from one.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

namespace skiff {

struct ExecutorOptions {
  size_t max_threads = 64;
  std::chrono::milliseconds idle_timeout{10000};
};

class Executor {
 public:
  using Clock = std::chrono::steady_clock;
  using Task = std::function<void()>;

  explicit Executor(ExecutorOptions options = {});
  ~Executor();  // stop()
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // Runs `task` on a pool thread as soon as one is free. Ignored after stop().
  void post(Task task);
  // Runs `task` at `when` (or as soon after as a thread is free). Returns an id for cancel();
  // 0 after stop().
  uint64_t post_at(Clock::time_point when, Task task);
  // Drops a timer that has not fired yet; false when it fired, was cancelled or is unknown.
  bool cancel(uint64_t timer_id);
  // Drops queued tasks and timers, waits for the running ones, and ends every thread.
  // Idempotent.
  void stop();

  // Threads alive now, and tasks running now.
  size_t threads() const;
  size_t busy() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace skiff
