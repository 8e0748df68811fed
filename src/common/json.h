// Parsing client input into nlohmann::json with the limits the API server enforces.
//
// Every parse failure is a Status with code BadRequest and a message a person can act on
// (what was wrong and where). Input is never trusted: depth is bounded before the recursive
// parts of any parser see it, YAML aliases cannot expand beyond a node budget, and no input
// crashes the process.
#pragma once

#include <cstddef>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

#include "common/status.h"

namespace skiff {

// Deepest nesting of objects/arrays accepted in a request body.
inline constexpr int kMaxNestingDepth = 100;
// Most nodes a YAML document may produce (after alias expansion).
inline constexpr size_t kMaxYamlNodes = 1'000'000;

struct ParseOptions {
  int max_depth = kMaxNestingDepth;
  // Reject objects that repeat a key (Strict field validation): BadRequest
  // `json: duplicate field "x"` rather than keeping the last value.
  bool reject_duplicate_keys = false;
};

// Parses one JSON value (RFC 8259).
Result<nlohmann::json> parse_json(std::string_view text, const ParseOptions& opts = {});

// Parses one YAML document (YAML 1.2 as Kubernetes reads it: plain scalars that look like
// numbers, booleans or null become those JSON types). JSON is valid input.
Result<nlohmann::json> parse_yaml(std::string_view text, const ParseOptions& opts = {});

// Serializes compactly (no spaces), as the API server writes objects.
std::string to_json(const nlohmann::json& value);

}  // namespace skiff
