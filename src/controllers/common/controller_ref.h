// Controller references (metadata.ownerReferences with controller=true) and the adoption
// protocol of Kubernetes' controller_ref_manager.go: a workload controller owns the objects
// that carry its controller reference; it adopts matching orphans and releases owned objects
// its selector no longer matches.
//
// Functions are pure and thread-safe; a ControllerRefManager is used by one reconcile at a time.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "client/client.h"
#include "client/informer.h"
#include "common/labels.h"
#include "common/status.h"

namespace skiff::controllers::common {

using nlohmann::json;

struct OwnerReference {
  std::string api_version;
  std::string kind;
  std::string name;
  std::string uid;
  bool controller = false;
  bool block_owner_deletion = false;

  json to_json() const;
  // nullopt unless `ref` is an object with at least a uid.
  static std::optional<OwnerReference> from_json(const json& ref);
  friend bool operator==(const OwnerReference&, const OwnerReference&) = default;
};

// metav1.GetControllerOf: the owner reference with controller=true, if any.
std::optional<OwnerReference> controller_of(const json& obj);
// metav1.IsControlledBy.
bool is_controlled_by(const json& obj, std::string_view owner_uid);
// metav1.NewControllerRef: a reference to `owner` with controller=true and
// blockOwnerDeletion=true.
OwnerReference new_controller_ref(const json& owner, std::string api_version, std::string kind);

// The strategic merge patches controller_ref_manager.go sends to adopt an object (add the
// controller reference) and to release it (delete the reference by the owner's uid). Both
// carry the object's uid, so that they cannot apply to a re-created object of the same name.
std::string adopt_patch(const OwnerReference& ref, std::string_view object_uid);
std::string release_patch(std::string_view owner_uid, std::string_view object_uid);

// controller.RecheckDeletionTimestamp over a fresh read of the owner: OK when the owner
// `name` in `r` still exists with `uid` and is not being deleted; otherwise an error worded
// as Kubernetes' ("original ReplicaSet ns/name is gone: got uid A, wanted B",
// "ns/name has just been deleted at T").
Status recheck_owner(client::Client& client, const client::ResourceRef& r, const std::string& kind,
                     const std::string& name, const std::string& uid);

// Adopts and releases objects on behalf of one controller object, as
// BaseControllerRefManager.ClaimObject:
//  - owned by another controller: ignored;
//  - owned by us and matching the selector: claimed;
//  - owned by us but not matching: released (unless we are being deleted);
//  - an orphan that matches, is not being deleted and is in our namespace: adopted (unless
//    we are being deleted), after can_adopt() allowed it (called at most once per manager).
class ControllerRefManager {
 public:
  // can_adopt may be empty (always allowed).
  ControllerRefManager(client::Client& client, const json& controller, OwnerReference ref,
                       LabelSelector selector, std::function<Status()> can_adopt);

  // Claims `objects` (items of the collection `r`, in the controller's namespace). Returns the
  // objects the controller owns afterwards; adopted ones as the server returned them. Errors
  // of adoptions and releases are collected into *error (objects that vanished meanwhile are
  // not errors); the objects concerned are left out of the result.
  std::vector<client::ObjectPtr> claim(const client::ResourceRef& r,
                                       const std::vector<client::ObjectPtr>& objects,
                                       Status* error);

 private:
  Status can_adopt();

  client::Client& client_;
  const json& controller_;
  OwnerReference ref_;
  LabelSelector selector_;
  std::function<Status()> can_adopt_fn_;
  std::optional<Status> can_adopt_result_;
};

// resolveControllerRef: the object of `informer` that `ref` (the controller reference of an
// object in namespace `ns`) points at, if it is of `kind` and that very object (same uid);
// otherwise null.
client::ObjectPtr resolve_controller_ref(const client::Informer& informer, std::string_view kind,
                                         const std::string& ns, const OwnerReference& ref);
// The controllers of `informer` in obj's namespace whose spec.selector (valid and non-empty:
// an empty selector matches nothing here) matches obj's labels: the candidates to adopt an
// orphan (getPodReplicaSets, getDeploymentsForReplicaSet, getStatefulSetsForPod, ...).
std::vector<client::ObjectPtr> selecting_controllers(const client::Informer& informer,
                                                     const json& obj);

// An informer index of objects by the uid of their controller (kControllerUidIndex), shared
// by every workload controller: a Deployment's ReplicaSets, a ReplicaSet's pods, a Job's pods.
inline constexpr const char* kControllerUidIndex = "controller-uid";
std::vector<std::string> controller_uid_index(const json& obj);
// Adds the index to `informer`. REQUIRES: called before the informer starts (in setup()).
void add_controller_uid_index(client::Informer& informer);

// utilerrors.NewAggregate: OK for none, the error itself for one, and for several an error
// with the first one's code and the messages as "[a, b]".
Status aggregate(const std::vector<Status>& errors);

}  // namespace skiff::controllers::common
