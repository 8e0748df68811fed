// Private helpers shared by the patch and apply implementations.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/status.h"

namespace skiff::api::patch_internal {

using nlohmann::json;

// Nesting depth of `v` (a scalar is 0, {} is 1). Iterative, so any input is safe; stops
// counting once the depth exceeds kMaxPatchDepth.
int nesting_depth(const json& v);

// BadRequest "<what> nests deeper than 512 levels" when `v` is too deep for the recursive
// algorithms; OK otherwise.
Status check_depth(const json& v, std::string_view what);

// Compact JSON (common/json.h's to_json) shortened to about `max` characters, for error
// messages.
std::string dump_short(const json& v, size_t max = 160);
// "object", "array", "string", "number", "boolean" or "null".
const char* type_name(const json& v);

// A location in a document, linked on the stack during recursion and rendered only when an
// error message needs it: "spec.template.spec.containers[0].image".
struct PathLink {
  const PathLink* parent = nullptr;
  std::string_view key;  // object member name, when index < 0
  long index = -1;       // array element index, or -1

  std::string render() const;
};

// "<path>: <message>", or just the message at the root.
std::string at(const PathLink* path, std::string_view message);

}  // namespace skiff::api::patch_internal
