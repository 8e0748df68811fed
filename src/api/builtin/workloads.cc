#include "api/builtin/workloads.h"

#include <cctype>

namespace skiff::api::builtin {

std::string go_intstr(const json* v) {
  if (v != nullptr && v->is_string()) {
    return "intstr.IntOrString{Type:1, IntVal:0, StrVal:" + go_quote(v->get<std::string>()) + "}";
  }
  return "intstr.IntOrString{Type:0, IntVal:" + go_int(as_int(v).value_or(0)) + ", StrVal:\"\"}";
}

namespace {

// The number of a "<digits>%" string, or nullopt when it is not one.
std::optional<int64_t> percent_of(const std::string& s) {
  if (s.size() < 2 || s.back() != '%') return std::nullopt;
  int64_t v = 0;
  for (size_t i = 0; i + 1 < s.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i])) || v > 100000000) return std::nullopt;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

}  // namespace

void validate_int_or_percent(const json* v, const Path& p, FieldErrors& errs) {
  if (v == nullptr) return;
  if (v->is_string()) {
    if (!percent_of(v->get<std::string>())) {
      errs.invalid(p, go_intstr(v),
                   "a valid percent string must be a numeric string followed by an ending '%' "
                   "(e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')");
    }
    return;
  }
  if (auto n = as_int(v)) {
    validate_nonnegative(*n, p, errs);
    return;
  }
  errs.invalid(p, go_intstr(v), "must be an integer or percentage (e.g '5%')");
}

int64_t int_or_percent_value(const json* v) {
  if (v == nullptr) return 0;
  if (v->is_string()) return percent_of(v->get<std::string>()).value_or(0);
  return as_int(v).value_or(0);
}

void validate_not_more_than_100_percent(const json* v, const Path& p, FieldErrors& errs) {
  if (v == nullptr || !v->is_string()) return;
  auto pct = percent_of(v->get<std::string>());
  if (pct && *pct > 100) errs.invalid(p, go_intstr(v), "must not be greater than 100%");
}

void validate_required_selector(const json* selector, const Path& p, const char* what,
                                FieldErrors& errs) {
  if (selector == nullptr) {
    errs.required(p);
    return;
  }
  validate_label_selector(selector, p, errs);
  if (size_of(member(*selector, "matchLabels")) + size_of(member(*selector, "matchExpressions")) ==
      0) {
    errs.invalid(p, go_label_selector(selector),
                 std::string("empty selector is invalid for ") + what);
  }
}

void zero_status_fields(json& obj, std::initializer_list<const char*> fields) {
  if (!obj.is_object()) return;
  ensure_status(obj);
  json& status = obj["status"];
  for (const char* f : fields) set_default(status, f, 0);
}

}  // namespace skiff::api::builtin
