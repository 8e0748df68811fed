#include "controllers/deployment/rollout.h"

#include <climits>
#include <cmath>
#include <utility>

#include "controllers/common/conditions.h"
#include "controllers/common/object_meta.h"

namespace skiff::controllers::deployment {
namespace {

namespace cc = ::skiff::controllers::common;

int32_t clamp32(int64_t v) {
  if (v > INT32_MAX) return INT32_MAX;
  if (v < INT32_MIN) return INT32_MIN;
  return static_cast<int32_t>(v);
}

std::optional<int32_t> optional_int32(const json& obj,
                                      std::initializer_list<std::string_view> path) {
  const json* v = cc::find_path(obj, path);
  if (v == nullptr || !v->is_number_integer()) return std::nullopt;
  return clamp32(v->get<int64_t>());
}

// strconv.ParseInt(s, 10, 32) of an annotation.
std::optional<int32_t> int32_annotation(const json& obj, std::string_view key) {
  auto value = cc::annotation(obj, key);
  if (!value) return std::nullopt;
  auto v = cc::parse_int64(*value);
  if (!v || *v < INT32_MIN || *v > INT32_MAX) return std::nullopt;
  return static_cast<int32_t>(*v);
}

// integer.RoundToInt32: halves away from zero.
int32_t round_to_int32(double a) {
  if (a < 0) return static_cast<int32_t>(a - 0.5);
  return static_cast<int32_t>(a + 0.5);
}

int32_t sum(const std::vector<ReplicaSetView>& rss, int32_t ReplicaSetView::*field) {
  int64_t total = 0;
  for (const auto& rs : rss) total += rs.*field;
  return clamp32(total);
}

std::string operation_for(int32_t from, int32_t to) { return from < to ? "up" : "down"; }

// getReplicaSetFraction: how many replicas `rs` gains (or loses) when the Deployment goes
// from the size in its max-replicas annotation to replicas + maxSurge.
int32_t replica_set_fraction(const DeploymentView& d, const ReplicaSetView& rs) {
  if (d.replicas == 0) return -rs.replicas;
  int32_t deployment_replicas = d.replicas + max_surge(d);
  int32_t annotated = rs.max_replicas.value_or(d.status_replicas);
  if (annotated == 0) return 0;  // nothing to be proportional to
  double new_size = static_cast<double>(static_cast<int64_t>(rs.replicas) * deployment_replicas) /
                    static_cast<double>(annotated);
  return round_to_int32(new_size) - rs.replicas;
}

}  // namespace

IntOrString IntOrString::from_json(const json* v, IntOrString def) {
  if (v == nullptr) return def;
  if (v->is_number_integer()) return of_int(cc::int_at(*v, {}));
  if (v->is_string()) return of_string(v->get<std::string>());
  return def;
}

Result<int32_t> scaled_value(const IntOrString& v, int32_t total, bool round_up) {
  if (!v.is_string) return clamp32(v.int_value);
  const std::string& s = v.string_value;
  if (s.empty() || s.back() != '%') {
    return Status::BadRequest("invalid type: string is not a percentage");
  }
  auto percent = cc::parse_int64(std::string_view(s).substr(0, s.size() - 1));
  if (!percent || *percent < INT32_MIN || *percent > INT32_MAX) {
    return Status::BadRequest("invalid value \"" + s + "\": strconv.Atoi: parsing \"" +
                              s.substr(0, s.size() - 1) + "\": invalid syntax");
  }
  // Exact integer arithmetic for what Go computes with float64 Ceil/Floor.
  int64_t scaled = *percent * static_cast<int64_t>(total);
  int64_t q = scaled / 100;
  int64_t r = scaled % 100;
  if (r != 0) {
    if (round_up && scaled > 0) ++q;
    if (!round_up && scaled < 0) --q;
  }
  return clamp32(q);
}

DeploymentView DeploymentView::from_json(const json& d) {
  DeploymentView v;
  v.name = cc::name_of(d);
  v.generation = cc::generation_of(d);
  v.replicas = clamp32(cc::int_at(d, {"spec", "replicas"}, 1));
  std::string type = cc::string_at(d, {"spec", "strategy", "type"}, "RollingUpdate");
  if (type == "RollingUpdate" || type.empty()) {
    v.strategy = StrategyType::kRollingUpdate;
  } else if (type == "Recreate") {
    v.strategy = StrategyType::kRecreate;
  } else {
    v.strategy = StrategyType::kUnknown;
  }
  v.max_surge = IntOrString::from_json(
      cc::find_path(d, {"spec", "strategy", "rollingUpdate", "maxSurge"}), v.max_surge);
  v.max_unavailable = IntOrString::from_json(
      cc::find_path(d, {"spec", "strategy", "rollingUpdate", "maxUnavailable"}), v.max_unavailable);
  v.revision_history_limit = optional_int32(d, {"spec", "revisionHistoryLimit"});
  v.progress_deadline_seconds = optional_int32(d, {"spec", "progressDeadlineSeconds"});
  v.min_ready_seconds = clamp32(cc::int_at(d, {"spec", "minReadySeconds"}));
  v.paused = cc::bool_at(d, {"spec", "paused"});
  v.status_replicas = clamp32(cc::int_at(d, {"status", "replicas"}));
  return v;
}

ReplicaSetView ReplicaSetView::from_json(const json& rs) {
  ReplicaSetView v;
  v.name = cc::name_of(rs);
  v.uid = cc::uid_of(rs);
  v.created = cc::creation_timestamp(rs);
  v.replicas = clamp32(cc::int_at(rs, {"spec", "replicas"}, 1));
  v.status_replicas = clamp32(cc::int_at(rs, {"status", "replicas"}));
  v.ready_replicas = clamp32(cc::int_at(rs, {"status", "readyReplicas"}));
  v.available_replicas = clamp32(cc::int_at(rs, {"status", "availableReplicas"}));
  v.generation = cc::generation_of(rs);
  v.observed_generation = cc::int_at(rs, {"status", "observedGeneration"});
  v.deleting = cc::being_deleted(rs);
  if (auto revision = cc::annotation(rs, kRevisionAnnotation)) {
    auto parsed = cc::parse_int64(*revision);
    if (parsed) {
      v.revision = *parsed;
    } else {
      v.revision_invalid = true;
    }
  }
  v.desired_replicas = int32_annotation(rs, kDesiredReplicasAnnotation);
  v.max_replicas = int32_annotation(rs, kMaxReplicasAnnotation);
  if (const json* status = cc::find_path(rs, {"status"})) {
    if (const json* failure = cc::find_condition(*status, "ReplicaFailure")) {
      v.replica_failure = *failure;
    }
  }
  return v;
}

Result<Fenceposts> resolve_fenceposts(const IntOrString& max_surge,
                                      const IntOrString& max_unavailable, int32_t desired) {
  auto surge = scaled_value(max_surge, desired, true);
  if (!surge.ok()) return surge.status();
  auto unavailable = scaled_value(max_unavailable, desired, false);
  if (!unavailable.ok()) return unavailable.status();
  Fenceposts f{*surge, *unavailable};
  // Validation forbids both being 0, but rounding maxUnavailable down can make it 0; then
  // one pod may be unavailable, on the theory that surge might not work (quota).
  if (f.max_surge == 0 && f.max_unavailable == 0) f.max_unavailable = 1;
  return f;
}

int32_t max_surge(const DeploymentView& d) {
  if (d.strategy != StrategyType::kRollingUpdate) return 0;
  auto f = resolve_fenceposts(d.max_surge, d.max_unavailable, d.replicas);
  return f.ok() ? f->max_surge : 0;
}

int32_t max_unavailable(const DeploymentView& d) {
  if (d.strategy != StrategyType::kRollingUpdate || d.replicas == 0) return 0;
  auto f = resolve_fenceposts(d.max_surge, d.max_unavailable, d.replicas);
  if (!f.ok()) return 0;
  return std::min(f->max_unavailable, d.replicas);
}

int32_t min_available(const DeploymentView& d) {
  if (d.strategy != StrategyType::kRollingUpdate) return 0;
  return d.replicas - max_unavailable(d);
}

int32_t replica_count(const std::vector<ReplicaSetView>& rss) {
  return sum(rss, &ReplicaSetView::replicas);
}
int32_t actual_replica_count(const std::vector<ReplicaSetView>& rss) {
  return sum(rss, &ReplicaSetView::status_replicas);
}
int32_t ready_replica_count(const std::vector<ReplicaSetView>& rss) {
  return sum(rss, &ReplicaSetView::ready_replicas);
}
int32_t available_replica_count(const std::vector<ReplicaSetView>& rss) {
  return sum(rss, &ReplicaSetView::available_replicas);
}

std::vector<ReplicaSetView> active_replica_sets(const std::vector<ReplicaSetView>& rss) {
  std::vector<ReplicaSetView> out;
  for (const auto& rs : rss) {
    if (rs.replicas > 0) out.push_back(rs);
  }
  return out;
}

bool created_before(const ReplicaSetView& a, const ReplicaSetView& b) {
  if (a.created == b.created) return a.name < b.name;
  if (a.created.seconds != b.created.seconds) return a.created.seconds < b.created.seconds;
  return a.created.nanos < b.created.nanos;
}

Result<int32_t> new_rs_new_replicas(const DeploymentView& d, const std::vector<ReplicaSetView>& all,
                                    const ReplicaSetView& new_rs) {
  switch (d.strategy) {
    case StrategyType::kRollingUpdate: {
      auto surge = scaled_value(d.max_surge, d.replicas, true);
      if (!surge.ok()) return surge.status();
      int64_t current = 0;
      for (const auto& rs : all) current += rs.pods_upper_bound();
      int64_t max_total = static_cast<int64_t>(d.replicas) + *surge;
      if (current >= max_total) return new_rs.replicas;
      int64_t scale_up = std::min<int64_t>(max_total - current, d.replicas - new_rs.replicas);
      return clamp32(new_rs.replicas + scale_up);
    }
    case StrategyType::kRecreate:
      return d.replicas;
    case StrategyType::kUnknown:
      break;
  }
  return Status::BadRequest("deployment type isn't supported");
}

Result<std::optional<ScaleStep>> plan_new_replica_set(const DeploymentView& d,
                                                      const std::vector<ReplicaSetView>& all,
                                                      const ReplicaSetView& new_rs) {
  if (new_rs.replicas == d.replicas) return std::optional<ScaleStep>();
  if (new_rs.replicas > d.replicas) {
    return std::optional<ScaleStep>(ScaleStep{new_rs.name, new_rs.replicas, d.replicas, "down"});
  }
  auto count = new_rs_new_replicas(d, all, new_rs);
  if (!count.ok()) return count.status();
  if (*count == new_rs.replicas) return std::optional<ScaleStep>();
  return std::optional<ScaleStep>(
      ScaleStep{new_rs.name, new_rs.replicas, *count, operation_for(new_rs.replicas, *count)});
}

std::vector<ScaleStep> plan_old_replica_sets(const DeploymentView& d,
                                             const std::vector<ReplicaSetView>& old_rss,
                                             const ReplicaSetView& new_rs) {
  std::vector<ScaleStep> steps;
  std::vector<ReplicaSetView> olds = active_replica_sets(old_rss);
  if (replica_count(olds) == 0) return steps;  // nothing left to scale down

  std::vector<ReplicaSetView> all = old_rss;
  all.push_back(new_rs);
  int32_t all_pods = replica_count(all);
  int32_t min_avail = d.replicas - max_unavailable(d);
  // Unavailable pods of the new ReplicaSet count against the budget, so that old pods are
  // not removed while the new ones are not serving (and a rollback can make progress).
  int32_t new_unavailable = new_rs.replicas - new_rs.available_lower_bound();
  int32_t max_scaled_down = all_pods - min_avail - new_unavailable;
  if (max_scaled_down <= 0) return steps;

  std::stable_sort(olds.begin(), olds.end(), [](const ReplicaSetView& a, const ReplicaSetView& b) {
    return created_before(a, b);
  });

  // Unhealthy replicas go first: removing them does not reduce availability, and they would
  // otherwise block the rollout.
  int32_t cleaned = 0;
  for (auto& rs : olds) {
    if (cleaned >= max_scaled_down) break;
    if (rs.replicas == 0) continue;
    int32_t available = rs.available_lower_bound();
    if (rs.replicas == available) continue;
    int32_t n = std::min(max_scaled_down - cleaned, rs.replicas - available);
    steps.push_back(ScaleStep{rs.name, rs.replicas, rs.replicas - n, "down"});
    rs.replicas -= n;
    cleaned += n;
  }

  // Then available replicas, down to minAvailable.
  int64_t available = new_rs.available_lower_bound();
  for (const auto& rs : olds) available += rs.available_lower_bound();
  if (available <= min_avail) return steps;
  int64_t to_scale_down = available - min_avail;
  int64_t scaled = 0;
  for (auto& rs : olds) {
    if (scaled >= to_scale_down) break;
    if (rs.replicas == 0) continue;
    int32_t n = static_cast<int32_t>(std::min<int64_t>(rs.replicas, to_scale_down - scaled));
    steps.push_back(ScaleStep{rs.name, rs.replicas, rs.replicas - n, "down"});
    rs.replicas -= n;
    scaled += n;
  }
  return steps;
}

std::vector<ScaleStep> plan_recreate_scale_down(const std::vector<ReplicaSetView>& old_rss) {
  std::vector<ScaleStep> steps;
  for (const auto& rs : old_rss) {
    if (rs.replicas != 0) steps.push_back(ScaleStep{rs.name, rs.replicas, 0, "down"});
  }
  return steps;
}

const ReplicaSetView* find_active_or_latest(const ReplicaSetView* new_rs,
                                            const std::vector<ReplicaSetView>& old_rss) {
  if (new_rs == nullptr && old_rss.empty()) return nullptr;
  std::vector<const ReplicaSetView*> olds;
  for (const auto& rs : old_rss) olds.push_back(&rs);
  std::stable_sort(olds.begin(), olds.end(), [](const ReplicaSetView* a, const ReplicaSetView* b) {
    return created_before(*b, *a);  // newest first
  });
  std::vector<const ReplicaSetView*> active;
  for (const auto* rs : olds) {
    if (rs->replicas > 0) active.push_back(rs);
  }
  if (new_rs != nullptr && new_rs->replicas > 0) active.push_back(new_rs);
  if (active.empty()) return new_rs != nullptr ? new_rs : olds.front();
  if (active.size() == 1) return active.front();
  return nullptr;
}

bool is_saturated(const DeploymentView& d, const ReplicaSetView* rs) {
  if (rs == nullptr || !rs->desired_replicas) return false;
  return rs->replicas == d.replicas && *rs->desired_replicas == d.replicas &&
         rs->available_replicas == d.replicas;
}

bool is_scaling_event(const DeploymentView& d, const ReplicaSetView* new_rs,
                      const std::vector<ReplicaSetView>& old_rss) {
  auto differs = [&](const ReplicaSetView& rs) {
    return rs.replicas > 0 && rs.desired_replicas && *rs.desired_replicas != d.replicas;
  };
  for (const auto& rs : old_rss) {
    if (differs(rs)) return true;
  }
  return new_rs != nullptr && differs(*new_rs);
}

int32_t replica_set_proportion(const DeploymentView& d, const ReplicaSetView& rs, int32_t to_add,
                               int32_t added) {
  if (rs.replicas == 0 || to_add == 0 || to_add == added) return 0;
  int32_t fraction = replica_set_fraction(d, rs);
  int32_t allowed = to_add - added;
  // Never hand out more than is left to add (or remove).
  if (to_add > 0) return std::min(fraction, allowed);
  return std::max(fraction, allowed);
}

std::vector<ScaleStep> plan_scale(const DeploymentView& d, const ReplicaSetView* new_rs,
                                  const std::vector<ReplicaSetView>& old_rss) {
  std::vector<ScaleStep> steps;
  if (const ReplicaSetView* rs = find_active_or_latest(new_rs, old_rss)) {
    if (rs->replicas != d.replicas) {
      steps.push_back(
          ScaleStep{rs->name, rs->replicas, d.replicas, operation_for(rs->replicas, d.replicas)});
    }
    return steps;
  }
  // A saturated new ReplicaSet (as after adopting one mid-rollout): old ones go to 0.
  if (is_saturated(d, new_rs)) {
    for (const auto& rs : active_replica_sets(old_rss)) {
      steps.push_back(ScaleStep{rs.name, rs.replicas, 0, "down"});
    }
    return steps;
  }
  if (d.strategy != StrategyType::kRollingUpdate) return steps;

  std::vector<ReplicaSetView> all = old_rss;
  if (new_rs != nullptr) all.push_back(*new_rs);
  all = active_replica_sets(all);
  int32_t all_replicas = replica_count(all);
  int32_t allowed_size = d.replicas > 0 ? d.replicas + max_surge(d) : 0;
  int32_t to_add = allowed_size - all_replicas;

  // Larger ReplicaSets first; among equals, newer first when scaling up and older first when
  // scaling down.
  std::string operation;
  if (to_add > 0) {
    operation = "up";
    std::stable_sort(all.begin(), all.end(), [](const ReplicaSetView& a, const ReplicaSetView& b) {
      if (a.replicas == b.replicas) return created_before(b, a);
      return a.replicas > b.replicas;
    });
  } else if (to_add < 0) {
    operation = "down";
    std::stable_sort(all.begin(), all.end(), [](const ReplicaSetView& a, const ReplicaSetView& b) {
      if (a.replicas == b.replicas) return created_before(a, b);
      return a.replicas > b.replicas;
    });
  }

  std::vector<int32_t> sizes;
  int32_t added = 0;
  for (const auto& rs : all) {
    if (to_add != 0) {
      int32_t proportion = replica_set_proportion(d, rs, to_add, added);
      sizes.push_back(rs.replicas + proportion);
      added += proportion;
    } else {
      sizes.push_back(rs.replicas);
    }
  }
  for (size_t i = 0; i < all.size(); ++i) {
    if (i == 0 && to_add != 0) {
      sizes[0] += to_add - added;  // leftovers go to the largest
      if (sizes[0] < 0) sizes[0] = 0;
    }
    steps.push_back(ScaleStep{all[i].name, all[i].replicas, sizes[i], operation});
  }
  return steps;
}

std::vector<std::string> plan_cleanup(const DeploymentView& d,
                                      const std::vector<ReplicaSetView>& old_rss) {
  std::vector<std::string> names;
  if (!has_revision_history_limit(d)) return names;
  std::vector<ReplicaSetView> cleanable;
  for (const auto& rs : old_rss) {
    if (!rs.deleting) cleanable.push_back(rs);
  }
  int64_t diff = static_cast<int64_t>(cleanable.size()) - *d.revision_history_limit;
  if (diff <= 0) return names;
  std::stable_sort(cleanable.begin(), cleanable.end(),
                   [](const ReplicaSetView& a, const ReplicaSetView& b) {
                     if (a.revision == b.revision) return created_before(a, b);
                     return a.revision < b.revision;
                   });
  for (int64_t i = 0; i < diff; ++i) {
    const ReplicaSetView& rs = cleanable[static_cast<size_t>(i)];
    // Keep any that still has pods, is still being scaled, or is already going away.
    if (rs.status_replicas != 0 || rs.replicas != 0 || rs.generation > rs.observed_generation ||
        rs.deleting) {
      continue;
    }
    names.push_back(rs.name);
  }
  return names;
}

int64_t max_revision(const std::vector<ReplicaSetView>& rss) {
  int64_t max = 0;
  for (const auto& rs : rss) {
    if (!rs.revision_invalid && rs.revision > max) max = rs.revision;
  }
  return max;
}

int64_t last_revision(const std::vector<ReplicaSetView>& rss) {
  int64_t max = 0;
  int64_t second = 0;
  for (const auto& rs : rss) {
    if (rs.revision_invalid) continue;
    if (rs.revision >= max) {
      second = max;
      max = rs.revision;
    } else if (rs.revision > second) {
      second = rs.revision;
    }
  }
  return second;
}

bool has_progress_deadline(const DeploymentView& d) {
  return d.progress_deadline_seconds && *d.progress_deadline_seconds != INT32_MAX;
}

bool has_revision_history_limit(const DeploymentView& d) {
  return d.revision_history_limit && *d.revision_history_limit != INT32_MAX;
}

}  // namespace skiff::controllers::deployment
