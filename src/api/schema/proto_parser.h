// Parser for the schema data files: a subset of protobuf syntax (package, message blocks,
// optional/repeated/map fields with numbers) whose comments carry descriptions and Kubernetes
// markers, as in Kubernetes' generated.proto files.
//
// Markers read (comment lines starting with '+'):
//   file:    +groupName=<group>   API group of the file's kinds ("" for the core group)
//   message: +typeMeta            the Go type embeds TypeMeta: apiVersion and kind appear in JSON
//                                 (an inline field "typeMeta" of meta/v1 TypeMeta, number 0)
//            +protobuf.nullable=true  a Go named slice whose single field "items" (1) holds the
//                                 elements; fields of this type become list_wrapper fields
//   field:   +optional +required +inline +json=<name> +patchMergeKey= +patchStrategy=
//            +listType= +listMapKey= (repeatable, in order)
// Every other marker is ignored. Descriptions follow Kubernetes' OpenAPI generator: marker and
// TODO lines are dropped, text after a "---" line is dropped, lines are joined with spaces,
// an empty comment line starts a paragraph and an indented line keeps its own line.
//
// Naming: message M in package k8s.io.<rest> becomes the OpenAPI name io.k8s.<rest>.M, with '_'
// in the package spelled '-' (k8s.io.apiextensions_apiserver... -> io.k8s.apiextensions-apiserver...).
// Well-known messages become value kinds instead of objects: resource.Quantity, meta/v1 Time,
// MicroTime, Duration, FieldsV1 (kAny), intstr.IntOrString, runtime.RawExtension, and the
// apiextensions JSON and JSONSchemaPropsOr* messages (kAny). Their TypeDefs stay in the schema.
//
// Thread-safety: parse_schema_sources() touches only its arguments.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "api/schema.h"
#include "common/status.h"

namespace skiff::api {

struct SchemaSource {
  std::string_view name;  // for error messages
  char* data;
  size_t size;
};

// A message that embeds TypeMeta, with the group/version of its file.
struct SchemaKind {
  std::string group;  // "" for the core group
  std::string version;
  std::string kind;
  const TypeDef* type = nullptr;
};

// Parses `sources` into `schema`: one finalized TypeDef per message, references across all
// sources resolved. Comment blocks are rewritten in place into description text and the
// descriptions point into the buffers, so the buffers must outlive `schema` and must not be
// parsed again. Appends every kind (+typeMeta message of a file with +groupName) to `kinds`.
// Returns Invalid, naming file and line, for syntax outside the subset, a reference to an
// unknown message, a duplicate message, or a misplaced marker.
Status parse_schema_sources(std::span<const SchemaSource> sources, Schema& schema,
                            std::vector<SchemaKind>& kinds);

}  // namespace skiff::api
