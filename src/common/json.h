// Parsing client input into nlohmann::json with the limits the API server
// enforces.
//
// Every parse failure is a Status with code BadRequest and a message a person
// can act on (what was wrong and where). Input is never trusted: depth is
// bounded before the recursive parts of any parser see it, YAML aliases cannot
// expand beyond a node budget, and no input crashes the process.
#pragma once

#include <cstddef>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

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

// Parses one JSON value (RFC 8259) as Kubernetes' decoder reads it:
//  - integers are stored as int64 (number_integer); larger ones become doubles;
//  other numbers
//    are doubles, and one that overflows a double is rejected;
//  - malformed UTF-8 inside strings is replaced by U+FFFD (Go does the same); a
//  leading
//    byte-order mark is rejected;
//  - a repeated key keeps the last value unless opts.reject_duplicate_keys.
// Errors (all BadRequest):
//  - syntax: Go's wording plus the 0-based offset of the offending byte, e.g.
//    `invalid character 'x' looking for beginning of value (at byte offset 0)`,
//    `unexpected end of JSON input (at byte offset 7)`;
//  - nesting deeper than opts.max_depth: `json: nesting too deep: ...`,
//  detected as soon as the
//    (max_depth+1)-th container opens, so 100000 '[' are rejected after reading
//    101 bytes;
//  - `json: duplicate field "x"`.
// Never throws; out of memory is TooLarge.
Result<nlohmann::json> parse_json(std::string_view text, const ParseOptions& opts = {});

// Parses one YAML document the way the API server reads YAML bodies
// (sigs.k8s.io/yaml, i.e. go-yaml v2 then JSON). JSON is valid input. Plain
// scalars resolve as in YAML 1.1: true/false/yes/no/on/off/y/n (lower,
// Capitalized or UPPER) are booleans, ~/null/empty are null, integers may be
// written 0x1F, 0o17, 017 (octal), 0b101 and with '_', floats as 1.5, .5, 1e3;
// an integral float becomes an integer (1.0 -> 1). Quoted and block scalars,
// "!!str" and unknown tags stay strings. Mapping keys become strings (`1: a` ->
// "1", `on: a` -> "true"); null or collection keys are rejected. "<<" merge
// keys and anchors/aliases are supported; aliases are expanded and count
// against kMaxYamlNodes. .inf/.nan values are rejected (JSON has no such
// numbers). An empty stream is null. A second document with content is
// rejected; a trailing "---" is fine. Errors are BadRequest, worded as
// Kubernetes does: `error converting YAML to JSON: yaml: line 3, column 5:
// <what>`; with opts.reject_duplicate_keys a repeated key is `error converting
// YAML to JSON: yaml: unmarshal errors:\n  line 4: key "a" already set in map`.
// Never throws; out of memory is TooLarge.
Result<nlohmann::json> parse_yaml(std::string_view text, const ParseOptions& opts = {});

// Parses a YAML stream of documents separated by "---" (a manifest file, as
// kubectl and GitOps tools read it). Each document is read as parse_yaml reads
// one, with the same errors; documents without content (a trailing "---",
// comments only) are skipped. The node budget (kMaxYamlNodes) applies to the
// whole stream.
Result<std::vector<nlohmann::json>> parse_yaml_documents(std::string_view text,
                                                         const ParseOptions& opts = {});

// Serializes compactly (no spaces), as the API server writes objects. Invalid
// UTF-8 in strings is replaced by U+FFFD, so this never throws.
std::string to_json(const nlohmann::json& value);

// `s` as a JSON string literal (to_json of the string), for messages that quote
// client input the way Go's encoding/json errors do.
std::string json_quote(std::string_view s);

}  // namespace skiff
