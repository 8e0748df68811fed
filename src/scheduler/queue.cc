#include "scheduler/queue.h"

#include <algorithm>

namespace skiff::scheduler {

SchedulingQueue::SchedulingQueue(Options options) : options_(options) {}

std::chrono::milliseconds SchedulingQueue::backoff_for(int attempts) const {
  auto d = options_.initial_backoff;
  for (int i = 1; i < attempts; ++i) {
    d *= 2;
    if (d >= options_.max_backoff) return options_.max_backoff;
  }
  return std::min(d, options_.max_backoff);
}

size_t& SchedulingQueue::count(Where w) {
  switch (w) {
    case Where::kActive:
      return active_count_;
    case Where::kBackoff:
      return backoff_count_;
    default:
      return unschedulable_count_;
  }
}

void SchedulingQueue::track(Entry& e, int delta) {
  if (e.where != Where::kUnschedulable) return;
  if (delta > 0) {
    parked_.insert(&e);
  } else {
    parked_.erase(&e);
  }
  if (e.plugins == 0) {
    parked_any_ += delta;
    return;
  }
  for (size_t b = 0; b < parked_by_plugin_.size(); ++b) {
    if (e.plugins & (1u << b)) parked_by_plugin_[b] += delta;
  }
}

void SchedulingQueue::set_where(Entry& e, Where w) {
  track(e, -1);
  --count(e.where);
  ++count(w);
  e.where = w;
  track(e, +1);
}

void SchedulingQueue::activate(const std::string& uid, Entry& e) {
  set_where(e, Where::kActive);
  e.gen = ++next_gen_;
  e.seq = ++next_seq_;
  active_.push(ActiveRecord{e.item.pod->priority, e.seq, e.gen, uid});
}

void SchedulingQueue::to_backoff(const std::string& uid, Entry& e) {
  set_where(e, Where::kBackoff);
  e.gen = ++next_gen_;
  backoff_.push(BackoffRecord{e.backoff_expiry, e.gen, uid});
}

void SchedulingQueue::wake(const std::string& uid, Entry& e, TimePoint now) {
  if (e.backoff_expiry > now) {
    to_backoff(uid, e);
  } else {
    activate(uid, e);
  }
}

void SchedulingQueue::add_or_update(std::shared_ptr<const PodInfo> pod, bool relevant,
                                    TimePoint now) {
  auto it = entries_.find(pod->uid);
  if (it == entries_.end()) {
    std::string uid = pod->uid;
    Entry e;
    e.item.pod = std::move(pod);
    e.item.first_enqueued = now;
    insert(uid, std::move(e), Where::kActive);
    return;
  }
  Entry& e = it->second;
  e.item.pod = std::move(pod);
  if (relevant && e.where == Where::kUnschedulable) wake(it->first, e, now);
  if (e.where == Where::kActive && relevant) {
    // Priority may have changed; re-push (the old record goes stale).
    e.gen = ++next_gen_;
    active_.push(ActiveRecord{e.item.pod->priority, e.seq, e.gen, it->first});
  }
}

void SchedulingQueue::remove(const std::string& uid) {
  auto it = entries_.find(uid);
  if (it == entries_.end()) return;
  track(it->second, -1);
  count(it->second.where)--;
  entries_.erase(it);
}

SchedulingQueue::Entry& SchedulingQueue::insert(const std::string& uid, Entry e, Where w) {
  remove(uid);
  e.where = Where::kUnschedulable;
  ++unschedulable_count_;
  auto [it, inserted] = entries_.emplace(uid, std::move(e));
  (void)inserted;
  it->second.uid = &it->first;
  track(it->second, +1);
  switch (w) {
    case Where::kActive:
      activate(it->first, it->second);
      break;
    case Where::kBackoff:
      to_backoff(it->first, it->second);
      break;
    case Where::kUnschedulable:
      it->second.gen = ++next_gen_;
      break;
  }
  return it->second;
}

bool SchedulingQueue::contains(const std::string& uid) const { return entries_.count(uid) > 0; }

void SchedulingQueue::flush(TimePoint now) {
  while (!backoff_.empty() && backoff_.top().expiry <= now) {
    BackoffRecord r = backoff_.top();
    backoff_.pop();
    auto it = entries_.find(r.uid);
    if (it == entries_.end() || it->second.gen != r.gen || it->second.where != Where::kBackoff) {
      continue;
    }
    activate(it->first, it->second);
  }
  if (unschedulable_count_ > 0 && now >= next_leftover_check_) {
    next_leftover_check_ = now + kLeftoverCheckInterval;
    std::vector<Entry*> due;
    for (Entry* e : parked_) {
      if (now - e->last_failure >= options_.max_unschedulable) due.push_back(e);
    }
    for (Entry* e : due) wake(*e->uid, *e, now);
  }
}

std::optional<SchedulingQueue::Item> SchedulingQueue::pop(TimePoint now) {
  flush(now);
  while (!active_.empty()) {
    ActiveRecord r = active_.top();
    active_.pop();
    auto it = entries_.find(r.uid);
    if (it == entries_.end() || it->second.gen != r.gen || it->second.where != Where::kActive) {
      continue;
    }
    Item item = std::move(it->second.item);
    ++item.attempts;
    count(Where::kActive)--;
    entries_.erase(it);
    return item;
  }
  return std::nullopt;
}

void SchedulingQueue::requeue_unschedulable(Item item, uint32_t plugins, TimePoint now) {
  std::string uid = item.pod->uid;
  Entry e;
  e.last_failure = now;
  e.backoff_expiry = now + backoff_for(item.attempts);
  e.plugins = plugins;
  e.item = std::move(item);
  insert(uid, std::move(e), Where::kUnschedulable);
}

void SchedulingQueue::requeue_backoff(Item item, TimePoint now) {
  std::string uid = item.pod->uid;
  Entry e;
  e.last_failure = now;
  e.backoff_expiry = now + backoff_for(item.attempts);
  e.item = std::move(item);
  insert(uid, std::move(e), Where::kBackoff);
}

void SchedulingQueue::move_on_event(uint32_t plugins, TimePoint now) {
  if (plugins == 0 || parked_.empty()) return;
  bool any = parked_any_ > 0;
  for (size_t b = 0; b < parked_by_plugin_.size() && !any; ++b) {
    any = (plugins & (1u << b)) && parked_by_plugin_[b] > 0;
  }
  if (!any) return;
  std::vector<Entry*> woken;
  for (Entry* e : parked_) {
    if (e->plugins == 0 || (e->plugins & plugins) != 0) woken.push_back(e);
  }
  for (Entry* e : woken) wake(*e->uid, *e, now);
}

std::optional<SchedulingQueue::TimePoint> SchedulingQueue::next_ready_time() const {
  std::optional<TimePoint> t;
  // Stale records only make the wake-up early, never late.
  if (!backoff_.empty()) t = backoff_.top().expiry;
  if (unschedulable_count_ > 0 && (!t || next_leftover_check_ < *t)) t = next_leftover_check_;
  return t;
}

}  // namespace skiff::scheduler
