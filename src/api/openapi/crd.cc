#include "api/openapi/crd.h"

#include <algorithm>
#include <deque>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "api/schema.h"
#include "common/json.h"
#include "common/names.h"
#include "common/strings.h"
#include "common/time.h"

namespace skiff::api {

using nlohmann::json;

namespace {

// ---------------------------------------------------------------------------------------------
// Field errors, worded as k8s.io/apimachinery/pkg/util/validation/field: strings as %q, other
// values as JSON.

std::string value_text(const json& v) {
  return v.is_string() ? go_quote(v.get_ref<const std::string&>()) : to_json(v);
}

class FieldErrors {
 public:
  void invalid(std::string field, const json& value, std::string detail) {
    add("FieldValueInvalid", std::move(field),
        "Invalid value: " + value_text(value) + ": " + detail);
  }
  void required(std::string field, std::string detail = "") {
    add("FieldValueRequired", std::move(field),
        detail.empty() ? "Required value" : "Required value: " + detail);
  }
  void not_supported(std::string field, const json& value,
                     const std::vector<std::string>& allowed) {
    std::string msg = "Unsupported value: " + value_text(value) + ": supported values: ";
    for (size_t i = 0; i < allowed.size(); i++) {
      if (i > 0) msg += ", ";
      msg += go_quote(allowed[i]);
    }
    add("FieldValueNotSupported", std::move(field), std::move(msg));
  }
  void duplicate(std::string field, const json& value) {
    add("FieldValueDuplicate", std::move(field), "Duplicate value: " + value_text(value));
  }
  void forbidden(std::string field, std::string detail) {
    add("FieldValueForbidden", std::move(field), "Forbidden: " + detail);
  }
  bool empty() const { return causes_.empty(); }

  // The Invalid status apierrors.NewInvalid builds for the CRD `name`.
  static Status to_status(std::string_view name, const std::vector<StatusCause>& causes) {
    if (causes.empty()) return Status::Ok();
    std::string list;
    for (size_t i = 0; i < causes.size(); i++) {
      if (i > 0) list += ", ";
      list += causes[i].field + ": " + causes[i].message;
    }
    if (causes.size() > 1) list = "[" + list + "]";
    Status s = Status::Invalid("CustomResourceDefinition.apiextensions.k8s.io " + go_quote(name) +
                               " is invalid: " + list);
    for (const StatusCause& c : causes) s.add_cause(c);
    return s;
  }

  std::vector<StatusCause> take() && { return std::move(causes_); }

 private:
  void add(const char* reason, std::string field, std::string message) {
    causes_.push_back({reason, std::move(message), std::move(field)});
  }
  std::vector<StatusCause> causes_;
};

const json* member(const json& obj, std::string_view key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

std::string string_member(const json& obj, std::string_view key) {
  const json* v = member(obj, key);
  return v != nullptr && v->is_string() ? v->get<std::string>() : std::string();
}

bool bool_member(const json& obj, std::string_view key) {
  const json* v = member(obj, key);
  return v != nullptr && v->is_boolean() && v->get<bool>();
}

// The detail Kubernetes gives a kind or listKind that is not an RFC 1035 label once lowercased.
std::string mixed_case_message(const std::vector<std::string>& problems) {
  std::string out = "may have mixed case, but should otherwise match: ";
  for (size_t i = 0; i < problems.size(); i++) {
    if (i > 0) out += ",";
    out += problems[i];
  }
  return out;
}

const std::vector<std::string>& schema_types() {
  static const std::vector<std::string> v{"array",  "boolean", "integer",
                                          "number", "object",  "string"};
  return v;
}

void validate_schema_node(const json& node, const std::string& path, bool root, int depth,
                          FieldErrors& errs) {
  if (!node.is_object()) {
    errs.invalid(path, node, "must be an object");
    return;
  }
  if (depth > kMaxNestingDepth) {
    errs.invalid(path, "object", "schema nesting is too deep");
    return;
  }
  const std::string type = string_member(node, "type");
  const bool int_or_string = bool_member(node, "x-kubernetes-int-or-string");
  const bool preserve = bool_member(node, "x-kubernetes-preserve-unknown-fields");
  if (const json* t = member(node, "type"); t != nullptr && !t->is_string()) {
    errs.invalid(path + ".type", *t, "must be a string");
  }
  if (root) {
    if (type.empty()) {
      errs.required(path + ".type", "must not be empty at the root");
    } else if (type != "object") {
      errs.invalid(path + ".type", type, "must be object at the root");
    }
  } else if (type.empty() && !int_or_string && !preserve) {
    errs.required(path + ".type", "must not be empty for specified object fields");
  }
  if (!type.empty() &&
      std::find(schema_types().begin(), schema_types().end(), type) == schema_types().end()) {
    errs.not_supported(path + ".type", type, schema_types());
  }
  const json* props = member(node, "properties");
  const json* additional = member(node, "additionalProperties");
  if (props != nullptr && additional != nullptr &&
      !(additional->is_boolean() && !additional->get<bool>())) {
    errs.forbidden(path + ".additionalProperties",
                   "additionalProperties and properties are mutual exclusive");
  }
  if (props != nullptr) {
    if (!props->is_object()) {
      errs.invalid(path + ".properties", *props, "must be an object");
    } else {
      for (auto it = props->begin(); it != props->end(); ++it) {
        validate_schema_node(it.value(), path + ".properties[" + it.key() + "]", false, depth + 1,
                             errs);
      }
    }
  }
  if (additional != nullptr && additional->is_object()) {
    validate_schema_node(*additional, path + ".additionalProperties", false, depth + 1, errs);
  }
  const json* items = member(node, "items");
  if (type == "array") {
    if (items == nullptr) {
      errs.required(path + ".items", "must be specified");
    } else if (items->is_object()) {
      validate_schema_node(*items, path + ".items", false, depth + 1, errs);
    } else {
      errs.invalid(path + ".items", *items, "must be a schema object");
    }
  }
}

const std::vector<std::string>& column_types() {
  static const std::vector<std::string> v{"boolean", "date", "integer", "number", "string"};
  return v;
}
const std::vector<std::string>& column_formats() {
  static const std::vector<std::string> v{"byte",  "date",  "date-time", "double",
                                          "float", "int32", "int64",     "password"};
  return v;
}

void validate_version(const json& v, const std::string& path, FieldErrors& errs) {
  const std::string name = string_member(v, "name");
  if (name.empty()) {
    errs.required(path + ".name");
  } else {
    for (const std::string& e : is_dns1035_label(name)) errs.invalid(path + ".name", name, e);
  }
  const json* schema = member(v, "schema");
  const json* open_api = schema != nullptr ? member(*schema, "openAPIV3Schema") : nullptr;
  if (open_api == nullptr) {
    errs.required(path + ".schema.openAPIV3Schema", "schemas are required");
  } else {
    validate_schema_node(*open_api, path + ".schema.openAPIV3Schema", true, 0, errs);
  }
  if (const json* cols = member(v, "additionalPrinterColumns"); cols != nullptr) {
    if (!cols->is_array()) {
      errs.invalid(path + ".additionalPrinterColumns", *cols, "must be a list");
    } else {
      for (size_t i = 0; i < cols->size(); i++) {
        const json& c = (*cols)[i];
        const std::string cpath = path + ".additionalPrinterColumns[" + std::to_string(i) + "]";
        if (string_member(c, "name").empty()) errs.required(cpath + ".name");
        const std::string type = string_member(c, "type");
        if (type.empty()) {
          errs.required(cpath + ".type", "must be one of boolean,date,integer,number,string");
        } else if (std::find(column_types().begin(), column_types().end(), type) ==
                   column_types().end()) {
          errs.not_supported(cpath + ".type", type, column_types());
        }
        const std::string format = string_member(c, "format");
        if (!format.empty() && std::find(column_formats().begin(), column_formats().end(),
                                         format) == column_formats().end()) {
          errs.not_supported(cpath + ".format", format, column_formats());
        }
        if (string_member(c, "jsonPath").empty()) errs.required(cpath + ".JSONPath");
      }
    }
  }
  if (const json* sub = member(v, "subresources"); sub != nullptr) {
    if (const json* scale = member(*sub, "scale"); scale != nullptr) {
      const std::string spath = path + ".subresources.scale";
      const std::string spec_path = string_member(*scale, "specReplicasPath");
      const std::string status_path = string_member(*scale, "statusReplicasPath");
      if (spec_path.empty()) {
        errs.required(spath + ".specReplicasPath");
      } else if (!spec_path.starts_with(".spec.")) {
        errs.invalid(spath + ".specReplicasPath", spec_path, "should be a json path under .spec");
      }
      if (status_path.empty()) {
        errs.required(spath + ".statusReplicasPath");
      } else if (!status_path.starts_with(".status.")) {
        errs.invalid(spath + ".statusReplicasPath", status_path,
                     "should be a json path under .status");
      }
    }
  }
}

void validate_name_list(const json& names, std::string_view key, const std::string& path,
                        FieldErrors& errs) {
  const json* list = member(names, key);
  if (list == nullptr) return;
  if (!list->is_array()) {
    errs.invalid(path, *list, "must be a list of strings");
    return;
  }
  std::set<std::string> seen;
  for (size_t i = 0; i < list->size(); i++) {
    const std::string p = path + "[" + std::to_string(i) + "]";
    const json& item = (*list)[i];
    if (!item.is_string()) {
      errs.invalid(p, item, "must be a string");
      continue;
    }
    const std::string s = item.get<std::string>();
    for (const std::string& e : is_dns1035_label(s)) errs.invalid(p, s, e);
    if (!seen.insert(s).second) errs.duplicate(p, s);
  }
}

// ---------------------------------------------------------------------------------------------
// openAPIV3Schema → TypeDefs.

// A Schema that also owns the descriptions its TypeDefs and FieldDefs point to.
class CrdSchema : public Schema {
 public:
  std::string_view keep(const json& node) {
    const json* d = member(node, "description");
    if (d == nullptr || !d->is_string() || d->get_ref<const std::string&>().empty()) return {};
    return strings_.emplace_back(d->get<std::string>());
  }

 private:
  std::deque<std::string> strings_;  // deque: elements never move
};

const TypeDef* builtin_object_meta() {
#ifdef SKIFF_HAVE_BUILTIN_SCHEMA
  return builtin_schema().type("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta");
#else
  return nullptr;
#endif
}

FieldDef string_field(std::string name, std::string_view description) {
  FieldDef f;
  f.name = std::move(name);
  f.kind = ValueKind::kString;
  f.description = description;
  return f;
}

FieldDef metadata_field() {
  FieldDef f;
  f.name = "metadata";
  f.description =
      "Standard object's metadata. More info: "
      "https://git.k8s.io/community/contributors/devel/sig-architecture/"
      "api-conventions.md#metadata";
  if (const TypeDef* meta = builtin_object_meta(); meta != nullptr) {
    f.kind = ValueKind::kObject;
    f.type = meta;
  } else {
    f.kind = ValueKind::kAny;
  }
  return f;
}

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

class SchemaConverter {
 public:
  explicit SchemaConverter(CrdSchema& schema) : schema_(schema) {}

  const TypeDef* root(const json& node, const std::string& name) {
    return object_type(node, name, 0, /*is_root=*/true);
  }

 private:
  static bool is_map_node(const json& node) {
    const json* additional = member(node, "additionalProperties");
    return additional != nullptr &&
           (additional->is_object() || (additional->is_boolean() && additional->get<bool>()));
  }

  // Sets f.kind / f.type for one value described by `node` (a scalar, a list element or a map
  // value); shapes that FieldDef cannot nest (lists of lists, lists of maps) become kAny.
  void assign_element(FieldDef& f, const json& node, const std::string& type_name, int depth) {
    if (!node.is_object() || depth > kMaxNestingDepth) {
      f.kind = ValueKind::kAny;
      return;
    }
    if (bool_member(node, "x-kubernetes-int-or-string")) {
      f.kind = ValueKind::kIntOrString;
      return;
    }
    const std::string type = string_member(node, "type");
    if (type == "string") {
      f.kind = ValueKind::kString;
      if (const json* e = member(node, "enum"); e != nullptr && e->is_array()) {
        for (const json& v : *e) {
          if (v.is_string()) f.enum_values.push_back(v.get<std::string>());
        }
      }
    } else if (type == "integer") {
      f.kind = string_member(node, "format") == "int32" ? ValueKind::kInt32 : ValueKind::kInt64;
    } else if (type == "number") {
      f.kind = ValueKind::kDouble;
    } else if (type == "boolean") {
      f.kind = ValueKind::kBool;
    } else if (type == "object" && !is_map_node(node)) {
      f.kind = ValueKind::kObject;
      f.type = object_type(node, type_name, depth, false);
    } else {
      f.kind = ValueKind::kAny;  // arrays and maps as elements, or no type (preserved)
    }
  }

  void assign_field(FieldDef& f, const json& node, const std::string& type_name, int depth) {
    if (!node.is_object()) {
      f.kind = ValueKind::kAny;
      return;
    }
    const std::string type = string_member(node, "type");
    if (type == "array" && !bool_member(node, "x-kubernetes-int-or-string")) {
      f.shape = Shape::kList;
      const json* items = member(node, "items");
      if (items != nullptr) {
        assign_element(f, *items, type_name, depth + 1);
      } else {
        f.kind = ValueKind::kAny;
      }
      f.list_type = string_member(node, "x-kubernetes-list-type");
      if (const json* keys = member(node, "x-kubernetes-list-map-keys");
          keys != nullptr && keys->is_array()) {
        for (const json& k : *keys) {
          if (k.is_string()) f.list_map_keys.push_back(k.get<std::string>());
        }
      }
      return;
    }
    if (type == "object" && is_map_node(node)) {
      f.shape = Shape::kMap;
      const json& additional = node["additionalProperties"];
      if (additional.is_object()) {
        assign_element(f, additional, type_name, depth + 1);
      } else {
        f.kind = ValueKind::kAny;
      }
      return;
    }
    assign_element(f, node, type_name, depth);
  }

  const TypeDef* object_type(const json& node, const std::string& name, int depth, bool is_root) {
    auto t = std::make_unique<TypeDef>();
    t->name = name;
    t->description = schema_.keep(node);
    t->preserve_unknown_fields = bool_member(node, "x-kubernetes-preserve-unknown-fields");
    std::set<std::string> required;
    if (const json* req = member(node, "required"); req != nullptr && req->is_array()) {
      for (const json& r : *req) {
        if (r.is_string()) required.insert(r.get<std::string>());
      }
    }
    if (const json* props = member(node, "properties"); props != nullptr && props->is_object()) {
      for (auto it = props->begin(); it != props->end(); ++it) {
        FieldDef f;
        f.name = it.key();
        f.description = schema_.keep(it.value());
        f.optional = required.count(it.key()) == 0;
        assign_field(f, it.value(), name + "." + it.key(), depth + 1);
        t->fields.push_back(std::move(f));
      }
    }
    if (is_root || bool_member(node, "x-kubernetes-embedded-resource")) {
      auto find = [&](std::string_view n) {
        return std::find_if(t->fields.begin(), t->fields.end(),
                            [&](const FieldDef& f) { return f.name == n; });
      };
      if (find("apiVersion") == t->fields.end()) {
        t->fields.push_back(string_field("apiVersion", kApiVersionDescription));
      }
      if (find("kind") == t->fields.end())
        t->fields.push_back(string_field("kind", kKindDescription));
      // Kubernetes always validates metadata as ObjectMeta, whatever the CRD's schema says.
      auto meta = find("metadata");
      if (meta != t->fields.end()) {
        *meta = metadata_field();
      } else {
        t->fields.push_back(metadata_field());
      }
    }
    t->finalize();
    return schema_.add(std::move(t));
  }

  CrdSchema& schema_;
};

// "stable.example.com" → "com.example.stable".
std::string reversed_group(std::string_view group) {
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
    if (!out.empty()) out += '.';
    out += *it;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Table cells.

// cellForJSONValue from the CRD table convertor; "string" columns print any value.
json cell(const std::string& type, const json* v, int64_t now) {
  if (v == nullptr || v->is_null()) return nullptr;
  if (type == "integer") {
    if (v->is_number_integer()) return v->get<int64_t>();
    if (v->is_number_float()) return static_cast<int64_t>(v->get<double>());
    return nullptr;
  }
  if (type == "number") return v->is_number() ? json(v->get<double>()) : json(nullptr);
  if (type == "boolean") return v->is_boolean() ? *v : json(nullptr);
  if (type == "date") {
    if (!v->is_string()) return nullptr;
    Result<Timestamp> t = parse_rfc3339_timestamp(v->get_ref<const std::string&>());
    if (!t.ok()) return "<invalid>";
    return human_duration_seconds(now - t->seconds);
  }
  if (v->is_string()) return *v;
  return to_json(*v);
}

struct CrdColumn {
  std::string type;
  std::string path;
};

// ---------------------------------------------------------------------------------------------
// JSONPath subset.

void skip_spaces(std::string_view s, size_t& i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) i++;
}

// Reads a quoted string at s[i] ('...' or "..."), with backslash escapes.
bool read_quoted(std::string_view s, size_t& i, std::string& out) {
  if (i >= s.size() || (s[i] != '\'' && s[i] != '"')) return false;
  const char q = s[i++];
  out.clear();
  while (i < s.size() && s[i] != q) {
    if (s[i] == '\\' && i + 1 < s.size()) i++;
    out += s[i++];
  }
  if (i >= s.size()) return false;
  i++;
  return true;
}

bool literal_equals(const json& v, std::string_view literal) {
  std::string text;
  size_t i = 0;
  if (read_quoted(literal, i, text))
    return i == literal.size() && v.is_string() && v.get<std::string>() == text;
  if (literal == "true" || literal == "false")
    return v.is_boolean() && v.get<bool>() == (literal == "true");
  if (v.is_number()) {
    json n = json::parse(literal.begin(), literal.end(), nullptr, false);
    return n.is_number() && n.get<double>() == v.get<double>();
  }
  return false;
}

const json* eval_path(const json* cur, std::string_view s, int depth);

// Applies one "[...]" step whose contents are `inner`.
const json* eval_bracket(const json* cur, std::string_view inner, int depth) {
  size_t i = 0;
  skip_spaces(inner, i);
  std::string name;
  if (read_quoted(inner, i, name)) {
    skip_spaces(inner, i);
    if (i != inner.size() || !cur->is_object()) return nullptr;
    return member(*cur, name);
  }
  if (inner == "*") {
    if (cur->is_array()) return cur->empty() ? nullptr : &(*cur)[0];
    if (cur->is_object()) return cur->empty() ? nullptr : &*cur->begin();
    return nullptr;
  }
  if (inner.starts_with("?(") && inner.ends_with(")")) {
    if (!cur->is_array()) return nullptr;
    std::string_view expr = inner.substr(2, inner.size() - 3);
    const size_t eq = expr.find("==");
    if (eq == std::string_view::npos) return nullptr;
    std::string_view lhs = expr.substr(0, eq), rhs = expr.substr(eq + 2);
    while (!lhs.empty() && lhs.back() == ' ') lhs.remove_suffix(1);
    while (!rhs.empty() && rhs.front() == ' ') rhs.remove_prefix(1);
    while (!rhs.empty() && rhs.back() == ' ') rhs.remove_suffix(1);
    while (!lhs.empty() && lhs.front() == ' ') lhs.remove_prefix(1);
    if (!lhs.starts_with("@")) return nullptr;
    lhs.remove_prefix(1);
    for (const json& e : *cur) {
      const json* v = eval_path(&e, lhs, depth + 1);
      if (v != nullptr && literal_equals(*v, rhs)) return &e;
    }
    return nullptr;
  }
  // An index.
  bool neg = false;
  if (i < inner.size() && inner[i] == '-') {
    neg = true;
    i++;
  }
  if (i >= inner.size()) return nullptr;
  int64_t idx = 0;
  for (; i < inner.size(); i++) {
    if (inner[i] < '0' || inner[i] > '9' || idx > 1'000'000'000) return nullptr;
    idx = idx * 10 + (inner[i] - '0');
  }
  if (!cur->is_array()) return nullptr;
  const auto n = static_cast<int64_t>(cur->size());
  if (neg) idx = n - idx;
  if (idx < 0 || idx >= n) return nullptr;
  return &(*cur)[static_cast<size_t>(idx)];
}

const json* eval_path(const json* cur, std::string_view s, int depth) {
  if (depth > 8) return nullptr;  // filters nest paths; real columns never go this deep
  size_t i = 0;
  while (i < s.size() && cur != nullptr) {
    if (s[i] == '.') {
      i++;
      if (i < s.size() && s[i] == '[') continue;  // ".[0]" is read as "[0]"
      size_t end = i;
      while (end < s.size() && s[end] != '.' && s[end] != '[') end++;
      std::string_view name = s.substr(i, end - i);
      if (name.empty()) return nullptr;
      cur = member(*cur, name);
      i = end;
    } else if (s[i] == '[') {
      // Find the matching ']' outside quotes.
      size_t end = i + 1;
      char quote_char = 0;
      int nesting = 0;
      for (; end < s.size(); end++) {
        const char c = s[end];
        if (quote_char != 0) {
          if (c == '\\')
            end++;
          else if (c == quote_char)
            quote_char = 0;
        } else if (c == '\'' || c == '"') {
          quote_char = c;
        } else if (c == '[') {
          nesting++;
        } else if (c == ']') {
          if (nesting == 0) break;
          nesting--;
        }
      }
      if (end >= s.size()) return nullptr;
      cur = eval_bracket(cur, s.substr(i + 1, end - i - 1), depth);
      i = end + 1;
    } else {
      return nullptr;
    }
  }
  return cur;
}

}  // namespace

const json* find_json_path(const json& obj, std::string_view path) {
  while (!path.empty() && path.front() == ' ') path.remove_prefix(1);
  while (!path.empty() && path.back() == ' ') path.remove_suffix(1);
  if (path.size() >= 2 && path.front() == '{' && path.back() == '}') {
    path = path.substr(1, path.size() - 2);
  }
  if (!path.empty() && path.front() == '$') path.remove_prefix(1);
  if (path.empty()) return &obj;
  if (path.front() != '.' && path.front() != '[') return nullptr;
  return eval_path(&obj, path, 0);
}

std::vector<StatusCause> crd_field_errors(const json& crd, const json* old) {
  FieldErrors errs;
  const json* metadata = member(crd, "metadata");
  const std::string name = metadata != nullptr ? string_member(*metadata, "name") : std::string();
  const json* spec = member(crd, "spec");
  if (spec == nullptr || !spec->is_object()) {
    errs.required("spec");
    return std::move(errs).take();
  }
  const std::string group = string_member(*spec, "group");
  const json* names_ptr = member(*spec, "names");
  const json names = names_ptr != nullptr && names_ptr->is_object() ? *names_ptr : json::object();
  const std::string plural = string_member(names, "plural");
  const std::string singular = string_member(names, "singular");
  const std::string kind = string_member(names, "kind");
  const std::string list_kind = string_member(names, "listKind");

  if (!name.empty() && name != plural + "." + group) {
    errs.invalid("metadata.name", name, "must be spec.names.plural+\".\"+spec.group");
  }
  if (group.empty()) {
    errs.required("spec.group");
  } else {
    for (const std::string& e : is_dns1123_subdomain(group)) errs.invalid("spec.group", group, e);
    if (group.find('.') == std::string::npos) {
      errs.invalid("spec.group", group, "should be a domain with at least one dot");
    }
  }
  if (plural.empty()) {
    errs.required("spec.names.plural");
  } else {
    for (const std::string& e : is_dns1035_label(plural)) {
      errs.invalid("spec.names.plural", plural, e);
    }
  }
  if (!singular.empty()) {
    for (const std::string& e : is_dns1035_label(singular)) {
      errs.invalid("spec.names.singular", singular, e);
    }
  }
  if (kind.empty()) {
    errs.required("spec.names.kind");
  } else if (std::vector<std::string> e = is_dns1035_label(ascii_lower(kind)); !e.empty()) {
    errs.invalid("spec.names.kind", kind, mixed_case_message(e));
  }
  if (!list_kind.empty()) {
    if (std::vector<std::string> e = is_dns1035_label(ascii_lower(list_kind)); !e.empty()) {
      errs.invalid("spec.names.listKind", list_kind, mixed_case_message(e));
    }
    if (list_kind == kind) {
      errs.invalid("spec.names.listKind", list_kind,
                   "kind and listKind may not be the same or parsing become ambiguous");
    }
  }
  validate_name_list(names, "shortNames", "spec.names.shortNames", errs);
  validate_name_list(names, "categories", "spec.names.categories", errs);

  const std::string scope = string_member(*spec, "scope");
  if (scope.empty()) {
    errs.required("spec.scope");
  } else if (scope != "Namespaced" && scope != "Cluster") {
    errs.not_supported("spec.scope", scope, {"Cluster", "Namespaced"});
  }

  const json* versions = member(*spec, "versions");
  if (versions == nullptr || !versions->is_array() || versions->empty()) {
    errs.required("spec.versions", "must have exactly one version marked as storage version");
  } else {
    int storage = 0;
    json version_names = json::array();
    std::set<std::string> seen;
    for (size_t i = 0; i < versions->size(); i++) {
      const json& v = (*versions)[i];
      const std::string path = "spec.versions[" + std::to_string(i) + "]";
      if (!v.is_object()) {
        errs.invalid(path, v, "must be an object");
        continue;
      }
      const std::string vname = string_member(v, "name");
      version_names.push_back(vname);
      if (!vname.empty() && !seen.insert(vname).second) errs.duplicate(path + ".name", vname);
      if (bool_member(v, "storage")) storage++;
      validate_version(v, path, errs);
    }
    if (storage != 1) {
      errs.invalid("spec.versions", version_names,
                   "must have exactly one version marked as storage version");
    }
  }

  if (const json* conversion = member(*spec, "conversion"); conversion != nullptr) {
    const std::string strategy = string_member(*conversion, "strategy");
    if (!strategy.empty() && strategy != "None" && strategy != "Webhook") {
      errs.not_supported("spec.conversion.strategy", strategy, {"None", "Webhook"});
    }
  }

  if (old != nullptr) {
    const json* old_spec = member(*old, "spec");
    for (const char* key : {"scope", "group"}) {
      const json* now_value = member(*spec, key);
      const json* old_value = old_spec != nullptr ? member(*old_spec, key) : nullptr;
      const json value = now_value != nullptr ? *now_value : json();
      if (value != (old_value != nullptr ? *old_value : json())) {
        errs.invalid(std::string("spec.") + key, value, "field is immutable");
      }
    }
  }
  return std::move(errs).take();
}

Status validate_crd(const json& crd) {
  const json* metadata = member(crd, "metadata");
  const std::string name = metadata != nullptr ? string_member(*metadata, "name") : std::string();
  // Without ObjectMeta validation in front, the name must be checked here; a CRD without a spec
  // reports only that.
  FieldErrors errs;
  const json* spec = member(crd, "spec");
  if (name.empty() && spec != nullptr && spec->is_object()) {
    errs.required("metadata.name", "name or generateName is required");
  }
  std::vector<StatusCause> causes = std::move(errs).take();
  std::vector<StatusCause> rest = crd_field_errors(crd, nullptr);
  causes.insert(causes.end(), rest.begin(), rest.end());
  return FieldErrors::to_status(name, causes);
}

Result<std::vector<std::shared_ptr<const ResourceDef>>> resource_defs_from_crd(const json& crd) {
  if (Status s = validate_crd(crd); !s.ok()) return s;
  const json& spec = crd["spec"];
  const json& names = spec["names"];
  const std::string group = spec["group"].get<std::string>();
  const std::string kind = names["kind"].get<std::string>();
  const bool namespaced = spec["scope"] == "Namespaced";

  std::vector<std::shared_ptr<const ResourceDef>> out;
  for (const json& v : spec["versions"]) {
    if (!bool_member(v, "served")) continue;
    auto d = std::make_shared<ResourceDef>();
    d->group = group;
    d->version = v["name"].get<std::string>();
    d->kind = kind;
    d->list_kind = string_member(names, "listKind");
    if (d->list_kind.empty()) d->list_kind = kind + "List";
    d->resource = names["plural"].get<std::string>();
    d->singular = string_member(names, "singular");
    if (d->singular.empty()) d->singular = ascii_lower(kind);
    d->scope = namespaced ? Scope::kNamespaced : Scope::kCluster;
    for (std::string_view key : {"shortNames", "categories"}) {
      const json* list = member(names, key);
      if (list == nullptr) continue;
      auto& target = key == "shortNames" ? d->short_names : d->categories;
      for (const json& s : *list) target.push_back(s.get<std::string>());
    }
    d->verbs = {"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"};
    d->crd = true;
    if (const json* sub = member(v, "subresources"); sub != nullptr) {
      if (member(*sub, "status") != nullptr) {
        d->subresources.push_back({"status", group, d->version, kind, {"get", "patch", "update"}});
        d->has_status_subresource = true;
      }
      if (member(*sub, "scale") != nullptr) {
        d->subresources.push_back(
            {"scale", "autoscaling", "v1", "Scale", {"get", "patch", "update"}});
      }
    }

    auto schema = std::make_shared<CrdSchema>();
    SchemaConverter converter(*schema);
    d->type = converter.root(v["schema"]["openAPIV3Schema"],
                             reversed_group(group) + "." + d->version + "." + kind);
    d->owned_schema = schema;

    d->columns.push_back(
        {"Name", "string", "name",
         "Name must be unique within a namespace. Is required when creating "
         "resources, although some resources may allow a client to request the "
         "generation of an appropriate name automatically. Name is primarily "
         "intended for creation idempotence and configuration definition. Cannot "
         "be updated. More info: "
         "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
         0});
    std::vector<CrdColumn> cols;
    const json* printer = member(v, "additionalPrinterColumns");
    if (printer != nullptr && !printer->empty()) {
      for (const json& c : *printer) {
        ColumnDef col;
        col.name = string_member(c, "name");
        col.type = string_member(c, "type");
        col.format = string_member(c, "format");
        col.description = string_member(c, "description");
        if (const json* p = member(c, "priority"); p != nullptr && p->is_number_integer()) {
          col.priority = p->get<int>();
        }
        cols.push_back({col.type, string_member(c, "jsonPath")});
        d->columns.push_back(std::move(col));
      }
    } else {
      d->columns.push_back({"Age", "date", "",
                            "CreationTimestamp is a timestamp representing the server time when "
                            "this object was created.",
                            0});
      cols.push_back({"date", ".metadata.creationTimestamp"});
    }
    d->row = [cols = std::move(cols)](const json& obj, int64_t now) {
      std::vector<json> cells;
      cells.reserve(cols.size() + 1);
      const json* name = find_json_path(obj, ".metadata.name");
      cells.push_back(name != nullptr && name->is_string() ? *name : json(""));
      for (const CrdColumn& c : cols)
        cells.push_back(cell(c.type, find_json_path(obj, c.path), now));
      return cells;
    };
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace skiff::api
