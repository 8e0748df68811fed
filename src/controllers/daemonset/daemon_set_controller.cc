#include "controllers/daemonset/daemon_set_controller.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "common/labels.h"
#include "common/log.h"
#include "controllers/common/batch.h"
#include "controllers/common/controller_history.h"
#include "controllers/common/controller_ref.h"
#include "controllers/common/expectations.h"
#include "controllers/common/object_meta.h"
#include "controllers/common/pod_template_hash.h"
#include "controllers/common/pod_util.h"
#include "controllers/daemonset/daemon_util.h"

namespace skiff::controllers::daemonset {
namespace {

namespace cc = ::skiff::controllers::common;
using client::ObjectPtr;
using nlohmann::json;

constexpr const char* kApiVersion = "apps/v1";
constexpr const char* kKind = "DaemonSet";
// StatusUpdateRetries: a failed status write is retried once, on a fresh read.
constexpr int kStatusUpdateRetries = 1;
// failedPodsBackoff: 1 s doubling up to 15 min between kills of failed pods on one node.
constexpr std::chrono::seconds kFailedPodBackoffInitial{1};
constexpr std::chrono::seconds kFailedPodBackoffMax{15 * 60};

using NodePods = std::map<std::string, std::vector<ObjectPtr>>;

std::string phase_of(const json& pod) { return cc::string_at(pod, {"status", "phase"}); }

int32_t min_ready_seconds(const json& ds) {
  return static_cast<int32_t>(
      std::clamp<int64_t>(cc::int_at(ds, {"spec", "minReadySeconds"}), 0, INT32_MAX));
}

bool has_cause(const Status& s, const std::string& reason) {
  for (const auto& c : s.causes()) {
    if (c.reason == reason) return true;
  }
  return false;
}

const json& labels_json(const json& obj) {
  static const json kNull;
  const json* labels = cc::find_path(obj, {"metadata", "labels"});
  return labels != nullptr ? *labels : kNull;
}

// podByCreationTimestampAndPhase: bound pods first, then older first, then by name.
bool pod_precedes(const ObjectPtr& a, const ObjectPtr& b) {
  bool bound_a = !cc::string_at(*a, {"spec", "nodeName"}).empty();
  bool bound_b = !cc::string_at(*b, {"spec", "nodeName"}).empty();
  if (bound_a != bound_b) return bound_a;
  return cc::created_before(*a, *b);
}

std::optional<LabelSelector> selector_of(const json& ds) {
  const json* sel = cc::find_path(ds, {"spec", "selector"});
  auto selector = LabelSelector::from_json(sel != nullptr ? *sel : json());
  if (!selector.ok()) return std::nullopt;
  return *selector;
}

void put_count(json& status, const char* field, int64_t value, bool omit_zero) {
  if (value != 0 || !omit_zero) {
    status[field] = value;
  } else {
    status.erase(field);
  }
}

}  // namespace

struct DaemonSetController::Impl {
  explicit Impl(ControllerContext& c) : ctx(c), expectations(c.clock) {}

  // --- event handlers: they only enqueue -------------------------------------------------

  void enqueue(const json& ds) { queue->add(cc::key_of(ds)); }

  void on_ds_delete(const json& ds) {
    std::string key = cc::key_of(ds);
    expectations.delete_expectations(key);
    queue->add(key);
  }

  void on_ds_update(const ObjectPtr& old_ds, const ObjectPtr& cur_ds) {
    if (cc::uid_of(*old_ds) != cc::uid_of(*cur_ds)) on_ds_delete(*old_ds);
    enqueue(*cur_ds);
  }

  // resolveControllerRef: the cached DaemonSet `ref` points at, if it is that very one.
  ObjectPtr resolve(const std::string& ns, const cc::OwnerReference& ref) const {
    return cc::resolve_controller_ref(*ds_informer, kKind, ns, ref);
  }

  // getDaemonSetsForPod / getDaemonSetsForHistory: the DaemonSets whose selector matches an
  // orphan.
  std::vector<ObjectPtr> matching_daemon_sets(const json& obj) const {
    return cc::selecting_controllers(*ds_informer, obj);
  }

  void on_pod_add(const ObjectPtr& pod) {
    if (cc::being_deleted(*pod)) {
      on_pod_delete(pod);
      return;
    }
    if (auto ref = cc::controller_of(*pod)) {
      ObjectPtr ds = resolve(cc::namespace_of(*pod), *ref);
      if (!ds) return;
      std::string key = cc::key_of(*ds);
      expectations.creation_observed(key);
      queue->add(key);
      return;
    }
    for (const ObjectPtr& ds : matching_daemon_sets(*pod)) enqueue(*ds);
  }

  void on_pod_update(const ObjectPtr& old_pod, const ObjectPtr& cur_pod) {
    if (cc::resource_version_of(*old_pod) == cc::resource_version_of(*cur_pod)) return;
    if (cc::being_deleted(*cur_pod)) {
      // A pod marked for deletion is as good as gone: count it now.
      on_pod_delete(cur_pod);
      return;
    }
    auto cur_ref = cc::controller_of(*cur_pod);
    auto old_ref = cc::controller_of(*old_pod);
    if (old_ref && cur_ref != old_ref) {
      if (ObjectPtr ds = resolve(cc::namespace_of(*old_pod), *old_ref)) enqueue(*ds);
    }
    if (cur_ref) {
      ObjectPtr ds = resolve(cc::namespace_of(*cur_pod), *cur_ref);
      if (!ds) return;
      enqueue(*ds);
      int32_t min_ready = min_ready_seconds(*ds);
      if (!cc::is_pod_ready(*old_pod) && cc::is_pod_ready(*cur_pod) && min_ready > 0) {
        queue->add_after(cc::key_of(*ds),
                         std::chrono::seconds(min_ready) + std::chrono::seconds(1));
      }
      return;
    }
    if (labels_json(*old_pod) != labels_json(*cur_pod) || cur_ref != old_ref) {
      for (const ObjectPtr& ds : matching_daemon_sets(*cur_pod)) enqueue(*ds);
    }
  }

  void on_pod_delete(const ObjectPtr& pod) {
    auto ref = cc::controller_of(*pod);
    if (!ref) return;
    ObjectPtr ds = resolve(cc::namespace_of(*pod), *ref);
    if (!ds) return;
    std::string key = cc::key_of(*ds);
    expectations.deletion_observed(key, cc::key_of(*pod));
    queue->add(key);
  }

  void on_history_event(const ObjectPtr& history) {
    if (auto ref = cc::controller_of(*history)) {
      if (ObjectPtr ds = resolve(cc::namespace_of(*history), *ref)) enqueue(*ds);
      return;
    }
    for (const ObjectPtr& ds : matching_daemon_sets(*history)) enqueue(*ds);
  }

  void on_node_add(const ObjectPtr& node) {
    for (const ObjectPtr& ds : ds_informer->list()) {
      if (node_should_run_daemon_pod(*node, *ds).should_run) enqueue(*ds);
    }
  }

  // shouldIgnoreNodeUpdate: heartbeats alone change nothing a DaemonSet depends on.
  static json without_heartbeats(const json& node) {
    json n = node;
    if (n.is_object() && n["metadata"].is_object()) n["metadata"].erase("resourceVersion");
    json* conditions = n.is_object() && n.contains("status") && n["status"].is_object() &&
                               n["status"].contains("conditions")
                           ? &n["status"]["conditions"]
                           : nullptr;
    if (conditions != nullptr && conditions->is_array()) {
      for (json& c : *conditions) {
        if (c.is_object()) c.erase("lastHeartbeatTime");
      }
    }
    return n;
  }

  void on_node_update(const ObjectPtr& old_node, const ObjectPtr& cur_node) {
    if (without_heartbeats(*old_node) == without_heartbeats(*cur_node)) return;
    for (const ObjectPtr& ds : ds_informer->list()) {
      NodeFit before = node_should_run_daemon_pod(*old_node, *ds);
      NodeFit after = node_should_run_daemon_pod(*cur_node, *ds);
      if (before.should_run != after.should_run ||
          before.should_continue_running != after.should_continue_running) {
        enqueue(*ds);
      }
    }
  }

  void on_node_delete(const ObjectPtr&) {
    for (const ObjectPtr& ds : ds_informer->list()) enqueue(*ds);
  }

  // --- reconcile ---------------------------------------------------------------------------

  void record(const json& ds, const char* type, const char* reason, const std::string& message) {
    ctx.events.record(cc::object_reference(ds, kApiVersion, kKind), type, reason, message);
  }

  client::ResourceRef revisions_ref(const std::string& ns) const {
    return client::resources::kControllerRevisions.in(ns);
  }

  Status recheck(const json& ds) {
    return cc::recheck_owner(ctx.client, client::resources::kDaemonSets.in(cc::namespace_of(ds)),
                             kKind, cc::name_of(ds), cc::uid_of(ds));
  }

  // controlledHistories: the ControllerRevisions this DaemonSet owns, after adoption.
  Result<std::vector<ObjectPtr>> controlled_histories(const json& ds,
                                                      const LabelSelector& selector) {
    std::string ns = cc::namespace_of(ds);
    cc::ControllerRefManager refs(ctx.client, ds, cc::new_controller_ref(ds, kApiVersion, kKind),
                                  selector, [&] { return recheck(ds); });
    Status error;
    std::vector<ObjectPtr> owned =
        refs.claim(revisions_ref(ns), history_informer->list(ns), &error);
    if (!error.ok()) return error;
    return owned;
  }

  // constructHistory: the revision of the current template (created or renumbered when
  // needed) and the others.
  Status construct_history(const json& ds, const LabelSelector& selector, ObjectPtr* current,
                           std::vector<ObjectPtr>* old) {
    auto histories = controlled_histories(ds, selector);
    if (!histories.ok()) return histories.status();
    const json patch = cc::template_patch(ds);
    const std::string hash_key(cc::kControllerRevisionHashLabel);
    std::vector<ObjectPtr> matching;
    for (ObjectPtr history : *histories) {
      if (!cc::labels_of(*history).count(hash_key)) {
        // Named by the revision's name, not a hash, so that no collision can arise.
        json labelled = *history;
        labelled["metadata"]["labels"][hash_key] = cc::name_of(*history);
        auto updated = ctx.client.update(revisions_ref(cc::namespace_of(ds)), labelled);
        if (!updated.ok()) return updated.status();
        history = *updated;
      }
      const json* data = cc::find_path(*history, {"data"});
      if (data != nullptr && cc::semantic_normalize(*data) == cc::semantic_normalize(patch)) {
        matching.push_back(history);
      } else {
        old->push_back(history);
      }
    }
    int64_t next = 1;
    for (const ObjectPtr& h : *old) next = std::max(next, cc::revision_number(*h) + 1);
    if (matching.empty()) {
      auto created = snapshot(ds, patch, next);
      if (!created.ok()) return created.status();
      *current = *created;
      return Status::Ok();
    }
    auto kept = dedup_current_histories(ds, selector, matching);
    if (!kept.ok()) return kept.status();
    *current = *kept;
    if (cc::revision_number(**current) < next) {
      auto renumbered = cc::set_revision_number(ctx.client, **current, next);
      if (!renumbered.ok()) return renumbered.status();
      *current = *renumbered;
    }
    return Status::Ok();
  }

  // dedupCurHistories: of several revisions holding the current template, keeps the newest,
  // relabels the pods of the others to it and deletes them.
  Result<ObjectPtr> dedup_current_histories(const json& ds, const LabelSelector& selector,
                                            const std::vector<ObjectPtr>& current) {
    if (current.size() == 1) return current[0];
    ObjectPtr keep = current[0];
    for (const ObjectPtr& h : current) {
      if (cc::revision_number(*h) >= cc::revision_number(*keep)) keep = h;
    }
    const std::string hash_key(cc::kControllerRevisionHashLabel);
    std::string keep_hash = cc::labels_of(*keep)[hash_key];
    std::string ns = cc::namespace_of(ds);
    Status claim_error;
    for (const ObjectPtr& pod : daemon_pods(ds, selector, &claim_error)) {
      if (cc::labels_of(*pod)[hash_key] == keep_hash) continue;
      json patch = {{"metadata", {{"labels", {{hash_key, keep_hash}}}}}};
      auto patched = ctx.client.patch(client::resources::kPods.in(ns), cc::name_of(*pod),
                                      client::PatchType::kMerge, patch.dump());
      if (!patched.ok() && !patched.status().is_not_found()) return patched.status();
    }
    if (!claim_error.ok()) return claim_error;
    for (const ObjectPtr& h : current) {
      if (cc::name_of(*h) == cc::name_of(*keep)) continue;
      auto removed = ctx.client.remove(revisions_ref(ns), cc::name_of(*h));
      if (!removed.ok() && !removed.status().is_not_found()) return removed.status();
    }
    return keep;
  }

  // snapshot: creates the revision "<ds>-<template hash>"; a name taken by another template
  // bumps status.collisionCount (so that the next pass picks another name) and fails.
  Result<ObjectPtr> snapshot(const json& ds, const json& patch, int64_t revision) {
    std::optional<int32_t> collision_count;
    if (const json* c = cc::find_path(ds, {"status", "collisionCount"});
        c != nullptr && c->is_number_integer()) {
      collision_count = c->get<int32_t>();
    }
    const json* tmpl = cc::find_path(ds, {"spec", "template"});
    std::string hash = cc::compute_hash(tmpl != nullptr ? *tmpl : json::object(), collision_count);
    Labels labels = cc::string_map(cc::find_path(ds, {"spec", "template", "metadata", "labels"}));
    labels[std::string(cc::kControllerRevisionHashLabel)] = hash;
    json history = cc::new_controller_revision(
        ds, cc::new_controller_ref(ds, kApiVersion, kKind), labels, patch, revision, std::nullopt);
    // The DaemonSet controller names revisions by the template hash, not the data hash.
    history["metadata"]["name"] = cc::controller_revision_name(cc::name_of(ds), hash);
    history["metadata"]["labels"][std::string(cc::kControllerRevisionHashLabel)] = hash;
    std::string ns = cc::namespace_of(ds);
    auto created = ctx.client.create(revisions_ref(ns), history);
    if (created.ok() || created.status().code() != StatusCode::kAlreadyExists) return created;
    auto existing = ctx.client.get(revisions_ref(ns), cc::name_of(history));
    if (!existing.ok()) return existing.status();
    const json* data = cc::find_path(**existing, {"data"});
    if (data != nullptr && cc::semantic_normalize(*data) == cc::semantic_normalize(patch)) {
      return existing;
    }
    // A hash collision with another template.
    client::ResourceRef ds_ref = client::resources::kDaemonSets.in(ns);
    auto fresh = ctx.client.get(ds_ref, cc::name_of(ds));
    if (!fresh.ok()) return fresh.status();
    std::optional<int32_t> fresh_count;
    if (const json* c = cc::find_path(**fresh, {"status", "collisionCount"});
        c != nullptr && c->is_number_integer()) {
      fresh_count = c->get<int32_t>();
    }
    if (fresh_count != collision_count) {
      return Status::Conflict("found a stale collision count of DaemonSet " + cc::key_of(ds) +
                              "; will retry until it is updated");
    }
    json bumped = **fresh;
    bumped["status"]["collisionCount"] = collision_count.value_or(0) + 1;
    auto updated = ctx.client.update(ds_ref, bumped, "status");
    if (!updated.ok()) return updated.status();
    return created.status();
  }

  // getDaemonPods: every pod of the namespace this DaemonSet owns, after adoption and release.
  std::vector<ObjectPtr> daemon_pods(const json& ds, const LabelSelector& selector,
                                     Status* error) {
    std::string ns = cc::namespace_of(ds);
    cc::ControllerRefManager refs(ctx.client, ds, cc::new_controller_ref(ds, kApiVersion, kKind),
                                  selector, [&] { return recheck(ds); });
    return refs.claim(client::resources::kPods.in(ns), pod_informer->list(ns), error);
  }

  // getNodesToDaemonPods: the DaemonSet's pods by the node they are for; terminal pods being
  // deleted are left out unless include_deleted_terminal.
  static NodePods nodes_to_daemon_pods(const std::vector<ObjectPtr>& pods,
                                       bool include_deleted_terminal) {
    NodePods out;
    for (const ObjectPtr& pod : pods) {
      std::string phase = phase_of(*pod);
      bool terminal = phase == "Succeeded" || phase == "Failed";
      if (!include_deleted_terminal && terminal && cc::being_deleted(*pod)) continue;
      auto node = target_node_name(*pod);
      if (!node) continue;
      out[*node].push_back(pod);
    }
    return out;
  }

  // failedPodsBackoff: true while the node's last kill of a failed pod is too recent; else
  // starts the next back-off period.
  bool failed_pod_backoff(const json& ds, const std::string& node,
                          std::chrono::milliseconds* wait) {
    std::lock_guard<std::mutex> lock(backoff_mu);
    std::string key = cc::uid_of(ds) + "/" + node;
    TimePoint now = ctx.clock.now();
    auto it = backoff.find(key);
    if (it != backoff.end() && now - it->second.last < it->second.delay) {
      *wait = std::chrono::duration_cast<std::chrono::milliseconds>(it->second.delay -
                                                                    (now - it->second.last));
      return true;
    }
    if (it == backoff.end() || now - it->second.last > 2 * kFailedPodBackoffMax) {
      backoff[key] = Backoff{now, kFailedPodBackoffInitial};
    } else {
      it->second.last = now;
      it->second.delay = std::min<std::chrono::nanoseconds>(it->second.delay * 2,
                                                            kFailedPodBackoffMax);
    }
    return false;
  }

  // podsShouldBeOnNode.
  void pods_should_be_on_node(const json& ds, const std::string& node, NodeFit fit,
                              const NodePods& node_pods, const std::string& hash,
                              std::vector<std::string>* nodes_needing,
                              std::vector<ObjectPtr>* to_delete) {
    auto it = node_pods.find(node);
    bool exists = it != node_pods.end();
    if (fit.should_run && !exists) {
      nodes_needing->push_back(node);
      return;
    }
    if (fit.should_continue_running) {
      if (!exists) return;
      std::vector<ObjectPtr> running;
      for (const ObjectPtr& pod : it->second) {
        if (cc::being_deleted(*pod)) continue;
        std::string phase = phase_of(*pod);
        if (phase == "Failed") {
          std::chrono::milliseconds wait{0};
          if (failed_pod_backoff(ds, node, &wait)) {
            queue->add_after(cc::key_of(ds), wait);
            continue;
          }
          record(ds, "Warning", "FailedDaemonPod",
                 "Found failed daemon pod " + cc::key_of(*pod) + " on node " + node +
                     ", will try to kill it");
          to_delete->push_back(pod);
        } else if (phase == "Succeeded") {
          record(ds, "Normal", "SucceededDaemonPod",
                 "Found succeeded daemon pod " + cc::key_of(*pod) + " on node " + node +
                     ", will try to delete it");
          to_delete->push_back(pod);
        } else {
          running.push_back(pod);
        }
      }
      std::sort(running.begin(), running.end(), pod_precedes);
      if (!allows_surge(ds)) {
        // More than one pod on the node: keep the oldest.
        for (size_t i = 1; i < running.size(); ++i) to_delete->push_back(running[i]);
        return;
      }
      if (running.size() <= 1) {
        if (running.empty() && fit.should_run) nodes_needing->push_back(node);
        return;
      }
      // Surging: an old and a new pod may share the node while the new one is not ready and
      // the old one is; every other pod goes.
      ObjectPtr oldest_new;
      ObjectPtr oldest_old;
      const std::string hash_key(cc::kControllerRevisionHashLabel);
      for (const ObjectPtr& pod : running) {
        bool is_new = cc::labels_of(*pod)[hash_key] == hash;
        if (is_new && !oldest_new) {
          oldest_new = pod;
          continue;
        }
        if (!is_new && !oldest_old) {
          oldest_old = pod;
          continue;
        }
        to_delete->push_back(pod);
      }
      if (oldest_new && oldest_old &&
          (!cc::is_pod_ready(*oldest_old) || cc::is_pod_ready(*oldest_new))) {
        to_delete->push_back(oldest_old);
      }
      return;
    }
    if (exists) {
      for (const ObjectPtr& pod : it->second) {
        if (!cc::being_deleted(*pod)) to_delete->push_back(pod);
      }
    }
  }

  // manage: creates and deletes pods so that each node has the daemon pod it should.
  Status manage(const json& ds, const std::vector<ObjectPtr>& nodes, const NodePods& node_pods,
                const std::string& hash, const std::string& key) {
    std::vector<std::string> nodes_needing;
    std::vector<ObjectPtr> to_delete;
    std::set<std::string> node_names;
    for (const ObjectPtr& node : nodes) {
      std::string name = cc::name_of(*node);
      node_names.insert(name);
      pods_should_be_on_node(ds, name, node_should_run_daemon_pod(*node, ds), node_pods, hash,
                             &nodes_needing, &to_delete);
    }
    // getUnscheduledPodsWithoutNode: unbound pods meant for a node that no longer exists.
    for (const auto& [node, pods] : node_pods) {
      if (node_names.count(node)) continue;
      for (const ObjectPtr& pod : pods) {
        if (cc::string_at(*pod, {"spec", "nodeName"}).empty() && !cc::being_deleted(*pod)) {
          to_delete.push_back(pod);
        }
      }
    }
    return sync_nodes(ds, to_delete, nodes_needing, hash, key);
  }

  // syncNodes: deletes `to_delete` and creates a pod for each of `nodes_needing`.
  Status sync_nodes(const json& ds, std::vector<ObjectPtr> to_delete,
                    const std::vector<std::string>& nodes_needing, const std::string& hash,
                    const std::string& key) {
    // A pod listed twice (surplus and failed) is deleted once.
    std::set<std::string> seen;
    to_delete.erase(std::remove_if(to_delete.begin(), to_delete.end(),
                                   [&](const ObjectPtr& p) {
                                     return !seen.insert(cc::name_of(*p)).second;
                                   }),
                    to_delete.end());
    int create_count = std::min<int>(static_cast<int>(nodes_needing.size()), kBurstReplicas);
    int delete_count = std::min<int>(static_cast<int>(to_delete.size()), kBurstReplicas);
    to_delete.resize(static_cast<size_t>(delete_count));
    std::vector<std::string> delete_keys;
    for (const ObjectPtr& p : to_delete) delete_keys.push_back(cc::key_of(*p));
    // Expect before acting: the events may arrive before the calls return.
    expectations.expect(key, create_count, delete_keys);

    std::string ns = cc::namespace_of(ds);
    std::vector<Status> errors;
    if (create_count > 0) {
      json tmpl = daemon_pod_template(ds, template_generation(ds), hash);
      cc::OwnerReference ref = cc::new_controller_ref(ds, kApiVersion, kKind);
      std::mutex mu;
      int next = 0;
      cc::BatchResult result =
          cc::slow_start_batch(create_count, cc::kSlowStartInitialBatchSize, [&]() -> Status {
            std::string node;
            {
              std::lock_guard<std::mutex> lock(mu);
              node = nodes_needing[static_cast<size_t>(next++)];
            }
            json pod_template = tmpl;
            set_node_name_affinity(pod_template["spec"], node);
            auto pod = cc::pod_from_template(pod_template, ds, ref);
            if (!pod.ok()) {
              record(ds, "Warning", "FailedCreate", "Error creating: " + pod.status().message());
              return pod.status();
            }
            auto created = ctx.client.create(client::resources::kPods.in(ns), *pod);
            if (!created.ok()) {
              if (has_cause(created.status(), "NamespaceTerminating")) return Status::Ok();
              record(ds, "Warning", "FailedCreate",
                     "Error creating: " + created.status().message());
              return created.status();
            }
            record(ds, "Normal", "SuccessfulCreate", "Created pod: " + cc::name_of(**created));
            return Status::Ok();
          });
      // Creations that failed or never started will not be observed.
      for (int i = result.successes; i < create_count; ++i) expectations.creation_observed(key);
      if (!result.first_error.ok()) errors.push_back(result.first_error);
    }
    Status deleted = cc::parallel_for(delete_count, [&](int i) -> Status {
      const json& pod = *to_delete[static_cast<size_t>(i)];
      auto removed = ctx.client.remove(client::resources::kPods.in(ns), cc::name_of(pod));
      if (removed.ok()) {
        record(ds, "Normal", "SuccessfulDelete", "Deleted pod: " + cc::name_of(pod));
        return Status::Ok();
      }
      expectations.deletion_observed(key, delete_keys[static_cast<size_t>(i)]);
      if (removed.status().is_not_found()) return Status::Ok();
      record(ds, "Warning", "FailedDelete", "Error deleting: " + removed.status().message());
      return removed.status();
    });
    if (!deleted.ok()) errors.push_back(deleted);
    return cc::aggregate(errors);
  }

  // findUpdatedPodsOnNode: the one new and one old live pod of a node; false when there are
  // more (the manage pass cleans those up first).
  static bool updated_pods_on_node(const std::vector<ObjectPtr>& pods, const std::string& hash,
                                   std::optional<int64_t> generation, ObjectPtr* new_pod,
                                   ObjectPtr* old_pod) {
    for (const ObjectPtr& pod : pods) {
      if (cc::being_deleted(*pod)) continue;
      ObjectPtr& slot = is_pod_updated(*pod, hash, generation) ? *new_pod : *old_pod;
      if (slot) return false;
      slot = pod;
    }
    return true;
  }

  // rollingUpdate: the old pods to delete, or (surging) the nodes to start new pods on,
  // within maxUnavailable and maxSurge.
  Status rolling_update(const json& ds, const std::vector<ObjectPtr>& nodes,
                        const std::vector<ObjectPtr>& pods, const std::string& hash,
                        const std::string& key) {
    NodePods node_pods = nodes_to_daemon_pods(pods, false);
    std::map<std::string, ObjectPtr> node_by_name;
    int desired = 0;
    for (const ObjectPtr& node : nodes) {
      std::string name = cc::name_of(*node);
      node_by_name[name] = node;
      if (!node_should_run_daemon_pod(*node, ds).should_run) continue;
      ++desired;
      node_pods[name];  // an empty entry for nodes without a pod
    }
    auto max_surge = surge_count(ds, desired);
    if (!max_surge.ok()) return max_surge.status();
    auto max_unavailable = unavailable_count(ds, desired);
    if (!max_unavailable.ok()) return max_unavailable.status();
    int surge = *max_surge;
    int unavailable_limit = *max_unavailable;
    // A configuration allowing neither is treated as the default maxUnavailable of 1.
    if (desired > 0 && surge == 0 && unavailable_limit == 0) unavailable_limit = 1;

    TimePoint now = ctx.clock.now();
    int32_t min_ready = min_ready_seconds(ds);
    std::optional<int64_t> generation = template_generation(ds);
    auto available = [&](const ObjectPtr& pod) {
      return cc::is_pod_available(*pod, min_ready, now);
    };
    auto should_run = [&](const std::string& node) {
      auto it = node_by_name.find(node);
      return it != node_by_name.end() && node_should_run_daemon_pod(*it->second, ds).should_run;
    };

    if (surge == 0) {
      int num_unavailable = 0;
      std::vector<ObjectPtr> replacements;
      std::vector<ObjectPtr> candidates;
      for (const auto& [node, node_list] : node_pods) {
        ObjectPtr new_pod;
        ObjectPtr old_pod;
        if (!updated_pods_on_node(node_list, hash, generation, &new_pod, &old_pod)) {
          ++num_unavailable;
          continue;
        }
        if ((!old_pod && !new_pod) || (old_pod && new_pod)) {
          ++num_unavailable;
        } else if (new_pod) {
          if (!available(new_pod)) ++num_unavailable;
        } else if (!available(old_pod)) {
          replacements.push_back(old_pod);
          ++num_unavailable;
        } else if (num_unavailable < unavailable_limit) {
          candidates.push_back(old_pod);
        }
      }
      int remaining = std::clamp(unavailable_limit - num_unavailable, 0,
                                 static_cast<int>(candidates.size()));
      for (int i = 0; i < remaining; ++i) replacements.push_back(candidates[static_cast<size_t>(i)]);
      return sync_nodes(ds, replacements, {}, hash, key);
    }

    std::vector<ObjectPtr> old_to_delete;
    std::vector<ObjectPtr> should_not_run_to_delete;
    std::vector<std::string> candidate_nodes;
    std::vector<std::string> allowed_nodes;
    int num_surge = 0;
    int num_available = 0;
    for (const auto& [node, node_list] : node_pods) {
      ObjectPtr new_pod;
      ObjectPtr old_pod;
      if (!updated_pods_on_node(node_list, hash, generation, &new_pod, &old_pod)) {
        ++num_surge;
        continue;
      }
      if (old_pod) {
        if (available(old_pod)) ++num_available;
      } else if (new_pod) {
        if (available(new_pod)) ++num_available;
      }
      if (!old_pod) continue;
      if (!new_pod) {
        if (!available(old_pod)) {
          if (!should_run(node)) {
            old_to_delete.push_back(old_pod);
            continue;
          }
          allowed_nodes.push_back(node);
        } else {
          if (!should_run(node)) {
            should_not_run_to_delete.push_back(old_pod);
            continue;
          }
          if (num_surge >= surge) continue;
          candidate_nodes.push_back(node);
        }
        continue;
      }
      // Already surged here: the old pod goes once the new one is available.
      if (!available(new_pod)) {
        ++num_surge;
        continue;
      }
      old_to_delete.push_back(old_pod);
    }
    // Pods on nodes that should no longer run them go only while enough pods stay available.
    int deletable = std::min<int>(num_available - desired,
                                  static_cast<int>(should_not_run_to_delete.size()));
    for (int i = 0; i < deletable; ++i) {
      old_to_delete.push_back(should_not_run_to_delete[static_cast<size_t>(i)]);
    }
    int remaining =
        std::clamp(surge - num_surge, 0, static_cast<int>(candidate_nodes.size()));
    for (int i = 0; i < remaining; ++i) {
      allowed_nodes.push_back(candidate_nodes[static_cast<size_t>(i)]);
    }
    return sync_nodes(ds, old_to_delete, allowed_nodes, hash, key);
  }

  // cleanupHistory: deletes the oldest revisions beyond revisionHistoryLimit that no pod uses.
  Status cleanup_history(const json& ds, const std::vector<ObjectPtr>& pods,
                         std::vector<ObjectPtr> old) {
    int64_t keep = std::max<int64_t>(cc::int_at(ds, {"spec", "revisionHistoryLimit"}, 10), 0);
    int64_t to_kill = static_cast<int64_t>(old.size()) - keep;
    if (to_kill <= 0) return Status::Ok();
    const std::string hash_key(cc::kControllerRevisionHashLabel);
    std::set<std::string> live_hashes;
    for (const auto& [node, node_list] : nodes_to_daemon_pods(pods, true)) {
      for (const ObjectPtr& pod : node_list) {
        std::string h = cc::labels_of(*pod)[hash_key];
        if (!h.empty()) live_hashes.insert(h);
      }
    }
    cc::sort_controller_revisions(old);
    for (const ObjectPtr& history : old) {
      if (to_kill <= 0) break;
      if (live_hashes.count(cc::labels_of(*history)[hash_key])) continue;
      auto removed = ctx.client.remove(revisions_ref(cc::namespace_of(ds)), cc::name_of(*history));
      if (!removed.ok() && !removed.status().is_not_found()) return removed.status();
      --to_kill;
    }
    return Status::Ok();
  }

  // updateDaemonSetStatus / storeDaemonSetStatus.
  Status update_status(const ObjectPtr& ds, const std::vector<ObjectPtr>& nodes,
                       const std::vector<ObjectPtr>& pods, const std::string& hash,
                       bool update_observed_generation) {
    NodePods node_pods = nodes_to_daemon_pods(pods, false);
    TimePoint now = ctx.clock.now();
    int32_t min_ready = min_ready_seconds(*ds);
    std::optional<int64_t> generation = template_generation(*ds);
    int64_t desired = 0, current = 0, misscheduled = 0, ready = 0, available = 0, updated = 0;
    for (const ObjectPtr& node : nodes) {
      NodeFit fit = node_should_run_daemon_pod(*node, *ds);
      auto it = node_pods.find(cc::name_of(*node));
      bool scheduled = it != node_pods.end() && !it->second.empty();
      if (!fit.should_run) {
        if (scheduled) ++misscheduled;
        continue;
      }
      ++desired;
      if (!scheduled) continue;
      ++current;
      std::vector<ObjectPtr> daemon = it->second;
      std::sort(daemon.begin(), daemon.end(), pod_precedes);
      const json& pod = *daemon.front();
      if (cc::is_pod_ready(pod)) {
        ++ready;
        if (cc::is_pod_available(pod, min_ready, now)) ++available;
      }
      if (is_pod_updated(pod, hash, generation)) ++updated;
    }
    const json* cur = cc::find_path(*ds, {"status"});
    json old_status = cur != nullptr && cur->is_object() ? *cur : json::object();
    json status = old_status;
    put_count(status, "desiredNumberScheduled", desired, false);
    put_count(status, "currentNumberScheduled", current, false);
    put_count(status, "numberMisscheduled", misscheduled, false);
    put_count(status, "numberReady", ready, false);
    put_count(status, "updatedNumberScheduled", updated, true);
    put_count(status, "numberAvailable", available, true);
    put_count(status, "numberUnavailable", desired - available, true);
    int64_t generation_seen = cc::generation_of(*ds);
    bool observed = cc::int_at(old_status, {"observedGeneration"}) >= generation_seen;
    if (status != old_status || !observed) {
      if (update_observed_generation) status["observedGeneration"] = generation_seen;
      Status written = write_status(*ds, status);
      if (!written.ok()) return written;
    }
    if (min_ready > 0 && ready != available) {
      queue->add_after(cc::key_of(*ds), std::chrono::seconds(min_ready));
    }
    return Status::Ok();
  }

  Status write_status(const json& ds, const json& status) {
    client::ResourceRef ref = client::resources::kDaemonSets.in(cc::namespace_of(ds));
    json obj = ds;
    Status last;
    for (int attempt = 0;; ++attempt) {
      // Keep what others wrote (collisionCount, conditions) on a fresh read.
      json merged = obj.value("status", json::object());
      if (!merged.is_object()) merged = json::object();
      for (auto it = status.begin(); it != status.end(); ++it) merged[it.key()] = it.value();
      for (const char* f : {"updatedNumberScheduled", "numberAvailable", "numberUnavailable"}) {
        if (!status.contains(f)) merged.erase(f);
      }
      obj["status"] = merged;
      auto updated = ctx.client.update(ref, obj, "status");
      if (updated.ok()) return Status::Ok();
      last = updated.status();
      if (attempt >= kStatusUpdateRetries || last.is_not_found()) break;
      auto fresh = ctx.client.get(ref, cc::name_of(ds));
      if (!fresh.ok()) return fresh.status();
      obj = **fresh;
    }
    return last.is_not_found() ? Status::Ok() : last;
  }

  Status sync(const std::string& key) {
    std::string ns;
    std::string name;
    client::split_key(key, &ns, &name);
    ObjectPtr ds = ds_informer->get(ns, name);
    if (!ds) {
      expectations.delete_expectations(key);
      return Status::Ok();
    }
    std::vector<ObjectPtr> nodes = node_informer->list();
    auto selector = selector_of(*ds);
    if (!selector) {
      SKIFF_LOG(Warn) << "daemonset " << key << ": invalid selector";
      return Status::Ok();
    }
    if (selector->empty()) {
      record(*ds, "Warning", "SelectingAll",
             "This daemon set is selecting all pods. A non-empty selector is required.");
      return Status::Ok();
    }
    // Pods of a DaemonSet being deleted are left to the garbage collector.
    if (cc::being_deleted(*ds)) return Status::Ok();

    ObjectPtr current;
    std::vector<ObjectPtr> old;
    Status history = construct_history(*ds, *selector, &current, &old);
    if (!history.ok()) return history;
    std::string hash = cc::labels_of(*current)[std::string(cc::kControllerRevisionHashLabel)];

    Status claim_error;
    std::vector<ObjectPtr> pods = daemon_pods(*ds, *selector, &claim_error);
    if (!claim_error.ok()) return claim_error;

    if (!expectations.satisfied(key)) return update_status(ds, nodes, pods, hash, false);

    Status manage_error = manage(*ds, nodes, nodes_to_daemon_pods(pods, false), hash, key);
    if (manage_error.ok() && expectations.satisfied(key) &&
        cc::string_at(*ds, {"spec", "updateStrategy", "type"}) == "RollingUpdate") {
      manage_error = rolling_update(*ds, nodes, pods, hash, key);
    }
    if (manage_error.ok()) manage_error = cleanup_history(*ds, pods, old);
    // The status counts what the cache holds; the writes above show up there soon and
    // trigger another pass.
    Status status_error = update_status(ds, nodes, pods, hash, true);
    return manage_error.ok() ? status_error : manage_error;
  }

  struct Backoff {
    TimePoint last;
    std::chrono::nanoseconds delay;
  };

  // Constant after setup().
  ControllerContext& ctx;
  WorkQueue* queue = nullptr;
  client::Informer* ds_informer = nullptr;
  client::Informer* pod_informer = nullptr;
  client::Informer* node_informer = nullptr;
  client::Informer* history_informer = nullptr;

  cc::ControllerExpectations expectations;  // thread-safe
  std::mutex backoff_mu;
  std::map<std::string, Backoff> backoff;  // guarded by backoff_mu
};

DaemonSetController::DaemonSetController(ControllerContext& ctx)
    : impl_(std::make_unique<Impl>(ctx)) {}

DaemonSetController::~DaemonSetController() = default;

void DaemonSetController::setup(WorkQueue& queue) {
  Impl& m = *impl_;
  m.queue = &queue;
  m.ds_informer = &m.ctx.informers.informer(client::resources::kDaemonSets);
  m.pod_informer = &m.ctx.informers.informer(client::resources::kPods);
  m.node_informer = &m.ctx.informers.informer(client::resources::kNodes);
  m.history_informer = &m.ctx.informers.informer(client::resources::kControllerRevisions);
  cc::add_controller_uid_index(*m.pod_informer);
  m.ds_informer->add_handlers(client::InformerHandlers{
      [&m](const ObjectPtr& ds) { m.enqueue(*ds); },
      [&m](const ObjectPtr& old_ds, const ObjectPtr& cur_ds) { m.on_ds_update(old_ds, cur_ds); },
      [&m](const ObjectPtr& ds) { m.on_ds_delete(*ds); }});
  m.pod_informer->add_handlers(
      client::InformerHandlers{[&m](const ObjectPtr& pod) { m.on_pod_add(pod); },
                               [&m](const ObjectPtr& old_pod, const ObjectPtr& cur_pod) {
                                 m.on_pod_update(old_pod, cur_pod);
                               },
                               [&m](const ObjectPtr& pod) { m.on_pod_delete(pod); }});
  m.node_informer->add_handlers(client::InformerHandlers{
      [&m](const ObjectPtr& node) { m.on_node_add(node); },
      [&m](const ObjectPtr& old_node, const ObjectPtr& cur_node) {
        m.on_node_update(old_node, cur_node);
      },
      [&m](const ObjectPtr& node) { m.on_node_delete(node); }});
  m.history_informer->add_handlers(client::InformerHandlers{
      [&m](const ObjectPtr& h) { m.on_history_event(h); },
      [&m](const ObjectPtr&, const ObjectPtr& h) { m.on_history_event(h); },
      [&m](const ObjectPtr& h) { m.on_history_event(h); }});
}

Status DaemonSetController::reconcile(const std::string& key) { return impl_->sync(key); }

}  // namespace skiff::controllers::daemonset

SKIFF_REGISTER_CONTROLLER(daemonset, [](skiff::controllers::ControllerContext& ctx) {
  return std::make_unique<skiff::controllers::daemonset::DaemonSetController>(ctx);
});
