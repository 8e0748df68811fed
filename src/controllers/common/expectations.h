// Expectations, as controller.UIDTrackingControllerExpectations: what a controller is
// waiting to see in its informer cache after it created or deleted objects, so that it does
// not act again on a cache that has not caught up (and create or delete twice).
//
// A controller records, per controller key ("ns/name"), how many creations it expects to
// observe and which objects (by "ns/name" key) it expects to see deleted; its event handlers
// report what they observe; reconcile acts only when satisfied(): nothing is pending, or the
// expectations are older than the timeout (an event was lost), or none were ever set.
//
// Thread-safe.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "common/time.h"

namespace skiff::controllers::common {

// controller.ExpectationsTimeout.
inline constexpr std::chrono::minutes kExpectationsTimeout{5};

class ControllerExpectations {
 public:
  explicit ControllerExpectations(const Clock& clock = Clock::real(),
                                  std::chrono::nanoseconds timeout = kExpectationsTimeout);

  // True when the controller may act on its cache: see the header comment.
  bool satisfied(const std::string& controller_key) const;
  // Replaces the expectations of `controller_key` with `count` creations.
  void expect_creations(const std::string& controller_key, int count);
  // Replaces the expectations of `controller_key` with the deletion of `object_keys`.
  void expect_deletions(const std::string& controller_key,
                        const std::vector<std::string>& object_keys);
  // Replaces the expectations of `controller_key` with `count` creations and the deletion of
  // `object_keys` at once (controller.SetExpectations), for controllers that do both in one
  // pass (DaemonSet).
  void expect(const std::string& controller_key, int count,
              const std::vector<std::string>& object_keys);
  // One expected creation was observed (or will never happen: a create that failed).
  void creation_observed(const std::string& controller_key);
  // `object_key` was observed deleted (or its delete failed); counts only if it was expected.
  void deletion_observed(const std::string& controller_key, const std::string& object_key);
  // Forgets `controller_key` (its controller is gone).
  void delete_expectations(const std::string& controller_key);

  // For tests and logs: pending creations and deletions; false when there is no record.
  bool pending(const std::string& controller_key, int* adds, int* deletes) const;

 private:
  struct Record {
    int adds = 0;
    int deletes = 0;
    std::set<std::string> deleted_keys;
    TimePoint set_at;
  };

  const Clock& clock_;
  const std::chrono::nanoseconds timeout_;
  mutable std::mutex mu_;
  std::map<std::string, Record> records_;  // guarded by mu_
};

}  // namespace skiff::controllers::common
