// Per-kind behaviour of the REST layer that is not plain data: which kinds track
// metadata.generation, the status a new object starts with, Service address allocation,
// selectable fields. Private to src/apiserver.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

#include "api/registry.h"
#include "apiserver/server_context.h"
#include "apiserver/watch_cache.h"
#include "common/status.h"

namespace skiff::apiserver {

// metadata.generation is set to 1 on create and bumped when the spec changes.
bool uses_generation(const api::ResourceDef& def);

// Kinds whose status is owned by controllers: a create starts from Kubernetes' initial status.
void prepare_status_for_create(const api::ResourceDef& def, nlohmann::json& obj);

// Server-assigned fields after validation on create (Service cluster IPs and node ports).
Status allocate_for_create(ServerContext& ctx, const api::ResourceDef& def, nlohmann::json& obj);
// Carries server-assigned fields over an update that leaves them empty, and checks changes.
Status allocate_for_update(ServerContext& ctx, const api::ResourceDef& def, nlohmann::json& obj,
                           const nlohmann::json& old);

// The selectable fields (beyond metadata.name and metadata.namespace) of a resource.
const std::vector<std::string>& selectable_fields(std::string_view group,
                                                  std::string_view resource);
// WatchCache::FieldIndexer for all resources.
void index_fields(std::string_view key, const nlohmann::json& obj, Fields* out);

// Builds the matcher for labelSelector/fieldSelector query values (BadRequest on bad input or
// an unsupported field). Returns an empty Matcher when both are empty.
Result<Matcher> make_matcher(const api::ResourceDef& def, const std::string& label_selector,
                             const std::string& field_selector);

}  // namespace skiff::apiserver
