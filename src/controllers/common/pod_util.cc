#include "controllers/common/pod_util.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <map>
#include <utility>

#include "controllers/common/object_meta.h"

namespace skiff::controllers::common {
namespace {

int phase_ordinal(const json& pod) {
  std::string phase = string_at(pod, {"status", "phase"});
  if (phase == "Unknown") return 1;
  if (phase == "Running") return 2;
  return 0;  // Pending, and phases the map does not list
}

int max_container_restarts(const json& pod) {
  int64_t max_restarts = 0;
  const json* statuses = find_path(pod, {"status", "containerStatuses"});
  if (statuses != nullptr && statuses->is_array()) {
    for (const json& s : *statuses)
      max_restarts = std::max(max_restarts, int_at(s, {"restartCount"}));
  }
  return static_cast<int>(max_restarts);
}

// The Ready condition's lastTransitionTime for a ready pod; the zero time otherwise.
Timestamp ready_time(const json& pod) {
  if (!is_pod_ready(pod)) return Timestamp{};
  const json* c = pod_ready_condition(pod);
  if (c == nullptr) return Timestamp{};
  return time_at(*c, {"lastTransitionTime"}).value_or(Timestamp{});
}

bool is_zero(const Timestamp& t) { return t == Timestamp{}; }

bool after(const Timestamp& a, const Timestamp& b) {
  if (a.seconds != b.seconds) return a.seconds > b.seconds;
  return a.nanos > b.nanos;
}

// afterOrZero: a zero time sorts first; otherwise the later time does.
bool after_or_zero(const Timestamp& a, const Timestamp& b) {
  if (is_zero(a) || is_zero(b)) return is_zero(a);
  return after(a, b);
}

// logarithmicRankDiff: compares floor(log2(now - t)) in nanoseconds, -1 for times not in the
// past.
int64_t logarithmic_rank_diff(const Timestamp& t1, const Timestamp& t2, TimePoint now) {
  auto rank = [&](const Timestamp& t) -> int64_t {
    auto d = std::chrono::duration_cast<std::chrono::nanoseconds>(now - to_time_point(t)).count();
    if (d <= 0) return -1;
    return static_cast<int64_t>(std::log2(static_cast<double>(d)));
  };
  return rank(t1) - rank(t2);
}

// Compares two different timestamps of pods `pa` and `pb` for deletion order: true when `pa`
// goes first.
bool time_precedes(const Timestamp& a, const Timestamp& b, const json& pa, const json& pb,
                   TimePoint now) {
  if (now.time_since_epoch().count() == 0 || is_zero(a) || is_zero(b)) {
    return after_or_zero(a, b);
  }
  int64_t diff = logarithmic_rank_diff(a, b, now);
  if (diff == 0) return uid_of(pa) < uid_of(pb);
  return diff < 0;
}

// A merge sort by `less`: unlike std::sort it stays within bounds whatever the comparator
// does, and the Kubernetes ordering is not a strict weak order in every corner (log-scale
// buckets fall back to uids).
template <typename T, typename Less>
void merge_sort(std::vector<T>& v, Less less) {
  if (v.size() < 2) return;
  std::vector<T> buf(v.size());
  for (size_t width = 1; width < v.size(); width *= 2) {
    for (size_t lo = 0; lo < v.size(); lo += 2 * width) {
      size_t mid = std::min(lo + width, v.size());
      size_t hi = std::min(lo + 2 * width, v.size());
      size_t i = lo, j = mid, k = lo;
      while (i < mid && j < hi) buf[k++] = less(v[j], v[i]) ? v[j++] : v[i++];
      while (i < mid) buf[k++] = v[i++];
      while (j < hi) buf[k++] = v[j++];
    }
    v.swap(buf);
  }
}

}  // namespace

bool is_pod_active(const json& pod) {
  std::string phase = string_at(pod, {"status", "phase"});
  return phase != "Succeeded" && phase != "Failed" && !being_deleted(pod);
}

const json* pod_ready_condition(const json& pod) {
  const json* conditions = find_path(pod, {"status", "conditions"});
  if (conditions == nullptr || !conditions->is_array()) return nullptr;
  for (const json& c : *conditions) {
    if (string_at(c, {"type"}) == "Ready") return &c;
  }
  return nullptr;
}

bool is_pod_ready(const json& pod) {
  const json* c = pod_ready_condition(pod);
  return c != nullptr && string_at(*c, {"status"}) == "True";
}

bool is_pod_available(const json& pod, int32_t min_ready_seconds, TimePoint now) {
  if (!is_pod_ready(pod)) return false;
  if (min_ready_seconds <= 0) return true;
  auto since = time_at(*pod_ready_condition(pod), {"lastTransitionTime"});
  if (!since || is_zero(*since)) return false;
  return to_time_point(*since) + std::chrono::seconds(min_ready_seconds) < now;
}

std::vector<client::ObjectPtr> filter_active_pods(const std::vector<client::ObjectPtr>& pods) {
  std::vector<client::ObjectPtr> out;
  out.reserve(pods.size());
  for (const auto& p : pods) {
    if (p && is_pod_active(*p)) out.push_back(p);
  }
  return out;
}

int32_t pod_deletion_cost(const json& pod) {
  auto value = annotation(pod, kPodDeletionCostAnnotation);
  if (!value || value->empty()) return 0;
  // Neither a plus sign nor leading zeros.
  char first = (*value)[0];
  bool valid_first = first == '-' || *value == "0" || (first >= '1' && first <= '9');
  if (!valid_first) return 0;
  auto v = parse_int64(*value);
  if (!v || *v < INT32_MIN || *v > INT32_MAX) return 0;
  return static_cast<int32_t>(*v);
}

bool deletion_precedes(const json& a, int rank_a, const json& b, int rank_b, TimePoint now) {
  // 1. Unassigned < assigned.
  std::string node_a = string_at(a, {"spec", "nodeName"});
  std::string node_b = string_at(b, {"spec", "nodeName"});
  if (node_a != node_b && (node_a.empty() || node_b.empty())) return node_a.empty();
  // 2. Pending < Unknown < Running.
  int phase_a = phase_ordinal(a);
  int phase_b = phase_ordinal(b);
  if (phase_a != phase_b) return phase_a < phase_b;
  // 3. Not ready < ready.
  bool ready_a = is_pod_ready(a);
  bool ready_b = is_pod_ready(b);
  if (ready_a != ready_b) return !ready_a;
  // 4. Lower deletion cost < higher.
  int32_t cost_a = pod_deletion_cost(a);
  int32_t cost_b = pod_deletion_cost(b);
  if (cost_a != cost_b) return cost_a < cost_b;
  // 5. Doubled up < not doubled up.
  if (rank_a != rank_b) return rank_a > rank_b;
  // 6. Ready for a shorter time < longer.
  if (ready_a && ready_b) {
    Timestamp ta = ready_time(a);
    Timestamp tb = ready_time(b);
    if (!(ta == tb)) return time_precedes(ta, tb, a, b, now);
  }
  // 7. More restarts < fewer.
  int restarts_a = max_container_restarts(a);
  int restarts_b = max_container_restarts(b);
  if (restarts_a != restarts_b) return restarts_a > restarts_b;
  // 8. Newer < older.
  Timestamp ca = creation_timestamp(a);
  Timestamp cb = creation_timestamp(b);
  if (!(ca == cb)) return time_precedes(ca, cb, a, b, now);
  return false;
}

std::vector<client::ObjectPtr> pods_to_delete(std::vector<client::ObjectPtr> pods,
                                              const std::vector<client::ObjectPtr>& related,
                                              size_t diff, TimePoint now) {
  if (diff < pods.size()) {
    std::map<std::string, int> pods_on_node;
    for (const auto& p : related) {
      if (p && is_pod_active(*p)) ++pods_on_node[string_at(*p, {"spec", "nodeName"})];
    }
    std::vector<std::pair<client::ObjectPtr, int>> ranked;
    ranked.reserve(pods.size());
    for (auto& p : pods) {
      int rank = pods_on_node[string_at(*p, {"spec", "nodeName"})];
      ranked.emplace_back(std::move(p), rank);
    }
    merge_sort(ranked, [&](const auto& x, const auto& y) {
      return deletion_precedes(*x.first, x.second, *y.first, y.second, now);
    });
    pods.clear();
    for (auto& [p, rank] : ranked) pods.push_back(std::move(p));
  }
  if (pods.size() > diff) pods.resize(diff);
  return pods;
}

Result<json> pod_from_template(const json& pod_template, const json& parent,
                               const OwnerReference& controller_ref) {
  json meta = json::object();
  if (const json* labels = find_path(pod_template, {"metadata", "labels"});
      labels != nullptr && labels->is_object() && !labels->empty()) {
    meta["labels"] = *labels;
  }
  if (const json* annotations = find_path(pod_template, {"metadata", "annotations"});
      annotations != nullptr && annotations->is_object() && !annotations->empty()) {
    meta["annotations"] = *annotations;
  }
  if (const json* finalizers = find_path(pod_template, {"metadata", "finalizers"});
      finalizers != nullptr && finalizers->is_array() && !finalizers->empty()) {
    meta["finalizers"] = *finalizers;
  }
  // getPodsPrefix: "<parent>-" unless that would not be a valid name prefix.
  std::string parent_name = name_of(parent);
  meta["generateName"] = parent_name.size() + 1 > 253 ? parent_name : parent_name + "-";
  meta["ownerReferences"] = json::array({controller_ref.to_json()});
  if (!meta.contains("labels")) {
    return Status::BadRequest("unable to create pods, no labels");
  }
  json pod = {{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", std::move(meta)}};
  const json* spec = find_path(pod_template, {"spec"});
  pod["spec"] = spec != nullptr ? *spec : json::object();
  return pod;
}

}  // namespace skiff::controllers::common
