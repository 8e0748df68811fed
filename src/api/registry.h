// Registry: every resource skiff serves, built-in or defined by a CRD.
//
// Each built-in kind is described once (src/api/builtin_resources.cc): group/version/kind,
// resource names, scope, short names, categories, verbs, subresources, its schema type, Table
// columns, defaulting and validation. CRDs add and remove entries at run time.
//
// Thread-safety: all methods are thread-safe. Lookups return shared_ptr<const ResourceDef>
// snapshots that stay valid after the entry is replaced or removed.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "api/schema.h"
#include "common/status.h"

namespace skiff::api {

enum class Scope { kNamespaced, kCluster };

struct ColumnDef {
  std::string name;         // "Name", "Ready", "Status", ...
  std::string type;         // "string", "integer", "date", "number", "boolean"
  std::string format;       // "name" for the Name column, else ""
  std::string description;
  int priority = 0;         // > 0: shown only with -o wide
};

struct SubresourceDef {
  std::string name;  // "status", "scale", "log", "exec", "binding", "token", ...
  std::string group, version, kind;  // responseKind; kind empty for streaming subresources
  std::vector<std::string> verbs;
};

struct ResourceDef {
  std::string group;      // "" for the core group
  std::string version;    // "v1"
  std::string kind;       // "Deployment"
  std::string list_kind;  // "DeploymentList"
  std::string resource;   // plural: "deployments"
  std::string singular;   // "deployment"
  Scope scope = Scope::kNamespaced;
  std::vector<std::string> short_names;
  std::vector<std::string> categories;
  std::vector<std::string> verbs;  // "create","delete","deletecollection","get","list",...
  std::vector<SubresourceDef> subresources;
  const TypeDef* type = nullptr;   // object schema; null only for free-form kinds
  // Objects are persisted; false for request-only kinds such as SelfSubjectAccessReview.
  bool stored = true;
  // spec and status are updated separately (the status subresource exists).
  bool has_status_subresource = false;
  bool crd = false;

  // Table output. columns[0] is Name. row() returns one cell per column for an object;
  // `now` is the current time in seconds since the epoch (for Age cells).
  std::vector<ColumnDef> columns;
  std::function<std::vector<nlohmann::json>(const nlohmann::json& obj, int64_t now)> row;

  // Fills defaults in place (Kubernetes' defaulting for this kind). May be empty.
  std::function<void(nlohmann::json& obj)> defaults;
  // Validates a defaulted object; old is the stored object on update, null on create.
  // Returns Invalid with causes, or OK. May be empty.
  std::function<Status(const nlohmann::json& obj, const nlohmann::json* old)> validate;

  // Keeps the types of a CRD's schema alive (built-ins point into builtin_schema()).
  std::shared_ptr<const Schema> owned_schema;

  std::string api_version() const { return group.empty() ? version : group + "/" + version; }
  // The group as it appears in storage keys: "core" for the core group.
  std::string storage_group() const { return group.empty() ? "core" : group; }
  bool namespaced() const { return scope == Scope::kNamespaced; }
  const SubresourceDef* subresource(std::string_view name) const;
};

struct GroupVersion {
  std::string group;
  std::string version;
};

class Registry {
 public:
  Registry();
  ~Registry();

  // Lookups by resource (plural) or kind; null if not served.
  std::shared_ptr<const ResourceDef> find(std::string_view group, std::string_view version,
                                          std::string_view resource) const;
  std::shared_ptr<const ResourceDef> find_kind(std::string_view group, std::string_view version,
                                               std::string_view kind) const;
  // Every served resource, in a stable order (groups as added, then resources by name).
  std::vector<std::shared_ptr<const ResourceDef>> all() const;
  // Every served group-version, core first, in a stable order.
  std::vector<GroupVersion> group_versions() const;

  // Adds or replaces the resources defined by one CRD (identified by its metadata.name).
  void put_crd(const std::string& crd_name, std::vector<std::shared_ptr<const ResourceDef>> defs);
  void remove_crd(const std::string& crd_name);

  // Increases on every change; discovery and OpenAPI documents are cached per generation.
  uint64_t generation() const;

  // Adds a built-in resource (used while building the built-in registry).
  void add(std::shared_ptr<const ResourceDef> def);

 private:
  struct State;
  mutable std::mutex mu_;
  std::shared_ptr<const State> state_;  // guarded by mu_; copy-on-write
};

// A registry holding every built-in resource.
std::unique_ptr<Registry> make_builtin_registry();

}  // namespace skiff::api
