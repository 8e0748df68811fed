// Serves each CustomResourceDefinition's resources as soon as the CRD is written: the
// registry is updated on the store's writer thread before the write is acknowledged, so a
// client that created a CRD can use its kind with the very next request.
#pragma once

#include "apiserver/server_context.h"

namespace skiff::apiserver {

// Registers the listener; call before ctx.cache->start().
void watch_crds(ServerContext& ctx);
// Registers every CRD already stored; call after ctx.cache->start().
void register_stored_crds(ServerContext& ctx);

}  // namespace skiff::apiserver
