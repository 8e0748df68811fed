// A set of field paths (sigs.k8s.io/structured-merge-diff fieldpath.Set), as a tree keyed by
// FieldsV1 path elements: "f:<name>", "k:<json object>", "v:<json>", "i:<index>".
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace skiff::api::patch_internal {

using nlohmann::json;

struct FieldSet {
  // Whether the path ending at this node is in the set (FieldsV1 "." or a leaf {}).
  bool member = false;
  std::map<std::string, FieldSet> children;

  bool empty() const { return !member && children.empty(); }
  const FieldSet* find(const std::string& element) const;

  // Adds every member of `other`.
  void merge_from(const FieldSet& other);
  // Removes every member of `other` (children of a removed member stay); drops nodes left
  // empty.
  void subtract(const FieldSet& other);
  // The members in both.
  FieldSet intersect(const FieldSet& other) const;

  // FieldsV1 form of this set (the receiver is the root: its own membership is not written).
  nlohmann::json to_fields_v1() const;
  // Parses FieldsV1; false (with `error`) when it is not valid FieldsV1. Path elements are
  // normalized (key JSON re-encoded compactly with sorted keys).
  static bool from_fields_v1(const nlohmann::json& v, FieldSet* out, std::string* error);

  // Every member path in structured-merge-diff order (at each node: its member children, then
  // the subtrees), rendered as structured-merge-diff prints paths:
  // ".spec.containers[name=\"web\"].image".
  std::vector<std::string> member_paths() const;
};

// One path element in structured-merge-diff notation: "f:spec" -> ".spec",
// "k:{\"name\":\"web\"}" -> "[name=\"web\"]", "v:\"a\"" -> "[=\"a\"]", "i:3" -> "[3]".
std::string render_path_element(const std::string& element);

}  // namespace skiff::api::patch_internal
