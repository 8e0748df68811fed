#include "api/typecheck/typecheck.h"

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>

#include "common/base64.h"
#include "common/json.h"
#include "common/quantity.h"
#include "common/time.h"

namespace skiff::api {

using nlohmann::json;

Result<FieldValidation> parse_field_validation(std::string_view value) {
  if (value == "Strict") return FieldValidation::kStrict;
  if (value == "Warn" || value.empty()) return FieldValidation::kWarn;
  if (value == "Ignore") return FieldValidation::kIgnore;
  std::string msg = "Unsupported value: " + json_quote(value) +
                    ": supported values: \"\", \"Ignore\", \"Strict\", \"Warn\"";
  Status s = Status::Invalid("fieldValidation: " + msg);
  s.add_cause({"FieldValueNotSupported", msg, "fieldValidation"});
  return s;
}

Status decode_error(Status status, std::string_view kind, std::string_view version) {
  if (status.ok()) return status;
  std::string prefix = std::string(kind) + " in version \"" + std::string(version) +
                       "\" cannot be handled as a " + std::string(kind) + ": ";
  Status out(status.code(), prefix + status.message());
  for (const StatusCause& c : status.causes()) out.add_cause(c);
  return out;
}

namespace {

// "io.k8s.api.apps.v1.DeploymentSpec" -> "DeploymentSpec" (the Go struct name).
std::string_view short_name(std::string_view type_name) {
  size_t dot = type_name.rfind('.');
  return dot == std::string_view::npos ? type_name : type_name.substr(dot + 1);
}

// "io.k8s.api.apps.v1.DeploymentSpec" -> "v1.DeploymentSpec" (the Go type as Go prints it).
std::string go_qualified_name(std::string_view type_name) {
  size_t dot = type_name.rfind('.');
  if (dot == std::string_view::npos || dot == 0) return std::string(type_name);
  size_t prev = type_name.rfind('.', dot - 1);
  return std::string(prev == std::string_view::npos ? type_name : type_name.substr(prev + 1));
}

std::string go_element_type(ValueKind kind, const TypeDef* type) {
  switch (kind) {
    case ValueKind::kString:
      return "string";
    case ValueKind::kBool:
      return "bool";
    case ValueKind::kInt32:
      return "int32";
    case ValueKind::kInt64:
      return "int64";
    case ValueKind::kDouble:
      return "float64";
    case ValueKind::kBytes:
      return "[]uint8";
    case ValueKind::kObject:
      return type != nullptr ? go_qualified_name(type->name) : "map[string]interface {}";
    case ValueKind::kQuantity:
      return "resource.Quantity";
    case ValueKind::kTime:
      return "v1.Time";
    case ValueKind::kMicroTime:
      return "v1.MicroTime";
    case ValueKind::kDuration:
      return "v1.Duration";
    case ValueKind::kIntOrString:
      return "intstr.IntOrString";
    case ValueKind::kRawExtension:
      return "runtime.RawExtension";
    case ValueKind::kAny:
      return "v1.JSON";
  }
  return "interface {}";
}

std::string go_field_type(const FieldDef& f) {
  std::string elem = go_element_type(f.kind, f.type);
  switch (f.shape) {
    case Shape::kList:
      return "[]" + elem;
    case Shape::kMap:
      return "map[string]" + elem;
    case Shape::kScalar:
      break;
  }
  return elem;
}

// How Go's decoder names a JSON value in "cannot unmarshal <x> into ...".
std::string json_type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::string:
      return "string";
    case json::value_t::boolean:
      return "bool";
    case json::value_t::array:
      return "array";
    case json::value_t::object:
      return "object";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float:
      return "number";
    default:
      return "null";
  }
}

json zero_value(ValueKind kind) {
  switch (kind) {
    case ValueKind::kString:
      return "";
    case ValueKind::kBool:
      return false;
    case ValueKind::kInt32:
    case ValueKind::kInt64:
    case ValueKind::kIntOrString:
      return 0;
    case ValueKind::kDouble:
      return 0.0;
    case ValueKind::kObject:
      return json::object();
    case ValueKind::kQuantity:
      return "0";
    case ValueKind::kDuration:
      return "0s";
    case ValueKind::kBytes:
    case ValueKind::kTime:
    case ValueKind::kMicroTime:
    case ValueKind::kRawExtension:
    case ValueKind::kAny:
      break;
  }
  return nullptr;
}

bool integer_in_range(const json& v, int64_t lo, int64_t hi) {
  if (v.is_number_unsigned()) return v.get<uint64_t>() <= static_cast<uint64_t>(hi);
  if (v.is_number_integer()) {
    int64_t i = v.get<int64_t>();
    return i >= lo && i <= hi;
  }
  return false;
}

class Checker {
 public:
  explicit Checker(FieldValidation mode) : mode_(mode) {}

  const Status& error() const { return error_; }
  const std::vector<std::string>& unknown() const { return unknown_; }

  // Each returns false once an error is recorded; the walk then stops.
  bool check_object(json& obj, const TypeDef& type, int depth, bool root) {
    if (depth > kMaxNestingDepth) return fail_depth();
    std::vector<std::string> to_remove;
    for (auto it = obj.begin(); it != obj.end(); ++it) {
      const std::string& key = it.key();
      json& value = it.value();
      const FieldDef* f = type.field(key);
      if (f == nullptr) {
        if (root && (key == "apiVersion" || key == "kind")) {
          if (value.is_null()) {
            to_remove.push_back(key);
          } else if (!value.is_string()) {
            PathScope scope(*this, key, true);
            return fail_type(json_type_name(value), short_name(type.name), "string");
          }
          continue;
        }
        if (type.preserve_unknown_fields) continue;
        unknown_.push_back(strict_path_.empty() ? key : strict_path_ + "." + key);
        if (mode_ != FieldValidation::kStrict) to_remove.push_back(key);
        continue;
      }
      if (value.is_null()) {
        to_remove.push_back(key);
        continue;
      }
      PathScope scope(*this, key, true);
      if (!check_field(value, *f, type, depth + 1)) return false;
    }
    for (const std::string& key : to_remove) obj.erase(key);
    return true;
  }

  bool check_root(json& obj, const TypeDef& type) {
    if (!obj.is_object()) {
      error_ = Status::BadRequest("json: cannot unmarshal " + json_type_name(obj) +
                                  " into Go value of type " + go_qualified_name(type.name));
      return false;
    }
    return check_object(obj, type, 0, true);
  }

 private:
  // Appends a path segment for the lifetime of the scope. Struct fields go to both paths;
  // list indices and map keys only to the strict path (Go's type errors name struct fields).
  class PathScope {
   public:
    PathScope(Checker& c, std::string_view segment, bool field)
        : c_(c), strict_len_(c.strict_path_.size()), go_len_(c.go_path_.size()) {
      if (segment.empty() || segment[0] != '[') {
        if (!c.strict_path_.empty()) c.strict_path_ += '.';
      }
      c.strict_path_ += segment;
      if (field) {
        if (!c.go_path_.empty()) c.go_path_ += '.';
        c.go_path_ += segment;
      }
    }
    ~PathScope() {
      c_.strict_path_.resize(strict_len_);
      c_.go_path_.resize(go_len_);
    }
    PathScope(const PathScope&) = delete;
    PathScope& operator=(const PathScope&) = delete;

   private:
    Checker& c_;
    size_t strict_len_, go_len_;
  };

  bool fail_depth() {
    error_ = Status::BadRequest("object nesting exceeds the maximum depth of " +
                                std::to_string(kMaxNestingDepth));
    return false;
  }

  bool fail_type(const std::string& what, std::string_view struct_name,
                 const std::string& go_type) {
    error_ = Status::BadRequest("json: cannot unmarshal " + what + " into Go struct field " +
                                std::string(struct_name) + "." + go_path_ + " of type " + go_type);
    return false;
  }

  bool fail(std::string message) {
    error_ = Status::BadRequest(std::move(message));
    return false;
  }

  bool check_field(json& v, const FieldDef& f, const TypeDef& parent, int depth) {
    if (depth > kMaxNestingDepth) return fail_depth();
    switch (f.shape) {
      case Shape::kScalar:
        return check_element(v, f, parent, depth);
      case Shape::kList: {
        if (!v.is_array())
          return fail_type(json_type_name(v), short_name(parent.name), go_field_type(f));
        for (size_t i = 0; i < v.size(); i++) {
          json& e = v[i];
          if (e.is_null()) {
            e = zero_value(f.kind);
            continue;
          }
          PathScope scope(*this, "[" + std::to_string(i) + "]", false);
          if (!check_element(e, f, parent, depth + 1)) return false;
        }
        return true;
      }
      case Shape::kMap: {
        if (!v.is_object())
          return fail_type(json_type_name(v), short_name(parent.name), go_field_type(f));
        for (auto it = v.begin(); it != v.end(); ++it) {
          if (it.value().is_null()) {
            it.value() = zero_value(f.kind);
            continue;
          }
          PathScope scope(*this, it.key(), false);
          if (f.list_wrapper) {
            // map[string]<named []string> (authorization ExtraValue): values are string lists.
            if (!check_string_list(it.value(), parent)) return false;
            continue;
          }
          if (!check_element(it.value(), f, parent, depth + 1)) return false;
        }
        return true;
      }
    }
    return true;
  }

  bool check_string_list(json& v, const TypeDef& parent) {
    if (!v.is_array()) return fail_type(json_type_name(v), short_name(parent.name), "[]string");
    for (json& e : v) {
      if (e.is_null()) {
        e = "";
      } else if (!e.is_string()) {
        return fail_type(json_type_name(e), short_name(parent.name), "string");
      }
    }
    return true;
  }

  // One value of f's kind (a scalar field, a list element or a map value); not null.
  bool check_element(json& v, const FieldDef& f, const TypeDef& parent, int depth) {
    const std::string_view struct_name = short_name(parent.name);
    auto wrong = [&](const std::string& what) {
      return fail_type(what, struct_name, go_element_type(f.kind, f.type));
    };
    switch (f.kind) {
      case ValueKind::kString:
        return v.is_string() || wrong(json_type_name(v));
      case ValueKind::kBool:
        return v.is_boolean() || wrong(json_type_name(v));
      case ValueKind::kInt32:
      case ValueKind::kInt64: {
        if (!v.is_number()) return wrong(json_type_name(v));
        const bool ok = f.kind == ValueKind::kInt32
                            ? integer_in_range(v, std::numeric_limits<int32_t>::min(),
                                               std::numeric_limits<int32_t>::max())
                            : integer_in_range(v, std::numeric_limits<int64_t>::min(),
                                               std::numeric_limits<int64_t>::max());
        return ok || wrong("number " + v.dump());
      }
      case ValueKind::kDouble:
        return v.is_number() || wrong(json_type_name(v));
      case ValueKind::kBytes: {
        if (!v.is_string()) return wrong(json_type_name(v));
        Result<std::string> decoded = base64_decode(v.get_ref<const std::string&>());
        return decoded.ok() || fail(decoded.status().message());
      }
      case ValueKind::kObject:
        if (f.type == nullptr) return true;
        if (!v.is_object()) return wrong(json_type_name(v));
        return check_object(v, *f.type, depth + 1, false);
      case ValueKind::kQuantity: {
        if (v.is_number()) v = v.dump();  // Go reads the number's text as the quantity
        // A value that is neither string nor number fails as empty text does.
        Result<Quantity> q = Quantity::parse(
            v.is_string() ? std::string_view(v.get_ref<const std::string&>()) : std::string_view());
        return q.ok() || fail(q.status().message());
      }
      case ValueKind::kTime:
      case ValueKind::kMicroTime: {
        if (!v.is_string()) return wrong(json_type_name(v));
        const std::string& s = v.get_ref<const std::string&>();
        if (parse_rfc3339_timestamp(s).ok()) return true;
        const char* layout = f.kind == ValueKind::kTime ? "2006-01-02T15:04:05Z07:00"
                                                        : "2006-01-02T15:04:05.000000Z07:00";
        return fail("parsing time " + json_quote(s) + " as \"" + layout + "\": cannot parse " +
                    json_quote(s) + " as RFC 3339");
      }
      case ValueKind::kDuration: {
        if (!v.is_string()) return wrong(json_type_name(v));
        const std::string& s = v.get_ref<const std::string&>();
        return parse_go_duration(s).ok() || fail("time: invalid duration " + json_quote(s));
      }
      case ValueKind::kIntOrString:
        if (v.is_string()) return true;
        if (!v.is_number()) return wrong(json_type_name(v));
        return integer_in_range(v, std::numeric_limits<int32_t>::min(),
                                std::numeric_limits<int32_t>::max()) ||
               wrong("number " + v.dump());
      case ValueKind::kRawExtension:
      case ValueKind::kAny:
        return true;
    }
    return true;
  }

  const FieldValidation mode_;
  Status error_;
  std::vector<std::string> unknown_;
  std::string strict_path_;  // "spec.containers[0].name"
  std::string go_path_;      // "spec.containers.name"
};

}  // namespace

Status check_fields(json& obj, const TypeDef& type, FieldValidation mode,
                    std::vector<std::string>* warnings) {
  Checker checker(mode);
  if (!checker.check_root(obj, type)) return checker.error();
  const auto& unknown = checker.unknown();
  if (unknown.empty()) return Status::Ok();
  switch (mode) {
    case FieldValidation::kStrict: {
      std::string msg = "strict decoding error: ";
      for (size_t i = 0; i < unknown.size(); i++) {
        if (i > 0) msg += ", ";
        msg += "unknown field " + json_quote(unknown[i]);
      }
      return Status::BadRequest(std::move(msg));
    }
    case FieldValidation::kWarn:
      if (warnings != nullptr) {
        for (const std::string& path : unknown) {
          warnings->push_back("unknown field " + json_quote(path));
        }
      }
      break;
    case FieldValidation::kIgnore:
      break;
  }
  return Status::Ok();
}

}  // namespace skiff::api
