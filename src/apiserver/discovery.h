// Discovery documents: /api, /apis, /api/v1, /apis/<group>[/<version>], in the aggregated
// (apidiscovery.k8s.io/v2 and v2beta1) or legacy form, chosen by the Accept header.
#pragma once

#include <string>

#include "api/registry.h"
#include "apiserver/http.h"
#include "apiserver/request_info.h"

namespace skiff::apiserver {

// Answers a discovery path (ri.is_resource == false under /api or /apis). 404 Status for
// unknown groups or versions.
Response discovery_response(const api::Registry& registry, const RequestInfo& ri,
                            const std::string& accept);

}  // namespace skiff::apiserver
