#include <utility>

#include "api/builtin/builtin.h"
#include "common/strings.h"
#include "common/time.h"

namespace skiff::api::builtin {

const char* const kNameDescription =
    "Name must be unique within a namespace. Is required when creating resources, although some "
    "resources may allow a client to request the generation of an appropriate name "
    "automatically. Name is primarily intended for creation idempotence and configuration "
    "definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";

const char* const kCreationTimestampDescription =
    "CreationTimestamp is a timestamp representing the server time when this object was "
    "created. It is not guaranteed to be set in happens-before order across separate "
    "operations. Clients may not set this value. It is represented in RFC3339 form and is in "
    "UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/"
    "api-conventions.md#metadata";

std::vector<std::string> all_verbs() {
  return {"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"};
}
std::vector<std::string> create_only() { return {"create"}; }

const TypeDef* Docs::type(std::string_view name) const {
  return schema_ == nullptr ? nullptr : schema_->type(name);
}

std::string Docs::field(std::string_view type_name, std::string_view field_name) const {
  const TypeDef* t = type(type_name);
  if (t == nullptr) return "";
  const FieldDef* f = t->field(field_name);
  return f == nullptr ? "" : std::string(f->description);
}

ColumnDef name_column() { return {"Name", "string", "name", kNameDescription, 0}; }

ColumnDef age_column() { return {"Age", "string", "", kCreationTimestampDescription, 0}; }

ColumnDef column(std::string name, std::string type, std::string description, int priority) {
  return {std::move(name), std::move(type), "", std::move(description), priority};
}

std::vector<ColumnDef> default_columns() {
  return {name_column(), {"Created At", "date", "", kCreationTimestampDescription, 0}};
}

std::vector<json> default_row(const json& obj, int64_t /*now*/) {
  // metav1.Time's zero value formats as Go's zero time.
  std::string created = "0001-01-01T00:00:00Z";
  if (Result<Timestamp> t = parse_rfc3339_timestamp(str_at(obj, {"metadata", "creationTimestamp"}));
      t.ok()) {
    created = format_rfc3339(*t, 0).value_or(created);
  }
  return {str_at(obj, {"metadata", "name"}), created};
}

std::string since(const json* timestamp, int64_t now) {
  if (timestamp == nullptr || !timestamp->is_string()) return "<unknown>";
  Result<Timestamp> t = parse_rfc3339_timestamp(timestamp->get<std::string>());
  if (!t.ok()) return "<unknown>";
  return human_duration_seconds(now - t->seconds);
}

std::string age_cell(const json& obj, int64_t now) {
  return since(at(obj, {"metadata", "creationTimestamp"}), now);
}

std::pair<std::string, std::string> container_cells(const json* containers) {
  std::string names, images;
  if (containers == nullptr || !containers->is_array()) return {names, images};
  for (size_t i = 0; i < containers->size(); ++i) {
    const json& c = (*containers)[i];
    if (i > 0) {
      names += ",";
      images += ",";
    }
    names += str_at(c, {"name"});
    images += str_at(c, {"image"});
  }
  return {names, images};
}

SubresourceDef status_subresource(const std::string& group, const std::string& kind) {
  return {"status", group, "v1", kind, {"get", "patch", "update"}};
}

SubresourceDef scale_subresource() {
  return {"scale", "autoscaling", "v1", "Scale", {"get", "patch", "update"}};
}

std::function<Status(const json&, const json*)> make_validator(std::string kind, std::string group,
                                                               bool namespaced, NameRule rule,
                                                               SpecValidator spec) {
  return [kind = std::move(kind), group = std::move(group), namespaced, rule,
          spec = std::move(spec)](const json& obj, const json* old) -> Status {
    FieldErrors errs;
    if (old == nullptr) {
      validate_object_meta(obj, namespaced, rule, errs);
    } else {
      validate_object_meta_update(obj, *old, errs);
    }
    if (spec) spec(obj, old, errs);
    return errs.to_status(kind, group, str_at(obj, {"metadata", "name"}));
  };
}

std::shared_ptr<ResourceDef> new_resource(const Docs& docs, std::string_view type_prefix,
                                          std::string group, std::string kind, std::string resource,
                                          Scope scope) {
  auto def = std::make_shared<ResourceDef>();
  def->group = std::move(group);
  def->version = "v1";
  def->kind = kind;
  def->list_kind = kind + "List";
  def->resource = std::move(resource);
  def->singular = ascii_lower(kind);
  def->scope = scope;
  def->verbs = all_verbs();
  def->type = docs.type(std::string(type_prefix) + "." + kind);
  def->columns = default_columns();
  def->row = default_row;
  return def;
}

void ensure_status(json& obj) {
  if (!obj.is_object()) return;
  json& status = obj["status"];
  if (!status.is_object()) status = json::object();
}

}  // namespace skiff::api::builtin
