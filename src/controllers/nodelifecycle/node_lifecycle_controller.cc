#include "controllers/nodelifecycle/node_lifecycle_controller.h"

#include <algorithm>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/log.h"
#include "controllers/common/batch.h"
#include "controllers/common/controller_ref.h"
#include "controllers/common/object_meta.h"
#include "controllers/nodelifecycle/taints.h"

namespace skiff::controllers::nodelifecycle {
namespace {

namespace cc = ::skiff::controllers::common;
using client::ObjectPtr;
using nlohmann::json;

// Looking again a little after a deadline, so that "now is after the deadline" holds.
constexpr std::chrono::milliseconds kDeadlineSlack{100};

std::chrono::milliseconds until(TimePoint due, TimePoint now) {
  if (due <= now) return std::chrono::milliseconds(0);
  return std::chrono::ceil<std::chrono::milliseconds>(due - now);
}

std::optional<TimePoint> parse_time(const std::string& text) {
  if (text.empty()) return std::nullopt;
  auto t = parse_rfc3339(text);
  if (!t.ok()) return std::nullopt;
  return *t;
}

std::string str(const json& obj, const char* key) {
  if (!obj.is_object()) return "";
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : "";
}

const json& taints_of(const json& node) {
  static const json kNone = json::array();
  const json* t = cc::find_path(node, {"spec", "taints"});
  return t != nullptr && t->is_array() ? *t : kNone;
}

bool has_no_execute_taint(const json& node) {
  for (const json& t : taints_of(node)) {
    if (str(t, "effect") == "NoExecute") return true;
  }
  return false;
}

json no_execute_taints(const json& node) {
  json out = json::array();
  for (const json& t : taints_of(node)) {
    if (str(t, "effect") == "NoExecute") out.push_back(t);
  }
  return out;
}

std::vector<std::string> node_name_index(const json& pod) {
  std::string node = cc::string_at(pod, {"spec", "nodeName"});
  return node.empty() ? std::vector<std::string>{} : std::vector<std::string>{node};
}

// What the controller knows of one node's kubelet (nodeHealthData).
struct NodeHealth {
  std::string uid;
  TimePoint probe;             // when a heartbeat or lease renewal was last seen
  TimePoint ready_transition;  // when Ready was last seen changing
  bool has_ready = false;
  std::string heartbeat;   // Ready's lastHeartbeatTime as last seen
  std::string transition;  // Ready's lastTransitionTime as last seen
  std::optional<TimePoint> lease_renewed;
};

struct Observation {
  TimePoint probe;
  std::chrono::nanoseconds grace;
  std::string ready;  // the Ready status the node posted ("" without one)
};

}  // namespace

struct NodeLifecycleController::Impl {
  explicit Impl(ControllerContext& c)
      : ctx(c),
        nodes(c.informers.informer(client::resources::kNodes)),
        leases(c.informers.informer(client::resources::kLeases.in(kNodeLeaseNamespace))),
        pods(c.informers.informer(client::resources::kPods)) {}

  ControllerContext& ctx;
  client::Informer& nodes;
  client::Informer& leases;
  client::Informer& pods;
  WorkQueue* queue = nullptr;

  std::mutex mu;
  // Guarded by mu.
  std::unordered_map<std::string, NodeHealth> health;
  // Per node, the pods (by uid) whose eviction is counting down, and since when.
  std::unordered_map<std::string, std::unordered_map<std::string, TimePoint>> evictions;

  std::chrono::nanoseconds grace_period() const { return ctx.options.node_monitor_grace_period; }
  // nodeStartupGracePeriod: 60 s for the default 40 s.
  std::chrono::nanoseconds startup_grace_period() const { return grace_period() * 3 / 2; }

  // --- Event handlers: they only enqueue ------------------------------------------------

  void enqueue_node(const json& node) { queue->add(cc::name_of(node)); }

  // A pod matters here only on a node that is not healthy: one with NoExecute taints or
  // not Ready.
  void on_pod(const json& pod) {
    std::string node_name = cc::string_at(pod, {"spec", "nodeName"});
    if (node_name.empty()) return;
    ObjectPtr node = nodes.get("", node_name);
    if (!node) return;
    if (condition_status(*node, "Ready") != "True" || has_no_execute_taint(*node)) {
      queue->add(node_name);
    }
  }

  // --- Health ------------------------------------------------------------------------------

  // tryUpdateNodeHealth's bookkeeping: when was the kubelet last heard from?
  Observation observe(const json& node, const json* lease, TimePoint now) {
    std::string name = cc::name_of(node);
    std::string uid = cc::uid_of(node);
    const json* ready = find_condition(node, "Ready");
    std::lock_guard<std::mutex> lock(mu);
    auto it = health.find(name);
    if (it != health.end() && it->second.uid != uid) {
      health.erase(it);  // a new node under an old name
      it = health.end();
    }
    if (it == health.end()) {
      NodeHealth h;
      h.uid = uid;
      if (ready == nullptr) {
        // Never posted: count from its creation.
        TimePoint created = cc::to_time_point(cc::creation_timestamp(node));
        h.probe = h.ready_transition = created;
      } else {
        h.probe = h.ready_transition = now;
      }
      it = health.emplace(name, std::move(h)).first;
    } else if (ready == nullptr) {
      // The Ready condition was removed: start counting again.
      if (it->second.has_ready) it->second.probe = it->second.ready_transition = now;
    } else {
      NodeHealth& h = it->second;
      std::string heartbeat = str(*ready, "lastHeartbeatTime");
      std::string transition = str(*ready, "lastTransitionTime");
      if (!h.has_ready) {
        h.probe = h.ready_transition = now;
      } else if (heartbeat != h.heartbeat) {
        h.probe = now;
        if (transition != h.transition) h.ready_transition = now;
      }
    }
    NodeHealth& h = it->second;
    h.has_ready = ready != nullptr;
    if (ready != nullptr) {
      h.heartbeat = str(*ready, "lastHeartbeatTime");
      h.transition = str(*ready, "lastTransitionTime");
    }
    if (lease != nullptr) {
      auto renewed = parse_time(cc::string_at(*lease, {"spec", "renewTime"}));
      if (renewed && (!h.lease_renewed || *h.lease_renewed < *renewed)) {
        h.lease_renewed = renewed;
        h.probe = now;
      }
    }
    return Observation{h.probe, ready != nullptr ? grace_period() : startup_grace_period(),
                       ready != nullptr ? str(*ready, "status") : ""};
  }

  // After the controller wrote the node's conditions itself: they are not a heartbeat.
  void note_own_status(const json& node, TimePoint now) {
    const json* ready = find_condition(node, "Ready");
    std::lock_guard<std::mutex> lock(mu);
    auto it = health.find(cc::name_of(node));
    if (it == health.end() || ready == nullptr) return;
    it->second.has_ready = true;
    it->second.heartbeat = str(*ready, "lastHeartbeatTime");
    it->second.transition = str(*ready, "lastTransitionTime");
    it->second.ready_transition = now;
  }

  // --- Pods --------------------------------------------------------------------------------

  std::vector<ObjectPtr> pods_on(const std::string& node_name) {
    return pods.by_index(kPodNodeNameIndex, node_name);
  }

  // MarkPodsNotReady: Ready=False on every pod of the node that still claims otherwise.
  Status mark_pods_not_ready(const std::string& node_name, TimePoint now) {
    std::vector<ObjectPtr> targets;
    for (const ObjectPtr& pod : pods_on(node_name)) {
      const json* ready = find_condition(*pod, "Ready");
      if (ready != nullptr && str(*ready, "status") != "False") targets.push_back(pod);
    }
    if (targets.empty()) return Status::Ok();
    std::string now_text = format_rfc3339(now);
    return cc::parallel_for(static_cast<int>(targets.size()), [&](int i) -> Status {
      const json& pod = *targets[i];
      json patch = {
          {"status",
           {{"conditions",
             {{{"type", "Ready"}, {"status", "False"}, {"lastTransitionTime", now_text}}}}}}};
      auto r = ctx.client.patch(client::resources::kPods.in(cc::namespace_of(pod)),
                                cc::name_of(pod), client::PatchType::kStrategicMerge,
                                patch.dump(), "status");
      if (!r.ok()) return r.status().is_not_found() ? Status::Ok() : r.status();
      ctx.events.record(cc::object_reference(pod, "v1", "Pod"), "Warning", "NodeNotReady",
                        "Node is not ready");
      return Status::Ok();
    });
  }

  Status evict(const json& pod, TimePoint now) {
    std::string ns = cc::namespace_of(pod);
    std::string name = cc::name_of(pod);
    ctx.events.record(cc::object_reference(pod, "v1", "Pod"), "Normal", "TaintManagerEviction",
                      "Marking for deletion Pod " + ns + "/" + name);
    json patch = {{"status",
                   {{"conditions",
                     {{{"type", "DisruptionTarget"},
                       {"status", "True"},
                       {"reason", "DeletionByTaintManager"},
                       {"message", "Taint manager: deleting due to NoExecute taint"},
                       {"lastTransitionTime", format_rfc3339(now)}}}}}}};
    auto pods_ref = client::resources::kPods.in(ns);
    auto marked = ctx.client.patch(pods_ref, name, client::PatchType::kStrategicMerge,
                                   patch.dump(), "status");
    if (!marked.ok()) return marked.status().is_not_found() ? Status::Ok() : marked.status();
    client::DeleteOptions o;
    o.precondition_uid = cc::uid_of(pod);
    auto removed = ctx.client.remove(pods_ref, name, o);
    if (removed.ok() || removed.status().is_not_found()) return Status::Ok();
    // A different pod of that name: the one to evict is gone.
    if (removed.status().code() == StatusCode::kConflict &&
        removed.status().message().find("Precondition failed") != std::string::npos) {
      return Status::Ok();
    }
    return removed.status();
  }

  // The taint eviction pass over the node's pods. Returns when the next eviction is due.
  std::optional<std::chrono::milliseconds> process_evictions(const json& node, TimePoint now,
                                                             std::vector<Status>* errors) {
    std::string node_name = cc::name_of(node);
    json taints = no_execute_taints(node);
    if (taints.empty()) {
      std::lock_guard<std::mutex> lock(mu);
      if (evictions.count(node_name) == 0) return std::nullopt;  // the common, healthy case
    }
    std::vector<ObjectPtr> node_pods = pods_on(node_name);
    std::vector<ObjectPtr> to_evict;
    std::vector<ObjectPtr> cancelled;
    std::optional<std::chrono::milliseconds> next;
    {
      std::lock_guard<std::mutex> lock(mu);
      auto it = evictions.find(node_name);
      if (taints.empty() && it == evictions.end()) return std::nullopt;
      std::unordered_map<std::string, TimePoint> previous;
      if (it != evictions.end()) previous = std::move(it->second);
      std::unordered_map<std::string, TimePoint> counting;
      // The eviction clock of pods already on the node starts when the taint was added.
      std::optional<TimePoint> tainted_at;
      for (const json& t : taints) {
        auto added = parse_time(str(t, "timeAdded"));
        if (added && (!tainted_at || *added < *tainted_at)) tainted_at = added;
      }
      for (const ObjectPtr& pod : node_pods) {
        if (cc::being_deleted(*pod)) continue;
        std::string uid = cc::uid_of(*pod);
        auto tolerated = taints.empty()
                             ? std::nullopt
                             : toleration_time(*pod, taints, ctx.options.pod_eviction_timeout);
        if (!tolerated) {
          if (previous.count(uid) != 0) cancelled.push_back(pod);
          continue;
        }
        TimePoint start = now;
        if (auto p = previous.find(uid); p != previous.end()) {
          start = p->second;
        } else if (tainted_at &&
                   cc::to_time_point(cc::creation_timestamp(*pod)) <= *tainted_at) {
          start = *tainted_at;
        }
        TimePoint due = start + *tolerated;
        if (due <= now) {
          to_evict.push_back(pod);
          continue;
        }
        counting.emplace(uid, start);
        auto left = until(due, now) + kDeadlineSlack;
        if (!next || left < *next) next = left;
      }
      if (counting.empty()) {
        evictions.erase(node_name);
      } else {
        evictions[node_name] = std::move(counting);
      }
    }
    for (const ObjectPtr& pod : cancelled) {
      ctx.events.record(cc::object_reference(*pod, "v1", "Pod"), "Normal", "TaintManagerEviction",
                        "Cancelling deletion of Pod " + cc::namespace_of(*pod) + "/" +
                            cc::name_of(*pod));
    }
    if (!to_evict.empty()) {
      SKIFF_LOG(Info) << "node " << node_name << ": evicting " << to_evict.size()
                      << " pods for NoExecute taints";
      Status s = cc::parallel_for(static_cast<int>(to_evict.size()),
                                  [&](int i) { return evict(*to_evict[i], now); });
      if (!s.ok()) errors->push_back(s);
    }
    return next;
  }

  // --- reconcile -------------------------------------------------------------------------

  Status reconcile(const std::string& name) {
    ObjectPtr cached = nodes.get("", name);
    TimePoint now = ctx.clock.now();
    if (!cached) {
      std::lock_guard<std::mutex> lock(mu);
      health.erase(name);
      evictions.erase(name);
      return Status::Ok();
    }
    ObjectPtr lease = leases.get(kNodeLeaseNamespace, name);
    Observation seen = observe(*cached, lease.get(), now);
    // The node as last read or written; copied only to change it.
    ObjectPtr node = cached;

    // 1. A silent kubelet: its conditions become Unknown.
    bool went_not_ready = false;
    if (now > seen.probe + seen.grace) {
      json updated = *node;
      if (mark_node_status_unknown(updated, now)) {
        auto r = ctx.client.update(client::resources::kNodes, updated, "status");
        if (!r.ok()) return r.status().is_not_found() ? Status::Ok() : r.status();
        node = *r;
        note_own_status(*node, now);
        went_not_ready = seen.ready == "True";
        SKIFF_LOG(Info) << "node " << name << ": kubelet stopped posting status for "
                        << std::chrono::duration_cast<std::chrono::seconds>(now - seen.probe)
                               .count()
                        << "s; Ready is now Unknown";
      }
    }
    if (went_not_ready) {
      ctx.events.record(cc::object_reference(*node, "v1", "Node"), "Normal", "NodeNotReady",
                        "Node " + name + " status is now: NodeNotReady");
    }

    // 2. Taints follow the conditions.
    json taints = desired_taints(*node, now);
    if (taints != taints_of(*node)) {
      json patch = {{"metadata", {{"resourceVersion", cc::resource_version_of(*node)}}},
                    {"spec", {{"taints", taints.empty() ? json(nullptr) : taints}}}};
      auto r = ctx.client.patch(client::resources::kNodes, name, client::PatchType::kMerge,
                                patch.dump());
      if (!r.ok()) return r.status().is_not_found() ? Status::Ok() : r.status();
      node = *r;
    }

    // 3, 4. The node's pods.
    std::vector<Status> errors;
    std::string ready = condition_status(*node, "Ready");
    if (ready == "Unknown") {
      if (Status s = mark_pods_not_ready(name, now); !s.ok()) errors.push_back(s);
    }
    std::optional<std::chrono::milliseconds> next = process_evictions(*node, now, &errors);

    // 5. Look again when something falls due.
    if (ready != "Unknown") {
      auto stale = until(seen.probe + seen.grace, now) + kDeadlineSlack;
      if (!next || stale < *next) next = stale;
    }
    if (next) queue->add_after(name, *next);
    return cc::aggregate(errors);
  }
};

NodeLifecycleController::NodeLifecycleController(ControllerContext& ctx)
    : impl_(std::make_unique<Impl>(ctx)) {}

NodeLifecycleController::~NodeLifecycleController() = default;

void NodeLifecycleController::setup(WorkQueue& queue) {
  Impl& m = *impl_;
  m.queue = &queue;
  m.pods.add_index(kPodNodeNameIndex, node_name_index);
  m.nodes.add_handlers(client::InformerHandlers{
      [&m](const ObjectPtr& n) { m.enqueue_node(*n); },
      [&m](const ObjectPtr&, const ObjectPtr& n) { m.enqueue_node(*n); },
      [&m](const ObjectPtr& n) { m.enqueue_node(*n); }});
  m.leases.add_handlers(client::InformerHandlers{
      [&m](const ObjectPtr& l) { m.queue->add(cc::name_of(*l)); },
      [&m](const ObjectPtr&, const ObjectPtr& l) { m.queue->add(cc::name_of(*l)); }, nullptr});
  m.pods.add_handlers(client::InformerHandlers{
      [&m](const ObjectPtr& p) { m.on_pod(*p); },
      [&m](const ObjectPtr&, const ObjectPtr& p) { m.on_pod(*p); }, nullptr});
}

Status NodeLifecycleController::reconcile(const std::string& key) {
  return impl_->reconcile(key);
}

SKIFF_REGISTER_CONTROLLER(node_lifecycle, [](ControllerContext& ctx) {
  return std::unique_ptr<Controller>(std::make_unique<NodeLifecycleController>(ctx));
});

}  // namespace skiff::controllers::nodelifecycle
