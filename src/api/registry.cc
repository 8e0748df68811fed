#include "api/registry.h"

#include <algorithm>
#include <map>
#include <tuple>

namespace skiff::api {

const SubresourceDef* ResourceDef::subresource(std::string_view name) const {
  for (const auto& s : subresources) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

struct Registry::State {
  std::vector<std::shared_ptr<const ResourceDef>> builtins;
  std::map<std::string, std::vector<std::shared_ptr<const ResourceDef>>> crds;
  uint64_t generation = 0;
};

Registry::Registry() : state_(std::make_shared<State>()) {}
Registry::~Registry() = default;

namespace {
template <typename Pred>
std::shared_ptr<const ResourceDef> find_in(const auto& state, Pred pred) {
  for (const auto& d : state.builtins) {
    if (pred(*d)) return d;
  }
  for (const auto& [name, defs] : state.crds) {
    for (const auto& d : defs) {
      if (pred(*d)) return d;
    }
  }
  return nullptr;
}
}  // namespace

std::shared_ptr<const ResourceDef> Registry::find(std::string_view group, std::string_view version,
                                                  std::string_view resource) const {
  std::shared_ptr<const State> s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    s = state_;
  }
  return find_in(*s, [&](const ResourceDef& d) {
    return d.group == group && d.version == version && d.resource == resource;
  });
}

std::shared_ptr<const ResourceDef> Registry::find_kind(std::string_view group,
                                                       std::string_view version,
                                                       std::string_view kind) const {
  std::shared_ptr<const State> s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    s = state_;
  }
  return find_in(*s, [&](const ResourceDef& d) {
    return d.group == group && d.version == version && d.kind == kind;
  });
}

std::vector<std::shared_ptr<const ResourceDef>> Registry::all() const {
  std::shared_ptr<const State> s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    s = state_;
  }
  std::vector<std::shared_ptr<const ResourceDef>> out = s->builtins;
  for (const auto& [name, defs] : s->crds) out.insert(out.end(), defs.begin(), defs.end());
  return out;
}

std::vector<GroupVersion> Registry::group_versions() const {
  std::vector<GroupVersion> out;
  for (const auto& d : all()) {
    bool seen = std::any_of(out.begin(), out.end(), [&](const GroupVersion& gv) {
      return gv.group == d->group && gv.version == d->version;
    });
    if (!seen) out.push_back({d->group, d->version});
  }
  std::stable_sort(out.begin(), out.end(), [](const GroupVersion& a, const GroupVersion& b) {
    return a.group.empty() && !b.group.empty();
  });
  return out;
}

void Registry::put_crd(const std::string& crd_name,
                       std::vector<std::shared_ptr<const ResourceDef>> defs) {
  std::lock_guard<std::mutex> lock(mu_);
  auto next = std::make_shared<State>(*state_);
  next->crds[crd_name] = std::move(defs);
  next->generation++;
  state_ = std::move(next);
}

void Registry::remove_crd(const std::string& crd_name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto next = std::make_shared<State>(*state_);
  next->crds.erase(crd_name);
  next->generation++;
  state_ = std::move(next);
}

uint64_t Registry::generation() const {
  std::lock_guard<std::mutex> lock(mu_);
  return state_->generation;
}

void Registry::add(std::shared_ptr<const ResourceDef> def) {
  std::lock_guard<std::mutex> lock(mu_);
  auto next = std::make_shared<State>(*state_);
  next->builtins.push_back(std::move(def));
  next->generation++;
  state_ = std::move(next);
}

}  // namespace skiff::api
