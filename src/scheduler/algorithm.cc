#include "scheduler/algorithm.h"

#include <algorithm>
#include <limits>
#include <utility>

namespace skiff::scheduler {

const char* scoring_strategy_name(ScoringStrategy s) {
  return s == ScoringStrategy::kMostAllocated ? "MostAllocated" : "LeastAllocated";
}

std::vector<Profile> default_profiles(ScoringStrategy default_strategy) {
  Profile spread;
  spread.scheduler_name = kDefaultSchedulerName;
  spread.strategy = default_strategy;
  if (default_strategy == ScoringStrategy::kMostAllocated) spread.weights.balanced_allocation = 0;
  Profile pack;
  pack.scheduler_name = kBinPackingSchedulerName;
  pack.strategy = ScoringStrategy::kMostAllocated;
  pack.weights.balanced_allocation = 0;
  return {spread, pack};
}

size_t num_feasible_nodes_to_find(int percentage, size_t num_nodes) {
  constexpr size_t kMinFeasibleNodesToFind = 100;
  constexpr int64_t kMinFeasibleNodesPercentageToFind = 5;
  if (num_nodes < kMinFeasibleNodesToFind) return num_nodes;
  int64_t pct = percentage;
  if (pct <= 0) {
    pct = 50 - static_cast<int64_t>(num_nodes) / 125;
    if (pct < kMinFeasibleNodesPercentageToFind) pct = kMinFeasibleNodesPercentageToFind;
  }
  if (pct >= 100) return num_nodes;
  size_t n = num_nodes * static_cast<size_t>(pct) / 100;
  return std::max(n, kMinFeasibleNodesToFind);
}

namespace {

// FitError.Error(): "0/N nodes are available: <count reason, ...sorted>." followed by the
// preemption outcome. skiff does not preempt; the preemption part says what kube-scheduler's
// DefaultPreemption says when it finds no victims: nodes rejected by an unresolvable filter
// are "not helpful", the others had no pods to preempt.
std::string fit_error_message(size_t num_nodes, const std::vector<FailureReason>& reasons,
                              size_t unresolvable, size_t resolvable, const PodInfo& pod,
                              const Interner& strings) {
  std::vector<std::pair<FailureReason, size_t>> histogram;
  for (const FailureReason& r : reasons) {
    auto it = std::find_if(histogram.begin(), histogram.end(),
                           [&](const auto& h) { return h.first == r; });
    if (it == histogram.end()) {
      histogram.emplace_back(r, 1);
    } else {
      ++it->second;
    }
  }
  std::vector<std::string> parts;
  parts.reserve(histogram.size());
  for (const auto& [r, n] : histogram) {
    parts.push_back(std::to_string(n) + " " + reason_text(r, strings));
  }
  std::sort(parts.begin(), parts.end());
  auto join = [](const std::vector<std::string>& v) {
    std::string out;
    for (size_t i = 0; i < v.size(); ++i) {
      if (i > 0) out += ", ";
      out += v[i];
    }
    return out;
  };
  std::string head = "0/" + std::to_string(num_nodes) + " nodes are available:";
  std::string msg = head;
  if (!parts.empty()) msg += " " + join(parts) + ".";
  std::string preemption;
  if (pod.preemption_never) {
    preemption = "not eligible due to preemptionPolicy=Never.";
  } else {
    std::vector<std::string> p;
    if (resolvable > 0) {
      p.push_back(std::to_string(resolvable) + " No preemption victims found for incoming pod");
    }
    if (unresolvable > 0) {
      p.push_back(std::to_string(unresolvable) + " Preemption is not helpful for scheduling");
    }
    std::sort(p.begin(), p.end());
    preemption = head;
    if (!p.empty()) preemption += " " + join(p) + ".";
  }
  msg += " preemption: " + preemption + ".";
  return msg;
}

}  // namespace

Result<ScheduleResult> schedule_one(const Cluster& cluster, const PodInfo& pod,
                                    const Profile& profile, ScheduleState& state,
                                    Diagnosis* diagnosis) {
  Diagnosis local;
  Diagnosis& d = diagnosis ? *diagnosis : local;
  d = Diagnosis();
  if (!pod.invalid.empty()) {
    d.reason = "SchedulerError";
    d.message = pod.invalid;
    return Status::Invalid(d.message);
  }
  const size_t n = cluster.num_nodes();
  if (n == 0) {
    d.reason = "SchedulerError";
    d.message = "no nodes available to schedule pods";
    d.plugins = plugin::kNoNodes;
    return Status::Unavailable(d.message);
  }

  // Filter, starting where the previous decision stopped, until enough feasible nodes are
  // found.
  const InterPodAffinityState ipa = inter_pod_affinity_prefilter(cluster, pod);
  const size_t want = num_feasible_nodes_to_find(profile.percentage_of_nodes_to_score, n);
  std::vector<uint32_t>& feasible = state.feasible_;
  std::vector<FailureReason>& reasons = state.reasons_;
  feasible.clear();
  reasons.clear();
  size_t unresolvable = 0, resolvable = 0, processed = 0;
  const size_t start = state.next_start_index_ % n;
  for (size_t i = 0; i < n; ++i) {
    size_t idx = start + i;
    if (idx >= n) idx -= n;
    uint32_t failed = 0;
    FilterCode code = run_filters(cluster, pod, ipa, cluster.node_at(idx), reasons, &failed);
    ++processed;
    if (code == FilterCode::kSuccess) {
      feasible.push_back(static_cast<uint32_t>(idx));
      if (feasible.size() >= want) break;
    } else {
      (code == FilterCode::kUnresolvable ? unresolvable : resolvable)++;
      d.plugins |= failed;
    }
  }
  state.next_start_index_ = (start + processed) % n;

  ScheduleResult result;
  result.evaluated_nodes = processed;
  result.feasible_nodes = feasible.size();
  if (feasible.empty()) {
    d.reason = "Unschedulable";
    d.message = fit_error_message(n, reasons, unresolvable, resolvable, pod, cluster.interner());
    return Status::Unavailable(d.message);
  }
  if (feasible.size() == 1) {
    result.node_name = cluster.node_at(feasible[0]).name;
    return result;
  }

  // Score.
  const size_t m = feasible.size();
  const ScoreWeights& w = profile.weights;
  std::vector<int64_t>& total = state.total_;
  std::vector<int64_t>& scores = state.plugin_scores_;
  total.assign(m, 0);

  if (w.resources_fit != 0) {
    const bool most = profile.strategy == ScoringStrategy::kMostAllocated;
    for (size_t i = 0; i < m; ++i) {
      const NodeInfo& ni = cluster.node_at(feasible[i]);
      const Resources& alloc = ni.node->allocatable;
      int64_t sum = 0, weights = 0;
      if (alloc.milli_cpu != 0) {
        int64_t req = ni.non_zero_milli_cpu + pod.non_zero_milli_cpu;
        sum += most ? most_requested_score(req, alloc.milli_cpu)
                    : least_requested_score(req, alloc.milli_cpu);
        ++weights;
      }
      if (alloc.memory != 0) {
        int64_t req = ni.non_zero_memory + pod.non_zero_memory;
        sum += most ? most_requested_score(req, alloc.memory)
                    : least_requested_score(req, alloc.memory);
        ++weights;
      }
      total[i] += w.resources_fit * (weights == 0 ? 0 : sum / weights);
    }
  }

  // Best-effort pods skip BalancedAllocation (kubernetes#129138).
  if (w.balanced_allocation != 0 && (pod.requests.milli_cpu != 0 || pod.requests.memory != 0)) {
    for (size_t i = 0; i < m; ++i) {
      const NodeInfo& ni = cluster.node_at(feasible[i]);
      const Resources& alloc = ni.node->allocatable;
      total[i] +=
          w.balanced_allocation *
          balanced_resource_score(ni.requested.milli_cpu + pod.requests.milli_cpu, alloc.milli_cpu,
                                  ni.requested.memory + pod.requests.memory, alloc.memory);
    }
  }

  // Constant across nodes unless some node has a PreferNoSchedule taint.
  if (w.taint_toleration != 0 && cluster.nodes_with_prefer_no_schedule() > 0) {
    std::vector<Toleration> prefer;
    for (const Toleration& t : pod.tolerations) {
      if (t.any_effect || t.effect == TaintEffect::kPreferNoSchedule) prefer.push_back(t);
    }
    scores.resize(m);
    for (size_t i = 0; i < m; ++i) {
      scores[i] = count_intolerable_prefer_no_schedule(*cluster.node_at(feasible[i]).node, prefer);
    }
    default_normalize_score(scores, true);
    for (size_t i = 0; i < m; ++i) total[i] += w.taint_toleration * scores[i];
  }

  if (w.node_affinity != 0 && !pod.preferred_node_affinity.empty()) {
    scores.resize(m);
    for (size_t i = 0; i < m; ++i) {
      scores[i] = node_affinity_preferred_score(pod, *cluster.node_at(feasible[i]).node,
                                                cluster.interner());
    }
    default_normalize_score(scores, false);
    for (size_t i = 0; i < m; ++i) total[i] += w.node_affinity * scores[i];
  }

  if (w.inter_pod_affinity != 0 && inter_pod_affinity_prescore(cluster, pod, state.ipa_scores_)) {
    scores.resize(m);
    int64_t lo = std::numeric_limits<int64_t>::max(), hi = std::numeric_limits<int64_t>::min();
    for (size_t i = 0; i < m; ++i) {
      scores[i] = inter_pod_affinity_score(state.ipa_scores_, *cluster.node_at(feasible[i]).node);
      lo = std::min(lo, scores[i]);
      hi = std::max(hi, scores[i]);
    }
    for (size_t i = 0; i < m; ++i) {
      int64_t s = 0;
      if (hi > lo) {
        s = static_cast<int64_t>(
            static_cast<double>(kMaxNodeScore) *
            (static_cast<double>(scores[i] - lo) / static_cast<double>(hi - lo)));
      }
      total[i] += w.inter_pod_affinity * s;
    }
  }

  // selectHost: the highest score, ties broken uniformly at random (reservoir sampling).
  size_t chosen = 0, ties = 0;
  int64_t best = std::numeric_limits<int64_t>::min();
  for (size_t i = 0; i < m; ++i) {
    if (total[i] > best) {
      best = total[i];
      chosen = i;
      ties = 1;
    } else if (total[i] == best) {
      ++ties;
      if (state.rng_() % ties == 0) chosen = i;
    }
  }
  result.node_name = cluster.node_at(feasible[chosen]).name;
  return result;
}

}  // namespace skiff::scheduler
