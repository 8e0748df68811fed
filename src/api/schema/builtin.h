// Lookups into the built-in schema (builtin_schema() in api/schema.h): the Kubernetes v1.32
// types of the groups skiff serves, parsed from src/api/schema/data/*.proto.
//
// Every built-in kind is a message whose Go type embeds TypeMeta; its TypeDef starts with an
// inline field "typeMeta" (meta/v1 TypeMeta, protobuf number 0) that contributes apiVersion and
// kind. Thread-safe: the first call parses the data (a few milliseconds), later calls only read.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "api/schema.h"

namespace skiff::api {

struct BuiltinKind {
  std::string group;    // "" for the core group, "apps", "rbac.authorization.k8s.io", ...
  std::string version;  // "v1"
  std::string kind;     // "Deployment", "DeploymentList", "PodLogOptions", ...
  const TypeDef* type;  // never null
};

// Every built-in kind (lists and options kinds included), in data file order.
const std::vector<BuiltinKind>& builtin_kinds();

// The TypeDef of a built-in kind, e.g. ("", "v1", "Pod") or ("apps", "v1", "Deployment"), or
// null if there is none. The meta kinds Kubernetes registers in every group-version
// (DeleteOptions, Status, CreateOptions, UpdateOptions, PatchOptions, GetOptions, ListOptions,
// WatchEvent) resolve for any group with version v1 to their meta.k8s.io/v1 definitions.
const TypeDef* builtin_kind_type(std::string_view group, std::string_view version,
                                 std::string_view kind);

// The TypeDef with this OpenAPI name in the built-in schema, e.g.
// "io.k8s.api.core.v1.PodSpec"; null if unknown. Same as builtin_schema().type(name).
const TypeDef* builtin_type(std::string_view openapi_name);

}  // namespace skiff::api
