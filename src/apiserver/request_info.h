// RequestInfo: what a request path asks for, parsed as Kubernetes' RequestInfoFactory does.
#pragma once

#include <string>
#include <string_view>

namespace skiff::apiserver {

struct RequestInfo {
  bool is_resource = false;  // false for /version, /healthz, discovery, openapi, ...
  std::string verb;          // get list watch create update patch delete deletecollection
  std::string api_prefix;    // "api" or "apis"
  std::string group;         // "" for core
  std::string version;
  std::string ns;            // empty for cluster-scoped or all-namespaces requests
  std::string resource;      // plural
  std::string name;
  std::string subresource;
  // Discovery-only paths: "/api" → parts == 1, "/apis/apps" → group set, version empty.
};

// Parses method + path. Returns false for paths that are not under /api or /apis.
bool parse_request_info(std::string_view method, std::string_view path, bool watch_param,
                        RequestInfo* out);

}  // namespace skiff::apiserver
