// Completion indexes of Indexed Jobs (pkg/controller/job/indexed_job_utils.go): the index a
// pod carries, and sets of indexes kept as ordered intervals and written as
// status.completedIndexes ("1,3-5,7").
//
// All functions are pure and thread-safe.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace skiff::controllers::job {

using nlohmann::json;

inline constexpr const char* kJobCompletionIndexAnnotation =
    "batch.kubernetes.io/job-completion-index";
inline constexpr const char* kCompletionIndexEnvName = "JOB_COMPLETION_INDEX";
inline constexpr int kUnknownCompletionIndex = -1;

// getCompletionIndex: the pod's completion index annotation as a non-negative integer;
// kUnknownCompletionIndex when absent or not a valid number.
int completion_index(const json& pod);

// A set of indexes as disjoint, ordered, non-adjacent closed intervals [first, last].
class OrderedIntervals {
 public:
  OrderedIntervals() = default;
  // parseIndexesFromString: "1,3-5" read up to (excluding) `completions`; malformed parts and
  // indexes out of range are skipped.
  static OrderedIntervals parse(std::string_view text, int completions);

  // withOrderedIndexes: this set plus `sorted` (ascending indexes).
  OrderedIntervals with_ordered_indexes(const std::vector<int>& sorted) const;
  bool has(int index) const;
  int64_t total() const;
  // "1,3-5,7"; empty for the empty set.
  std::string to_string() const;
  const std::vector<std::pair<int, int>>& intervals() const { return intervals_; }

 private:
  std::vector<std::pair<int, int>> intervals_;
};

}  // namespace skiff::controllers::job
