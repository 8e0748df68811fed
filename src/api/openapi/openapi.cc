#include "api/openapi/openapi.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cstdlib>
#include <deque>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "common/json.h"

#ifdef SKIFF_HAVE_BUILTIN_SCHEMA
#include "api/schema/builtin.h"
#endif

namespace skiff::api {

using nlohmann::json;

std::string openapi_v3_path(std::string_view group, std::string_view version) {
  if (group.empty()) return "api/" + std::string(version);
  return "apis/" + std::string(group) + "/" + std::string(version);
}

std::optional<GroupVersion> parse_openapi_v3_path(std::string_view path) {
  if (!path.empty() && path[0] == '/') path.remove_prefix(1);
  auto valid = [](std::string_view s) {
    return !s.empty() && s.find('/') == std::string_view::npos;
  };
  if (path.substr(0, 4) == "api/") {
    std::string_view version = path.substr(4);
    if (!valid(version)) return std::nullopt;
    return GroupVersion{"", std::string(version)};
  }
  if (path.substr(0, 5) == "apis/") {
    std::string_view rest = path.substr(5);
    size_t slash = rest.find('/');
    if (slash == std::string_view::npos) return std::nullopt;
    std::string_view group = rest.substr(0, slash), version = rest.substr(slash + 1);
    if (!valid(group) || !valid(version)) return std::nullopt;
    return GroupVersion{std::string(group), std::string(version)};
  }
  return std::nullopt;
}

std::string openapi_v3_hash(std::string_view serialized) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(serialized.data(), serialized.size(), md, &len, EVP_sha512(), nullptr) != 1) {
    // SHA-512 is built into every OpenSSL 3 provider set; failing here means a broken
    // installation, not bad input.
    std::abort();
  }
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; i++) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

namespace {

constexpr std::string_view kQuantityName = "io.k8s.apimachinery.pkg.api.resource.Quantity";
constexpr std::string_view kIntOrStringName = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
constexpr std::string_view kTimeName = "io.k8s.apimachinery.pkg.apis.meta.v1.Time";
constexpr std::string_view kMicroTimeName = "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime";
constexpr std::string_view kRawExtensionName = "io.k8s.apimachinery.pkg.runtime.RawExtension";
constexpr std::string_view kObjectMetaName = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
constexpr std::string_view kListMetaName = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
constexpr std::string_view kStatusName = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
constexpr std::string_view kDeleteOptionsName =
    "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
constexpr std::string_view kPatchName = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";

constexpr const char* kApiVersionDescription =
    "APIVersion defines the versioned schema of this representation of an object. Servers should "
    "convert recognized schemas to the latest internal value, and may reject unrecognized values. "
    "More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
constexpr const char* kKindDescription =
    "Kind is a string value representing the REST resource this object represents. Servers may "
    "infer this from the endpoint the client submits requests to. Cannot be updated. In "
    "CamelCase. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/"
    "api-conventions.md#types-kinds";
constexpr const char* kMetadataDescription =
    "Standard object's metadata. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

// Built-in kinds and types that are not registry resources (list kinds, Status, Scale), when
// the built-in schema is linked in; null otherwise.
const TypeDef* builtin_kind(std::string_view group, std::string_view version,
                            std::string_view kind) {
#ifdef SKIFF_HAVE_BUILTIN_SCHEMA
  return builtin_kind_type(group, version, kind);
#else
  (void)group, (void)version, (void)kind;
  return nullptr;
#endif
}

const TypeDef* builtin_named(std::string_view name) {
#ifdef SKIFF_HAVE_BUILTIN_SCHEMA
  return builtin_type(name);
#else
  (void)name;
  return nullptr;
#endif
}

// The well-known apimachinery types, whether the schema spells them as a ValueKind or as an
// object type with the upstream name.
ValueKind effective_kind(const FieldDef& f) {
  if (f.kind != ValueKind::kObject || f.type == nullptr) return f.kind;
  const std::string& n = f.type->name;
  if (n == kQuantityName) return ValueKind::kQuantity;
  if (n == kTimeName) return ValueKind::kTime;
  if (n == kMicroTimeName) return ValueKind::kMicroTime;
  if (n == "io.k8s.apimachinery.pkg.apis.meta.v1.Duration") return ValueKind::kDuration;
  if (n == kIntOrStringName) return ValueKind::kIntOrString;
  if (n == kRawExtensionName) return ValueKind::kRawExtension;
  return ValueKind::kObject;
}

std::string json_pointer_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

json schema_ref(std::string_view name) {
  return {{"$ref", "#/components/schemas/" + json_pointer_escape(name)}};
}

// A reference with a description beside it, wrapped in allOf as Kubernetes does (OpenAPI 3.0
// ignores the siblings of $ref).
json ref_with(std::string_view name, std::string_view description) {
  return {{"allOf", json::array({schema_ref(name)})}, {"description", description}};
}

std::string capitalize(std::string_view s) {
  std::string out(s);
  if (!out.empty() && out[0] >= 'a' && out[0] <= 'z') out[0] = static_cast<char>(out[0] - 32);
  return out;
}

// "apps" -> "Apps", "rbac.authorization.k8s.io" -> "RbacAuthorization", "" -> "Core",
// "stable.example.com" -> "StableExampleCom": the group part of Kubernetes' operation ids.
std::string group_camel(std::string_view group) {
  if (group.empty()) return "Core";
  constexpr std::string_view kK8sSuffix = ".k8s.io";
  if (group.size() > kK8sSuffix.size() && group.ends_with(kK8sSuffix)) {
    group.remove_suffix(kK8sSuffix.size());
  }
  std::string out;
  size_t start = 0;
  while (start <= group.size()) {
    size_t dot = group.find_first_of(".-", start);
    if (dot == std::string_view::npos) dot = group.size();
    out += capitalize(group.substr(start, dot - start));
    start = dot + 1;
  }
  return out;
}

std::string group_tag(std::string_view group, std::string_view version) {
  std::string g = group.empty() ? "core" : std::string(group);
  constexpr std::string_view kK8sSuffix = ".k8s.io";
  if (g.size() > kK8sSuffix.size() && std::string_view(g).ends_with(kK8sSuffix)) {
    g.resize(g.size() - kK8sSuffix.size());
  }
  std::replace(g.begin(), g.end(), '.', '_');
  return g + "_" + std::string(version);
}

// "stable.example.com" + "v1" + "CronTab" -> "com.example.stable.v1.CronTab", the name
// Kubernetes gives schemas that have no Go type.
std::string reversed_group_name(std::string_view group, std::string_view version,
                                std::string_view kind) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (start <= group.size()) {
    size_t dot = group.find('.', start);
    if (dot == std::string_view::npos) dot = group.size();
    if (dot > start) parts.push_back(group.substr(start, dot - start));
    start = dot + 1;
  }
  std::string out;
  for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
    out += *it;
    out += '.';
  }
  if (group.empty()) out = "io.k8s.api.core.";
  return out + std::string(version) + "." + std::string(kind);
}

json query_param(std::string_view name, std::string_view type, std::string_view description) {
  return {{"name", name},
          {"in", "query"},
          {"description", description},
          {"schema", {{"type", type}, {"uniqueItems", true}}}};
}

json path_param(std::string_view name, std::string_view description) {
  return {{"name", name},
          {"in", "path"},
          {"description", description},
          {"required", true},
          {"schema", {{"type", "string"}, {"uniqueItems", true}}}};
}

json p_dry_run() {
  return query_param("dryRun", "string",
                     "When present, indicates that modifications should not be persisted. An "
                     "invalid or unrecognized dryRun directive will result in an error response "
                     "and no further processing of the request. Valid values are: - All: all dry "
                     "run stages will be processed");
}
json p_field_manager() {
  return query_param("fieldManager", "string",
                     "fieldManager is a name associated with the actor or entity that is making "
                     "these changes. The value must be less than or 128 characters long, and only "
                     "contain printable characters, as defined by "
                     "https://golang.org/pkg/unicode/#IsPrint.");
}
json p_field_validation() {
  return query_param(
      "fieldValidation", "string",
      "fieldValidation instructs the server on how to handle objects in the request "
      "(POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This "
      "will ignore any unknown fields that are silently dropped from the object, and will ignore "
      "all but the last duplicate field that the decoder encounters. - Warn: This will send a "
      "warning via the standard warning response header for each unknown field that is dropped "
      "from the object, and for each duplicate field that is encountered. The request will still "
      "succeed if there are no other errors, and will only persist the last of any duplicate "
      "fields. This is the default. - Strict: This will fail the request with a BadRequest error "
      "if any unknown fields would be dropped from the object, or if any duplicate fields are "
      "present. The error returned from the server will contain all unknown and duplicate fields "
      "encountered.");
}
json p_force() {
  return query_param("force", "boolean",
                     "Force is going to \"force\" Apply requests. It means user will re-acquire "
                     "conflicting fields owned by other people. Force flag must be unset for "
                     "non-apply patch requests.");
}

json list_params() {
  return json::array(
      {query_param("allowWatchBookmarks", "boolean",
                   "allowWatchBookmarks requests watch events with type \"BOOKMARK\"."),
       query_param("continue", "string",
                   "The continue option should be set when retrieving more results from the "
                   "server."),
       query_param("fieldSelector", "string",
                   "A selector to restrict the list of returned objects by their fields. "
                   "Defaults to everything."),
       query_param("labelSelector", "string",
                   "A selector to restrict the list of returned objects by their labels. "
                   "Defaults to everything."),
       query_param("limit", "integer",
                   "limit is a maximum number of responses to return for a list call."),
       query_param("resourceVersion", "string",
                   "resourceVersion sets a constraint on what resource versions a request may "
                   "be served from."),
       query_param("resourceVersionMatch", "string",
                   "resourceVersionMatch determines how resourceVersion is applied to list "
                   "calls."),
       query_param("timeoutSeconds", "integer",
                   "Timeout for the list/watch call. This limits the duration of the call, "
                   "regardless of any activity or inactivity."),
       query_param("watch", "boolean",
                   "Watch for changes to the described resources and return them as a stream "
                   "of add, update, and remove notifications.")});
}

json delete_params() {
  return json::array(
      {p_dry_run(),
       query_param("gracePeriodSeconds", "integer",
                   "The duration in seconds before the object should be deleted."),
       query_param("orphanDependents", "boolean",
                   "Deprecated: please use the PropagationPolicy, this field will be deprecated "
                   "in 1.7."),
       query_param("propagationPolicy", "string",
                   "Whether and how garbage collection will be performed. Acceptable values "
                   "are: 'Orphan', 'Background', 'Foreground'.")});
}

json json_content(const json& schema) {
  return {{"application/json", {{"schema", schema}}}, {"application/yaml", {{"schema", schema}}}};
}

json response(const char* description, const json& schema) {
  return {{"description", description}, {"content", json_content(schema)}};
}

json gvk_object(std::string_view group, std::string_view version, std::string_view kind) {
  return {{"group", group}, {"version", version}, {"kind", kind}};
}

// Builds the document of one group-version.
class DocumentBuilder {
 public:
  DocumentBuilder(const Registry& registry, std::string group, std::string version,
                  std::vector<std::shared_ptr<const ResourceDef>> defs)
      : registry_(registry),
        group_(std::move(group)),
        version_(std::move(version)),
        defs_(std::move(defs)) {}

  json build() {
    // Kinds first, so that their schemas carry the GVK extension even when another kind's
    // fields also reach them.
    for (const auto& d : defs_) add_kind_schema(*d);
    for (const auto& d : defs_) add_paths(*d);
    drain();
    // The meta types the operations refer to: the built-in definitions when reachable or
    // available, else minimal ones.
    if (need_status_) need_list_meta_ = true;  // Status.metadata refers to ListMeta
    for (auto [needed, name] :
         {std::pair{need_list_meta_, kListMetaName}, std::pair{need_status_, kStatusName},
          std::pair{need_delete_options_, kDeleteOptionsName}}) {
      if (!needed || schemas_.contains(name)) continue;
      if (const TypeDef* t = builtin_named(name); t != nullptr) enqueue(t);
    }
    drain();
    add_meta_schemas();
    return {{"openapi", "3.0.0"},
            {"info", {{"title", "Kubernetes"}, {"version", "unversioned"}}},
            {"paths", std::move(paths_)},
            {"components", {{"schemas", std::move(schemas_)}}}};
  }

 private:
  static std::string kind_schema_name(const ResourceDef& d) {
    return d.type != nullptr ? d.type->name : reversed_group_name(d.group, d.version, d.kind);
  }

  static std::string list_kind(const ResourceDef& d) {
    return d.list_kind.empty() ? d.kind + "List" : d.list_kind;
  }

  static const TypeDef* list_type(const ResourceDef& d) {
    return d.crd ? nullptr : builtin_kind(d.group, d.version, list_kind(d));
  }

  static std::string list_schema_name(const ResourceDef& d) {
    if (const TypeDef* t = list_type(d); t != nullptr) return t->name;
    std::string name = kind_schema_name(d);
    if (name.ends_with(d.kind))
      name.resize(name.size() - d.kind.size());
    else
      name += ".";
    return name + (d.list_kind.empty() ? d.kind + "List" : d.list_kind);
  }

  void add_kind_schema(const ResourceDef& d) {
    const std::string name = kind_schema_name(d);
    json gvk = gvk_object(d.group, d.version, d.kind);
    auto it = schemas_.find(name);
    if (it != schemas_.end()) {
      json& list = (*it)["x-kubernetes-group-version-kind"];
      if (std::find(list.begin(), list.end(), gvk) == list.end()) list.push_back(gvk);
      return;
    }
    json schema;
    if (d.type != nullptr) {
      schema = object_schema(*d.type, 0);
      done_.insert(d.type);
    } else {
      schema = {{"type", "object"}, {"x-kubernetes-preserve-unknown-fields", true}};
    }
    json& props = schema["properties"];
    if (!props.contains("apiVersion")) {
      props["apiVersion"] = {{"type", "string"}, {"description", kApiVersionDescription}};
    }
    if (!props.contains("kind"))
      props["kind"] = {{"type", "string"}, {"description", kKindDescription}};
    if (!props.contains("metadata")) {
      props["metadata"] = {{"type", "object"}, {"description", kMetadataDescription}};
    }
    schema["x-kubernetes-group-version-kind"] = json::array({gvk});
    schemas_[name] = std::move(schema);

    // The list kind, for the list operation's response.
    const std::string list_name = list_schema_name(d);
    const std::string list_kind = DocumentBuilder::list_kind(d);
    if (const TypeDef* t = list_type(d); t != nullptr && !schemas_.contains(list_name)) {
      json list_schema = object_schema(*t, 0);
      list_schema["x-kubernetes-group-version-kind"] =
          json::array({gvk_object(d.group, d.version, list_kind)});
      schemas_[list_name] = std::move(list_schema);
      done_.insert(t);
    } else if (!schemas_.contains(list_name)) {
      json items = {{"type", "array"},
                    {"items", schema_ref(name)},
                    {"description", "List of " + d.resource + "."}};
      schemas_[list_name] = {
          {"description", list_kind + " is a list of " + d.kind + "."},
          {"type", "object"},
          {"required", json::array({"items"})},
          {"properties",
           {{"apiVersion", {{"type", "string"}, {"description", kApiVersionDescription}}},
            {"kind", {{"type", "string"}, {"description", kKindDescription}}},
            {"items", std::move(items)},
            {"metadata", ref_with(kListMetaName, "Standard list metadata.")}}},
          {"x-kubernetes-group-version-kind",
           json::array({gvk_object(d.group, d.version, list_kind)})}};
      need_list_meta_ = true;
    }
  }

  // The schema of a TypeDef as an object: its fields (inline fields flattened) as properties.
  json object_schema(const TypeDef& t, int depth) {
    json schema = {{"type", "object"}};
    if (!t.description.empty()) schema["description"] = t.description;
    json props = json::object();
    json required = json::array();
    add_properties(t, t, props, required, depth, 0);
    if (!props.empty()) schema["properties"] = std::move(props);
    if (!required.empty()) schema["required"] = std::move(required);
    if (t.preserve_unknown_fields) schema["x-kubernetes-preserve-unknown-fields"] = true;
    return schema;
  }

  void add_properties(const TypeDef& owner, const TypeDef& t, json& props, json& required,
                      int depth, int inline_depth) {
    for (const FieldDef& f : t.fields) {
      if (f.inline_fields && f.type != nullptr) {
        // Go-embedded structs are flattened in JSON, and so in the schema. TypeDef::finalize
        // bounds inline chains the same way.
        if (inline_depth < 8)
          add_properties(owner, *f.type, props, required, depth, inline_depth + 1);
        continue;
      }
      if (props.contains(f.name)) continue;
      props[f.name] = field_schema(owner, f, depth);
      if (!f.optional) required.push_back(f.name);
    }
  }

  // True for the types of a CRD schema nested in their parent ("<parent>.<field>"), which
  // Kubernetes publishes inline rather than as components.
  static bool is_anonymous(const TypeDef& parent, const FieldDef& f) {
    const std::string& n = f.type->name;
    return n.size() == parent.name.size() + 1 + f.name.size() && n.starts_with(parent.name) &&
           n[parent.name.size()] == '.' && n.ends_with(f.name);
  }

  json element_schema(const TypeDef& parent, const FieldDef& f, int depth) {
    json s;
    switch (effective_kind(f)) {
      case ValueKind::kString:
        s = {{"type", "string"}};
        break;
      case ValueKind::kBool:
        s = {{"type", "boolean"}};
        break;
      case ValueKind::kInt32:
        s = {{"type", "integer"}, {"format", "int32"}};
        break;
      case ValueKind::kInt64:
        s = {{"type", "integer"}, {"format", "int64"}};
        break;
      case ValueKind::kDouble:
        s = {{"type", "number"}, {"format", "double"}};
        break;
      case ValueKind::kBytes:
        s = {{"type", "string"}, {"format", "byte"}};
        break;
      case ValueKind::kDuration:
        s = {{"type", "string"}};
        break;
      case ValueKind::kAny:
        s = {{"x-kubernetes-preserve-unknown-fields", true}};
        break;
      case ValueKind::kQuantity:
        use_well_known(kQuantityName);
        return schema_ref(kQuantityName);
      case ValueKind::kIntOrString:
        use_well_known(kIntOrStringName);
        return schema_ref(kIntOrStringName);
      case ValueKind::kTime:
        use_well_known(kTimeName);
        return schema_ref(kTimeName);
      case ValueKind::kMicroTime:
        use_well_known(kMicroTimeName);
        return schema_ref(kMicroTimeName);
      case ValueKind::kRawExtension:
        use_well_known(kRawExtensionName);
        return schema_ref(kRawExtensionName);
      case ValueKind::kObject:
        if (f.type == nullptr) {
          s = {{"type", "object"}, {"x-kubernetes-preserve-unknown-fields", true}};
          break;
        }
        if (is_anonymous(parent, f)) {
          if (depth >= kMaxNestingDepth) return {{"type", "object"}};
          json inner = object_schema(*f.type, depth + 1);
          inner.erase("description");  // the property carries the field's description
          return inner;
        }
        enqueue(f.type);
        return schema_ref(f.type->name);
    }
    if (!f.enum_values.empty()) s["enum"] = f.enum_values;
    return s;
  }

  json field_schema(const TypeDef& parent, const FieldDef& f, int depth) {
    json elem = element_schema(parent, f, depth);
    json s;
    switch (f.shape) {
      case Shape::kScalar:
        s = std::move(elem);
        break;
      case Shape::kList:
        s = {{"type", "array"}, {"items", std::move(elem)}};
        break;
      case Shape::kMap:
        if (f.list_wrapper) elem = {{"type", "array"}, {"items", {{"type", "string"}}}};
        s = {{"type", "object"}, {"additionalProperties", std::move(elem)}};
        break;
    }
    json extra = json::object();
    if (!f.description.empty()) extra["description"] = f.description;
    if (!f.patch_merge_key.empty()) extra["x-kubernetes-patch-merge-key"] = f.patch_merge_key;
    if (!f.patch_strategy.empty()) extra["x-kubernetes-patch-strategy"] = f.patch_strategy;
    if (!f.list_type.empty()) extra["x-kubernetes-list-type"] = f.list_type;
    if (!f.list_map_keys.empty()) extra["x-kubernetes-list-map-keys"] = f.list_map_keys;
    if (extra.empty()) return s;
    // OpenAPI 3.0 ignores the siblings of $ref, so Kubernetes wraps the reference in allOf.
    if (s.contains("$ref")) s = {{"allOf", json::array({std::move(s)})}};
    s.update(extra);
    return s;
  }

  void enqueue(const TypeDef* t) {
    if (done_.insert(t).second) pending_.push_back(t);
  }

  void drain() {
    while (!pending_.empty()) {
      const TypeDef* t = pending_.front();
      pending_.pop_front();
      if (schemas_.contains(t->name)) continue;
      schemas_[t->name] = object_schema(*t, 0);
    }
  }

  void use_well_known(std::string_view name) { well_known_.insert(std::string(name)); }

  void put_if_absent(std::string_view name, json schema) {
    if (!schemas_.contains(name)) schemas_[std::string(name)] = std::move(schema);
  }

  void add_meta_schemas() {
    for (const std::string& name : well_known_) {
      if (name == kQuantityName) {
        put_if_absent(name, {{"description",
                              "Quantity is a fixed-point representation of a number. It provides "
                              "convenient marshaling/unmarshaling in JSON and YAML, in addition "
                              "to String() and AsInt64() accessors. Examples: \"500m\", \"1Gi\", "
                              "\"1.5\"."},
                             {"oneOf", json::array({{{"type", "string"}}, {{"type", "number"}}})}});
      } else if (name == kIntOrStringName) {
        put_if_absent(name, {{"description",
                              "IntOrString is a type that can hold an int32 or a string.  When "
                              "used in JSON or YAML marshalling and unmarshalling, it produces or "
                              "consumes the inner type.  This allows you to have, for example, a "
                              "JSON field that can accept a name or number."},
                             {"format", "int-or-string"},
                             {"oneOf", json::array({{{"type", "integer"}}, {{"type", "string"}}})},
                             {"x-kubernetes-int-or-string", true}});
      } else if (name == kTimeName) {
        put_if_absent(name, {{"description",
                              "Time is a wrapper around time.Time which supports correct "
                              "marshaling to YAML and JSON.  Wrappers are provided for many of "
                              "the factory methods that the time package offers."},
                             {"type", "string"},
                             {"format", "date-time"}});
      } else if (name == kMicroTimeName) {
        put_if_absent(name, {{"description",
                              "MicroTime is version of Time with microsecond level precision."},
                             {"type", "string"},
                             {"format", "date-time"}});
      } else if (name == kRawExtensionName) {
        put_if_absent(name, {{"description",
                              "RawExtension is used to hold extensions in external versions: an "
                              "embedded object, serialized as JSON."},
                             {"type", "object"},
                             {"x-kubernetes-preserve-unknown-fields", true}});
      }
    }
    if (need_list_meta_) {
      put_if_absent(
          kListMetaName,
          {{"description",
            "ListMeta describes metadata that synthetic resources must have, including lists and "
            "various status objects."},
           {"type", "object"},
           {"properties",
            {{"continue",
              {{"type", "string"},
               {"description",
                "continue may be set if the user set a limit on the number of items returned."}}},
             {"remainingItemCount",
              {{"type", "integer"},
               {"format", "int64"},
               {"description",
                "remainingItemCount is the number of subsequent items in the list which are not "
                "included in this list response."}}},
             {"resourceVersion",
              {{"type", "string"},
               {"description",
                "String that identifies the server's internal version of this object that can be "
                "used by clients to determine when objects have changed."}}},
             {"selfLink",
              {{"type", "string"},
               {"description",
                "Deprecated: selfLink is a legacy read-only field that is no longer populated by "
                "the system."}}}}}});
    }
    if (need_status_) {
      put_if_absent(
          kStatusName,
          {{"description", "Status is a return value for calls that don't return other objects."},
           {"type", "object"},
           {"properties",
            {{"apiVersion", {{"type", "string"}, {"description", kApiVersionDescription}}},
             {"kind", {{"type", "string"}, {"description", kKindDescription}}},
             {"code",
              {{"type", "integer"},
               {"format", "int32"},
               {"description", "Suggested HTTP return code for this status, 0 if not set."}}},
             {"details",
              {{"type", "object"},
               {"x-kubernetes-preserve-unknown-fields", true},
               {"description", "Extended data associated with the reason."}}},
             {"message",
              {{"type", "string"},
               {"description", "A human-readable description of the status of this operation."}}},
             {"metadata", ref_with(kListMetaName, "Standard list metadata.")},
             {"reason",
              {{"type", "string"},
               {"description",
                "A machine-readable description of why this operation is in the \"Failure\" "
                "status."}}},
             {"status",
              {{"type", "string"},
               {"description", "Status of the operation. One of: \"Success\" or \"Failure\"."}}}}},
           {"x-kubernetes-group-version-kind", json::array({gvk_object("", "v1", "Status")})}});
    }
    if (need_delete_options_) {
      put_if_absent(
          kDeleteOptionsName,
          {{"description", "DeleteOptions may be provided when deleting an API object."},
           {"type", "object"},
           {"properties",
            {{"apiVersion", {{"type", "string"}, {"description", kApiVersionDescription}}},
             {"kind", {{"type", "string"}, {"description", kKindDescription}}},
             {"dryRun",
              {{"type", "array"},
               {"items", {{"type", "string"}}},
               {"description",
                "When present, indicates that modifications should not be persisted."}}},
             {"gracePeriodSeconds",
              {{"type", "integer"},
               {"format", "int64"},
               {"description", "The duration in seconds before the object should be deleted."}}},
             {"orphanDependents",
              {{"type", "boolean"},
               {"description", "Deprecated: please use the PropagationPolicy."}}},
             {"preconditions",
              {{"type", "object"},
               {"description", "Must be fulfilled before a deletion is carried out."},
               {"properties",
                {{"resourceVersion", {{"type", "string"}}}, {"uid", {{"type", "string"}}}}}}},
             {"propagationPolicy",
              {{"type", "string"},
               {"description",
                "Whether and how garbage collection will be performed: 'Orphan', 'Background' or "
                "'Foreground'."}}}}},
           {"x-kubernetes-group-version-kind",
            json::array({gvk_object("", "v1", "DeleteOptions")})}});
    }
    if (need_patch_) {
      put_if_absent(kPatchName,
                    {{"description",
                      "Patch is provided to give a concrete name and type to the Kubernetes "
                      "PATCH request body."},
                     {"type", "object"}});
    }
  }

  // The schema (and GVK) of a subresource's body, when it has a kind.
  json subresource_schema(const ResourceDef& d, const SubresourceDef& sub) {
    if (sub.kind == d.kind && sub.group == d.group && sub.version == d.version) {
      return schema_ref(kind_schema_name(d));
    }
    auto target = registry_.find_kind(sub.group, sub.version, sub.kind);
    const TypeDef* t =
        target != nullptr ? target->type : builtin_kind(sub.group, sub.version, sub.kind);
    if (t != nullptr) {
      if (!schemas_.contains(t->name)) {
        json s = object_schema(*t, 0);
        done_.insert(t);
        json& props = s["properties"];
        if (!props.contains("apiVersion")) {
          props["apiVersion"] = {{"type", "string"}, {"description", kApiVersionDescription}};
        }
        if (!props.contains("kind")) {
          props["kind"] = {{"type", "string"}, {"description", kKindDescription}};
        }
        s["x-kubernetes-group-version-kind"] =
            json::array({gvk_object(sub.group, sub.version, sub.kind)});
        schemas_[t->name] = std::move(s);
      }
      return schema_ref(t->name);
    }
    return {{"type", "object"}, {"x-kubernetes-preserve-unknown-fields", true}};
  }

  void add_paths(const ResourceDef& d) {
    const bool namespaced = d.namespaced();
    const std::string prefix =
        d.group.empty() ? "/api/" + d.version : "/apis/" + d.group + "/" + d.version;
    const std::string collection =
        prefix + (namespaced ? "/namespaces/{namespace}/" : "/") + d.resource;
    const std::string item = collection + "/{name}";
    const std::string id_suffix =
        group_camel(d.group) + capitalize(d.version) + (namespaced ? "Namespaced" : "") + d.kind;
    const json gvk = gvk_object(d.group, d.version, d.kind);
    const json kind_ref = schema_ref(kind_schema_name(d));
    const json list_ref = schema_ref(list_schema_name(d));
    const json tags = json::array({group_tag(d.group, d.version)});
    auto has = [&](std::string_view verb) {
      return std::find(d.verbs.begin(), d.verbs.end(), verb) != d.verbs.end();
    };
    const json name_param = path_param("name", "name of the " + d.kind);
    const json ns_param =
        path_param("namespace", "object name and auth scope, such as for teams and projects");
    const json pretty = query_param("pretty", "string",
                                    "If 'true', then the output is pretty printed. Defaults to "
                                    "'false' unless the user-agent indicates a browser or "
                                    "command-line HTTP tool (curl and wget).");

    auto op = [&](std::string action, std::string id, std::string description, json params,
                  json gvk_ext) {
      json o = {{"tags", tags},
                {"description", std::move(description)},
                {"operationId", std::move(id)},
                {"responses", json::object()},
                {"x-kubernetes-action", std::move(action)},
                {"x-kubernetes-group-version-kind", std::move(gvk_ext)}};
      if (!params.empty()) o["parameters"] = std::move(params);
      o["responses"]["401"] = {{"description", "Unauthorized"}};
      return o;
    };
    auto body = [](const json& schema) {
      return json{{"content", {{"*/*", {{"schema", schema}}}}}, {"required", true}};
    };
    auto patch_body = [&]() {
      need_patch_ = true;
      const json patch = schema_ref(kPatchName);
      return json{{"content",
                   {{"application/apply-patch+yaml", {{"schema", patch}}},
                    {"application/json-patch+json", {{"schema", patch}}},
                    {"application/merge-patch+json", {{"schema", patch}}}}},
                  {"required", true}};
    };

    json coll_item = json::object();
    if (has("list")) {
      json o = op("list", "list" + id_suffix, "list or watch objects of kind " + d.kind,
                  list_params(), gvk);
      o["responses"]["200"] = response("OK", list_ref);
      coll_item["get"] = std::move(o);
    }
    if (has("create")) {
      json o = op("post", "create" + id_suffix, "create a " + d.kind,
                  json::array({p_dry_run(), p_field_manager(), p_field_validation()}), gvk);
      o["requestBody"] = body(kind_ref);
      o["responses"]["200"] = response("OK", kind_ref);
      o["responses"]["201"] = response("Created", kind_ref);
      o["responses"]["202"] = response("Accepted", kind_ref);
      coll_item["post"] = std::move(o);
    }
    if (has("deletecollection")) {
      need_status_ = need_delete_options_ = true;
      json params = delete_params();
      for (json& p : list_params()) params.push_back(std::move(p));
      json o = op("deletecollection",
                  "delete" + group_camel(d.group) + capitalize(d.version) + "Collection" +
                      (namespaced ? "Namespaced" : "") + d.kind,
                  "delete collection of " + d.kind, std::move(params), gvk);
      o["requestBody"] = {{"content", {{"*/*", {{"schema", schema_ref(kDeleteOptionsName)}}}}}};
      o["responses"]["200"] = response("OK", schema_ref(kStatusName));
      coll_item["delete"] = std::move(o);
    }
    if (!coll_item.empty()) {
      coll_item["parameters"] =
          namespaced ? json::array({ns_param, pretty}) : json::array({pretty});
      paths_[collection] = std::move(coll_item);
    }

    json item_path = json::object();
    if (has("get")) {
      json o = op("get", "read" + id_suffix, "read the specified " + d.kind, json::array(), gvk);
      o["responses"]["200"] = response("OK", kind_ref);
      item_path["get"] = std::move(o);
    }
    if (has("update")) {
      json o = op("put", "replace" + id_suffix, "replace the specified " + d.kind,
                  json::array({p_dry_run(), p_field_manager(), p_field_validation()}), gvk);
      o["requestBody"] = body(kind_ref);
      o["responses"]["200"] = response("OK", kind_ref);
      o["responses"]["201"] = response("Created", kind_ref);
      item_path["put"] = std::move(o);
    }
    if (has("patch")) {
      json o =
          op("patch", "patch" + id_suffix, "partially update the specified " + d.kind,
             json::array({p_dry_run(), p_field_manager(), p_field_validation(), p_force()}), gvk);
      o["requestBody"] = patch_body();
      o["responses"]["200"] = response("OK", kind_ref);
      o["responses"]["201"] = response("Created", kind_ref);
      item_path["patch"] = std::move(o);
    }
    if (has("delete")) {
      need_status_ = need_delete_options_ = true;
      json o = op("delete", "delete" + id_suffix, "delete a " + d.kind, delete_params(), gvk);
      o["requestBody"] = {{"content", {{"*/*", {{"schema", schema_ref(kDeleteOptionsName)}}}}}};
      o["responses"]["200"] = response("OK", schema_ref(kStatusName));
      o["responses"]["202"] = response("Accepted", schema_ref(kStatusName));
      item_path["delete"] = std::move(o);
    }
    const json item_params = namespaced ? json::array({name_param, ns_param, pretty})
                                        : json::array({name_param, pretty});
    if (!item_path.empty()) {
      item_path["parameters"] = item_params;
      paths_[item] = std::move(item_path);
    }

    if (namespaced && has("list")) {
      json o =
          op("list",
             "list" + group_camel(d.group) + capitalize(d.version) + d.kind + "ForAllNamespaces",
             "list or watch objects of kind " + d.kind, list_params(), gvk);
      o["responses"]["200"] = response("OK", list_ref);
      paths_[prefix + "/" + d.resource] = {{"get", std::move(o)},
                                           {"parameters", json::array({pretty})}};
    }

    for (const SubresourceDef& sub : d.subresources) {
      if (sub.kind.empty()) continue;  // streaming subresources (log, exec, ...) have no schema
      const json sub_ref = subresource_schema(d, sub);
      const json sub_gvk = gvk_object(sub.group, sub.version, sub.kind);
      const std::string sub_id = id_suffix + capitalize(sub.name);
      auto sub_has = [&](std::string_view verb) {
        return std::find(sub.verbs.begin(), sub.verbs.end(), verb) != sub.verbs.end();
      };
      json p = json::object();
      if (sub_has("get")) {
        json o = op("get", "read" + sub_id, "read " + sub.name + " of the specified " + d.kind,
                    json::array(), sub_gvk);
        o["responses"]["200"] = response("OK", sub_ref);
        p["get"] = std::move(o);
      }
      if (sub_has("update")) {
        json o =
            op("put", "replace" + sub_id, "replace " + sub.name + " of the specified " + d.kind,
               json::array({p_dry_run(), p_field_manager(), p_field_validation()}), sub_gvk);
        o["requestBody"] = body(sub_ref);
        o["responses"]["200"] = response("OK", sub_ref);
        o["responses"]["201"] = response("Created", sub_ref);
        p["put"] = std::move(o);
      }
      if (sub_has("patch")) {
        json o = op("patch", "patch" + sub_id,
                    "partially update " + sub.name + " of the specified " + d.kind,
                    json::array({p_dry_run(), p_field_manager(), p_field_validation(), p_force()}),
                    sub_gvk);
        o["requestBody"] = patch_body();
        o["responses"]["200"] = response("OK", sub_ref);
        o["responses"]["201"] = response("Created", sub_ref);
        p["patch"] = std::move(o);
      }
      if (sub_has("create")) {
        json o = op("post", "create" + sub_id, "create " + sub.name + " of a " + d.kind,
                    json::array({p_dry_run(), p_field_manager(), p_field_validation()}), sub_gvk);
        o["requestBody"] = body(sub_ref);
        o["responses"]["200"] = response("OK", sub_ref);
        o["responses"]["201"] = response("Created", sub_ref);
        o["responses"]["202"] = response("Accepted", sub_ref);
        p["post"] = std::move(o);
      }
      if (!p.empty()) {
        p["parameters"] = item_params;
        paths_[item + "/" + sub.name] = std::move(p);
      }
    }
  }

  const Registry& registry_;
  const std::string group_, version_;
  const std::vector<std::shared_ptr<const ResourceDef>> defs_;
  json paths_ = json::object();
  json schemas_ = json::object();
  std::set<const TypeDef*> done_;
  std::deque<const TypeDef*> pending_;
  std::set<std::string> well_known_;
  bool need_list_meta_ = false;
  bool need_status_ = false;
  bool need_delete_options_ = false;
  bool need_patch_ = false;
};

std::vector<std::shared_ptr<const ResourceDef>> defs_of(
    const std::vector<std::shared_ptr<const ResourceDef>>& all, std::string_view group,
    std::string_view version) {
  std::vector<std::shared_ptr<const ResourceDef>> out;
  for (const auto& d : all) {
    if (d->group == group && d->version == version) out.push_back(d);
  }
  return out;
}

json build_document(const Registry& registry, const GroupVersion& gv,
                    std::vector<std::shared_ptr<const ResourceDef>> defs) {
  return DocumentBuilder(registry, gv.group, gv.version, std::move(defs)).build();
}

std::string server_relative_url(const std::string& path, const std::string& hash) {
  return "/openapi/v3/" + path + "?hash=" + hash;
}

std::string serialize(const json& doc) {
  return doc.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

json openapi_v3_index(const Registry& registry) {
  const auto all = registry.all();
  json paths = json::object();
  for (const GroupVersion& gv : registry.group_versions()) {
    const std::string path = openapi_v3_path(gv.group, gv.version);
    const std::string hash = openapi_v3_hash(
        serialize(build_document(registry, gv, defs_of(all, gv.group, gv.version))));
    paths[path] = {{"serverRelativeURL", server_relative_url(path, hash)}};
  }
  return {{"paths", std::move(paths)}};
}

Result<json> openapi_v3_document(const Registry& registry, std::string_view group,
                                 std::string_view version) {
  auto defs = defs_of(registry.all(), group, version);
  if (defs.empty()) {
    return Status::NotFound("no OpenAPI v3 document for " + openapi_v3_path(group, version));
  }
  return build_document(registry, GroupVersion{std::string(group), std::string(version)},
                        std::move(defs));
}

OpenApiV3Cache::OpenApiV3Cache(const Registry& registry) : registry_(registry) {}
OpenApiV3Cache::~OpenApiV3Cache() = default;

std::shared_ptr<const OpenApiV3Cache::Snapshot> OpenApiV3Cache::current() {
  const uint64_t generation = registry_.generation();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (snapshot_ != nullptr && snapshot_->generation == generation) return snapshot_;
  }
  std::lock_guard<std::mutex> build_lock(build_mu_);
  {
    // Another thread may have built this generation while this one waited.
    std::lock_guard<std::mutex> lock(mu_);
    if (snapshot_ != nullptr && snapshot_->generation == generation) return snapshot_;
  }
  // The generation is read before the contents: a change in between only makes the next call
  // rebuild again, never serves stale content as current.
  std::shared_ptr<const Snapshot> previous;
  {
    std::lock_guard<std::mutex> lock(mu_);
    previous = snapshot_;
  }
  auto next = std::make_shared<Snapshot>();
  next->generation = generation;
  const auto all = registry_.all();
  std::vector<GroupVersion> gvs;
  for (const auto& d : all) {
    bool seen = std::any_of(gvs.begin(), gvs.end(), [&](const GroupVersion& gv) {
      return gv.group == d->group && gv.version == d->version;
    });
    if (!seen) gvs.push_back({d->group, d->version});
  }
  json paths = json::object();
  for (const GroupVersion& gv : gvs) {
    const std::string path = openapi_v3_path(gv.group, gv.version);
    Entry entry;
    entry.defs = defs_of(all, gv.group, gv.version);
    if (previous != nullptr) {
      auto it = previous->documents.find(path);
      if (it != previous->documents.end() && it->second.defs == entry.defs) {
        entry.document = it->second.document;
      }
    }
    if (entry.document == nullptr) {
      auto doc = std::make_shared<Document>();
      doc->body = serialize(build_document(registry_, gv, entry.defs));
      doc->hash = openapi_v3_hash(doc->body);
      entry.document = std::move(doc);
    }
    paths[path] = {{"serverRelativeURL", server_relative_url(path, entry.document->hash)}};
    next->documents.emplace(path, std::move(entry));
  }
  next->index = std::make_shared<const std::string>(serialize(json{{"paths", std::move(paths)}}));
  std::lock_guard<std::mutex> lock(mu_);
  snapshot_ = next;
  return next;
}

std::shared_ptr<const std::string> OpenApiV3Cache::index() { return current()->index; }

Result<std::shared_ptr<const OpenApiV3Cache::Document>> OpenApiV3Cache::document(
    std::string_view path) {
  auto gv = parse_openapi_v3_path(path);
  if (!gv) return Status::NotFound("no OpenAPI v3 document at " + std::string(path));
  return document(gv->group, gv->version);
}

Result<std::shared_ptr<const OpenApiV3Cache::Document>> OpenApiV3Cache::document(
    std::string_view group, std::string_view version) {
  auto snap = current();
  const std::string path = openapi_v3_path(group, version);
  auto it = snap->documents.find(path);
  if (it == snap->documents.end()) {
    return Status::NotFound("no OpenAPI v3 document for " + path);
  }
  return it->second.document;
}

}  // namespace skiff::api
