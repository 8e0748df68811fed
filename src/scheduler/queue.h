// The queue of pods waiting for a node, as kube-scheduler's PriorityQueue:
//
//   activeQ         ready to be tried; highest spec.priority first, then first in
//   backoffQ        failed recently; each waits 1s, 2s, 4s, ... (capped at 10s) after its
//                   last failure before it returns to activeQ
//   unschedulable   no node fitted; they stay until a cluster event that may help them (a node
//                   added or changed, a pod deleted, ...) moves them to backoffQ or activeQ,
//                   or until they have waited max_unschedulable (5 minutes)
//
// Each pod remembers which filters rejected it (plugin::*), so an event only wakes the pods it
// can help. Not thread-safe: one owner (the scheduling thread) uses it.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "scheduler/cluster.h"

namespace skiff::scheduler {

class SchedulingQueue {
 public:
  using Clock = std::chrono::steady_clock;
  using TimePoint = Clock::time_point;

  struct Options {
    std::chrono::milliseconds initial_backoff{1000};
    std::chrono::milliseconds max_backoff{10000};
    std::chrono::milliseconds max_unschedulable{std::chrono::minutes(5)};
  };

  // A pod taken out of the queue to be scheduled; handed back with requeue_*().
  struct Item {
    std::shared_ptr<const PodInfo> pod;
    int attempts = 0;  // scheduling attempts so far (incremented by pop)
    TimePoint first_enqueued;
    // The last PodScheduled=False message the scheduler wrote for the pod ("" for none).
    std::string reported_message;
  };

  explicit SchedulingQueue(Options options);
  SchedulingQueue() : SchedulingQueue(Options{}) {}

  // A new pending pod (to activeQ), or a newer version of a queued pod. An update that may
  // change the outcome (`relevant`) moves an unschedulable pod to backoffQ or activeQ.
  // Pods that are out being scheduled are not tracked here (see Scheduler).
  void add_or_update(std::shared_ptr<const PodInfo> pod, bool relevant, TimePoint now);
  // Removes a pod (deleted, bound by someone else); no-op if unknown.
  void remove(const std::string& uid);
  bool contains(const std::string& uid) const;

  // Moves due backoff pods and long-waiting unschedulable pods to activeQ, then takes the
  // first active pod. nullopt if none is ready.
  std::optional<Item> pop(TimePoint now);

  // No node fitted: park until an event with a bit of `plugins` (0: any event).
  void requeue_unschedulable(Item item, uint32_t plugins, TimePoint now);
  // An error (a failed binding, a scheduler error): retry after the back-off.
  void requeue_backoff(Item item, TimePoint now);

  // A cluster event that may let pods rejected by `plugins` fit now.
  void move_on_event(uint32_t plugins, TimePoint now);

  // When pop() may next return something without an event (a back-off expiring, or an
  // unschedulable pod's max wait); nullopt when nothing is waiting.
  std::optional<TimePoint> next_ready_time() const;

  // The back-off after `attempts` failures: initial * 2^(attempts-1), capped.
  std::chrono::milliseconds backoff_for(int attempts) const;

  size_t active_size() const { return active_count_; }
  size_t backoff_size() const { return backoff_count_; }
  size_t unschedulable_size() const { return unschedulable_count_; }
  size_t size() const { return entries_.size(); }

 private:
  enum class Where : uint8_t { kActive, kBackoff, kUnschedulable };
  struct Entry {
    const std::string* uid = nullptr;  // the key in entries_
    Item item;
    Where where = Where::kActive;
    uint64_t gen = 0;  // bumped on every move; stale heap records are skipped
    uint64_t seq = 0;  // FIFO order among equal priorities
    TimePoint last_failure;
    TimePoint backoff_expiry;
    uint32_t plugins = 0;
  };
  struct ActiveRecord {
    int32_t priority;
    uint64_t seq;
    uint64_t gen;
    std::string uid;
    bool operator<(const ActiveRecord& o) const {
      // std::priority_queue pops the largest: higher priority, then lower seq.
      if (priority != o.priority) return priority < o.priority;
      return seq > o.seq;
    }
  };
  struct BackoffRecord {
    TimePoint expiry;
    uint64_t gen;
    std::string uid;
    bool operator<(const BackoffRecord& o) const { return expiry > o.expiry; }
  };

  size_t& count(Where w);
  // Keeps the index of unschedulable entries; delta +1 after an entry enters (or is created
  // in) kUnschedulable, -1 before it leaves.
  void track(Entry& e, int delta);
  void set_where(Entry& e, Where w);
  // Adds (or replaces) an entry in `w`.
  Entry& insert(const std::string& uid, Entry e, Where w);
  void activate(const std::string& uid, Entry& e);
  void to_backoff(const std::string& uid, Entry& e);
  // Unschedulable pod woken: backoffQ while its back-off lasts, else activeQ.
  void wake(const std::string& uid, Entry& e, TimePoint now);
  void flush(TimePoint now);

  const Options options_;
  std::unordered_map<std::string, Entry> entries_;  // by uid
  std::priority_queue<ActiveRecord> active_;
  std::priority_queue<BackoffRecord> backoff_;
  size_t active_count_ = 0;
  size_t backoff_count_ = 0;
  size_t unschedulable_count_ = 0;
  // The unschedulable entries, and how many wait for each plugin::* bit (or for any event).
  std::unordered_set<Entry*> parked_;
  std::array<size_t, 8> parked_by_plugin_{};
  size_t parked_any_ = 0;
  // kube-scheduler looks for pods that waited too long every 30 seconds.
  static constexpr std::chrono::seconds kLeftoverCheckInterval{30};
  TimePoint next_leftover_check_{};
  uint64_t next_seq_ = 0;
  uint64_t next_gen_ = 0;
};

}  // namespace skiff::scheduler
