// Schema: the typed description of every object skiff serves.
//
// Built-in types are read once at start-up from the embedded schema files (src/api/schema/,
// a subset of protobuf syntax whose comments carry descriptions and Kubernetes markers such as
// +patchMergeKey, +patchStrategy, +listType, +listMapKey, +inline). CRDs add types at run
// time from their openAPIV3Schema. Discovery, OpenAPI v3, strict field validation, strategic
// merge, protobuf decoding and server-side apply all read these definitions.
//
// Thread-safety: a TypeDef is immutable once built and may be read from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace skiff::api {

// How a value appears in JSON (and, for built-ins, how it is encoded in protobuf).
enum class ValueKind : uint8_t {
  kString,        // string (proto string)
  kBool,          // boolean
  kInt32,         // integer (proto int32)
  kInt64,         // integer (proto int64)
  kDouble,        // number (proto double/float)
  kBytes,         // base64 string in JSON (proto bytes), e.g. Secret.data values
  kObject,        // object described by FieldDef::type
  kQuantity,      // resource.Quantity: "500m", "1Gi" (JSON string or number)
  kTime,          // metav1.Time: RFC 3339 string, seconds precision
  kMicroTime,     // metav1.MicroTime: RFC 3339 string with microseconds
  kDuration,      // metav1.Duration: Go duration string, e.g. "1h0m0s"
  kIntOrString,   // intstr.IntOrString: integer or string
  kRawExtension,  // runtime.RawExtension: any embedded JSON object
  kAny,           // any JSON value (apiextensions JSON, x-kubernetes-preserve-unknown-fields)
};

enum class Shape : uint8_t {
  kScalar,  // one value
  kList,    // JSON array of values
  kMap,     // JSON object with string keys and values of the field's kind
};

struct TypeDef;

struct FieldDef {
  std::string name;                // JSON name
  int number = 0;                  // protobuf field number; 0 when not encoded in protobuf
  ValueKind kind = ValueKind::kString;
  Shape shape = Shape::kScalar;
  const TypeDef* type = nullptr;   // REQUIRES: set iff kind == kObject
  bool inline_fields = false;      // Go-embedded struct: its fields appear in the parent's JSON
  // A Go named slice (meta Verbs, authentication/authorization ExtraValue): JSON shows a bare
  // array, protobuf wraps it in a message whose repeated field 1 holds the elements. kList:
  // `kind` is the element kind and the whole list is one wrapper message. kMap: each value is
  // one wrapper message holding strings; `kind` is kAny because a FieldDef has one shape.
  bool list_wrapper = false;
  // false for +required and, as in Kubernetes' OpenAPI, for fields without +optional
  bool optional = true;
  std::string_view description;
  std::string patch_merge_key;     // strategic merge: list elements merged by this key
  std::string patch_strategy;      // "merge", "retainKeys", "merge,retainKeys", "replace", ""
  std::string list_type;           // +listType: "atomic", "set", "map" or ""
  std::vector<std::string> list_map_keys;  // +listMapKey (in order)
  std::vector<std::string> enum_values;    // allowed string values, when restricted (CRDs)
};

struct TypeDef {
  std::string name;  // OpenAPI name, e.g. "io.k8s.api.core.v1.PodSpec"
  std::string_view description;
  std::vector<FieldDef> fields;  // in declaration order, inline fields not flattened
  // For CRD schemas: unknown fields are kept instead of rejected.
  bool preserve_unknown_fields = false;

  // The field with this JSON name, looking through inline fields; null if unknown.
  const FieldDef* field(std::string_view json_name) const;
  // The field with this protobuf number (inline fields are their own number); null if none.
  const FieldDef* field_by_number(int number) const;
  // Builds the lookup indexes; called once after fields are complete.
  void finalize();

 private:
  std::map<std::string, const FieldDef*, std::less<>> by_name_;
  std::map<int, const FieldDef*> by_number_;
};

// A set of TypeDefs that refer to each other (one schema file set, or one CRD version).
class Schema {
 public:
  Schema();
  ~Schema();
  Schema(const Schema&) = delete;
  Schema& operator=(const Schema&) = delete;

  // The type with this OpenAPI name, or null.
  const TypeDef* type(std::string_view name) const;
  // Adds a type; the Schema owns it and keeps its address stable.
  TypeDef* add(std::unique_ptr<TypeDef> type);
  const std::vector<std::unique_ptr<TypeDef>>& types() const { return types_; }

 private:
  std::vector<std::unique_ptr<TypeDef>> types_;
  std::map<std::string, TypeDef*, std::less<>> by_name_;
};

// The built-in schema, parsed on first use from the embedded schema files. Thread-safe.
const Schema& builtin_schema();

}  // namespace skiff::api
