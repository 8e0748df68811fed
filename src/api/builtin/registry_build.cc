#include "api/builtin/builtin.h"

namespace skiff::api::builtin {

std::unique_ptr<Registry> build_builtin_registry(const Schema* schema) {
  auto registry = std::make_unique<Registry>();
  Docs docs(schema);
  add_core_resources(*registry, docs);
  add_apps_resources(*registry, docs);
  add_authentication_resources(*registry, docs);
  add_authorization_resources(*registry, docs);
  add_autoscaling_resources(*registry, docs);
  add_batch_resources(*registry, docs);
  add_networking_resources(*registry, docs);
  add_policy_resources(*registry, docs);
  add_rbac_resources(*registry, docs);
  add_storage_resources(*registry, docs);
  add_apiextensions_resources(*registry, docs);
  add_coordination_resources(*registry, docs);
  add_discovery_resources(*registry, docs);
  return registry;
}

}  // namespace skiff::api::builtin
