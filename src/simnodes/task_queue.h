// TaskQueue: the work list of the simulated kubelets' status writers. Keys name the object
// to look at again ("p<ns>/<name>" for a pod, "n<index>" for a node); a worker reads the
// object's latest state from the informer cache and does what is due, so a key queued
// several times before a worker takes it is processed once, and a key being processed is
// not handed to a second worker (it is queued again when done() if it was added meanwhile).
// Delayed keys wait in a min-heap; workers waiting in get() wake for the earliest one, so no
// timer thread is needed.
//
// Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <queue>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace skiff::simnodes {

class TaskQueue {
 public:
  using SteadyClock = std::chrono::steady_clock;

  // Queues key unless it is queued already. Ignored after shutdown().
  void add(const std::string& key);
  // add(key) once `delay` has passed (at once for delay <= 0).
  void add_after(const std::string& key, std::chrono::milliseconds delay);
  // add_after with a per-key back-off: 10 ms doubling up to 30 s.
  void add_with_backoff(const std::string& key);
  void forget(const std::string& key);  // resets the key's back-off
  // Blocks for the next key (marking it as being processed until done(key)); false once
  // shut down.
  bool get(std::string* key);
  void done(const std::string& key);
  void shutdown();
  // Keys ready or being processed (not counting delayed ones).
  size_t pending() const;

 private:
  struct Delayed {
    SteadyClock::time_point due;
    std::string key;
    bool operator>(const Delayed& o) const { return due > o.due; }
  };

  // Moves due keys from the heap to the ready list. REQUIRES: mu_ held.
  void promote_due(SteadyClock::time_point now);
  void add_locked(const std::string& key);

  mutable std::mutex mu_;
  std::condition_variable cv_;
  // Guarded by mu_.
  std::deque<std::string> ready_;
  std::unordered_set<std::string> queued_;      // in ready_
  std::unordered_set<std::string> processing_;  // handed to a worker
  std::unordered_set<std::string> dirty_;       // added while processing
  std::priority_queue<Delayed, std::vector<Delayed>, std::greater<>> delayed_;
  std::unordered_map<std::string, int> failures_;
  bool shutdown_ = false;
};

}  // namespace skiff::simnodes
