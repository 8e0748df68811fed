// Reading an object's JSON bytes, as this server writes them, without building a DOM.
//
// The server writes objects with nlohmann's compact dump: no whitespace, keys in ascending
// byte order, the same escapes every time. Bytes in exactly that form ("canonical") can be
// read in one pass and edited by splicing, with the same result as parsing them, changing the
// DOM and dumping it again; that is what the watch cache does for every event. Anything else
// (whitespace, unsorted or escaped keys, floats, invalid UTF-8, deep nesting) is reported as
// not canonical, and the caller takes the DOM path.
//
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace skiff::apiserver {

// What the watch cache keeps beside an object's bytes, read from canonical bytes.
struct ObjectBytesInfo {
  std::string name;       // metadata.name when it is a string
  std::string ns;         // metadata.namespace when it is a string
  bool deleting = false;  // metadata.deletionTimestamp is present and not null
  // metadata.labels with string values, in key order.
  std::vector<std::pair<std::string, std::string>> labels;
  // Every top-level scalar, and every scalar member of a top-level object (two levels), at
  // the same paths as in the object (but metadata.resourceVersion): enough for field
  // selectors (spec.nodeName, status.phase, type, ...), never nested deeper.
  nlohmann::json summary;
  // Where metadata.resourceVersion goes: [rv_begin, rv_end) is replaced by rv_prefix, the
  // quoted revision and rv_suffix.
  size_t rv_begin = 0;
  size_t rv_end = 0;
  std::string_view rv_prefix;
  std::string_view rv_suffix;
};

// Reads `bytes` if they are a canonical JSON object with an object under "metadata".
// Returns false (and leaves *out unspecified) otherwise.
bool read_canonical_object(std::string_view bytes, ObjectBytesInfo* out);

// `bytes` with metadata.resourceVersion set to `revision` (a string, as Kubernetes writes
// it): byte for byte what dumping the parsed object with that field set gives.
// REQUIRES: info was filled by read_canonical_object(bytes, &info).
std::string with_resource_version(std::string_view bytes, const ObjectBytesInfo& info,
                                  int64_t revision);

// One member of a canonical object: its key (decoded) and where the member lies in the
// object's bytes: [key_begin, end) is `"key":value`, [begin, end) the value.
struct MemberSpan {
  std::string key;
  size_t key_begin = 0;
  size_t begin = 0;
  size_t end = 0;
};

// The members of `object`, in order, if it is a canonical JSON object (nothing before or
// after it). Returns false otherwise.
bool read_members(std::string_view object, std::vector<MemberSpan>* out);

// The elements of `array` as [begin, end) spans, if it is a canonical JSON array.
bool read_elements(std::string_view array, std::vector<std::pair<size_t, size_t>>* out);

// A change to one member: set it to `value` (canonical JSON text), or remove it (nullopt).
struct MemberEdit {
  std::string_view key;  // REQUIRES: needs no escaping
  std::optional<std::string> value;
};

// `object` (read by read_members into `members`) with `edits` applied, members kept in key
// order: canonical when `object` and every value in `edits` are. REQUIRES: each key at most
// once in edits.
std::string edit_members(std::string_view object, const std::vector<MemberSpan>& members,
                         std::vector<MemberEdit> edits);

// pods/binding on a pod's cached bytes (canonical, with metadata.resourceVersion).
struct BindResult {
  enum class Kind {
    kBound,      // bytes: the bound pod as the store keeps it
    kAssigned,   // assigned: spec.nodeName was already set
    kUnhandled,  // not canonical, or a shape only the DOM path judges (it may refuse it)
  };
  Kind kind = Kind::kUnhandled;
  std::string bytes;
  std::string assigned;
};
// Sets spec.nodeName to `node` and makes the PodScheduled condition True since `now`
// (dropping its reason and message), or adds it; drops metadata.resourceVersion and selfLink.
// Byte for byte what parsing, editing and dumping the pod gives.
BindResult bind_pod_bytes(std::string_view pod, const std::string& node, const std::string& now);

}  // namespace skiff::apiserver
