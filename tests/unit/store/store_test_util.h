// Helpers shared by the store tests: a temporary directory and an event collector that tests
// wait on with a deadline.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "store/store.h"

namespace skiff::store::test {

inline constexpr auto kDeadline = std::chrono::seconds(20);

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "skiff-store-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Records every event handed to its sink.
class EventLog {
 public:
  EventSink sink() {
    return [this](const std::vector<Event>& events) {
      std::lock_guard<std::mutex> lock(mu_);
      if (in_call_) overlapping_calls_ = true;
      in_call_ = true;
      events_.insert(events_.end(), events.begin(), events.end());
      ++calls_;
      in_call_ = false;
      cv_.notify_all();
    };
  }

  // Waits until an event at or above revision arrived; false at the deadline.
  bool wait_for_revision(int64_t revision) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, kDeadline, [&] {
      return !events_.empty() && events_.back().kv.mod_revision >= revision;
    });
  }

  std::vector<Event> events() const {
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
  }
  std::vector<int64_t> revisions() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<int64_t> out;
    for (const Event& e : events_) out.push_back(e.kv.mod_revision);
    return out;
  }
  size_t calls() const {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }
  bool overlapping_calls() const {
    std::lock_guard<std::mutex> lock(mu_);
    return overlapping_calls_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Event> events_;
  size_t calls_ = 0;
  bool in_call_ = false;
  bool overlapping_calls_ = false;
};

// Polls pred until it holds or the deadline passes, for state that has no notification (such
// as the store's periodic compaction).
inline bool eventually(const std::function<bool()>& pred) {
  auto deadline = std::chrono::steady_clock::now() + kDeadline;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

inline WriteOp create_op(std::string key, std::string value) {
  WriteOp op;
  op.kind = WriteOp::Kind::kCreate;
  op.key = std::move(key);
  op.value = std::make_shared<const std::string>(std::move(value));
  return op;
}

inline WriteOp update_op(std::string key, std::string value, int64_t expected) {
  WriteOp op;
  op.kind = WriteOp::Kind::kUpdate;
  op.key = std::move(key);
  op.value = std::make_shared<const std::string>(std::move(value));
  op.expected_mod_revision = expected;
  return op;
}

// Counts down as write callbacks arrive; tests wait for all of them with a deadline.
class Callbacks {
 public:
  WriteCallback add(size_t slot) {
    std::lock_guard<std::mutex> lock(mu_);
    if (results_.size() <= slot) results_.resize(slot + 1, Status::Internal("no callback"));
    ++outstanding_;
    return [this, slot](Result<WriteResult> r) {
      std::lock_guard<std::mutex> lock(mu_);
      results_[slot] = std::move(r);
      --outstanding_;
      cv_.notify_all();
    };
  }
  bool wait_all() {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, kDeadline, [&] { return outstanding_ == 0; });
  }
  Result<WriteResult> result(size_t slot) {
    std::lock_guard<std::mutex> lock(mu_);
    return results_.at(slot);
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Result<WriteResult>> results_;
  size_t outstanding_ = 0;
};

}  // namespace skiff::store::test
