#include "apiserver/crd_registrar.h"

#include <nlohmann/json.hpp>

#include "api/openapi/crd.h"
#include "common/log.h"

namespace skiff::apiserver {

using nlohmann::json;

namespace {

constexpr const char* kCrdPrefix = "/registry/apiextensions.k8s.io/customresourcedefinitions/";

void apply(ServerContext& ctx, const CachedObject& o, bool deleted) {
  if (deleted) {
    ctx.registry->remove_crd(o.name);
    return;
  }
  json crd = json::parse(*o.json, nullptr, false);
  if (!crd.is_object()) return;
  auto defs = api::resource_defs_from_crd(crd);
  if (!defs.ok()) {
    // Validation admitted it, so this only happens for data written by another version.
    SKIFF_LOGF(Warn, "not serving CustomResourceDefinition %s: %s", o.name.c_str(),
               defs.status().to_string().c_str());
    ctx.registry->remove_crd(o.name);
    return;
  }
  ctx.registry->put_crd(o.name, std::move(defs.value()));
}

}  // namespace

void watch_crds(ServerContext& ctx) {
  ServerContext* c = &ctx;
  ctx.cache->add_listener(kCrdPrefix, [c](const CacheEvent& ev) {
    apply(*c, *ev.object(), ev.type() == EventType::kDeleted);
  });
}

void register_stored_crds(ServerContext& ctx) {
  for (const auto& o : ctx.cache->list(kCrdPrefix, nullptr, 0).items) apply(ctx, *o, false);
}

}  // namespace skiff::apiserver
