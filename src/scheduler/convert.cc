#include "scheduler/convert.h"

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>
#include <string>

#include "common/labels.h"
#include "common/quantity.h"

namespace skiff::scheduler {

namespace {

using nlohmann::json;

const json& field(const json& obj, const char* name) {
  static const json kNull;
  if (!obj.is_object()) return kNull;
  auto it = obj.find(name);
  return it == obj.end() ? kNull : *it;
}

std::string_view str(const json& obj, const char* name) {
  const json& v = field(obj, name);
  return v.is_string() ? std::string_view(v.get_ref<const std::string&>()) : std::string_view();
}

const json& array(const json& obj, const char* name) {
  static const json kEmpty = json::array();
  const json& v = field(obj, name);
  return v.is_array() ? v : kEmpty;
}

// A whole string as a decimal int64 (strconv.ParseInt(s, 10, 64)).
bool parse_int64(std::string_view s, int64_t* out) {
  const char* b = s.data();
  const char* e = s.data() + s.size();
  if (b != e && *b == '+') ++b;
  auto [p, ec] = std::from_chars(b, e, *out);
  return b != e && ec == std::errc() && p == e;
}

TaintEffect parse_effect(std::string_view e) {
  if (e == "NoSchedule") return TaintEffect::kNoSchedule;
  if (e == "PreferNoSchedule") return TaintEffect::kPreferNoSchedule;
  if (e == "NoExecute") return TaintEffect::kNoExecute;
  return TaintEffect::kUnknown;
}

// v1helper.IsScalarResourceName: extended resources (a domain-prefixed name), hugepages-*,
// prefixed native resources and attachable volumes.
bool is_scalar_resource(std::string_view name) {
  return name.find('/') != std::string_view::npos || name.starts_with("hugepages-") ||
         name.starts_with("attachable-volumes-");
}

// Adds a ResourceList ({"cpu": "500m", ...}) to `out`. Records the first bad quantity in
// `error`. `seen_cpu` / `seen_memory` tell whether those keys were present.
void read_resource_list(const json& list, Interner& strings, Resources& out, int64_t* pods,
                        std::string& error, bool* seen_cpu = nullptr, bool* seen_memory = nullptr) {
  if (!list.is_object()) return;
  for (auto it = list.begin(); it != list.end(); ++it) {
    const std::string& name = it.key();
    auto q = Quantity::from_json(it.value());
    if (!q.ok()) {
      if (error.empty()) error = "quantity " + name + ": " + q.status().message();
      continue;
    }
    if (name == "cpu") {
      out.milli_cpu += q->milli_value();
      if (seen_cpu) *seen_cpu = true;
    } else if (name == "memory") {
      out.memory += q->value();
      if (seen_memory) *seen_memory = true;
    } else if (name == "ephemeral-storage") {
      out.ephemeral_storage += q->value();
    } else if (name == "pods") {
      if (pods) *pods = q->value();
    } else if (is_scalar_resource(name)) {
      Resources one;
      one.scalar.push_back({strings.intern(name), q->value()});
      out.add(one);
    }
  }
}

struct ContainerRequests {
  Resources requests;
  int64_t nz_cpu = 0;
  int64_t nz_memory = 0;
};

// A container's requests; limits stand in for missing requests, as API defaulting does.
ContainerRequests container_requests(const json& container, Interner& strings, std::string& error) {
  ContainerRequests c;
  const json& resources = field(container, "resources");
  const json& requests = field(resources, "requests");
  const json& limits = field(resources, "limits");
  bool cpu = false, memory = false;
  read_resource_list(requests, strings, c.requests, nullptr, error, &cpu, &memory);
  if (limits.is_object()) {
    json missing = json::object();
    for (auto it = limits.begin(); it != limits.end(); ++it) {
      if (!requests.is_object() || !requests.contains(it.key())) missing[it.key()] = it.value();
    }
    if (!missing.empty())
      read_resource_list(missing, strings, c.requests, nullptr, error, &cpu, &memory);
  }
  c.nz_cpu = cpu ? c.requests.milli_cpu : kDefaultMilliCpuRequest;
  c.nz_memory = memory ? c.requests.memory : kDefaultMemoryRequest;
  return c;
}

// resourcehelper.PodRequests: containers (and restartable init containers, i.e. sidecars)
// summed; each regular init container runs alone next to the sidecars started before it.
void pod_requests(const json& spec, Interner& strings, PodInfo& p) {
  Resources reqs;
  int64_t nz_cpu = 0, nz_mem = 0;
  for (const json& c : array(spec, "containers")) {
    ContainerRequests r = container_requests(c, strings, p.invalid);
    reqs.add(r.requests);
    nz_cpu += r.nz_cpu;
    nz_mem += r.nz_memory;
  }
  Resources sidecars, init_max;
  int64_t sc_cpu = 0, sc_mem = 0, init_cpu = 0, init_mem = 0;
  for (const json& c : array(spec, "initContainers")) {
    ContainerRequests r = container_requests(c, strings, p.invalid);
    if (str(c, "restartPolicy") == "Always") {
      reqs.add(r.requests);
      nz_cpu += r.nz_cpu;
      nz_mem += r.nz_memory;
      sidecars.add(r.requests);
      sc_cpu += r.nz_cpu;
      sc_mem += r.nz_memory;
      init_max.max_with(sidecars);
      init_cpu = std::max(init_cpu, sc_cpu);
      init_mem = std::max(init_mem, sc_mem);
    } else {
      r.requests.add(sidecars);
      init_max.max_with(r.requests);
      init_cpu = std::max(init_cpu, r.nz_cpu + sc_cpu);
      init_mem = std::max(init_mem, r.nz_memory + sc_mem);
    }
  }
  reqs.max_with(init_max);
  nz_cpu = std::max(nz_cpu, init_cpu);
  nz_mem = std::max(nz_mem, init_mem);
  Resources overhead;
  read_resource_list(field(spec, "overhead"), strings, overhead, nullptr, p.invalid);
  reqs.add(overhead);
  nz_cpu += overhead.milli_cpu;
  nz_mem += overhead.memory;
  p.requests = std::move(reqs);
  p.non_zero_milli_cpu = nz_cpu;
  p.non_zero_memory = nz_mem;
}

// A v1.NodeSelectorRequirement; false if malformed.
bool node_requirement(const json& r, Interner& strings, LabelMatch& out) {
  std::string_view key = str(r, "key");
  std::string_view op = str(r, "operator");
  out.key = strings.intern(key);
  for (const json& v : array(r, "values")) {
    if (v.is_string()) out.values.push_back(strings.intern(v.get_ref<const std::string&>()));
  }
  if (op == "In" || op == "NotIn") {
    out.op = op == "In" ? MatchOp::kIn : MatchOp::kNotIn;
    return !out.values.empty();
  }
  if (op == "Exists" || op == "DoesNotExist") {
    out.op = op == "Exists" ? MatchOp::kExists : MatchOp::kDoesNotExist;
    return out.values.empty();
  }
  if (op == "Gt" || op == "Lt") {
    out.op = op == "Gt" ? MatchOp::kGt : MatchOp::kLt;
    const json& vals = array(r, "values");
    if (vals.size() != 1 || !vals[0].is_string()) return false;
    return parse_int64(vals[0].get_ref<const std::string&>(), &out.number);
  }
  return false;
}

NodeSelectorTerm node_selector_term(const json& term, Interner& strings) {
  NodeSelectorTerm t;
  for (const json& e : array(term, "matchExpressions")) {
    LabelMatch m;
    if (!node_requirement(e, strings, m)) t.valid = false;
    t.expressions.push_back(std::move(m));
  }
  for (const json& f : array(term, "matchFields")) {
    NodeSelectorTerm::FieldMatch fm;
    std::string_view op = str(f, "operator");
    if (str(f, "key") != "metadata.name" || (op != "In" && op != "NotIn")) {
      t.valid = false;
      continue;
    }
    fm.in = op == "In";
    for (const json& v : array(f, "values")) {
      if (v.is_string()) fm.values.push_back(strings.intern(v.get_ref<const std::string&>()));
    }
    t.fields.push_back(std::move(fm));
  }
  return t;
}

// Compiles a parsed label selector into interned requirements.
LabelMatcher compile_selector(const LabelSelector& sel, Interner& strings) {
  LabelMatcher m;
  if (sel.matches_nothing()) {
    m.nothing = true;
    return m;
  }
  for (const LabelRequirement& r : sel.requirements()) {
    LabelMatch lm;
    lm.key = strings.intern(r.key);
    switch (r.op) {
      case LabelOperator::kIn:
      case LabelOperator::kEquals:
      case LabelOperator::kDoubleEquals:
        lm.op = MatchOp::kIn;
        break;
      case LabelOperator::kNotIn:
      case LabelOperator::kNotEquals:
        lm.op = MatchOp::kNotIn;
        break;
      case LabelOperator::kExists:
        lm.op = MatchOp::kExists;
        break;
      case LabelOperator::kDoesNotExist:
        lm.op = MatchOp::kDoesNotExist;
        break;
      case LabelOperator::kGreaterThan:
      case LabelOperator::kLessThan:
        lm.op = r.op == LabelOperator::kGreaterThan ? MatchOp::kGt : MatchOp::kLt;
        if (r.values.empty() || !parse_int64(r.values[0], &lm.number)) lm.number = 0;
        break;
    }
    for (const std::string& v : r.values) lm.values.push_back(strings.intern(v));
    m.requirements.push_back(std::move(lm));
  }
  return m;
}

// A v1.PodAffinityTerm of a pod in namespace `ns`.
bool affinity_term(const json& term, const PodInfo& p, Interner& strings, int32_t weight,
                   AffinityTerm& out, std::string& error) {
  auto sel = LabelSelector::from_json(field(term, "labelSelector"));
  if (!sel.ok()) {
    error = "invalid pod affinity labelSelector: " + sel.status().message();
    return false;
  }
  out.selector = compile_selector(*sel, strings);
  out.topology_key = strings.intern(str(term, "topologyKey"));
  out.weight = weight;
  for (const json& ns : array(term, "namespaces")) {
    if (ns.is_string()) out.namespaces.push_back(strings.intern(ns.get_ref<const std::string&>()));
  }
  const json& ns_sel = field(term, "namespaceSelector");
  if (!ns_sel.is_null()) {
    auto nsel = LabelSelector::from_json(ns_sel);
    if (!nsel.ok()) {
      error = "invalid pod affinity namespaceSelector: " + nsel.status().message();
      return false;
    }
    out.namespace_selector = compile_selector(*nsel, strings);
  }
  if (out.namespaces.empty() && !out.namespace_selector) out.namespaces.push_back(p.ns_id);
  return true;
}

void pod_affinity(const json& affinity, bool anti, Interner& strings, PodInfo& p) {
  const json& a = field(affinity, anti ? "podAntiAffinity" : "podAffinity");
  auto& required = anti ? p.required_anti_affinity : p.required_affinity;
  auto& preferred = anti ? p.preferred_anti_affinity : p.preferred_affinity;
  for (const json& t : array(a, "requiredDuringSchedulingIgnoredDuringExecution")) {
    AffinityTerm term;
    if (affinity_term(t, p, strings, 0, term, p.invalid)) required.push_back(std::move(term));
  }
  for (const json& w : array(a, "preferredDuringSchedulingIgnoredDuringExecution")) {
    const json& weight = field(w, "weight");
    AffinityTerm term;
    if (affinity_term(field(w, "podAffinityTerm"), p, strings,
                      weight.is_number_integer() ? weight.get<int32_t>() : 0, term, p.invalid)) {
      preferred.push_back(std::move(term));
    }
  }
}

}  // namespace

LabelSet parse_labels(const json& labels, Interner& strings) {
  LabelSet set;
  if (!labels.is_object()) return set;
  for (auto it = labels.begin(); it != labels.end(); ++it) {
    if (!it.value().is_string()) continue;
    set.set(strings.intern(it.key()), strings.intern(it.value().get_ref<const std::string&>()));
  }
  return set;
}

std::shared_ptr<const Node> parse_node(const json& obj, Interner& strings) {
  auto n = std::make_shared<Node>();
  const json& meta = field(obj, "metadata");
  const json& spec = field(obj, "spec");
  const json& status = field(obj, "status");
  n->name = std::string(str(meta, "name"));
  n->name_id = strings.intern(n->name);
  n->labels = parse_labels(field(meta, "labels"), strings);
  const json& unsched = field(spec, "unschedulable");
  n->unschedulable = unsched.is_boolean() && unsched.get<bool>();
  for (const json& t : array(spec, "taints")) {
    n->taints.push_back(Taint{strings.intern(str(t, "key")), strings.intern(str(t, "value")),
                              parse_effect(str(t, "effect"))});
  }
  std::string_view ready = "";
  for (const json& c : array(status, "conditions")) {
    if (str(c, "type") == "Ready") ready = str(c, "status");
  }
  n->ready = ready == "True";
  if (!n->ready) {
    // The node lifecycle controller taints such nodes; a node is only schedulable once the
    // node itself says it is Ready, so the scheduler applies the same taint at once.
    uint32_t key = strings.intern(ready == "Unknown" ? kTaintUnreachable : kTaintNotReady);
    bool present = std::any_of(n->taints.begin(), n->taints.end(), [&](const Taint& t) {
      return t.key == key && t.effect == TaintEffect::kNoSchedule;
    });
    if (!present) n->taints.push_back(Taint{key, Interner::kEmpty, TaintEffect::kNoSchedule});
  }
  std::string ignored;
  read_resource_list(field(status, "allocatable"), strings, n->allocatable, &n->allowed_pods,
                     ignored);
  return n;
}

std::shared_ptr<const PodInfo> parse_pod(const json& obj, Interner& strings) {
  auto p = std::make_shared<PodInfo>();
  const json& meta = field(obj, "metadata");
  const json& spec = field(obj, "spec");
  const json& status = field(obj, "status");
  p->ns = std::string(str(meta, "namespace"));
  p->name = std::string(str(meta, "name"));
  p->uid = std::string(str(meta, "uid"));
  p->resource_version = std::string(str(meta, "resourceVersion"));
  p->ns_id = strings.intern(p->ns);
  p->terminating = !field(meta, "deletionTimestamp").is_null();
  std::string_view phase = str(status, "phase");
  p->terminal = phase == "Succeeded" || phase == "Failed";
  p->scheduler_name = std::string(str(spec, "schedulerName"));
  if (p->scheduler_name.empty()) p->scheduler_name = "default-scheduler";
  p->node_name = std::string(str(spec, "nodeName"));
  const json& prio = field(spec, "priority");
  if (prio.is_number_integer()) p->priority = prio.get<int32_t>();
  p->preemption_never = str(spec, "preemptionPolicy") == "Never";
  p->scheduling_gated = !array(spec, "schedulingGates").empty();
  p->labels = parse_labels(field(meta, "labels"), strings);

  pod_requests(spec, strings, *p);

  const json& node_selector = field(spec, "nodeSelector");
  if (node_selector.is_object()) {
    for (auto it = node_selector.begin(); it != node_selector.end(); ++it) {
      if (!it.value().is_string()) continue;
      p->node_selector.push_back(Label{strings.intern(it.key()),
                                       strings.intern(it.value().get_ref<const std::string&>())});
    }
  }
  const json& affinity = field(spec, "affinity");
  const json& node_affinity = field(affinity, "nodeAffinity");
  const json& required = field(node_affinity, "requiredDuringSchedulingIgnoredDuringExecution");
  if (!required.is_null()) {
    p->has_required_node_affinity = true;
    for (const json& t : array(required, "nodeSelectorTerms")) {
      p->required_node_affinity.push_back(node_selector_term(t, strings));
    }
  }
  for (const json& w : array(node_affinity, "preferredDuringSchedulingIgnoredDuringExecution")) {
    const json& weight = field(w, "weight");
    if (!weight.is_number_integer() || weight.get<int32_t>() == 0) continue;
    p->preferred_node_affinity.push_back(PreferredNodeTerm{
        weight.get<int32_t>(), node_selector_term(field(w, "preference"), strings)});
  }
  pod_affinity(affinity, false, strings, *p);
  pod_affinity(affinity, true, strings, *p);

  for (const json& t : array(spec, "tolerations")) {
    Toleration tol;
    tol.key = strings.intern(str(t, "key"));
    std::string_view op = str(t, "operator");
    tol.op = op.empty() || op == "Equal" ? Toleration::Op::kEqual
             : op == "Exists"            ? Toleration::Op::kExists
                                         : Toleration::Op::kInvalid;
    tol.value = strings.intern(str(t, "value"));
    std::string_view effect = str(t, "effect");
    tol.any_effect = effect.empty();
    tol.effect = parse_effect(effect);
    p->tolerations.push_back(tol);
  }

  for (const json& c : array(spec, "containers")) {
    for (const json& port : array(c, "ports")) {
      const json& hp = field(port, "hostPort");
      if (!hp.is_number_integer() || hp.get<int64_t>() <= 0) continue;
      HostPort h;
      h.port = hp.get<int32_t>();
      std::string_view ip = str(port, "hostIP");
      h.ip = ip.empty() || ip == "0.0.0.0" ? Interner::kEmpty : strings.intern(ip);
      std::string_view proto = str(port, "protocol");
      h.protocol = proto == "UDP"    ? Protocol::kUDP
                   : proto == "SCTP" ? Protocol::kSCTP
                                     : Protocol::kTCP;
      p->host_ports.push_back(h);
    }
  }

  for (const json& c : array(status, "conditions")) {
    if (str(c, "type") != "PodScheduled") continue;
    p->scheduled_status = std::string(str(c, "status"));
    p->scheduled_reason = std::string(str(c, "reason"));
    p->scheduled_message = std::string(str(c, "message"));
  }
  return p;
}

}  // namespace skiff::scheduler
