// Building the bodies the API server answers with: Status objects, lists and Tables.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "api/registry.h"
#include "apiserver/http.h"
#include "apiserver/watch_cache.h"
#include "common/status.h"

namespace skiff::apiserver {

// Details that Kubernetes puts in a failure Status (name, group, kind = resource plural).
struct StatusDetails {
  std::string name;
  std::string group;
  std::string kind;
};

// (No default arguments here: g++ 12 mishandles default-argument temporaries inside
// co_await expressions, and these are called from coroutines.)
// A metav1.Status JSON body for a failure (or success when status.ok()).
std::string status_json(const Status& status, const StatusDetails& details);
std::string status_json(const Status& status);
// A Response carrying status_json with the matching HTTP code.
Response status_response(const Status& status, const StatusDetails& details);
Response status_response(const Status& status);

// Content types.
inline constexpr const char* kJson = "application/json";
inline constexpr const char* kTableContentType = "application/json;as=Table;v=v1;g=meta.k8s.io";

// True if the Accept header asks for a meta.k8s.io Table.
bool wants_table(const std::string& accept);

// {"kind":"<ListKind>","apiVersion":..,"metadata":{"resourceVersion":..[,"continue":..]},
//  "items":[<cached bytes>...]} — items are concatenated, never re-encoded.
std::string list_json(const api::ResourceDef& def, const std::vector<ObjectPtr>& items,
                      int64_t revision, const std::string& continue_token);

// A meta.k8s.io/v1 Table for objects. include_object: "None", "Metadata" (default), "Object".
nlohmann::json table_for(const api::ResourceDef& def, const std::vector<nlohmann::json>& objects,
                         int64_t revision, const std::string& include_object, int64_t now,
                         const std::string& continue_token);

}  // namespace skiff::apiserver
