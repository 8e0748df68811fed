#include "controllers/common/expectations.h"

namespace skiff::controllers::common {

ControllerExpectations::ControllerExpectations(const Clock& clock, std::chrono::nanoseconds timeout)
    : clock_(clock), timeout_(timeout) {}

bool ControllerExpectations::satisfied(const std::string& controller_key) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = records_.find(controller_key);
  if (it == records_.end()) return true;  // never set: a new controller, or one just forgotten
  const Record& r = it->second;
  if (r.adds <= 0 && r.deletes <= 0) return true;
  // Events can be lost (a watch that ended between a write and its event); past the timeout
  // the controller syncs anyway.
  return clock_.now() - r.set_at > timeout_;
}

void ControllerExpectations::expect_creations(const std::string& controller_key, int count) {
  std::lock_guard<std::mutex> lock(mu_);
  Record& r = records_[controller_key];
  r.adds = count;
  r.deletes = 0;
  r.deleted_keys.clear();
  r.set_at = clock_.now();
}

void ControllerExpectations::expect_deletions(const std::string& controller_key,
                                              const std::vector<std::string>& object_keys) {
  std::lock_guard<std::mutex> lock(mu_);
  Record& r = records_[controller_key];
  r.deleted_keys = std::set<std::string>(object_keys.begin(), object_keys.end());
  r.adds = 0;
  r.deletes = static_cast<int>(r.deleted_keys.size());
  r.set_at = clock_.now();
}

void ControllerExpectations::expect(const std::string& controller_key, int count,
                                    const std::vector<std::string>& object_keys) {
  std::lock_guard<std::mutex> lock(mu_);
  Record& r = records_[controller_key];
  r.deleted_keys = std::set<std::string>(object_keys.begin(), object_keys.end());
  r.adds = count;
  r.deletes = static_cast<int>(r.deleted_keys.size());
  r.set_at = clock_.now();
}

void ControllerExpectations::creation_observed(const std::string& controller_key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = records_.find(controller_key);
  if (it != records_.end()) --it->second.adds;
}

void ControllerExpectations::deletion_observed(const std::string& controller_key,
                                               const std::string& object_key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = records_.find(controller_key);
  if (it == records_.end()) return;
  if (it->second.deleted_keys.erase(object_key) > 0) --it->second.deletes;
}

void ControllerExpectations::delete_expectations(const std::string& controller_key) {
  std::lock_guard<std::mutex> lock(mu_);
  records_.erase(controller_key);
}

bool ControllerExpectations::pending(const std::string& controller_key, int* adds,
                                     int* deletes) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = records_.find(controller_key);
  if (it == records_.end()) return false;
  if (adds != nullptr) *adds = it->second.adds;
  if (deletes != nullptr) *deletes = it->second.deletes;
  return true;
}

}  // namespace skiff::controllers::common
