#include "controllers/framework.h"

#include <map>
#include <mutex>
#include <utility>
#include <vector>

namespace skiff::controllers {

namespace {

// Created on first use and never destroyed, so that lookups work in any static order.
struct Registry {
  std::mutex mu;
  std::map<std::string, ControllerFactory> factories;  // guarded by mu
  StaticControllerRegistration* absorbed = nullptr;    // guarded by mu: the list head read

  // REQUIRES: mu held. Takes in the static registrations made since the last call, oldest
  // first, so that the first registration of a name is the one kept.
  void absorb_locked() {
    std::vector<StaticControllerRegistration*> added;
    for (auto* r = StaticControllerRegistration::head; r != absorbed; r = r->next) {
      added.push_back(r);
    }
    absorbed = StaticControllerRegistration::head;
    for (auto it = added.rbegin(); it != added.rend(); ++it) {
      if ((*it)->name[0] != '\0' && (*it)->factory) factories.emplace((*it)->name, (*it)->factory);
    }
  }
};

// The registry with the static registrations taken in; its lock is held while it is used.
struct LockedRegistry {
  LockedRegistry() : lock(get().mu) { get().absorb_locked(); }
  static Registry& get() {
    static Registry* r = new Registry();
    return *r;
  }
  Registry* operator->() { return &get(); }
  std::lock_guard<std::mutex> lock;
};

}  // namespace

bool register_controller(const std::string& name, ControllerFactory factory) {
  if (name.empty() || !factory) return false;
  LockedRegistry r;
  return r->factories.emplace(name, std::move(factory)).second;
}

std::vector<std::string> registered_controllers() {
  LockedRegistry r;
  std::vector<std::string> names;
  names.reserve(r->factories.size());
  for (const auto& [name, factory] : r->factories) names.push_back(name);
  return names;
}

ControllerFactory controller_factory(const std::string& name) {
  LockedRegistry r;
  auto it = r->factories.find(name);
  return it == r->factories.end() ? ControllerFactory() : it->second;
}

}  // namespace skiff::controllers
