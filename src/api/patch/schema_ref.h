// How the schema describes one node of an object, as the patch and apply walkers see it.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "api/schema.h"

namespace skiff::api::patch_internal {

using nlohmann::json;

enum class NodeKind : uint8_t {
  kStruct,      // object with declared fields (`type`)
  kMap,         // object whose keys are data: a field of Shape::kMap (`field`)
  kUnknown,     // not described: objects go key by key, lists are atomic
  kAssocList,   // list whose elements are identified by key fields (`field`)
  kSetList,     // list of primitives that is a set (`field`)
  kAtomicList,  // list that is one value
  kScalar,      // one value
};

struct NodeRef {
  NodeKind kind = NodeKind::kUnknown;
  const TypeDef* type = nullptr;    // kStruct: the struct
  const FieldDef* field = nullptr;  // the field whose value this node is; null for list
                                    // elements, map values and the root
};

// The root of an object of `type` (kUnknown when null).
NodeRef root_ref(const TypeDef* type);
// The value of field `f`.
NodeRef field_ref(const FieldDef& f);
// Member `key` of an object node (kStruct, kMap or kUnknown); kUnknown when not described.
NodeRef member_ref(const NodeRef& object, std::string_view key);
// An element of a list node, or a value of a kMap node.
NodeRef element_ref(const NodeRef& container);

inline bool is_object_kind(const NodeRef& r) {
  return r.kind == NodeKind::kStruct || r.kind == NodeKind::kMap || r.kind == NodeKind::kUnknown;
}
inline bool is_keyed_list(const NodeRef& r) {
  return r.kind == NodeKind::kAssocList || r.kind == NodeKind::kSetList;
}

// The patch strategies of a field ("merge", "replace", "retainKeys", comma-separated).
struct PatchStrategy {
  bool merge = false;
  bool replace = false;
};
PatchStrategy patch_strategy(const FieldDef& f);

// A list field that strategic merge patch merges (patchStrategy "merge").
bool is_smp_merge_list(const NodeRef& r);
// Whether the elements of list field `f` are objects.
bool has_object_elements(const FieldDef& f);

// Names the elements of one keyed list node as field-set path elements: "k:{...}" for
// associative lists (key fields sorted), "v:<json>" for sets.
class ElementKeyer {
 public:
  explicit ElementKeyer(const NodeRef& list);

  // The path element of `elem` (at `index`). With `strict`, an element that is not an object
  // or lacks a key field without default is an error (false, `error` set); otherwise such an
  // element is named by its index ("i:<n>") or by the key fields it has.
  bool key_of(const nlohmann::json& elem, size_t index, bool strict, std::string* key,
              std::string* error) const;

 private:
  bool set_ = false;
  std::vector<std::string> keys_;
};

}  // namespace skiff::api::patch_internal
