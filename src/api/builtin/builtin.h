// The pieces from which the built-in registry is assembled: one add_* function per API group,
// the shared column and subresource shapes, and the validation wrapper that turns field errors
// into Kubernetes' Invalid status.
//
// Private to src/api/builtin. Thread-safety: everything here runs while the registry is built
// or inside the pure per-kind functions a ResourceDef holds.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "api/builtin/field_errors.h"
#include "api/builtin/json_util.h"
#include "api/builtin/meta_validation.h"
#include "api/registry.h"
#include "api/schema.h"

namespace skiff::api::builtin {

// Builds the registry of every built-in kind. `schema` supplies each kind's TypeDef and the
// descriptions of Table columns taken from field documentation; with a null schema (or a
// missing type) ResourceDef::type stays null and those descriptions are empty.
std::unique_ptr<Registry> build_builtin_registry(const Schema* schema);

// Resolves types and field documentation while the registry is built.
class Docs {
 public:
  explicit Docs(const Schema* schema) : schema_(schema) {}
  const TypeDef* type(std::string_view name) const;
  // The description of `field` in type `type_name`, or "" when unknown.
  std::string field(std::string_view type_name, std::string_view field) const;

 private:
  const Schema* schema_;
};

// Every kind's Table has these descriptions (metav1.ObjectMeta's swagger docs).
extern const char* const kNameDescription;
extern const char* const kCreationTimestampDescription;

ColumnDef name_column();
ColumnDef age_column();
ColumnDef column(std::string name, std::string type, std::string description, int priority = 0);

// The Table Kubernetes serves for kinds without a printer: Name, Created At (RFC 3339 date).
std::vector<ColumnDef> default_columns();
std::vector<json> default_row(const json& obj, int64_t now);

// "5m" style age of a metav1.Time value (translateTimestampSince); "<unknown>" when unset.
std::string since(const json* timestamp, int64_t now);
// The Age cell of an object (its metadata.creationTimestamp).
std::string age_cell(const json& obj, int64_t now);
// layoutContainerCells: comma-joined container names and images.
std::pair<std::string, std::string> container_cells(const json* containers);

std::vector<std::string> all_verbs();    // create ... watch, as Kubernetes lists
std::vector<std::string> create_only();  // {"create"}
SubresourceDef status_subresource(const std::string& group, const std::string& kind);
SubresourceDef scale_subresource();

// A ResourceDef with Kubernetes' common shape: version v1, list kind <Kind>List, singular the
// lowercased kind, all eight verbs, the default Table, and `type` looked up as
// "<type_prefix>.<Kind>" (e.g. "io.k8s.api.core.v1" + ".Pod").
std::shared_ptr<ResourceDef> new_resource(const Docs& docs, std::string_view type_prefix,
                                          std::string group, std::string kind, std::string resource,
                                          Scope scope);

// What a kind-specific validator checks beyond ObjectMeta. `old` is null on create.
using SpecValidator = std::function<void(const json& obj, const json* old, FieldErrors& errs)>;

// Wraps a SpecValidator into ResourceDef::validate: ObjectMeta validation (create) or
// ObjectMeta update validation, then `spec`, then the Invalid status
// `<Kind>[.<group>] "<name>" is invalid: ...`.
std::function<Status(const json&, const json*)> make_validator(std::string kind, std::string group,
                                                               bool namespaced, NameRule rule,
                                                               SpecValidator spec = {});

// Puts "status": {} on objects whose Go type has a non-pointer status struct, as Kubernetes
// always serializes it.
void ensure_status(json& obj);

// Group registration, in the order Kubernetes lists its groups in discovery.
void add_core_resources(Registry& registry, const Docs& docs);
void add_apps_resources(Registry& registry, const Docs& docs);
void add_authentication_resources(Registry& registry, const Docs& docs);
void add_authorization_resources(Registry& registry, const Docs& docs);
void add_autoscaling_resources(Registry& registry, const Docs& docs);
void add_batch_resources(Registry& registry, const Docs& docs);
void add_networking_resources(Registry& registry, const Docs& docs);
void add_policy_resources(Registry& registry, const Docs& docs);
void add_rbac_resources(Registry& registry, const Docs& docs);
void add_storage_resources(Registry& registry, const Docs& docs);
void add_apiextensions_resources(Registry& registry, const Docs& docs);
void add_coordination_resources(Registry& registry, const Docs& docs);
void add_discovery_resources(Registry& registry, const Docs& docs);

}  // namespace skiff::api::builtin
