#include "api/patch/patch_util.h"

#include <utility>
#include <vector>

#include "api/patch/patch.h"
#include "common/json.h"

namespace skiff::api::patch_internal {

int nesting_depth(const json& v) {
  int max_depth = 0;
  std::vector<std::pair<const json*, int>> stack;
  stack.emplace_back(&v, 0);
  while (!stack.empty()) {
    auto [node, depth] = stack.back();
    stack.pop_back();
    if (!node->is_structured()) continue;
    const int child_depth = depth + 1;
    if (child_depth > max_depth) max_depth = child_depth;
    if (max_depth > kMaxPatchDepth) return max_depth;
    for (const json& child : *node) {
      if (child.is_structured()) stack.emplace_back(&child, child_depth);
    }
  }
  return max_depth;
}

Status check_depth(const json& v, std::string_view what) {
  if (nesting_depth(v) <= kMaxPatchDepth) return Status::Ok();
  return Status::BadRequest(std::string(what) + " nests deeper than " +
                            std::to_string(kMaxPatchDepth) + " levels");
}

std::string dump_short(const json& v, size_t max) {
  std::string s = to_json(v);
  if (s.size() > max) {
    s.resize(max);
    s += "...";
  }
  return s;
}

const char* type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::object:
      return "object";
    case json::value_t::array:
      return "array";
    case json::value_t::string:
      return "string";
    case json::value_t::boolean:
      return "boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float:
      return "number";
    case json::value_t::null:
      return "null";
    default:
      return "value";
  }
}

std::string PathLink::render() const {
  std::vector<const PathLink*> chain;
  for (const PathLink* p = this; p != nullptr; p = p->parent) chain.push_back(p);
  std::string out;
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
    const PathLink* p = *it;
    if (p->index >= 0) {
      out += "[" + std::to_string(p->index) + "]";
    } else {
      if (!out.empty()) out += '.';
      out += p->key;
    }
  }
  return out;
}

std::string at(const PathLink* path, std::string_view message) {
  if (path == nullptr) return std::string(message);
  return path->render() + ": " + std::string(message);
}

}  // namespace skiff::api::patch_internal
