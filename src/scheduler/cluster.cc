#include "scheduler/cluster.h"

#include <algorithm>
#include <charconv>
#include <mutex>

namespace skiff::scheduler {

Interner::Interner() {
  strings_.emplace_back();
  ids_.emplace(std::string_view(strings_.back()), kEmpty);
}

uint32_t Interner::intern(std::string_view s) {
  {
    std::shared_lock lock(mu_);
    auto it = ids_.find(s);
    if (it != ids_.end()) return it->second;
  }
  std::unique_lock lock(mu_);
  auto it = ids_.find(s);
  if (it != ids_.end()) return it->second;
  auto id = static_cast<uint32_t>(strings_.size());
  strings_.emplace_back(s);
  ids_.emplace(std::string_view(strings_.back()), id);
  return id;
}

std::optional<uint32_t> Interner::find(std::string_view s) const {
  std::shared_lock lock(mu_);
  auto it = ids_.find(s);
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

std::string_view Interner::str(uint32_t id) const {
  std::shared_lock lock(mu_);
  if (id >= strings_.size()) return {};
  return strings_[id];
}

size_t Interner::size() const {
  std::shared_lock lock(mu_);
  return strings_.size();
}

void LabelSet::set(uint32_t key, uint32_t value) {
  auto it = std::lower_bound(items_.begin(), items_.end(), key,
                             [](const Label& l, uint32_t k) { return l.key < k; });
  if (it != items_.end() && it->key == key) {
    it->value = value;
  } else {
    items_.insert(it, Label{key, value});
  }
}

std::optional<uint32_t> LabelSet::get(uint32_t key) const {
  // Label sets are small; a linear scan beats binary search below a dozen entries.
  if (items_.size() <= 12) {
    for (const Label& l : items_) {
      if (l.key == key) return l.value;
      if (l.key > key) break;
    }
    return std::nullopt;
  }
  auto it = std::lower_bound(items_.begin(), items_.end(), key,
                             [](const Label& l, uint32_t k) { return l.key < k; });
  if (it != items_.end() && it->key == key) return it->value;
  return std::nullopt;
}

namespace {

std::optional<int64_t> parse_int(std::string_view s) {
  int64_t v = 0;
  const char* b = s.data();
  const char* e = s.data() + s.size();
  if (b != e && *b == '+') ++b;
  auto [p, ec] = std::from_chars(b, e, v);
  if (ec != std::errc() || p != e || b == e) return std::nullopt;
  return v;
}

bool contains(const std::vector<uint32_t>& v, uint32_t x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

}  // namespace

bool LabelMatch::matches(const LabelSet& labels, const Interner& strings) const {
  auto v = labels.get(key);
  switch (op) {
    case MatchOp::kIn:
      return v && contains(values, *v);
    case MatchOp::kNotIn:
      return !v || !contains(values, *v);
    case MatchOp::kExists:
      return v.has_value();
    case MatchOp::kDoesNotExist:
      return !v;
    case MatchOp::kGt:
    case MatchOp::kLt: {
      if (!v) return false;
      auto n = parse_int(strings.str(*v));
      if (!n) return false;
      return op == MatchOp::kGt ? *n > number : *n < number;
    }
  }
  return false;
}

bool LabelMatcher::matches(const LabelSet& labels, const Interner& strings) const {
  if (nothing) return false;
  for (const LabelMatch& r : requirements) {
    if (!r.matches(labels, strings)) return false;
  }
  return true;
}

bool NodeSelectorTerm::matches(uint32_t node_name, const LabelSet& labels,
                               const Interner& strings) const {
  if (!valid || (expressions.empty() && fields.empty())) return false;
  for (const LabelMatch& r : expressions) {
    if (!r.matches(labels, strings)) return false;
  }
  for (const FieldMatch& f : fields) {
    if (contains(f.values, node_name) != f.in) return false;
  }
  return true;
}

bool tolerates_taint(const std::vector<Toleration>& tolerations, const Taint& t) {
  for (const Toleration& tol : tolerations) {
    if (tol.tolerates(t)) return true;
  }
  return false;
}

bool AffinityTerm::matches(uint32_t ns, const LabelSet& labels, const LabelSet* ns_labels,
                           const Interner& strings) const {
  bool in_namespace = contains(namespaces, ns);
  if (!in_namespace && namespace_selector) {
    static const LabelSet kNoLabels;
    in_namespace = namespace_selector->matches(ns_labels ? *ns_labels : kNoLabels, strings);
  }
  return in_namespace && selector.matches(labels, strings);
}

int64_t Resources::scalar_value(uint32_t name) const {
  for (const ScalarResource& s : scalar) {
    if (s.name == name) return s.value;
  }
  return 0;
}

namespace {

template <typename Op>
void combine_scalar(std::vector<ScalarResource>& into, const std::vector<ScalarResource>& from,
                    Op op) {
  for (const ScalarResource& s : from) {
    auto it = std::lower_bound(into.begin(), into.end(), s.name,
                               [](const ScalarResource& r, uint32_t n) { return r.name < n; });
    if (it != into.end() && it->name == s.name) {
      it->value = op(it->value, s.value);
    } else {
      into.insert(it, ScalarResource{s.name, op(0, s.value)});
    }
  }
}

}  // namespace

void Resources::add(const Resources& r) {
  milli_cpu += r.milli_cpu;
  memory += r.memory;
  ephemeral_storage += r.ephemeral_storage;
  if (!r.scalar.empty())
    combine_scalar(scalar, r.scalar, [](int64_t a, int64_t b) { return a + b; });
}

void Resources::subtract(const Resources& r) {
  milli_cpu -= r.milli_cpu;
  memory -= r.memory;
  ephemeral_storage -= r.ephemeral_storage;
  if (!r.scalar.empty()) {
    combine_scalar(scalar, r.scalar, [](int64_t a, int64_t b) { return a - b; });
    std::erase_if(scalar, [](const ScalarResource& s) { return s.value == 0; });
  }
}

void Resources::max_with(const Resources& r) {
  milli_cpu = std::max(milli_cpu, r.milli_cpu);
  memory = std::max(memory, r.memory);
  ephemeral_storage = std::max(ephemeral_storage, r.ephemeral_storage);
  if (!r.scalar.empty()) {
    combine_scalar(scalar, r.scalar, [](int64_t a, int64_t b) { return std::max(a, b); });
  }
}

// ---------------------------------------------------------------------------------------------

Cluster::Cluster(std::shared_ptr<Interner> interner)
    : interner_(interner ? std::move(interner) : std::make_shared<Interner>()) {}

namespace {

bool has_prefer_no_schedule(const Node* n) {
  if (n == nullptr) return false;
  for (const Taint& t : n->taints) {
    if (t.effect == TaintEffect::kPreferNoSchedule) return true;
  }
  return false;
}

bool fits_within(const Resources& small, const Resources& big) {
  if (small.milli_cpu > big.milli_cpu || small.memory > big.memory ||
      small.ephemeral_storage > big.ephemeral_storage) {
    return false;
  }
  for (const ScalarResource& s : small.scalar) {
    if (s.value > big.scalar_value(s.name)) return false;
  }
  return true;
}

}  // namespace

uint32_t Cluster::slot_for(const std::string& name) {
  auto it = slot_by_name_.find(name);
  if (it != slot_by_name_.end()) return it->second;
  uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
    slots_[slot] = NodeInfo();
  } else {
    slot = static_cast<uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  slots_[slot].name = name;
  slot_by_name_.emplace(name, slot);
  return slot;
}

void Cluster::release_slot_if_unused(uint32_t slot) {
  NodeInfo& ni = slots_[slot];
  if (ni.node != nullptr || ni.num_pods > 0) return;
  slot_by_name_.erase(ni.name);
  ni = NodeInfo();
  free_slots_.push_back(slot);
}

uint32_t Cluster::upsert_node(std::shared_ptr<const Node> node) {
  uint32_t slot = slot_for(node->name);
  NodeInfo& ni = slots_[slot];
  std::shared_ptr<const Node> old = std::move(ni.node);
  prefer_no_schedule_nodes_ +=
      (has_prefer_no_schedule(node.get()) ? 1 : 0) - (has_prefer_no_schedule(old.get()) ? 1 : 0);
  ni.node = std::move(node);
  if (ni.live_index < 0) {
    ni.live_index = static_cast<int32_t>(live_.size());
    live_.push_back(slot);
  }
  if (old == nullptr) return plugin::kAll;
  const Node& n = *ni.node;
  uint32_t changed = 0;
  if (n.unschedulable != old->unschedulable && !n.unschedulable) {
    changed |= plugin::kNodeUnschedulable;
  }
  if (n.taints != old->taints) changed |= plugin::kTaintToleration;
  if (!(n.labels == old->labels)) changed |= plugin::kNodeAffinity | plugin::kInterPodAffinity;
  if (!fits_within(n.allocatable, old->allocatable) || n.allowed_pods > old->allowed_pods) {
    changed |= plugin::kNodeResourcesFit;
  }
  return changed;
}

void Cluster::remove_node(const std::string& name) {
  auto it = slot_by_name_.find(name);
  if (it == slot_by_name_.end()) return;
  uint32_t slot = it->second;
  NodeInfo& ni = slots_[slot];
  if (ni.node == nullptr) return;
  if (has_prefer_no_schedule(ni.node.get())) --prefer_no_schedule_nodes_;
  ni.node.reset();
  // Swap-remove from the live list.
  int32_t idx = ni.live_index;
  uint32_t last = live_.back();
  live_[idx] = last;
  slots_[last].live_index = idx;
  live_.pop_back();
  ni.live_index = -1;
  release_slot_if_unused(slot);
}

void Cluster::account(uint32_t slot, const PodInfo& pod, int sign) {
  NodeInfo& ni = slots_[slot];
  if (sign > 0) {
    ni.requested.add(pod.requests);
  } else {
    ni.requested.subtract(pod.requests);
  }
  ni.non_zero_milli_cpu += sign * pod.non_zero_milli_cpu;
  ni.non_zero_memory += sign * pod.non_zero_memory;
  ni.num_pods += sign;
  for (const HostPort& hp : pod.host_ports) {
    auto it = std::find_if(ni.used_ports.begin(), ni.used_ports.end(),
                           [&](const NodeInfo::PortUse& u) { return u.port == hp; });
    if (sign > 0) {
      if (it != ni.used_ports.end()) {
        ++it->count;
      } else {
        ni.used_ports.push_back({hp, 1});
      }
    } else if (it != ni.used_ports.end() && --it->count <= 0) {
      ni.used_ports.erase(it);
    }
  }
}

void Cluster::place(std::shared_ptr<const PodInfo> pod, uint32_t slot, bool assumed) {
  account(slot, *pod, +1);
  std::string uid = pod->uid;
  bool affinity = pod->has_affinity();
  bool anti = !pod->required_anti_affinity.empty();
  auto [it, inserted] = pods_.emplace(std::move(uid), PlacedPod{std::move(pod), slot, assumed});
  (void)inserted;
  if (affinity) with_affinity_.insert(&it->second);
  if (anti) with_required_anti_affinity_.insert(&it->second);
}

uint32_t Cluster::unplace(std::unordered_map<std::string, PlacedPod>::iterator it) {
  PlacedPod& p = it->second;
  uint32_t slot = p.slot;
  account(slot, *p.pod, -1);
  with_affinity_.erase(&p);
  with_required_anti_affinity_.erase(&p);
  uint32_t freed = plugin::kNodeResourcesFit;
  if (!p.pod->host_ports.empty()) freed |= plugin::kNodePorts;
  if (!p.pod->labels.empty() || !p.pod->required_anti_affinity.empty()) {
    freed |= plugin::kInterPodAffinity;
  }
  pods_.erase(it);
  release_slot_if_unused(slot);
  return freed;
}

uint32_t Cluster::add_pod(std::shared_ptr<const PodInfo> pod) {
  // A pod newly on a node (including the confirmation of an assumed one, kube-scheduler's
  // AssignedPodAdd) may satisfy another pod's affinity.
  uint32_t changed = plugin::kInterPodAffinity;
  auto it = pods_.find(pod->uid);
  if (it != pods_.end()) {
    const PlacedPod& old = it->second;
    bool same_node = slots_[old.slot].name == pod->node_name;
    bool was_assumed = old.assumed;
    bool same_labels = old.pod->labels == pod->labels;
    bool same_requests = old.pod->requests == pod->requests;
    uint32_t freed = unplace(it);
    if (!same_node) {
      changed |= freed;
    } else if (!was_assumed) {
      changed = (same_labels ? 0 : plugin::kInterPodAffinity) |
                (same_requests ? 0 : plugin::kNodeResourcesFit);
    }
  }
  uint32_t slot = slot_for(pod->node_name);
  place(std::move(pod), slot, false);
  return changed;
}

uint32_t Cluster::remove_pod(const std::string& uid) {
  auto it = pods_.find(uid);
  if (it == pods_.end()) return 0;
  return unplace(it);
}

void Cluster::assume(std::shared_ptr<const PodInfo> pod, const std::string& node_name) {
  auto it = pods_.find(pod->uid);
  if (it != pods_.end()) unplace(it);
  uint32_t slot = slot_for(node_name);
  place(std::move(pod), slot, true);
}

uint32_t Cluster::forget(const std::string& uid) {
  auto it = pods_.find(uid);
  if (it == pods_.end() || !it->second.assumed) return 0;
  return unplace(it);
}

bool Cluster::is_assumed(const std::string& uid) const {
  auto it = pods_.find(uid);
  return it != pods_.end() && it->second.assumed;
}

void Cluster::set_namespace_labels(const std::string& ns, LabelSet labels) {
  namespace_labels_[interner_->intern(ns)] = std::move(labels);
}

void Cluster::remove_namespace(const std::string& ns) {
  auto id = interner_->find(ns);
  if (id) namespace_labels_.erase(*id);
}

const LabelSet* Cluster::namespace_labels(uint32_t ns_id) const {
  auto it = namespace_labels_.find(ns_id);
  return it == namespace_labels_.end() ? nullptr : &it->second;
}

const NodeInfo* Cluster::find_node(std::string_view name) const {
  auto it = slot_by_name_.find(std::string(name));
  return it == slot_by_name_.end() ? nullptr : &slots_[it->second];
}

const Cluster::PlacedPod* Cluster::find_pod(const std::string& uid) const {
  auto it = pods_.find(uid);
  return it == pods_.end() ? nullptr : &it->second;
}

}  // namespace skiff::scheduler
