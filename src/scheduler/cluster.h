// The scheduler's model of the cluster: compact, typed structs extracted once from Node and
// Pod objects (labels and taints as interned 32-bit ids, requests in milli-CPU and bytes), and
// a Cluster that keeps them with each node's usage, updated incrementally from informer
// events and from the scheduler's own assumptions.
//
// Nothing here touches the JSON DOM after parse_node/parse_pod (convert.h), so filtering and
// scoring a node is a handful of integer comparisons.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace skiff::scheduler {

// Interned strings: label keys and values, namespaces, taint keys, resource names. Id 0 is
// the empty string. Ids are dense and never reused, so the table grows with the distinct
// strings ever seen (label values are mostly per workload, not per pod).
//
// Thread-safe: informer threads intern while the scheduling thread reads.
class Interner {
 public:
  static constexpr uint32_t kEmpty = 0;

  Interner();
  Interner(const Interner&) = delete;
  Interner& operator=(const Interner&) = delete;

  uint32_t intern(std::string_view s);
  // The id of s if it was ever interned. A string that was never interned equals no label.
  std::optional<uint32_t> find(std::string_view s) const;
  // The string of an id from this Interner; the view lives as long as the Interner.
  std::string_view str(uint32_t id) const;
  size_t size() const;

 private:
  mutable std::shared_mutex mu_;
  std::deque<std::string> strings_;                     // guarded by mu_; elements never move
  std::unordered_map<std::string_view, uint32_t> ids_;  // guarded by mu_; views into strings_
};

struct Label {
  uint32_t key = 0;
  uint32_t value = 0;
  friend bool operator==(const Label&, const Label&) = default;
};

// A set of labels sorted by key.
class LabelSet {
 public:
  void set(uint32_t key, uint32_t value);
  // The value id of key, or nullopt when the label is absent.
  std::optional<uint32_t> get(uint32_t key) const;
  bool empty() const { return items_.empty(); }
  const std::vector<Label>& items() const { return items_; }
  friend bool operator==(const LabelSet&, const LabelSet&) = default;

 private:
  std::vector<Label> items_;
};

// metav1.LabelSelectorOperator and v1.NodeSelectorOperator.
enum class MatchOp : uint8_t { kIn, kNotIn, kExists, kDoesNotExist, kGt, kLt };

// One requirement on a label set.
struct LabelMatch {
  uint32_t key = 0;
  MatchOp op = MatchOp::kExists;
  std::vector<uint32_t> values;  // In / NotIn
  int64_t number = 0;            // Gt / Lt

  // As labels.Requirement.Matches: NotIn and DoesNotExist match an absent label; Gt/Lt need a
  // label whose value is an integer. `strings` resolves value ids for Gt/Lt.
  bool matches(const LabelSet& labels, const Interner& strings) const;
};

// A conjunction of requirements (a metav1.LabelSelector). `nothing` marks the null selector,
// which matches no object; an empty one matches every object.
struct LabelMatcher {
  bool nothing = false;
  std::vector<LabelMatch> requirements;

  bool matches(const LabelSet& labels, const Interner& strings) const;
  bool matches_everything() const { return !nothing && requirements.empty(); }
};

// v1.NodeSelectorTerm: label expressions and metadata.name fields, ANDed. A term with neither
// matches no node.
struct NodeSelectorTerm {
  std::vector<LabelMatch> expressions;
  struct FieldMatch {
    bool in = true;                // In, or NotIn
    std::vector<uint32_t> values;  // node names
  };
  std::vector<FieldMatch> fields;  // metadata.name only
  bool valid = true;               // false: an unknown operator or field; matches nothing

  bool matches(uint32_t node_name, const LabelSet& labels, const Interner& strings) const;
};

struct PreferredNodeTerm {
  int32_t weight = 0;
  NodeSelectorTerm term;
};

enum class TaintEffect : uint8_t { kNoSchedule, kPreferNoSchedule, kNoExecute, kUnknown };

struct Taint {
  uint32_t key = 0;
  uint32_t value = 0;
  TaintEffect effect = TaintEffect::kNoSchedule;
  friend bool operator==(const Taint&, const Taint&) = default;
};

struct Toleration {
  enum class Op : uint8_t { kEqual, kExists, kInvalid };
  uint32_t key = 0;  // 0 (empty) with kExists tolerates every taint
  Op op = Op::kEqual;
  uint32_t value = 0;
  bool any_effect = true;  // effect unset
  TaintEffect effect = TaintEffect::kNoSchedule;

  // v1.Toleration.ToleratesTaint.
  bool tolerates(const Taint& t) const {
    if (!any_effect && effect != t.effect) return false;
    if (key != 0 && key != t.key) return false;
    switch (op) {
      case Op::kEqual:
        return value == t.value;
      case Op::kExists:
        return true;
      default:
        return false;
    }
  }
};

bool tolerates_taint(const std::vector<Toleration>& tolerations, const Taint& t);

enum class Protocol : uint8_t { kTCP, kUDP, kSCTP };

// A host port a container asks for. ip 0 is the wildcard address (hostIP "" or "0.0.0.0").
struct HostPort {
  uint32_t ip = 0;
  Protocol protocol = Protocol::kTCP;
  int32_t port = 0;
  friend bool operator==(const HostPort&, const HostPort&) = default;
};

// An extended resource ("nvidia.com/gpu"), hugepages-* or another scalar resource.
struct ScalarResource {
  uint32_t name = 0;
  int64_t value = 0;
  friend bool operator==(const ScalarResource&, const ScalarResource&) = default;
};

// Amounts of the resources the scheduler accounts for: CPU in milli-cores, memory and
// ephemeral storage in bytes, scalar resources in their units.
struct Resources {
  int64_t milli_cpu = 0;
  int64_t memory = 0;
  int64_t ephemeral_storage = 0;
  std::vector<ScalarResource> scalar;  // sorted by name

  int64_t scalar_value(uint32_t name) const;
  void add(const Resources& r);
  void subtract(const Resources& r);
  // Per-resource maximum (init containers).
  void max_with(const Resources& r);
  bool empty() const {
    return milli_cpu == 0 && memory == 0 && ephemeral_storage == 0 && scalar.empty();
  }
  friend bool operator==(const Resources&, const Resources&) = default;
};

// What the scheduler needs of a Node object.
struct Node {
  std::string name;
  uint32_t name_id = 0;
  LabelSet labels;
  // spec.taints plus, when the node is not Ready, the taint the node lifecycle controller
  // would add (node.kubernetes.io/not-ready, or .../unreachable for Unknown), NoSchedule.
  std::vector<Taint> taints;
  bool unschedulable = false;  // spec.unschedulable (cordoned)
  bool ready = false;          // Ready condition is True
  Resources allocatable;
  int64_t allowed_pods = 0;  // status.allocatable.pods
};

// The namespaces an affinity term applies to, and the pods it selects there.
struct AffinityTerm {
  LabelMatcher selector;                           // labelSelector (null: matches no pod)
  std::vector<uint32_t> namespaces;                // explicit, or the pod's own namespace
  std::optional<LabelMatcher> namespace_selector;  // absent: none; empty: every namespace
  uint32_t topology_key = 0;
  int32_t weight = 0;  // preferred terms

  // framework.AffinityTerm.Matches: the pod is in one of the namespaces and its labels match.
  // ns_labels are the labels of the pod's namespace (may be null: none).
  bool matches(uint32_t ns, const LabelSet& labels, const LabelSet* ns_labels,
               const Interner& strings) const;
};

// What the scheduler needs of a Pod object.
struct PodInfo {
  std::string ns;
  std::string name;
  std::string uid;
  std::string resource_version;
  uint32_t ns_id = 0;
  std::string scheduler_name;
  std::string node_name;     // spec.nodeName
  bool terminating = false;  // metadata.deletionTimestamp is set
  bool terminal = false;     // status.phase Succeeded or Failed
  int32_t priority = 0;
  bool preemption_never = false;  // spec.preemptionPolicy == Never
  bool scheduling_gated = false;  // spec.schedulingGates is not empty: not to be scheduled yet

  LabelSet labels;
  // Requests: containers summed, max with each init container, plus overhead.
  Resources requests;
  // The same with each container's missing cpu/memory request counted as 100m / 200Mi, for
  // scoring (so pods without requests still spread).
  int64_t non_zero_milli_cpu = 0;
  int64_t non_zero_memory = 0;

  std::vector<Label> node_selector;
  bool has_required_node_affinity = false;
  std::vector<NodeSelectorTerm> required_node_affinity;  // ORed
  std::vector<PreferredNodeTerm> preferred_node_affinity;
  std::vector<Toleration> tolerations;
  std::vector<HostPort> host_ports;

  std::vector<AffinityTerm> required_affinity;
  std::vector<AffinityTerm> required_anti_affinity;
  std::vector<AffinityTerm> preferred_affinity;
  std::vector<AffinityTerm> preferred_anti_affinity;

  // The PodScheduled condition as the object carries it.
  std::string scheduled_status;
  std::string scheduled_reason;
  std::string scheduled_message;

  // Why the spec could not be read (e.g. a malformed quantity); empty when it could.
  std::string invalid;

  bool has_affinity() const {
    return !required_affinity.empty() || !required_anti_affinity.empty() ||
           !preferred_affinity.empty() || !preferred_anti_affinity.empty();
  }
  std::string key() const { return ns + "/" + name; }
};

// A node and the pods placed on it (bound, or assumed while their binding is in flight).
struct NodeInfo {
  std::string name;
  std::shared_ptr<const Node> node;  // null: deleted while pods still refer to it
  Resources requested;
  int64_t non_zero_milli_cpu = 0;
  int64_t non_zero_memory = 0;
  int32_t num_pods = 0;
  struct PortUse {
    HostPort port;
    int32_t count = 0;
  };
  std::vector<PortUse> used_ports;
  int32_t live_index = -1;  // position among Cluster's present nodes, -1 when absent
};

// What changed in the cluster, as a set of filter plugins that might now pass for a pod they
// rejected (kube-scheduler's cluster events and queueing hints).
namespace plugin {
inline constexpr uint32_t kNodeUnschedulable = 1u << 0;
inline constexpr uint32_t kTaintToleration = 1u << 1;
inline constexpr uint32_t kNodeAffinity = 1u << 2;
inline constexpr uint32_t kNodePorts = 1u << 3;
inline constexpr uint32_t kNodeResourcesFit = 1u << 4;
inline constexpr uint32_t kInterPodAffinity = 1u << 5;
inline constexpr uint32_t kNoNodes = 1u << 6;  // there was no node at all
inline constexpr uint32_t kAll = (1u << 7) - 1;
}  // namespace plugin

// The nodes and placed pods the scheduler decides on. Updated incrementally; nothing is ever
// rescanned. Not thread-safe: one owner (the scheduling thread) uses it.
class Cluster {
 public:
  explicit Cluster(std::shared_ptr<Interner> interner = nullptr);
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  Interner& interner() const { return *interner_; }
  const std::shared_ptr<Interner>& shared_interner() const { return interner_; }

  // Adds or replaces a node. Returns the plugin::* set that may now admit pods they rejected
  // (0 when nothing that matters to scheduling changed, e.g. a heartbeat).
  uint32_t upsert_node(std::shared_ptr<const Node> node);
  // Removes a node; its pods stay accounted until they go (as kube-scheduler's cache).
  void remove_node(const std::string& name);

  // Adds or replaces a pod placed on pod->node_name (a bound pod as the informer reports it).
  // A pod assumed earlier is confirmed and moved to the reported node if it differs. Returns
  // the plugin::* set that may admit pods now (a pod leaving a node frees room; a new pod may
  // satisfy affinity).
  uint32_t add_pod(std::shared_ptr<const PodInfo> pod);
  // Removes a placed (bound or assumed) pod. Returns the plugin::* set that may now admit
  // pods, 0 if the pod was unknown.
  uint32_t remove_pod(const std::string& uid);
  // Places a pending pod on a node before its binding is confirmed, so the next decisions
  // see the node's usage. REQUIRES: the node is present.
  void assume(std::shared_ptr<const PodInfo> pod, const std::string& node_name);
  // Undoes assume() for a binding that failed, unless the informer has confirmed the pod
  // meanwhile. Returns the plugin::* set that may now admit pods.
  uint32_t forget(const std::string& uid);
  bool is_assumed(const std::string& uid) const;

  void set_namespace_labels(const std::string& ns, LabelSet labels);
  void remove_namespace(const std::string& ns);
  const LabelSet* namespace_labels(uint32_t ns_id) const;

  // Present nodes, in a stable order that only changes when nodes come and go.
  size_t num_nodes() const { return live_.size(); }
  const NodeInfo& node_at(size_t i) const { return slots_[live_[i]]; }
  // A node by name (present or still referenced by pods), or null.
  const NodeInfo* find_node(std::string_view name) const;

  struct PlacedPod {
    std::shared_ptr<const PodInfo> pod;
    uint32_t slot = 0;
    bool assumed = false;
  };
  size_t num_pods() const { return pods_.size(); }
  const PlacedPod* find_pod(const std::string& uid) const;
  const std::unordered_map<std::string, PlacedPod>& pods() const { return pods_; }
  // Placed pods with any (anti-)affinity term, and those with required anti-affinity.
  const std::unordered_set<const PlacedPod*>& pods_with_affinity() const { return with_affinity_; }
  const std::unordered_set<const PlacedPod*>& pods_with_required_anti_affinity() const {
    return with_required_anti_affinity_;
  }
  // The node a placed pod is on (null if it was deleted).
  const Node* node_of(const PlacedPod& p) const { return slots_[p.slot].node.get(); }
  // Number of present nodes with a PreferNoSchedule taint.
  int nodes_with_prefer_no_schedule() const { return prefer_no_schedule_nodes_; }

 private:
  uint32_t slot_for(const std::string& name);
  void release_slot_if_unused(uint32_t slot);
  void account(uint32_t slot, const PodInfo& pod, int sign);
  void place(std::shared_ptr<const PodInfo> pod, uint32_t slot, bool assumed);
  uint32_t unplace(std::unordered_map<std::string, PlacedPod>::iterator it);

  std::shared_ptr<Interner> interner_;
  std::vector<NodeInfo> slots_;
  std::vector<uint32_t> free_slots_;
  std::unordered_map<std::string, uint32_t> slot_by_name_;
  std::vector<uint32_t> live_;
  std::unordered_map<std::string, PlacedPod> pods_;  // by uid
  std::unordered_set<const PlacedPod*> with_affinity_;
  std::unordered_set<const PlacedPod*> with_required_anti_affinity_;
  std::unordered_map<uint32_t, LabelSet> namespace_labels_;
  int prefer_no_schedule_nodes_ = 0;
};

}  // namespace skiff::scheduler
