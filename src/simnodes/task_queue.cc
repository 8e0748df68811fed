#include "simnodes/task_queue.h"

#include <algorithm>

namespace skiff::simnodes {

namespace {
constexpr std::chrono::milliseconds kBaseBackoff{10};
constexpr std::chrono::milliseconds kMaxBackoff{30'000};
}  // namespace

void TaskQueue::add_locked(const std::string& key) {
  if (shutdown_) return;
  if (processing_.count(key) != 0) {
    dirty_.insert(key);
    return;
  }
  if (queued_.insert(key).second) {
    ready_.push_back(key);
    cv_.notify_one();
  }
}

void TaskQueue::add(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  add_locked(key);
}

void TaskQueue::add_after(const std::string& key, std::chrono::milliseconds delay) {
  std::lock_guard<std::mutex> lock(mu_);
  if (delay.count() <= 0) {
    add_locked(key);
    return;
  }
  if (shutdown_) return;
  SteadyClock::time_point due = SteadyClock::now() + delay;
  bool earliest = delayed_.empty() || due < delayed_.top().due;
  delayed_.push(Delayed{due, key});
  // A waiting worker may be sleeping until a later time.
  if (earliest) cv_.notify_one();
}

void TaskQueue::add_with_backoff(const std::string& key) {
  std::chrono::milliseconds delay;
  {
    std::lock_guard<std::mutex> lock(mu_);
    int n = failures_[key]++;
    delay = kBaseBackoff * (int64_t{1} << std::min(n, 20));
    if (delay > kMaxBackoff) delay = kMaxBackoff;
  }
  add_after(key, delay);
}

void TaskQueue::forget(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  failures_.erase(key);
}

void TaskQueue::promote_due(SteadyClock::time_point now) {
  while (!delayed_.empty() && delayed_.top().due <= now) {
    std::string key = delayed_.top().key;
    delayed_.pop();
    add_locked(key);
  }
}

bool TaskQueue::get(std::string* key) {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    if (shutdown_) return false;
    promote_due(SteadyClock::now());
    if (!ready_.empty()) {
      *key = std::move(ready_.front());
      ready_.pop_front();
      queued_.erase(*key);
      processing_.insert(*key);
      return true;
    }
    if (delayed_.empty()) {
      cv_.wait(lock);
    } else {
      // A copy: another worker may pop the entry while this one waits.
      SteadyClock::time_point due = delayed_.top().due;
      cv_.wait_until(lock, due);
    }
  }
}

void TaskQueue::done(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  processing_.erase(key);
  if (dirty_.erase(key) != 0) add_locked(key);
}

void TaskQueue::shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    shutdown_ = true;
    ready_.clear();
    queued_.clear();
    dirty_.clear();
    while (!delayed_.empty()) delayed_.pop();
  }
  cv_.notify_all();
}

size_t TaskQueue::pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ready_.size() + processing_.size();
}

}  // namespace skiff::simnodes
