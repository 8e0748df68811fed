// Decoding of Kubernetes' protobuf wire format (Content-Type application/vnd.kubernetes.protobuf)
// into the JSON object Kubernetes would produce for the same value.
//
// kubectl 1.32 sends protobuf bodies, with no JSON fallback, for `create namespace|configmap|
// secret|deployment|token`, `autoscale` and `auth can-i`. A body is the 4-byte magic "k8s\0"
// followed by a runtime.Unknown message:
//   Unknown { TypeMeta typeMeta = 1 {apiVersion = 1, kind = 2}; bytes raw = 2;
//             string contentEncoding = 3; string contentType = 4 }
// `raw` is the object's own message, decoded field by field with the numbers in its TypeDef.
//
// Mapping (proto2 as gogo-protobuf writes Kubernetes types):
//   - string → JSON string (invalid UTF-8 replaced by U+FFFD, as Go's JSON encoder does);
//     bytes (kBytes) → base64; bool/int32/int64 varints (negative int32 as 10-byte varints);
//     double as fixed64 (fixed32 float also read); repeated fields packed or not; maps as
//     repeated entries {key = 1; value = 2}; nested messages; Go-embedded (inline) fields
//     flattened into the parent object.
//   - Well-known types: Quantity {string = 1} → "500m"; Time {seconds = 1, nanos = 2} → RFC 3339
//     ("2006-01-02T15:04:05Z"); MicroTime → RFC 3339 with microseconds; Duration
//     {duration = 1, nanoseconds} → "1h0m0s"; IntOrString {type = 1, intVal = 2, strVal = 3} →
//     number or string; RawExtension / FieldsV1 / apiextensions JSON {raw = 1} → the embedded
//     JSON value (an embedded "k8s\0" object is decoded through the same resolver).
//   - Go named slices (FieldDef::list_wrapper): a list is one wrapper message whose repeated
//     field 1 holds the elements; a map's values are such wrappers of strings.
//   - Unknown field numbers are skipped, as protobuf does (groups included).
//   - Omitted zero values: gogo writes every non-pointer field, even when empty, and Go's JSON
//     encoder then drops the empty ones (omitempty). The schema does not record which fields are
//     pointers, so for optional fields: empty strings and bytes, false booleans and the zero
//     Time are left out (Go prints the zero Time as null); integer zeros are kept, because a
//     pointer integer set to 0 (Deployment spec.replicas) means something and a non-pointer 0
//     means the same as absent. Messages are always kept, as Go keeps non-pointer structs
//     ("strategy": {}).
//
// Every malformed input — truncated varints, lengths past the end, wrong wire types for a known
// field, invalid wire types, bad quantities or times, nesting deeper than kMaxNestingDepth, a
// missing magic, an unknown kind — is a BadRequest naming the problem; no input crashes.
//
// Thread-safety: pure functions.
#pragma once

#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

#include "api/registry.h"
#include "api/schema.h"
#include "common/status.h"

namespace skiff::api {

// The media type and the 4-byte prefix of every Kubernetes protobuf body.
inline constexpr std::string_view kProtobufContentType = "application/vnd.kubernetes.protobuf";
inline constexpr std::string_view kProtobufMagic{"k8s\0", 4};

// The runtime.Unknown envelope of a body.
struct ProtobufEnvelope {
  std::string api_version;  // "apps/v1", "v1"
  std::string kind;         // "Deployment"
  std::string_view raw;     // the object's message; points into the body passed in
  std::string content_encoding;
  std::string content_type;
};

// Splits a body into its envelope. BadRequest when the magic is missing, the envelope is
// malformed, kind or apiVersion is empty, or contentEncoding is set (Kubernetes never sets it;
// gzip bodies come with Content-Encoding on the HTTP request instead).
Result<ProtobufEnvelope> parse_protobuf_envelope(std::string_view body);

// Finds the TypeDef of a kind; null when the kind is not known.
using TypeResolver = std::function<const TypeDef*(std::string_view group, std::string_view version,
                                                  std::string_view kind)>;

// Decodes a whole body; the kind is looked up with registry.find_kind, then among the
// built-in kinds without a resource of their own (TokenRequest, Scale, DeleteOptions; when the
// built-in schema is linked in). The result carries apiVersion and kind from the envelope.
// BadRequest for malformed input or an unknown kind
// (`no kind "Foo" is registered for version "example.com/v1"`).
Result<nlohmann::json> decode_protobuf_object(std::string_view body, const Registry& registry);
// As above with a caller-supplied lookup, for kinds that are not registry resources (for
// example authentication.k8s.io/v1 TokenRequest, the body of serviceaccounts/token).
Result<nlohmann::json> decode_protobuf_object(std::string_view body, const TypeResolver& resolve);

// Decodes one message (no magic, no envelope) of type `type` into a JSON object without
// apiVersion/kind. `resolve` is used only for "k8s\0" objects embedded in RawExtensions; null
// makes those a BadRequest.
Result<nlohmann::json> decode_protobuf_message(std::string_view message, const TypeDef& type,
                                               const TypeResolver* resolve = nullptr);

}  // namespace skiff::api
