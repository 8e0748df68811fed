// Kubernetes strategic merge patch, as applied by the API server
// (k8s.io/apimachinery/pkg/util/strategicpatch, StrategicMergeMapPatch with
// MergeParallelList and IgnoreUnmatchedNulls).
//
// Deliberate differences from upstream, each where upstream's behaviour is an accident:
//  - a key absent from the original takes the patch value verbatim upstream, directives and
//    nulls included; here the value is merged into an empty one, so no "$patch" marker or
//    null is ever stored, and "$patch": "delete" on an absent key creates nothing;
//  - "$deleteFromPrimitiveList/<f>" on an absent list creates nothing (upstream stores the
//    deletion list as the value), and runs after the other keys (upstream: map order);
//  - "$patch": "merge" is accepted (upstream rejects it in lists and objects alike);
//  - malformed patches that upstream answers with 500 (an unknown $patch value, a missing
//    merge key, a $setElementOrder that contradicts the patch) are BadRequest.
#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "api/patch/patch.h"
#include "api/patch/patch_util.h"
#include "api/patch/schema_ref.h"
#include "common/json.h"

namespace skiff::api {
namespace {

using patch_internal::at;
using patch_internal::dump_short;
using patch_internal::element_ref;
using patch_internal::has_object_elements;
using patch_internal::is_smp_merge_list;
using patch_internal::json;
using patch_internal::member_ref;
using patch_internal::NodeKind;
using patch_internal::NodeRef;
using patch_internal::PathLink;
using patch_internal::type_name;

constexpr std::string_view kDirective = "$patch";
constexpr std::string_view kRetainKeys = "$retainKeys";
constexpr std::string_view kSetElementOrder = "$setElementOrder/";
constexpr std::string_view kDeleteFromPrimitiveList = "$deleteFromPrimitiveList/";

bool is_directive_key(std::string_view key) {
  return key == kDirective || key == kRetainKeys || key.starts_with(kSetElementOrder) ||
         key.starts_with(kDeleteFromPrimitiveList);
}

Status bad(const PathLink* path, std::string_view message) {
  return Status::BadRequest(at(path, message));
}

// How one element of a list is identified when merging and ordering: the merge key's value
// for lists of objects, the value itself for lists of primitives.
class ListIdentity {
 public:
  explicit ListIdentity(std::string merge_key) : merge_key_(std::move(merge_key)) {}

  bool by_key() const { return !merge_key_.empty(); }
  const std::string& merge_key() const { return merge_key_; }

  // A canonical string for the element's identity; "" when an object lacks the merge key.
  std::string of(const json& elem) const {
    if (!by_key()) return to_json(elem);
    if (!elem.is_object()) return "";
    auto it = elem.find(merge_key_);
    if (it == elem.end()) return "";
    return "=" + to_json(*it);
  }

 private:
  std::string merge_key_;
};

// First position of each identity in `list`.
std::unordered_map<std::string, size_t> positions(const std::vector<std::string>& ids) {
  std::unordered_map<std::string, size_t> out;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!ids[i].empty()) out.emplace(ids[i], i);
  }
  return out;
}

std::vector<std::string> identities(const json& list, const ListIdentity& id) {
  std::vector<std::string> out;
  if (!list.is_array()) return out;
  out.reserve(list.size());
  for (const json& e : list) out.push_back(id.of(e));
  return out;
}

constexpr size_t kAbsent = std::numeric_limits<size_t>::max();

size_t position_of(const std::unordered_map<std::string, size_t>& pos, const std::string& id) {
  if (id.empty()) return kAbsent;
  auto it = pos.find(id);
  return it == pos.end() ? kAbsent : it->second;
}

// Orders `items` by their position in `order` (stable; items not in `order` keep their
// relative order after the others).
void sort_by(std::vector<json>& items, const std::unordered_map<std::string, size_t>& order,
             const ListIdentity& id) {
  std::vector<std::pair<size_t, size_t>> keyed;  // (position, original index)
  keyed.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    keyed.emplace_back(position_of(order, id.of(items[i])), i);
  }
  std::stable_sort(keyed.begin(), keyed.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<json> sorted;
  sorted.reserve(items.size());
  for (const auto& [unused, i] : keyed) sorted.push_back(std::move(items[i]));
  items = std::move(sorted);
}

// Upstream normalizeElementOrder + mergeSortedSlice: patch items in `patch_order`, server-only
// items in `server_order`, then interleaved: a server-only item goes before a patch item only
// when both are in the live list and it came first there.
json order_elements(json merged, const std::vector<std::string>& patch_order,
                    const std::vector<std::string>& server_order, const ListIdentity& id) {
  const auto patch_pos = positions(patch_order);
  const auto server_pos = positions(server_order);
  std::vector<json> patch_items;
  std::vector<json> server_only;
  for (json& e : merged) {
    if (position_of(patch_pos, id.of(e)) != kAbsent) {
      patch_items.push_back(std::move(e));
    } else {
      server_only.push_back(std::move(e));
    }
  }
  sort_by(patch_items, patch_pos, id);
  sort_by(server_only, server_pos, id);

  json out = json::array();
  size_t i = 0;
  size_t j = 0;
  while (i < server_only.size() || j < patch_items.size()) {
    if (i >= server_only.size()) {
      out.push_back(std::move(patch_items[j++]));
    } else if (j >= patch_items.size()) {
      out.push_back(std::move(server_only[i++]));
    } else {
      size_t li = position_of(server_pos, id.of(server_only[i]));
      size_t ri = position_of(server_pos, id.of(patch_items[j]));
      if (li != kAbsent && ri != kAbsent && li < ri) {
        out.push_back(std::move(server_only[i++]));
      } else {
        out.push_back(std::move(patch_items[j++]));
      }
    }
  }
  return out;
}

Status merge_map(json& original, const json& patch, const NodeRef& ref, const PathLink* path);

// A value whose JSON type contradicts the schema cannot be merged; say so instead of storing
// something the type check would reject less clearly.
Status check_type(const json& value, const NodeRef& ref, const PathLink* path) {
  switch (ref.kind) {
    case NodeKind::kStruct:
    case NodeKind::kMap:
      if (!value.is_object()) {
        return bad(path, std::string("expected an object, got ") + type_name(value));
      }
      break;
    case NodeKind::kAssocList:
    case NodeKind::kSetList:
    case NodeKind::kAtomicList:
      if (!value.is_array()) {
        return bad(path, std::string("expected a list, got ") + type_name(value));
      }
      break;
    default:
      break;
  }
  return Status::Ok();
}

Status merge_list(json& original, const json& patch, const NodeRef& ref, const PathLink* path);

// The value a patch value produces where the original has nothing.
Status fresh_value(const json& patch_value, const NodeRef& ref, const PathLink* path, json* out) {
  if (patch_value.is_object()) {
    *out = json::object();
    return merge_map(*out, patch_value, ref, path);
  }
  if (patch_value.is_array() && is_smp_merge_list(ref)) {
    *out = json::array();
    return merge_list(*out, patch_value, ref, path);
  }
  *out = patch_value;
  return Status::Ok();
}

bool is_delete_marker(const json& v) {
  if (!v.is_object()) return false;
  auto it = v.find(kDirective);
  return it != v.end() && *it == "delete";
}

// mergeSlice: merges `patch` into the list `original` of a field with strategy "merge".
Status merge_list(json& original, const json& patch, const NodeRef& ref, const PathLink* path) {
  const FieldDef& field = *ref.field;
  if (original.empty() && patch.empty()) return Status::Ok();
  const NodeRef elem_ref = element_ref(ref);

  if (!has_object_elements(field)) {
    // An ordered set of primitives: union, patch order for the patch's items.
    for (size_t i = 0; i < patch.size(); ++i) {
      if (patch[i].is_structured()) {
        PathLink link{path, {}, static_cast<long>(i)};
        return bad(&link,
                   std::string("a list of primitives cannot hold an ") + type_name(patch[i]));
      }
    }
    const ListIdentity id("");
    const std::vector<std::string> server_order = identities(original, id);
    json merged = json::array();
    std::unordered_set<std::string> seen;
    for (const json* list : {static_cast<const json*>(&original), &patch}) {
      for (const json& e : *list) {
        if (seen.insert(id.of(e)).second) merged.push_back(e);
      }
    }
    original = order_elements(std::move(merged), identities(patch, id), server_order, id);
    return Status::Ok();
  }

  const std::string& merge_key = field.patch_merge_key;
  if (merge_key.empty()) {
    return bad(path, "cannot merge lists of objects without a patch merge key");
  }
  const ListIdentity id(merge_key);

  // Special elements first: "$patch": delete removes by key, "$patch": replace makes the list
  // exactly the patch's other elements.
  std::vector<const json*> plain;
  std::vector<json> merge_directed;  // elements that carried "$patch": "merge"
  bool replace = false;
  for (size_t i = 0; i < patch.size(); ++i) {
    const json& e = patch[i];
    PathLink link{path, {}, static_cast<long>(i)};
    if (!e.is_object()) {
      return bad(&link,
                 std::string("elements of a merging list must be objects, got ") + type_name(e));
    }
    auto directive = e.find(kDirective);
    if (directive == e.end()) {
      plain.push_back(&e);
      continue;
    }
    if (*directive == "delete") {
      auto key = e.find(merge_key);
      if (key == e.end()) {
        return bad(&link,
                   "map: " + dump_short(e) + " does not contain declared merge key: " + merge_key);
      }
      json kept = json::array();
      for (json& o : original) {
        if (!(o.is_object() && o.contains(merge_key) && o[merge_key] == *key)) {
          kept.push_back(std::move(o));
        }
      }
      original = std::move(kept);
    } else if (*directive == "replace") {
      replace = true;
    } else if (*directive == "merge") {
      json copy = e;
      copy.erase(std::string(kDirective));
      merge_directed.push_back(std::move(copy));
    } else {
      return bad(&link, "unknown patch type: " + dump_short(*directive) + " in list element " +
                            dump_short(e));
    }
  }
  // Pointers into merge_directed are taken only after it stopped growing.
  for (const json& e : merge_directed) plain.push_back(&e);

  if (replace) {
    json out = json::array();
    for (size_t i = 0; i < plain.size(); ++i) {
      PathLink link{path, {}, static_cast<long>(i)};
      json v = json::object();
      if (Status s = merge_map(v, *plain[i], elem_ref, &link); !s.ok()) return s;
      out.push_back(std::move(v));
    }
    original = std::move(out);
    return Status::Ok();
  }

  const std::vector<std::string> server_order = identities(original, id);
  std::unordered_map<std::string, size_t> index = positions(server_order);
  std::vector<std::string> patch_order;
  patch_order.reserve(plain.size());
  for (size_t i = 0; i < plain.size(); ++i) {
    const json& e = *plain[i];
    PathLink link{path, {}, static_cast<long>(i)};
    std::string key = id.of(e);
    if (key.empty()) {
      return bad(&link,
                 "map: " + dump_short(e) + " does not contain declared merge key: " + merge_key);
    }
    patch_order.push_back(key);
    auto found = index.find(key);
    if (found != index.end()) {
      if (Status s = merge_map(original[found->second], e, elem_ref, &link); !s.ok()) return s;
    } else {
      json v = json::object();
      if (Status s = merge_map(v, e, elem_ref, &link); !s.ok()) return s;
      index.emplace(key, original.size());
      original.push_back(std::move(v));
    }
  }
  original = order_elements(std::move(original), patch_order, server_order, id);
  return Status::Ok();
}

// validatePatchWithSetOrderList: the patch list's items must appear in $setElementOrder, in
// the same relative order.
Status validate_order(const json& patch_list, const json& order, const ListIdentity& id,
                      std::string_view field, const PathLink* path) {
  if (order.empty() || patch_list.empty()) return Status::Ok();
  std::vector<const json*> items;
  for (size_t i = 0; i < patch_list.size(); ++i) {
    const json& e = patch_list[i];
    if (id.by_key() && !e.is_object()) {
      return bad(path,
                 "elements of a merging list must be objects, got " + std::string(type_name(e)));
    }
    if (id.by_key() && e.contains(kDirective)) continue;  // deletions and other directives
    items.push_back(&e);
  }
  size_t pi = 0;
  size_t oi = 0;
  while (pi < items.size() && oi < order.size()) {
    if (id.by_key()) {
      if (id.of(*items[pi]).empty()) {
        return bad(path, "map: " + dump_short(*items[pi]) +
                             " does not contain declared merge key: " + id.merge_key());
      }
      if (id.of(order[oi]).empty()) {
        return bad(path, "$setElementOrder/" + std::string(field) + " element " +
                             dump_short(order[oi]) +
                             " does not contain declared merge key: " + id.merge_key());
      }
    }
    if (id.of(*items[pi]) == id.of(order[oi])) ++pi;
    ++oi;
  }
  if (pi < items.size()) {
    return bad(path, "the order in patch list " + dump_short(patch_list) +
                         " doesn't match $setElementOrder list " + dump_short(order));
  }
  return Status::Ok();
}

// mergePatchIntoOriginal for one "$setElementOrder/<field>": merges the field's patch list (if
// any) and imposes the order.
Status apply_element_order(json& original, const json& patch, const std::string& field,
                           const json& order, const NodeRef& ref, const PathLink* path) {
  // REQUIRES: a merging list, with a merge key when its elements are objects.
  const ListIdentity id(has_object_elements(*ref.field) ? ref.field->patch_merge_key : "");
  auto orig_it = original.find(field);
  const bool has_original = orig_it != original.end() && orig_it->is_array();
  auto patch_it = patch.find(field);
  const bool has_patch = patch_it != patch.end();
  if (has_patch && !patch_it->is_array()) {
    return bad(path, "\"" + field + "\" must be a list when $setElementOrder/" + field +
                         " is given, got " + type_name(*patch_it));
  }
  for (const json& e : order) {
    if (id.by_key() ? !e.is_object() : e.is_structured()) {
      return bad(path, "invalid patch format of setElementOrder list: $setElementOrder/" + field +
                           " holds " + dump_short(e));
    }
  }
  if (has_patch) {
    if (Status s = validate_order(*patch_it, order, id, field, path); !s.ok()) return s;
  }
  if (!has_original && !has_patch) return Status::Ok();

  const std::vector<std::string> server_order =
      has_original ? identities(*orig_it, id) : std::vector<std::string>{};
  json merged = has_original ? *orig_it : json::array();
  if (has_patch) {
    if (Status s = merge_list(merged, *patch_it, ref, path); !s.ok()) return s;
  }
  original[field] = order_elements(std::move(merged), identities(order, id), server_order, id);
  return Status::Ok();
}

// mergeMap.
Status merge_map(json& original, const json& patch, const NodeRef& ref, const PathLink* path) {
  if (!original.is_object()) original = json::object();

  if (auto directive = patch.find(kDirective); directive != patch.end()) {
    if (*directive == "delete") {
      original = json::object();
      return Status::Ok();
    }
    if (*directive == "replace") {
      original = json::object();
    } else if (*directive != "merge") {
      return bad(path,
                 "unknown patch type: " + dump_short(*directive) + " in map: " + dump_short(patch));
    }
  }

  if (auto retain = patch.find(kRetainKeys); retain != patch.end()) {
    if (!retain->is_array()) {
      return bad(path, "invalid patch format of retainKeys: $retainKeys must be a list, got " +
                           std::string(type_name(*retain)));
    }
    std::set<std::string, std::less<>> keep;
    for (const json& k : *retain) {
      if (!k.is_string()) {
        return bad(path, "invalid patch format of retainKeys: $retainKeys holds " + dump_short(k) +
                             ", not a field name");
      }
      keep.insert(k.get_ref<const std::string&>());
    }
    for (auto it = patch.begin(); it != patch.end(); ++it) {
      if (it.value().is_null() || is_directive_key(it.key())) continue;
      if (keep.find(it.key()) == keep.end()) {
        return bad(path, "invalid patch format of retainKeys: \"" + it.key() +
                             "\" is in the patch but not in $retainKeys");
      }
    }
    for (auto it = original.begin(); it != original.end();) {
      if (keep.find(it.key()) == keep.end()) {
        it = original.erase(it);
      } else {
        ++it;
      }
    }
  }

  // Lists with an order directive are merged together with it.
  std::set<std::string, std::less<>> ordered;
  for (auto it = patch.begin(); it != patch.end(); ++it) {
    if (!it.key().starts_with(kSetElementOrder)) continue;
    std::string field = it.key().substr(kSetElementOrder.size());
    if (field.empty()) {
      return bad(path, "invalid patch format of setElementOrder list: no field name in \"" +
                           it.key() + "\"");
    }
    if (!it.value().is_array()) {
      return bad(path, "invalid patch format of setElementOrder list: " + it.key() +
                           " must be a list, got " + type_name(it.value()));
    }
    const NodeRef child = member_ref(ref, field);
    // An order means something only for a merging list; elsewhere the directive is dropped.
    if (!is_smp_merge_list(child) ||
        (has_object_elements(*child.field) && child.field->patch_merge_key.empty())) {
      continue;
    }
    PathLink link{path, it.key()};
    if (Status s = apply_element_order(original, patch, field, it.value(), child, &link); !s.ok()) {
      return s;
    }
    ordered.insert(field);
  }

  for (auto it = patch.begin(); it != patch.end(); ++it) {
    const std::string& key = it.key();
    if (is_directive_key(key) || ordered.count(key) != 0) continue;
    const json& value = it.value();
    PathLink link{path, key};
    if (value.is_null()) {
      original.erase(key);
      continue;
    }
    const NodeRef child = member_ref(ref, key);
    if (Status s = check_type(value, child, &link); !s.ok()) return s;
    auto current = original.find(key);
    if (current == original.end()) {
      if (is_delete_marker(value)) continue;  // nothing to delete
      json fresh;
      if (Status s = fresh_value(value, child, &link, &fresh); !s.ok()) return s;
      original[key] = std::move(fresh);
      continue;
    }
    if (value.is_object() && current->is_object()) {
      if (child.field != nullptr && patch_internal::patch_strategy(*child.field).replace) {
        *current = json::object();
      }
      if (Status s = merge_map(*current, value, child, &link); !s.ok()) return s;
      continue;
    }
    if (value.is_array() && current->is_array() && is_smp_merge_list(child)) {
      if (Status s = merge_list(*current, value, child, &link); !s.ok()) return s;
      continue;
    }
    if (is_delete_marker(value)) {
      original.erase(current);
      continue;
    }
    json fresh;
    if (Status s = fresh_value(value, child, &link, &fresh); !s.ok()) return s;
    *current = std::move(fresh);
  }

  for (auto it = patch.begin(); it != patch.end(); ++it) {
    if (!it.key().starts_with(kDeleteFromPrimitiveList)) continue;
    std::string field = it.key().substr(kDeleteFromPrimitiveList.size());
    if (field.empty() || !it.value().is_array()) {
      return bad(path, "invalid patch format of primitive list: " + it.key() +
                           " must name a field and be a list");
    }
    auto current = original.find(field);
    if (current == original.end() || !current->is_array()) continue;
    std::unordered_set<std::string> doomed;
    for (const json& v : it.value()) doomed.insert(to_json(v));
    json kept = json::array();
    for (json& v : *current) {
      if (doomed.count(to_json(v)) == 0) kept.push_back(std::move(v));
    }
    *current = std::move(kept);
  }
  return Status::Ok();
}

}  // namespace

Result<json> apply_strategic_merge_patch(const json& target, const json& patch,
                                         const TypeDef* type) {
  if (!patch.is_object()) {
    return Status::BadRequest(std::string("strategic merge patch must be a JSON object, got ") +
                              type_name(patch));
  }
  if (Status s = patch_internal::check_depth(patch, "patch"); !s.ok()) return s;
  if (Status s = patch_internal::check_depth(target, "object"); !s.ok()) return s;
  json result = target.is_object() ? target : json::object();
  if (Status s = merge_map(result, patch, patch_internal::root_ref(type), nullptr); !s.ok()) {
    return s;
  }
  return result;
}

}  // namespace skiff::api
