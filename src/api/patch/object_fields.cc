#include "api/patch/object_fields.h"

#include <iterator>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "api/patch/patch_util.h"
#include "common/json.h"

namespace skiff::api::patch_internal {
namespace {

std::string field_element(const std::string& name) { return "f:" + name; }

// Path elements of the elements of a keyed list, leniently (never fails).
std::vector<std::string> element_keys(const json& list, const NodeRef& ref) {
  ElementKeyer keyer(ref);
  std::vector<std::string> keys(list.size());
  std::string unused;
  for (size_t i = 0; i < list.size(); ++i) keyer.key_of(list[i], i, false, &keys[i], &unused);
  return keys;
}

// First element of `list` with each path element.
std::unordered_map<std::string, size_t> first_positions(const std::vector<std::string>& keys) {
  std::unordered_map<std::string, size_t> out;
  for (size_t i = 0; i < keys.size(); ++i) out.emplace(keys[i], i);
  return out;
}

class Collector {
 public:
  Collector(bool strict, std::string* error, std::string* error_path)
      : strict_(strict), error_(error), error_path_(error_path) {}

  bool visit(const json& v, const NodeRef& ref, bool is_element, FieldSet& node) {
    if (v.is_object() && is_object_kind(ref)) {
      if (is_element || v.empty()) node.member = true;
      const bool map_values = ref.kind == NodeKind::kMap;
      for (auto it = v.begin(); it != v.end(); ++it) {
        const std::string element = field_element(it.key());
        const size_t mark = path_.size();
        path_ += "." + it.key();
        FieldSet& child = node.children[element];
        if (!visit(it.value(), member_ref(ref, it.key()), map_values, child)) return false;
        if (child.empty()) node.children.erase(element);
        path_.resize(mark);
      }
      return true;
    }
    if (v.is_array() && is_keyed_list(ref)) {
      if (is_element) node.member = true;
      const ElementKeyer keyer(ref);
      const NodeRef elem_ref = element_ref(ref);
      for (size_t i = 0; i < v.size(); ++i) {
        std::string key;
        std::string problem;
        if (!keyer.key_of(v[i], i, strict_, &key, &problem)) return fail(problem);
        auto [it, inserted] = node.children.try_emplace(key);
        if (!inserted && strict_) {
          return fail("duplicate entries for key " + render_path_element(key));
        }
        const size_t mark = path_.size();
        path_ += render_path_element(key);
        if (!visit(v[i], elem_ref, true, it->second)) return false;
        path_.resize(mark);
      }
      return true;
    }
    node.member = true;
    return true;
  }

 private:
  bool fail(const std::string& problem) {
    *error_path_ = path_;
    *error_ = path_.empty() ? problem : path_ + ": " + problem;
    return false;
  }

  bool strict_;
  std::string* error_;
  std::string* error_path_;
  std::string path_;
};

void mark_added(const json& now, const NodeRef& ref, bool is_element, FieldSet& node) {
  if (now.is_object() && is_object_kind(ref)) {
    // Struct nodes are not members of their own: Kubernetes' value structs always exist, so
    // their creation is never an Update's doing. Data maps and elements are.
    if (is_element || now.empty() || ref.kind == NodeKind::kMap) node.member = true;
    const bool map_values = ref.kind == NodeKind::kMap;
    for (auto it = now.begin(); it != now.end(); ++it) {
      const std::string element = field_element(it.key());
      FieldSet& child = node.children[element];
      mark_added(it.value(), member_ref(ref, it.key()), map_values, child);
      if (child.empty()) node.children.erase(element);
    }
    return;
  }
  if (now.is_array() && is_keyed_list(ref)) {
    node.member = true;
    const std::vector<std::string> keys = element_keys(now, ref);
    const NodeRef elem_ref = element_ref(ref);
    for (size_t i = 0; i < now.size(); ++i)
      mark_added(now[i], elem_ref, true, node.children[keys[i]]);
    return;
  }
  node.member = true;
}

void changed(const json* before, const json& now, const NodeRef& ref, bool is_element,
             FieldSet& node) {
  if (before == nullptr) {
    mark_added(now, ref, is_element, node);
    return;
  }
  if (before->is_object() && now.is_object() && is_object_kind(ref)) {
    const bool map_values = ref.kind == NodeKind::kMap;
    for (auto it = now.begin(); it != now.end(); ++it) {
      auto old = before->find(it.key());
      const std::string element = field_element(it.key());
      FieldSet& child = node.children[element];
      changed(old == before->end() ? nullptr : &*old, it.value(), member_ref(ref, it.key()),
              map_values, child);
      if (child.empty()) node.children.erase(element);
    }
    return;
  }
  if (before->is_array() && now.is_array() && is_keyed_list(ref)) {
    const std::vector<std::string> old_keys = element_keys(*before, ref);
    const auto old_positions = first_positions(old_keys);
    const std::vector<std::string> new_keys = element_keys(now, ref);
    const NodeRef elem_ref = element_ref(ref);
    for (size_t i = 0; i < now.size(); ++i) {
      auto old = old_positions.find(new_keys[i]);
      FieldSet& child = node.children[new_keys[i]];
      changed(old == old_positions.end() ? nullptr : &(*before)[old->second], now[i], elem_ref,
              true, child);
      if (child.empty()) node.children.erase(new_keys[i]);
    }
    return;
  }
  if (*before != now) node.member = true;
}

void retain(FieldSet& node, const json& v, const NodeRef& ref) {
  if (node.children.empty()) return;
  if (v.is_object() && is_object_kind(ref)) {
    for (auto it = node.children.begin(); it != node.children.end();) {
      bool keep = false;
      if (it->first.starts_with("f:")) {
        const std::string name = it->first.substr(2);
        auto value = v.find(name);
        if (value != v.end()) {
          retain(it->second, *value, member_ref(ref, name));
          keep = !it->second.empty();
        }
      }
      it = keep ? std::next(it) : node.children.erase(it);
    }
    return;
  }
  if (v.is_array() && is_keyed_list(ref)) {
    const std::vector<std::string> keys = element_keys(v, ref);
    const auto present = first_positions(keys);
    const NodeRef elem_ref = element_ref(ref);
    for (auto it = node.children.begin(); it != node.children.end();) {
      bool keep = false;
      auto found = present.find(it->first);
      if (found != present.end()) {
        retain(it->second, v[found->second], elem_ref);
        keep = !it->second.empty();
      }
      it = keep ? std::next(it) : node.children.erase(it);
    }
    return;
  }
  // A leaf, or a value whose shape changed: nothing below it exists.
  node.children.clear();
}

void merge(json& live, const json& config, const NodeRef& ref);

// structured-merge-diff's list merge: elements present on both sides merge in the config's
// order, live-only elements stay where they were relative to them, new elements come at their
// place in the config.
json merge_lists(const json& lhs, const json& rhs, const NodeRef& ref) {
  const std::vector<std::string> lkeys = element_keys(lhs, ref);
  const std::vector<std::string> rkeys = element_keys(rhs, ref);
  const auto lfirst = first_positions(lkeys);
  const auto rfirst = first_positions(rkeys);
  const NodeRef elem_ref = element_ref(ref);

  std::vector<const std::string*> shared;
  for (const std::string& k : rkeys) {
    if (lfirst.count(k) != 0) shared.push_back(&k);
  }
  size_t shared_at = 0;
  auto next_shared = [&]() -> const std::string* {
    return shared_at < shared.size() ? shared[shared_at] : nullptr;
  };

  auto merged_item = [&](const json* l, const json& r) {
    if (l == nullptr) return r;
    json v = *l;
    merge(v, r, elem_ref);
    return v;
  };

  std::unordered_set<std::string> merged_rhs;
  json out = json::array();
  const size_t lsize = lkeys.size();
  const size_t rsize = rkeys.size();
  size_t li = 0;
  size_t ri = 0;
  while (li < lsize || ri < rsize) {
    if (li < lsize && ri < rsize) {
      const std::string& pe = lkeys[li];
      if (pe == rkeys[ri]) {
        merged_rhs.insert(pe);
        out.push_back(merged_item(&lhs[li], rhs[ri]));
        ++li;
        ++ri;
        ++shared_at;
        continue;
      }
      const std::string* wanted = next_shared();
      if (rfirst.count(pe) != 0 && wanted != nullptr && *wanted != pe) {
        ++li;  // a shared element, but not the one this round places
        continue;
      }
    }
    if (li < lsize) {
      const std::string& pe = lkeys[li];
      if (rfirst.count(pe) == 0) {
        out.push_back(lhs[li]);
        ++li;
        continue;
      }
      if (merged_rhs.count(pe) != 0) {
        ++li;
        continue;
      }
    }
    if (ri < rsize) {
      const std::string& pe = rkeys[ri];
      merged_rhs.insert(pe);
      auto l = lfirst.find(pe);
      out.push_back(merged_item(l == lfirst.end() ? nullptr : &lhs[l->second], rhs[ri]));
      ++ri;
      const std::string* wanted = next_shared();
      if (wanted != nullptr && *wanted == pe) ++shared_at;
      continue;
    }
    ++li;  // unreachable with consistent keys; guarantees progress on any input
  }
  return out;
}

void merge(json& live, const json& config, const NodeRef& ref) {
  if (live.is_object() && config.is_object() && is_object_kind(ref)) {
    for (auto it = config.begin(); it != config.end(); ++it) {
      auto current = live.find(it.key());
      if (current == live.end()) {
        live[it.key()] = it.value();
      } else {
        merge(*current, it.value(), member_ref(ref, it.key()));
      }
    }
    return;
  }
  if (live.is_array() && config.is_array() && is_keyed_list(ref)) {
    live = merge_lists(live, config, ref);
    return;
  }
  live = config;
}

void prune(json& v, const FieldSet& last, const FieldSet* owned, const NodeRef& ref) {
  if (last.children.empty()) return;
  if (v.is_object() && is_object_kind(ref)) {
    // A struct member counts as claimed when anything below it is (EnsureNamedFieldsAreMembers);
    // a map key or a list element only when it is a member itself.
    const bool named = ref.kind != NodeKind::kMap;
    for (const auto& [element, last_child] : last.children) {
      if (!element.starts_with("f:")) continue;
      const std::string name = element.substr(2);
      auto value = v.find(name);
      if (value == v.end()) continue;
      const FieldSet* owned_child = owned == nullptr ? nullptr : owned->find(element);
      const bool in_last = last_child.member || (named && !last_child.children.empty());
      const bool in_owned = owned_child != nullptr &&
                            (owned_child->member || (named && !owned_child->children.empty()));
      if (in_last && !in_owned) {
        v.erase(value);
        continue;
      }
      prune(*value, last_child, owned_child, member_ref(ref, name));
    }
    return;
  }
  if (v.is_array() && is_keyed_list(ref)) {
    const std::vector<std::string> keys = element_keys(v, ref);
    const NodeRef elem_ref = element_ref(ref);
    json kept = json::array();
    for (size_t i = 0; i < v.size(); ++i) {
      const FieldSet* last_child = last.find(keys[i]);
      if (last_child == nullptr) {
        kept.push_back(std::move(v[i]));
        continue;
      }
      const FieldSet* owned_child = owned == nullptr ? nullptr : owned->find(keys[i]);
      if (last_child->member && (owned_child == nullptr || !owned_child->member)) continue;
      prune(v[i], *last_child, owned_child, elem_ref);
      kept.push_back(std::move(v[i]));
    }
    v = std::move(kept);
  }
}

void strip_nulls(json& merged, const json& config, const NodeRef& ref) {
  if (merged.is_object() && config.is_object() && is_object_kind(ref)) {
    for (auto it = config.begin(); it != config.end(); ++it) {
      if (it.value().is_null()) {
        merged.erase(it.key());
        continue;
      }
      auto current = merged.find(it.key());
      if (current != merged.end()) strip_nulls(*current, it.value(), member_ref(ref, it.key()));
    }
    return;
  }
  if (merged.is_array() && config.is_array() && is_keyed_list(ref)) {
    const auto positions = first_positions(element_keys(merged, ref));
    const std::vector<std::string> config_keys = element_keys(config, ref);
    const NodeRef elem_ref = element_ref(ref);
    for (size_t i = 0; i < config.size(); ++i) {
      auto found = positions.find(config_keys[i]);
      if (found != positions.end()) strip_nulls(merged[found->second], config[i], elem_ref);
    }
  }
}

}  // namespace

bool collect_fields(const json& v, const NodeRef& ref, bool strict, FieldSet* out,
                    std::string* error, std::string* error_path) {
  *out = FieldSet();
  Collector collector(strict, error, error_path);
  if (!collector.visit(v, ref, false, *out)) return false;
  out->member = false;
  return true;
}

void changed_fields(const json* before, const json& now, const NodeRef& ref, FieldSet* out) {
  *out = FieldSet();
  changed(before, now, ref, false, *out);
  out->member = false;
}

void retain_existing(FieldSet* set, const json& v, const NodeRef& ref) { retain(*set, v, ref); }

void apply_merge(json* live, const json& config, const NodeRef& ref) { merge(*live, config, ref); }

void prune_unowned(json* v, const FieldSet& last, const FieldSet* owned, const NodeRef& ref) {
  prune(*v, last, owned, ref);
}

void strip_null_fields(json* merged, const json& config, const NodeRef& ref) {
  strip_nulls(*merged, config, ref);
}

void strip_untracked_fields(FieldSet* set) {
  set->children.erase("f:apiVersion");
  set->children.erase("f:kind");
  auto metadata = set->children.find("f:metadata");
  if (metadata == set->children.end()) return;
  for (const char* name :
       {"f:name", "f:namespace", "f:uid", "f:resourceVersion", "f:generation",
        "f:creationTimestamp", "f:selfLink", "f:clusterName", "f:managedFields"}) {
    metadata->second.children.erase(name);
  }
  if (metadata->second.empty()) set->children.erase(metadata);
}

}  // namespace skiff::api::patch_internal
