#include "scheduler/plugins.h"

#include <algorithm>
#include <cmath>

#include "scheduler/convert.h"

namespace skiff::scheduler {

namespace {

uint64_t pair_key(uint32_t key, uint32_t value) {
  return (static_cast<uint64_t>(key) << 32) | value;
}

}  // namespace

std::string reason_text(const FailureReason& r, const Interner& strings) {
  switch (r.reason) {
    case Reason::kNodeUnschedulable:
      return "node(s) were unschedulable";
    case Reason::kUntoleratedTaint:
      return "node(s) had untolerated taint {" + std::string(strings.str(r.a)) + ": " +
             std::string(strings.str(r.b)) + "}";
    case Reason::kNodeAffinity:
      return "node(s) didn't match Pod's node affinity/selector";
    case Reason::kNodePorts:
      return "node(s) didn't have free ports for the requested pod ports";
    case Reason::kTooManyPods:
      return "Too many pods";
    case Reason::kInsufficientCpu:
      return "Insufficient cpu";
    case Reason::kInsufficientMemory:
      return "Insufficient memory";
    case Reason::kInsufficientEphemeralStorage:
      return "Insufficient ephemeral-storage";
    case Reason::kInsufficientScalar:
      return "Insufficient " + std::string(strings.str(r.a));
    case Reason::kPodAffinity:
      return "node(s) didn't match pod affinity rules";
    case Reason::kPodAntiAffinity:
      return "node(s) didn't match pod anti-affinity rules";
    case Reason::kExistingPodsAntiAffinity:
      return "node(s) didn't satisfy existing pods anti-affinity rules";
  }
  return "unknown";
}

bool node_unschedulable_fits(const PodInfo& pod, const Node& node, const Interner& strings) {
  if (!node.unschedulable) return true;
  // A key never interned is on no toleration; only a wildcard toleration can match then.
  auto key = strings.find(kTaintUnschedulable);
  Taint t{key ? *key : UINT32_MAX, Interner::kEmpty, TaintEffect::kNoSchedule};
  return tolerates_taint(pod.tolerations, t);
}

const Taint* find_untolerated_taint(const PodInfo& pod, const Node& node) {
  for (const Taint& t : node.taints) {
    if (t.effect != TaintEffect::kNoSchedule && t.effect != TaintEffect::kNoExecute) continue;
    if (!tolerates_taint(pod.tolerations, t)) return &t;
  }
  return nullptr;
}

bool node_affinity_fits(const PodInfo& pod, const Node& node, const Interner& strings) {
  for (const Label& l : pod.node_selector) {
    auto v = node.labels.get(l.key);
    if (!v || *v != l.value) return false;
  }
  if (!pod.has_required_node_affinity) return true;
  for (const NodeSelectorTerm& t : pod.required_node_affinity) {
    if (t.matches(node.name_id, node.labels, strings)) return true;
  }
  return false;
}

bool host_ports_fit(const PodInfo& pod, const NodeInfo& node) {
  for (const HostPort& want : pod.host_ports) {
    for (const NodeInfo::PortUse& used : node.used_ports) {
      const HostPort& u = used.port;
      if (u.port != want.port || u.protocol != want.protocol) continue;
      // The wildcard address conflicts with every address, and every address with it.
      if (want.ip == Interner::kEmpty || u.ip == Interner::kEmpty || u.ip == want.ip) {
        return false;
      }
    }
  }
  return true;
}

bool resources_fit(const PodInfo& pod, const NodeInfo& ni, std::vector<FailureReason>& out) {
  const Node& node = *ni.node;
  size_t before = out.size();
  if (ni.num_pods + 1 > node.allowed_pods) out.push_back({Reason::kTooManyPods});
  const Resources& want = pod.requests;
  if (want.empty()) return out.size() == before;
  const Resources& alloc = node.allocatable;
  const Resources& used = ni.requested;
  if (want.milli_cpu > 0 && want.milli_cpu > alloc.milli_cpu - used.milli_cpu) {
    out.push_back({Reason::kInsufficientCpu});
  }
  if (want.memory > 0 && want.memory > alloc.memory - used.memory) {
    out.push_back({Reason::kInsufficientMemory});
  }
  if (want.ephemeral_storage > 0 &&
      want.ephemeral_storage > alloc.ephemeral_storage - used.ephemeral_storage) {
    out.push_back({Reason::kInsufficientEphemeralStorage});
  }
  for (const ScalarResource& s : want.scalar) {
    if (s.value == 0) continue;
    if (s.value > alloc.scalar_value(s.name) - used.scalar_value(s.name)) {
      out.push_back({Reason::kInsufficientScalar, s.name});
    }
  }
  return out.size() == before;
}

// ---- InterPodAffinity -----------------------------------------------------------------------

namespace {

void count_pair(std::unordered_map<uint64_t, int64_t>& m, const Node& node, uint32_t key,
                int64_t delta) {
  auto v = node.labels.get(key);
  if (v) m[pair_key(key, *v)] += delta;
}

bool matches_all(const std::vector<AffinityTerm>& terms, const PodInfo& p, const Cluster& c) {
  if (terms.empty()) return false;
  const LabelSet* ns_labels = c.namespace_labels(p.ns_id);
  for (const AffinityTerm& t : terms) {
    if (!t.matches(p.ns_id, p.labels, ns_labels, c.interner())) return false;
  }
  return true;
}

}  // namespace

InterPodAffinityState inter_pod_affinity_prefilter(const Cluster& cluster, const PodInfo& pod) {
  InterPodAffinityState s;
  const auto& anti_pods = cluster.pods_with_required_anti_affinity();
  if (anti_pods.empty() && pod.required_affinity.empty() && pod.required_anti_affinity.empty()) {
    return s;
  }
  s.skip = false;
  const Interner& strings = cluster.interner();
  const LabelSet* pod_ns_labels = cluster.namespace_labels(pod.ns_id);
  // Existing pods whose required anti-affinity the incoming pod would violate.
  for (const Cluster::PlacedPod* p : anti_pods) {
    const Node* node = cluster.node_of(*p);
    if (node == nullptr) continue;
    for (const AffinityTerm& t : p->pod->required_anti_affinity) {
      if (t.matches(pod.ns_id, pod.labels, pod_ns_labels, strings)) {
        count_pair(s.existing_anti_affinity, *node, t.topology_key, 1);
      }
    }
  }
  if (!pod.required_affinity.empty() || !pod.required_anti_affinity.empty()) {
    for (const auto& [uid, p] : cluster.pods()) {
      const Node* node = cluster.node_of(p);
      if (node == nullptr) continue;
      const PodInfo& e = *p.pod;
      const LabelSet* ns_labels = cluster.namespace_labels(e.ns_id);
      if (!pod.required_affinity.empty()) {
        bool all = true;
        for (const AffinityTerm& t : pod.required_affinity) {
          if (!t.matches(e.ns_id, e.labels, ns_labels, strings)) {
            all = false;
            break;
          }
        }
        if (all) {
          for (const AffinityTerm& t : pod.required_affinity) {
            count_pair(s.affinity, *node, t.topology_key, 1);
          }
        }
      }
      for (const AffinityTerm& t : pod.required_anti_affinity) {
        if (t.matches(e.ns_id, e.labels, ns_labels, strings)) {
          count_pair(s.anti_affinity, *node, t.topology_key, 1);
        }
      }
    }
    s.matches_own_affinity = matches_all(pod.required_affinity, pod, cluster);
  }
  return s;
}

FilterCode inter_pod_affinity_filter(const InterPodAffinityState& s, const PodInfo& pod,
                                     const Node& node, Reason* reason) {
  if (s.skip) return FilterCode::kSuccess;
  // satisfyPodAffinity: every term's topology must exist on the node and hold a matching pod,
  // except for the first pod of a group that matches its own terms.
  if (!pod.required_affinity.empty()) {
    bool pods_exist = true;
    for (const AffinityTerm& t : pod.required_affinity) {
      auto v = node.labels.get(t.topology_key);
      if (!v) {
        *reason = Reason::kPodAffinity;
        return FilterCode::kUnresolvable;
      }
      auto it = s.affinity.find(pair_key(t.topology_key, *v));
      if (it == s.affinity.end() || it->second <= 0) pods_exist = false;
    }
    if (!pods_exist && !(s.affinity.empty() && s.matches_own_affinity)) {
      *reason = Reason::kPodAffinity;
      return FilterCode::kUnresolvable;
    }
  }
  if (!s.anti_affinity.empty()) {
    for (const AffinityTerm& t : pod.required_anti_affinity) {
      auto v = node.labels.get(t.topology_key);
      if (!v) continue;
      auto it = s.anti_affinity.find(pair_key(t.topology_key, *v));
      if (it != s.anti_affinity.end() && it->second > 0) {
        *reason = Reason::kPodAntiAffinity;
        return FilterCode::kUnschedulable;
      }
    }
  }
  if (!s.existing_anti_affinity.empty()) {
    for (const Label& l : node.labels.items()) {
      auto it = s.existing_anti_affinity.find(pair_key(l.key, l.value));
      if (it != s.existing_anti_affinity.end() && it->second > 0) {
        *reason = Reason::kExistingPodsAntiAffinity;
        return FilterCode::kUnschedulable;
      }
    }
  }
  return FilterCode::kSuccess;
}

FilterCode run_filters(const Cluster& cluster, const PodInfo& pod, const InterPodAffinityState& ipa,
                       const NodeInfo& ni, std::vector<FailureReason>& reasons,
                       uint32_t* failed_plugin) {
  const Node& node = *ni.node;
  const Interner& strings = cluster.interner();
  if (node.unschedulable && !node_unschedulable_fits(pod, node, strings)) {
    reasons.push_back({Reason::kNodeUnschedulable});
    *failed_plugin = plugin::kNodeUnschedulable;
    return FilterCode::kUnresolvable;
  }
  if (!node.taints.empty()) {
    if (const Taint* t = find_untolerated_taint(pod, node)) {
      reasons.push_back({Reason::kUntoleratedTaint, t->key, t->value});
      *failed_plugin = plugin::kTaintToleration;
      return FilterCode::kUnresolvable;
    }
  }
  if ((!pod.node_selector.empty() || pod.has_required_node_affinity) &&
      !node_affinity_fits(pod, node, strings)) {
    reasons.push_back({Reason::kNodeAffinity});
    *failed_plugin = plugin::kNodeAffinity;
    return FilterCode::kUnresolvable;
  }
  if (!pod.host_ports.empty() && !host_ports_fit(pod, ni)) {
    reasons.push_back({Reason::kNodePorts});
    *failed_plugin = plugin::kNodePorts;
    return FilterCode::kUnschedulable;
  }
  if (!resources_fit(pod, ni, reasons)) {
    *failed_plugin = plugin::kNodeResourcesFit;
    return FilterCode::kUnschedulable;
  }
  if (!ipa.skip) {
    Reason r;
    FilterCode code = inter_pod_affinity_filter(ipa, pod, node, &r);
    if (code != FilterCode::kSuccess) {
      reasons.push_back({r});
      *failed_plugin = plugin::kInterPodAffinity;
      return code;
    }
  }
  return FilterCode::kSuccess;
}

// ---- scores ---------------------------------------------------------------------------------

int64_t least_requested_score(int64_t requested, int64_t capacity) {
  if (capacity == 0 || requested > capacity) return 0;
  return (capacity - requested) * kMaxNodeScore / capacity;
}

int64_t most_requested_score(int64_t requested, int64_t capacity) {
  if (capacity == 0) return 0;
  // Pods without requests count with defaults, so requested may exceed capacity.
  if (requested > capacity) requested = capacity;
  return requested * kMaxNodeScore / capacity;
}

int64_t balanced_resource_score(int64_t cpu_requested, int64_t cpu_allocatable,
                                int64_t mem_requested, int64_t mem_allocatable) {
  double fractions[2];
  int n = 0;
  if (cpu_allocatable != 0) {
    fractions[n++] = std::min(1.0, static_cast<double>(cpu_requested) / cpu_allocatable);
  }
  if (mem_allocatable != 0) {
    fractions[n++] = std::min(1.0, static_cast<double>(mem_requested) / mem_allocatable);
  }
  double std_dev = n == 2 ? std::abs((fractions[0] - fractions[1]) / 2) : 0.0;
  return static_cast<int64_t>((1 - std_dev) * kMaxNodeScore);
}

int64_t count_intolerable_prefer_no_schedule(const Node& node,
                                             const std::vector<Toleration>& prefer_tolerations) {
  int64_t n = 0;
  for (const Taint& t : node.taints) {
    if (t.effect != TaintEffect::kPreferNoSchedule) continue;
    if (!tolerates_taint(prefer_tolerations, t)) ++n;
  }
  return n;
}

int64_t node_affinity_preferred_score(const PodInfo& pod, const Node& node,
                                      const Interner& strings) {
  int64_t score = 0;
  for (const PreferredNodeTerm& t : pod.preferred_node_affinity) {
    if (t.term.matches(node.name_id, node.labels, strings)) score += t.weight;
  }
  return score;
}

namespace {

void process_terms(InterPodAffinityScores& out, const std::vector<AffinityTerm>& terms,
                   const PodInfo& target, const LabelSet* target_ns_labels, const Node& node,
                   int64_t multiplier, const Interner& strings, bool use_weight,
                   int64_t fixed_weight) {
  for (const AffinityTerm& t : terms) {
    if (!t.matches(target.ns_id, target.labels, target_ns_labels, strings)) continue;
    auto v = node.labels.get(t.topology_key);
    if (!v) continue;
    int64_t w = use_weight ? t.weight : fixed_weight;
    auto [it, inserted] = out.by_pair.emplace(pair_key(t.topology_key, *v), 0);
    it->second += w * multiplier;
    if (inserted && std::find(out.keys.begin(), out.keys.end(), t.topology_key) == out.keys.end()) {
      out.keys.push_back(t.topology_key);
    }
  }
}

// HardPodAffinityWeight, kube-scheduler's default.
constexpr int64_t kHardPodAffinityWeight = 1;

}  // namespace

bool inter_pod_affinity_prescore(const Cluster& cluster, const PodInfo& pod,
                                 InterPodAffinityScores& out) {
  out.by_pair.clear();
  out.keys.clear();
  bool has_constraints = !pod.preferred_affinity.empty() || !pod.preferred_anti_affinity.empty();
  if (!has_constraints && cluster.pods_with_affinity().empty()) return false;
  const Interner& strings = cluster.interner();
  const LabelSet* pod_ns_labels = cluster.namespace_labels(pod.ns_id);
  auto process = [&](const Cluster::PlacedPod& p) {
    const Node* node = cluster.node_of(p);
    if (node == nullptr || node->labels.empty()) return;
    const PodInfo& e = *p.pod;
    const LabelSet* e_ns_labels = cluster.namespace_labels(e.ns_id);
    process_terms(out, pod.preferred_affinity, e, e_ns_labels, *node, 1, strings, true, 0);
    process_terms(out, pod.preferred_anti_affinity, e, e_ns_labels, *node, -1, strings, true, 0);
    process_terms(out, e.required_affinity, pod, pod_ns_labels, *node, 1, strings, false,
                  kHardPodAffinityWeight);
    process_terms(out, e.preferred_affinity, pod, pod_ns_labels, *node, 1, strings, true, 0);
    process_terms(out, e.preferred_anti_affinity, pod, pod_ns_labels, *node, -1, strings, true, 0);
  };
  if (has_constraints) {
    for (const auto& [uid, p] : cluster.pods()) process(p);
  } else {
    for (const Cluster::PlacedPod* p : cluster.pods_with_affinity()) process(*p);
  }
  return !out.by_pair.empty();
}

int64_t inter_pod_affinity_score(const InterPodAffinityScores& s, const Node& node) {
  int64_t score = 0;
  for (uint32_t key : s.keys) {
    auto v = node.labels.get(key);
    if (!v) continue;
    auto it = s.by_pair.find(pair_key(key, *v));
    if (it != s.by_pair.end()) score += it->second;
  }
  return score;
}

void default_normalize_score(std::vector<int64_t>& scores, bool reverse) {
  int64_t max = 0;
  for (int64_t s : scores) max = std::max(max, s);
  if (max == 0) {
    if (reverse) std::fill(scores.begin(), scores.end(), kMaxNodeScore);
    return;
  }
  for (int64_t& s : scores) {
    s = kMaxNodeScore * s / max;
    if (reverse) s = kMaxNodeScore - s;
  }
}

}  // namespace skiff::scheduler
