#include <algorithm>
#include <deque>
#include <limits>
#include <queue>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "controllers/framework.h"

namespace skiff::controllers {

namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr std::chrono::milliseconds kBaseDelay{5};
constexpr std::chrono::milliseconds kMaxDelay{std::chrono::seconds(1000)};

}  // namespace

struct WorkQueue::Impl {
  struct Waiting {
    SteadyClock::time_point ready_at;
    uint64_t seq;  // keeps keys due at the same time in the order they were added
    std::string key;
  };
  struct LaterFirst {
    bool operator()(const Waiting& a, const Waiting& b) const {
      if (a.ready_at != b.ready_at) return a.ready_at > b.ready_at;
      return a.seq > b.seq;
    }
  };

  mutable std::mutex mu;
  std::condition_variable ready_cv;  // get() waits on it
  std::condition_variable timer_cv;  // the timer thread waits on it

  // Guarded by mu.
  std::deque<std::string> queue;               // ready keys, in order
  std::unordered_set<std::string> dirty;       // keys to be processed (queued or re-added)
  std::unordered_set<std::string> processing;  // keys a worker holds between get and done
  std::priority_queue<Waiting, std::vector<Waiting>, LaterFirst> waiting;
  // The time each waiting key is due; a heap entry with another time is stale.
  std::unordered_map<std::string, SteadyClock::time_point> due;
  std::unordered_map<std::string, int> failures;
  uint64_t next_seq = 0;
  bool shutting_down = false;
  std::thread timer;  // started by the first delayed add; never started after shutdown

  // REQUIRES: mu is held.
  void add_locked(const std::string& key) {
    if (shutting_down) return;
    if (!dirty.insert(key).second) return;
    if (processing.count(key) != 0) return;  // done() queues it
    queue.push_back(key);
    ready_cv.notify_one();
  }

  // REQUIRES: mu is held.
  void add_after_locked(const std::string& key, std::chrono::milliseconds delay) {
    if (shutting_down) return;
    if (delay <= std::chrono::milliseconds::zero()) {
      add_locked(key);
      return;
    }
    SteadyClock::time_point at = SteadyClock::now() + delay;
    auto it = due.find(key);
    if (it != due.end() && it->second <= at) return;
    due[key] = at;
    bool earliest = waiting.empty() || at < waiting.top().ready_at;
    waiting.push(Waiting{at, next_seq++, key});
    if (!timer.joinable()) {
      timer = std::thread([this] { run_timer(); });
    } else if (earliest) {
      timer_cv.notify_one();
    }
  }

  void run_timer() {
    std::unique_lock<std::mutex> lock(mu);
    while (!shutting_down) {
      SteadyClock::time_point now = SteadyClock::now();
      while (!waiting.empty() && waiting.top().ready_at <= now) {
        Waiting w = waiting.top();
        waiting.pop();
        auto it = due.find(w.key);
        if (it == due.end() || it->second != w.ready_at) continue;
        due.erase(it);
        add_locked(w.key);
      }
      if (waiting.empty()) {
        timer_cv.wait(lock);
      } else {
        // A copy: the heap may change while this thread waits.
        SteadyClock::time_point next = waiting.top().ready_at;
        timer_cv.wait_until(lock, next);
      }
    }
  }
};

WorkQueue::WorkQueue(std::string name) : name_(std::move(name)), impl_(std::make_unique<Impl>()) {}

WorkQueue::~WorkQueue() {
  shutdown();
  // No thread starts the timer after shutdown(), so reading it here does not race.
  if (impl_->timer.joinable()) impl_->timer.join();
}

void WorkQueue::add(const std::string& key) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->add_locked(key);
}

void WorkQueue::add_after(const std::string& key, std::chrono::milliseconds delay) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->add_after_locked(key, delay);
}

void WorkQueue::add_rate_limited(const std::string& key) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->shutting_down) return;
  int& failures = impl_->failures[key];
  std::chrono::milliseconds delay = backoff_delay(failures);
  if (failures < std::numeric_limits<int>::max()) ++failures;
  impl_->add_after_locked(key, delay);
}

void WorkQueue::forget(const std::string& key) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->failures.erase(key);
}

int WorkQueue::requeues(const std::string& key) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto it = impl_->failures.find(key);
  return it == impl_->failures.end() ? 0 : it->second;
}

bool WorkQueue::get(std::string* key) {
  std::unique_lock<std::mutex> lock(impl_->mu);
  impl_->ready_cv.wait(lock, [this] { return !impl_->queue.empty() || impl_->shutting_down; });
  if (impl_->shutting_down) return false;
  *key = std::move(impl_->queue.front());
  impl_->queue.pop_front();
  impl_->processing.insert(*key);
  impl_->dirty.erase(*key);
  return true;
}

void WorkQueue::done(const std::string& key) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->processing.erase(key);
  if (!impl_->shutting_down && impl_->dirty.count(key) != 0) {
    impl_->queue.push_back(key);
    impl_->ready_cv.notify_one();
  }
}

void WorkQueue::shutdown() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->shutting_down) return;
    impl_->shutting_down = true;
    impl_->waiting = {};
    impl_->due.clear();
  }
  impl_->ready_cv.notify_all();
  impl_->timer_cv.notify_all();
}

bool WorkQueue::shutting_down() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->shutting_down;
}

size_t WorkQueue::size() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->queue.size();
}

std::chrono::milliseconds WorkQueue::backoff_delay(int requeues) {
  if (requeues <= 0) return kBaseDelay;
  // 5 ms * 2^18 is past the cap already; stopping there also keeps the shift in range.
  if (requeues >= 18) return kMaxDelay;
  return std::min(kBaseDelay * (int64_t{1} << requeues), kMaxDelay);
}

}  // namespace skiff::controllers
