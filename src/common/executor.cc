#include "common/executor.h"

#include <condition_variable>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/log.h"

namespace skiff {

struct Executor::Impl : std::enable_shared_from_this<Impl> {
  explicit Impl(ExecutorOptions o) : options(o) {
    if (options.max_threads == 0) options.max_threads = 1;
  }

  // REQUIRES: mu held. Queues a task and makes sure a thread will take it.
  void enqueue_locked(Task task);
  // REQUIRES: mu held.
  void spawn_worker_locked();
  void spawn_timer_locked();
  void worker_loop();
  void timer_loop();

  ExecutorOptions options;

  mutable std::mutex mu;
  std::condition_variable work_cv;   // idle workers wait here
  std::condition_variable timer_cv;  // the timer thread waits here
  std::condition_variable exit_cv;   // stop() waits here for the threads to end
  bool stopped = false;
  std::deque<Task> ready;
  std::map<std::pair<Clock::time_point, uint64_t>, Task> timers;
  std::unordered_map<uint64_t, Clock::time_point> timer_due;  // by timer id
  uint64_t next_timer_id = 1;
  size_t workers = 0;  // worker threads alive
  size_t idle = 0;     // workers waiting for a task
  size_t running = 0;  // tasks running
  bool timer_thread = false;
};

// Threads are detached: a thread that ends gives its stack back at once instead of keeping it
// until a later spawn or stop() joins it. Each holds a reference to Impl, and stop() waits
// until every one has recorded its end under mu, after which it touches nothing but Impl.
void Executor::Impl::spawn_worker_locked() {
  ++workers;
  std::thread([self = shared_from_this()] { self->worker_loop(); }).detach();
}

void Executor::Impl::spawn_timer_locked() {
  timer_thread = true;
  std::thread([self = shared_from_this()] { self->timer_loop(); }).detach();
}

void Executor::Impl::enqueue_locked(Task task) {
  ready.push_back(std::move(task));
  // Every waiting worker is about to take one task; more tasks than that need another.
  if (ready.size() > idle && workers < options.max_threads) {
    spawn_worker_locked();
  } else {
    work_cv.notify_one();
  }
}

void Executor::Impl::worker_loop() {
  std::unique_lock<std::mutex> l(mu);
  while (!stopped) {
    if (ready.empty()) {
      ++idle;
      bool woken =
          work_cv.wait_for(l, options.idle_timeout, [&] { return stopped || !ready.empty(); });
      --idle;
      if (!woken) break;  // idle for idle_timeout: end
      continue;
    }
    Task task = std::move(ready.front());
    ready.pop_front();
    ++running;
    l.unlock();
    try {
      task();
    } catch (const std::exception& e) {
      SKIFF_LOG(Error) << "a background task failed: " << e.what();
    } catch (...) {
      SKIFF_LOG(Error) << "a background task failed";
    }
    task = nullptr;  // its captures go before the lock is taken again
    l.lock();
    --running;
  }
  --workers;
  exit_cv.notify_all();
}

void Executor::Impl::timer_loop() {
  std::unique_lock<std::mutex> l(mu);
  while (!stopped) {
    if (timers.empty()) {
      bool woken =
          timer_cv.wait_for(l, options.idle_timeout, [&] { return stopped || !timers.empty(); });
      if (!woken) break;
      continue;
    }
    auto due = timers.begin()->first.first;
    if (Clock::now() < due) {
      timer_cv.wait_until(l, due);
      continue;
    }
    auto node = timers.extract(timers.begin());
    timer_due.erase(node.key().second);
    enqueue_locked(std::move(node.mapped()));
  }
  timer_thread = false;
  exit_cv.notify_all();
}

Executor::Executor(ExecutorOptions options) : impl_(std::make_shared<Impl>(options)) {}

Executor::~Executor() { stop(); }

void Executor::post(Task task) {
  std::lock_guard<std::mutex> l(impl_->mu);
  if (impl_->stopped) return;
  impl_->enqueue_locked(std::move(task));
}

uint64_t Executor::post_at(Clock::time_point when, Task task) {
  std::lock_guard<std::mutex> l(impl_->mu);
  Impl& p = *impl_;
  if (p.stopped) return 0;
  uint64_t id = p.next_timer_id++;
  bool earliest = p.timers.empty() || when < p.timers.begin()->first.first;
  p.timers.emplace(std::make_pair(when, id), std::move(task));
  p.timer_due.emplace(id, when);
  if (!p.timer_thread) {
    p.spawn_timer_locked();
  } else if (earliest) {
    p.timer_cv.notify_all();
  }
  return id;
}

bool Executor::cancel(uint64_t timer_id) {
  Task dropped;  // destroyed outside the lock
  std::lock_guard<std::mutex> l(impl_->mu);
  auto it = impl_->timer_due.find(timer_id);
  if (it == impl_->timer_due.end()) return false;
  auto t = impl_->timers.find({it->second, timer_id});
  if (t != impl_->timers.end()) {
    dropped = std::move(t->second);
    impl_->timers.erase(t);
  }
  impl_->timer_due.erase(it);
  return true;
}

void Executor::stop() {
  std::deque<Task> ready;
  std::map<std::pair<Clock::time_point, uint64_t>, Task> timers;
  {
    std::unique_lock<std::mutex> l(impl_->mu);
    Impl& p = *impl_;
    p.stopped = true;
    ready.swap(p.ready);
    timers.swap(p.timers);
    p.timer_due.clear();
    p.work_cv.notify_all();
    p.timer_cv.notify_all();
    p.exit_cv.wait(l, [&] { return p.workers == 0 && !p.timer_thread; });
  }
}

size_t Executor::threads() const {
  std::lock_guard<std::mutex> l(impl_->mu);
  return impl_->workers + (impl_->timer_thread ? 1 : 0);
}

size_t Executor::busy() const {
  std::lock_guard<std::mutex> l(impl_->mu);
  return impl_->running;
}

}  // namespace skiff
