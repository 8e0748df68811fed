#include "api/patch/schema_ref.h"

#include "api/patch/patch_util.h"
#include "common/json.h"

namespace skiff::api::patch_internal {
namespace {

// The node a single value of field `f` is (for lists: one element; for maps: one value).
NodeRef value_ref(const FieldDef& f) {
  NodeRef r;
  if (f.kind == ValueKind::kObject && f.type != nullptr) {
    r.kind = NodeKind::kStruct;
    r.type = f.type;
  } else if (f.kind == ValueKind::kObject || f.kind == ValueKind::kAny ||
             f.kind == ValueKind::kRawExtension) {
    r.kind = NodeKind::kUnknown;
  } else {
    r.kind = NodeKind::kScalar;
  }
  return r;
}

std::vector<std::string> list_keys(const FieldDef& f) {
  if (!f.list_map_keys.empty()) return f.list_map_keys;
  if (patch_strategy(f).merge && !f.patch_merge_key.empty()) return {f.patch_merge_key};
  return {};
}

}  // namespace

PatchStrategy patch_strategy(const FieldDef& f) {
  PatchStrategy s;
  std::string_view rest = f.patch_strategy;
  while (!rest.empty()) {
    size_t comma = rest.find(',');
    std::string_view token = rest.substr(0, comma);
    while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
    while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
    if (token == "merge") s.merge = true;
    if (token == "replace") s.replace = true;
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return s;
}

bool has_object_elements(const FieldDef& f) {
  return f.kind == ValueKind::kObject || f.kind == ValueKind::kAny ||
         f.kind == ValueKind::kRawExtension;
}

NodeRef root_ref(const TypeDef* type) {
  NodeRef r;
  if (type != nullptr) {
    r.kind = NodeKind::kStruct;
    r.type = type;
  }
  return r;
}

NodeRef field_ref(const FieldDef& f) {
  NodeRef r;
  r.field = &f;
  switch (f.shape) {
    case Shape::kMap:
      r.kind = NodeKind::kMap;
      return r;
    case Shape::kList: {
      const bool objects = has_object_elements(f);
      const bool keyed = !list_keys(f).empty();
      if (f.list_type == "atomic") {
        r.kind = NodeKind::kAtomicList;
      } else if (f.list_type == "map") {
        r.kind = keyed ? NodeKind::kAssocList : NodeKind::kAtomicList;
      } else if (f.list_type == "set") {
        r.kind = objects ? NodeKind::kAtomicList : NodeKind::kSetList;
      } else if (keyed && objects) {
        r.kind = NodeKind::kAssocList;
      } else if (patch_strategy(f).merge && !objects) {
        r.kind = NodeKind::kSetList;
      } else {
        r.kind = NodeKind::kAtomicList;
      }
      return r;
    }
    case Shape::kScalar: {
      NodeRef v = value_ref(f);
      v.field = &f;
      return v;
    }
  }
  return r;
}

NodeRef member_ref(const NodeRef& object, std::string_view key) {
  if (object.kind == NodeKind::kStruct && object.type != nullptr) {
    const FieldDef* f = object.type->field(key);
    if (f != nullptr) return field_ref(*f);
    return NodeRef{};
  }
  if (object.kind == NodeKind::kMap) return element_ref(object);
  return NodeRef{};
}

NodeRef element_ref(const NodeRef& container) {
  if (container.field == nullptr) return NodeRef{};
  return value_ref(*container.field);
}

bool is_smp_merge_list(const NodeRef& r) {
  return r.field != nullptr && r.field->shape == Shape::kList && patch_strategy(*r.field).merge;
}

ElementKeyer::ElementKeyer(const NodeRef& list) {
  set_ = list.kind == NodeKind::kSetList;
  if (list.kind == NodeKind::kAssocList && list.field != nullptr) keys_ = list_keys(*list.field);
}

bool ElementKeyer::key_of(const nlohmann::json& elem, size_t index, bool strict, std::string* key,
                          std::string* error) const {
  if (set_) {
    *key = "v:" + to_json(elem);
    return true;
  }
  if (!elem.is_object()) {
    if (strict) {
      *error = "element " + std::to_string(index) +
               ": associative list with keys may only contain objects, got " + type_name(elem);
      return false;
    }
    *key = "i:" + std::to_string(index);
    return true;
  }
  nlohmann::json k = nlohmann::json::object();
  for (const std::string& name : keys_) {
    auto it = elem.find(name);
    if (it != elem.end() && !it->is_null()) {
      k[name] = *it;
    } else if (name == "protocol") {
      // The built-in schema's default for every list-map key that has one (ports).
      k[name] = "TCP";
    } else if (strict) {
      *error = "element " + std::to_string(index) +
               ": associative list with keys has an element that omits key field \"" + name +
               "\" (and doesn't have default value)";
      return false;
    }
  }
  if (k.empty()) {
    *key = "i:" + std::to_string(index);
  } else {
    *key = "k:" + to_json(k);
  }
  return true;
}

}  // namespace skiff::api::patch_internal
