#include "api/builtin/field_errors.h"

#include <set>

namespace skiff::api::builtin {

Path Path::child(std::string_view name) const {
  if (s_.empty()) return Path(std::string(name));
  return Path(s_ + "." + std::string(name));
}

Path Path::index(size_t i) const { return Path(s_ + "[" + std::to_string(i) + "]"); }

Path Path::key(std::string_view k) const { return Path(s_ + "[" + std::string(k) + "]"); }

namespace {

const char* type_string(ErrorType t) {
  switch (t) {
    case ErrorType::kNotFound:
      return "Not found";
    case ErrorType::kRequired:
      return "Required value";
    case ErrorType::kDuplicate:
      return "Duplicate value";
    case ErrorType::kInvalid:
      return "Invalid value";
    case ErrorType::kNotSupported:
      return "Unsupported value";
    case ErrorType::kForbidden:
      return "Forbidden";
    case ErrorType::kTooLong:
      return "Too long";
    case ErrorType::kTooMany:
      return "Too many";
  }
  return "Invalid value";
}

}  // namespace

std::string FieldError::body() const {
  if (cause) return cause->message;
  std::string s = type_string(type);
  bool prints_value = type != ErrorType::kRequired && type != ErrorType::kForbidden &&
                      type != ErrorType::kTooLong && value.has_value();
  if (prints_value) s += ": " + *value;
  if (!detail.empty()) s += ": " + detail;
  return s;
}

std::string FieldError::error() const { return field + ": " + body(); }

std::string FieldError::reason() const {
  if (cause) return cause->reason;
  switch (type) {
    case ErrorType::kNotFound:
      return "FieldValueNotFound";
    case ErrorType::kRequired:
      return "FieldValueRequired";
    case ErrorType::kDuplicate:
      return "FieldValueDuplicate";
    case ErrorType::kInvalid:
      return "FieldValueInvalid";
    case ErrorType::kNotSupported:
      return "FieldValueNotSupported";
    case ErrorType::kForbidden:
      return "FieldValueForbidden";
    case ErrorType::kTooLong:
      return "FieldValueTooLong";
    case ErrorType::kTooMany:
      return "FieldValueTooMany";
  }
  return "FieldValueInvalid";
}

namespace {

FieldError make_error(ErrorType type, std::string field, std::optional<std::string> value,
                      std::string detail) {
  FieldError e;
  e.type = type;
  e.field = std::move(field);
  e.value = std::move(value);
  e.detail = std::move(detail);
  return e;
}

}  // namespace

void FieldErrors::invalid(const Path& p, std::string go_value, std::string detail) {
  errors_.push_back(
      make_error(ErrorType::kInvalid, p.str(), std::move(go_value), std::move(detail)));
}

void FieldErrors::required(const Path& p, std::string detail) {
  errors_.push_back(make_error(ErrorType::kRequired, p.str(), std::nullopt, std::move(detail)));
}

void FieldErrors::duplicate(const Path& p, std::string go_value) {
  errors_.push_back(make_error(ErrorType::kDuplicate, p.str(), std::move(go_value), ""));
}

void FieldErrors::not_found(const Path& p, std::string go_value) {
  errors_.push_back(make_error(ErrorType::kNotFound, p.str(), std::move(go_value), ""));
}

void FieldErrors::not_supported(const Path& p, std::string go_value,
                                const std::vector<std::string>& valid) {
  std::string detail;
  if (!valid.empty()) {
    detail = "supported values: ";
    for (size_t i = 0; i < valid.size(); ++i) {
      if (i > 0) detail += ", ";
      detail += go_quote(valid[i]);
    }
  }
  errors_.push_back(
      make_error(ErrorType::kNotSupported, p.str(), std::move(go_value), std::move(detail)));
}

void FieldErrors::add_causes(const std::vector<StatusCause>& causes) {
  for (const StatusCause& c : causes) {
    FieldError e;
    e.field = c.field;
    e.cause = c;
    errors_.push_back(std::move(e));
  }
}

void FieldErrors::forbidden(const Path& p, std::string detail) {
  errors_.push_back(make_error(ErrorType::kForbidden, p.str(), std::nullopt, std::move(detail)));
}

void FieldErrors::too_long(const Path& p, int64_t max_bytes) {
  errors_.push_back(make_error(ErrorType::kTooLong, p.str(), std::nullopt,
                               "must have at most " + std::to_string(max_bytes) + " bytes"));
}

void FieldErrors::too_many(const Path& p, int64_t actual, int64_t max_items) {
  errors_.push_back(make_error(ErrorType::kTooMany, p.str(), go_int(actual),
                               "must have at most " + std::to_string(max_items) + " items"));
}

Status FieldErrors::to_status(std::string_view kind, std::string_view group,
                              std::string_view name) const {
  if (errors_.empty()) return Status::Ok();
  std::string qualified(kind);
  if (!group.empty()) qualified += "." + std::string(group);

  // errs.ToAggregate() keeps the first of identical messages; one message prints bare, several
  // print as "[a, b]".
  std::vector<std::string> distinct;
  std::set<std::string> seen;
  for (const FieldError& e : errors_) {
    std::string msg = e.error();
    if (seen.insert(msg).second) distinct.push_back(std::move(msg));
  }
  std::string message = qualified + " " + go_quote(name) + " is invalid: ";
  if (distinct.size() == 1) {
    message += distinct[0];
  } else {
    message += "[";
    for (size_t i = 0; i < distinct.size(); ++i) {
      if (i > 0) message += ", ";
      message += distinct[i];
    }
    message += "]";
  }
  Status status = Status::Invalid(std::move(message));
  for (const FieldError& e : errors_) status.add_cause({e.reason(), e.body(), e.field});
  return status;
}

std::string go_int(int64_t v) { return std::to_string(v); }

std::string go_string_map(const json* m) {
  if (m == nullptr || !m->is_object()) return "map[string]string(nil)";
  std::string out = "map[string]string{";
  bool first = true;
  for (const std::string& k : sorted_keys(m)) {
    if (!first) out += ", ";
    first = false;
    out += go_quote(k) + ":" + go_quote(as_string(&(*m)[k]));
  }
  out += "}";
  return out;
}

std::string go_string_slice(const json* a) {
  if (a == nullptr || !a->is_array()) return "[]string(nil)";
  std::string out = "[]string{";
  bool first = true;
  for (const json& v : *a) {
    if (!first) out += ", ";
    first = false;
    out += go_quote(v.is_string() ? v.get<std::string>() : std::string());
  }
  out += "}";
  return out;
}

std::string go_label_selector(const json* selector) {
  if (selector == nullptr || !selector->is_object()) return "null";
  std::string out =
      "v1.LabelSelector{MatchLabels:" + go_string_map(member(*selector, "matchLabels"));
  out += ", MatchExpressions:";
  const json* exprs = member(*selector, "matchExpressions");
  if (exprs == nullptr || !exprs->is_array()) {
    out += "[]v1.LabelSelectorRequirement(nil)";
  } else {
    out += "[]v1.LabelSelectorRequirement{";
    bool first = true;
    for (const json& e : *exprs) {
      if (!first) out += ", ";
      first = false;
      out += "v1.LabelSelectorRequirement{Key:" + go_quote(str_at(e, {"key"})) +
             ", Operator:" + go_quote(str_at(e, {"operator"})) +
             ", Values:" + go_string_slice(member(e, "values")) + "}";
    }
    out += "}";
  }
  out += "}";
  return out;
}

std::string go_value(const json* v) {
  if (v == nullptr) return "null";
  if (v->is_string()) return go_quote(v->get<std::string>());
  if (v->is_boolean()) return v->get<bool>() ? "true" : "false";
  if (auto i = as_int(v)) return go_int(*i);
  return v->dump();
}

}  // namespace skiff::api::builtin
