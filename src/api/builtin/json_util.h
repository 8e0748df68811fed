// Read and write helpers over the nlohmann::json object model, tolerant of absent members,
// JSON null and wrongly typed values (which read as absent), as Go's typed decoding would
// have rejected or zeroed them before Kubernetes' own code ran.
//
// Private to src/api/builtin. Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/quantity.h"

namespace skiff::api::builtin {

using nlohmann::json;

// The member `key` of `obj`, or null when obj is not an object, lacks the key or holds null.
const json* member(const json& obj, std::string_view key);
// Follows `keys` from `obj`; null as soon as one step is missing.
const json* at(const json& obj, std::initializer_list<std::string_view> keys);

// The mutable value along a path, or null as soon as one step is missing or null.
json* mutable_at(json& obj, std::initializer_list<std::string_view> keys);

// Typed reads along a path; absent or wrongly typed values give the fallback.
std::string str_at(const json& obj, std::initializer_list<std::string_view> keys,
                   std::string_view fallback = "");
std::optional<int64_t> int_at(const json& obj, std::initializer_list<std::string_view> keys);
std::optional<bool> bool_at(const json& obj, std::initializer_list<std::string_view> keys);
// An array or object along a path, or null when absent or of another type.
const json* array_at(const json& obj, std::initializer_list<std::string_view> keys);
const json* object_at(const json& obj, std::initializer_list<std::string_view> keys);

// The integer value of `v` when it is a JSON integer (or a float with an integral value).
std::optional<int64_t> as_int(const json* v);
// The string value of `v` when it is a JSON string, else "".
std::string as_string(const json* v);
// Number of members (object) or elements (array); 0 for anything else.
size_t size_of(const json* v);
// The resource.Quantity a value holds (string or number); nullopt when absent or malformed.
std::optional<Quantity> quantity_of(const json* v);
// Quantity.String() of a value: its canonical form, "0" when absent, the raw text when malformed.
std::string quantity_text(const json* v);

// The member `key` of `obj` as an object, created (replacing null or a non-object) when
// needed. REQUIRES: obj is an object.
json& object_member(json& obj, std::string_view key);
// True when `obj` has `key` with a non-null value.
bool has(const json& obj, std::string_view key);
// Sets obj[key] = value unless obj already has a non-null value there.
void set_default(json& obj, std::string_view key, json value);

// The keys of an object in sorted order (Go iterates maps in random order; Kubernetes'
// messages that list map entries sort them, and so does this code wherever order shows).
std::vector<std::string> sorted_keys(const json* obj);
// The string values of an array of strings (non-strings are skipped).
std::vector<std::string> string_list(const json* arr);

}  // namespace skiff::api::builtin
