#include "controllers/framework.h"

#include <map>
#include <mutex>
#include <utility>

namespace skiff::controllers {

namespace {

// Filled by static initializers (SKIFF_REGISTER_CONTROLLER), hence created on first use and
// never destroyed, so that registration and lookups work in any static order.
struct Registry {
  std::mutex mu;
  std::map<std::string, ControllerFactory> factories;  // guarded by mu
};

Registry& registry() {
  static Registry* r = new Registry();
  return *r;
}

}  // namespace

bool register_controller(const std::string& name, ControllerFactory factory) {
  if (name.empty() || !factory) return false;
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  return r.factories.emplace(name, std::move(factory)).second;
}

std::vector<std::string> registered_controllers() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  std::vector<std::string> names;
  names.reserve(r.factories.size());
  for (const auto& [name, factory] : r.factories) names.push_back(name);
  return names;
}

ControllerFactory controller_factory(const std::string& name) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  auto it = r.factories.find(name);
  return it == r.factories.end() ? ControllerFactory() : it->second;
}

}  // namespace skiff::controllers
