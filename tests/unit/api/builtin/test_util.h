// Shared helpers for the built-in registry tests.
#pragma once

#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "api/registry.h"

namespace skiff::api::testing {

// The registry every test reads (built once, with the embedded schema).
inline const Registry& builtin_registry() {
  static const std::unique_ptr<Registry> registry = make_builtin_registry();
  return *registry;
}

// The definition of a built-in resource (the registry, which lives for the whole run, keeps it
// alive); aborts the test binary when missing so that a test never dereferences null.
inline const ResourceDef& def(const std::string& group, const std::string& resource) {
  auto d = builtin_registry().find(group, "v1", resource);
  if (d == nullptr) std::abort();
  return *d;
}

inline nlohmann::json defaulted(const std::string& group, const std::string& resource,
                                nlohmann::json obj) {
  const ResourceDef& d = def(group, resource);
  if (d.defaults) d.defaults(obj);
  return obj;
}

inline Status validate(const std::string& group, const std::string& resource,
                       const nlohmann::json& obj, const nlohmann::json* old = nullptr) {
  return def(group, resource).validate(obj, old);
}

}  // namespace skiff::api::testing
