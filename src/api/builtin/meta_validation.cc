#include "api/builtin/meta_validation.h"

#include <arpa/inet.h>

#include <set>

#include "common/names.h"
#include "common/strings.h"
#include "common/time.h"

namespace skiff::api::builtin {
namespace {

constexpr int64_t kTotalAnnotationSizeLimitB = 256 * 1024;
constexpr const char* kFieldImmutable = "field is immutable";

// Replaces a trailing dash the way generateName validation does before checking the rule
// (the last two characters become "a"), so "web-" is judged as "wea".
std::string mask_trailing_dash(std::string_view name) {
  if (name.size() > 1 && name.back() == '-') {
    return std::string(name.substr(0, name.size() - 2)) + "a";
  }
  return std::string(name);
}

std::vector<std::string> path_segment_problems(std::string_view name, bool prefix) {
  if (!prefix) {
    if (name == ".") return {"may not be '.'"};
    if (name == "..") return {"may not be '..'"};
  }
  std::vector<std::string> out;
  if (name.find('/') != std::string_view::npos) out.push_back("may not contain '/'");
  if (name.find('%') != std::string_view::npos) out.push_back("may not contain '%'");
  return out;
}

// Go's time.Time.String() in UTC, as metav1.Time values print in immutability errors.
std::string go_time_string(const std::string& rfc3339) {
  Result<Timestamp> t = parse_rfc3339_timestamp(rfc3339);
  std::optional<std::string> s = t.ok() ? format_rfc3339(*t, 0) : std::nullopt;
  if (!s) return go_quote(rfc3339);
  // s is "2006-01-02T15:04:05Z".
  return s->substr(0, 10) + " " + s->substr(11, 8) + " +0000 UTC";
}

// Whole seconds since the epoch of a metav1.Time value (a fraction is dropped), or nullopt when
// it does not parse.
std::optional<int64_t> time_seconds(const std::string& rfc3339) {
  Result<Timestamp> t = parse_rfc3339_timestamp(rfc3339);
  if (!t.ok()) return std::nullopt;
  return t->seconds;
}

void validate_owner_references(const json* refs, const Path& p, FieldErrors& errs) {
  if (refs == nullptr || !refs->is_array()) return;
  std::string first_controller;
  for (const json& ref : *refs) {
    std::string api_version = str_at(ref, {"apiVersion"});
    std::string kind = str_at(ref, {"kind"});
    std::string version = api_version;
    std::string group;
    if (auto slash = api_version.find('/'); slash != std::string::npos) {
      group = api_version.substr(0, slash);
      version = api_version.substr(slash + 1);
    }
    if (version.empty()) {
      errs.invalid(p.child("apiVersion"), go_quote(api_version), "version must not be empty");
    }
    if (kind.empty()) errs.invalid(p.child("kind"), go_quote(kind), "must not be empty");
    std::string name = str_at(ref, {"name"});
    if (name.empty()) errs.invalid(p.child("name"), go_quote(name), "must not be empty");
    std::string uid = str_at(ref, {"uid"});
    if (uid.empty()) errs.invalid(p.child("uid"), go_quote(uid), "must not be empty");
    if (group.empty() && version == "v1" && kind == "Event") {
      errs.invalid(p, ref.dump(), "/v1, Kind=Event is disallowed from being an owner");
    }
    if (bool_at(ref, {"controller"}).value_or(false)) {
      std::string current = kind + "/" + name;
      if (!first_controller.empty()) {
        errs.invalid(p, refs->dump(),
                     "Only one reference can have Controller set to true. Found \"true\" in "
                     "references for " +
                         first_controller + " and " + current);
      } else {
        first_controller = current;
      }
    }
  }
}

void validate_finalizers(const json* finalizers, const Path& p, FieldErrors& errs) {
  if (finalizers == nullptr || !finalizers->is_array()) return;
  bool orphan = false;
  bool foreground = false;
  for (const std::string& f : string_list(finalizers)) {
    validate_qualified_name(f, p, errs);
    orphan = orphan || f == "orphan";
    foreground = foreground || f == "foregroundDeletion";
  }
  if (orphan && foreground) {
    errs.invalid(p, go_string_slice(finalizers),
                 "finalizer orphan and foregroundDeletion cannot be both set");
  }
}

}  // namespace

std::vector<std::string> name_problems(NameRule rule, std::string_view name, bool prefix) {
  std::string value = prefix ? mask_trailing_dash(name) : std::string(name);
  switch (rule) {
    case NameRule::kDNS1123Subdomain:
      return is_dns1123_subdomain(value);
    case NameRule::kDNS1123Label:
      return is_dns1123_label(value);
    case NameRule::kDNS1035Label:
      return is_dns1035_label(value);
    case NameRule::kPathSegment:
      return path_segment_problems(name, prefix);
  }
  return {};
}

void validate_object_meta(const json& obj, bool namespaced, NameRule rule, FieldErrors& errs) {
  const Path meta("metadata");
  std::string generate_name = str_at(obj, {"metadata", "generateName"});
  if (!generate_name.empty()) {
    for (const std::string& msg : name_problems(rule, generate_name, true)) {
      errs.invalid(meta.child("generateName"), go_quote(generate_name), msg);
    }
  }
  std::string name = str_at(obj, {"metadata", "name"});
  if (name.empty()) {
    errs.required(meta.child("name"), "name or generateName is required");
  } else {
    for (const std::string& msg : name_problems(rule, name, false)) {
      errs.invalid(meta.child("name"), go_quote(name), msg);
    }
  }
  std::string ns = str_at(obj, {"metadata", "namespace"});
  if (namespaced) {
    if (ns.empty()) {
      errs.required(meta.child("namespace"));
    } else {
      for (const std::string& msg : is_dns1123_label(ns)) {
        errs.invalid(meta.child("namespace"), go_quote(ns), msg);
      }
    }
  } else if (!ns.empty()) {
    errs.forbidden(meta.child("namespace"), "not allowed on this type");
  }
  if (auto gen = int_at(obj, {"metadata", "generation"})) {
    validate_nonnegative(*gen, meta.child("generation"), errs);
  }
  validate_labels(at(obj, {"metadata", "labels"}), meta.child("labels"), errs);
  validate_annotations(at(obj, {"metadata", "annotations"}), meta.child("annotations"), errs);
  validate_owner_references(at(obj, {"metadata", "ownerReferences"}), meta.child("ownerReferences"),
                            errs);
  validate_finalizers(at(obj, {"metadata", "finalizers"}), meta.child("finalizers"), errs);
}

void validate_object_meta_update(const json& obj, const json& old, FieldErrors& errs) {
  const Path meta("metadata");
  if (at(old, {"metadata", "deletionTimestamp"}) != nullptr) {
    std::set<std::string> before;
    for (const std::string& f : string_list(at(old, {"metadata", "finalizers"}))) before.insert(f);
    json extra = json::array();
    for (const std::string& f : string_list(at(obj, {"metadata", "finalizers"}))) {
      if (!before.count(f)) extra.push_back(f);
    }
    if (!extra.empty()) {
      errs.forbidden(meta.child("finalizers"),
                     "no new finalizers can be added if the object is being deleted, found new "
                     "finalizers " +
                         go_string_slice(&extra));
    }
  }
  int64_t new_gen = int_at(obj, {"metadata", "generation"}).value_or(0);
  int64_t old_gen = int_at(old, {"metadata", "generation"}).value_or(0);
  if (new_gen < old_gen) {
    errs.invalid(meta.child("generation"), go_int(new_gen), "must not be decremented");
  }
  for (const char* key : {"name", "namespace"}) {
    std::string nv = str_at(obj, {"metadata", key});
    if (nv != str_at(old, {"metadata", key})) {
      errs.invalid(meta.child(key), go_quote(nv), kFieldImmutable);
    }
  }
  std::string uid = str_at(obj, {"metadata", "uid"});
  if (!uid.empty() && uid != str_at(old, {"metadata", "uid"})) {
    errs.invalid(meta.child("uid"), go_quote(uid), kFieldImmutable);
  }
  std::string created = str_at(obj, {"metadata", "creationTimestamp"});
  std::string old_created = str_at(old, {"metadata", "creationTimestamp"});
  if (!created.empty() && time_seconds(created) != time_seconds(old_created)) {
    errs.invalid(meta.child("creationTimestamp"), go_time_string(created), kFieldImmutable);
  }
  const json* del = at(obj, {"metadata", "deletionTimestamp"});
  const json* old_del = at(old, {"metadata", "deletionTimestamp"});
  if (del != nullptr && !json_equal(del, old_del)) {
    errs.invalid(meta.child("deletionTimestamp"), go_time_string(as_string(del)), kFieldImmutable);
  }
  const json* grace = at(obj, {"metadata", "deletionGracePeriodSeconds"});
  const json* old_grace = at(old, {"metadata", "deletionGracePeriodSeconds"});
  if (grace != nullptr && !json_equal(grace, old_grace)) {
    errs.invalid(meta.child("deletionGracePeriodSeconds"), go_value(grace), kFieldImmutable);
  }
  validate_labels(at(obj, {"metadata", "labels"}), meta.child("labels"), errs);
  validate_annotations(at(obj, {"metadata", "annotations"}), meta.child("annotations"), errs);
  validate_owner_references(at(obj, {"metadata", "ownerReferences"}), meta.child("ownerReferences"),
                            errs);
}

void validate_labels(const json* labels, const Path& p, FieldErrors& errs) {
  if (labels == nullptr) return;
  errs.add_causes(skiff::validate_labels(*labels, p.str()));
}

void validate_annotations(const json* annotations, const Path& p, FieldErrors& errs) {
  if (annotations == nullptr || !annotations->is_object()) return;
  int64_t total = 0;
  for (const std::string& key : sorted_keys(annotations)) {
    for (const std::string& msg : is_qualified_name(ascii_lower(key))) {
      errs.invalid(p, go_quote(key), msg);
    }
    total += static_cast<int64_t>(key.size() + as_string(&(*annotations)[key]).size());
  }
  if (total > kTotalAnnotationSizeLimitB) errs.too_long(p, kTotalAnnotationSizeLimitB);
}

void validate_qualified_name(std::string_view value, const Path& p, FieldErrors& errs) {
  for (const std::string& msg : is_qualified_name(value)) errs.invalid(p, go_quote(value), msg);
}

void validate_dns1123_label(std::string_view value, const Path& p, FieldErrors& errs) {
  for (const std::string& msg : is_dns1123_label(value)) errs.invalid(p, go_quote(value), msg);
}

void validate_dns1123_subdomain(std::string_view value, const Path& p, FieldErrors& errs) {
  for (const std::string& msg : is_dns1123_subdomain(value)) {
    errs.invalid(p, go_quote(value), msg);
  }
}

void validate_nonnegative(int64_t value, const Path& p, FieldErrors& errs) {
  if (value < 0) errs.invalid(p, go_int(value), "must be greater than or equal to 0");
}

bool json_equal(const json* a, const json* b) {
  bool a_null = a == nullptr || a->is_null();
  bool b_null = b == nullptr || b->is_null();
  if (a_null || b_null) return a_null == b_null;
  return *a == *b;
}

void validate_immutable(const json* new_value, const json* old_value, const Path& p,
                        const std::string& go_value_text, FieldErrors& errs) {
  if (!json_equal(new_value, old_value)) errs.invalid(p, go_value_text, kFieldImmutable);
}

void validate_port_num_or_name(const json* port, const Path& p, FieldErrors& errs) {
  if (port == nullptr) {
    for (const std::string& msg : is_valid_port_num(0)) errs.invalid(p, "0", msg);
    return;
  }
  if (port->is_string()) {
    std::string name = port->get<std::string>();
    for (const std::string& msg : is_valid_port_name(name)) errs.invalid(p, go_quote(name), msg);
    return;
  }
  int64_t n = as_int(port).value_or(0);
  for (const std::string& msg : is_valid_port_num(n)) errs.invalid(p, go_int(n), msg);
}

bool is_ip(std::string_view s) {
  std::string str(s);
  unsigned char buf[16];
  return inet_pton(AF_INET, str.c_str(), buf) == 1 || inet_pton(AF_INET6, str.c_str(), buf) == 1;
}

void validate_label_selector(const json* selector, const Path& p, FieldErrors& errs) {
  if (selector == nullptr) return;
  errs.add_causes(skiff::validate_label_selector(*selector, p.str()));
}

std::optional<LabelSelector> selector_of(const json* selector) {
  Result<LabelSelector> sel = LabelSelector::from_json(selector != nullptr ? *selector : json());
  if (!sel.ok()) return std::nullopt;
  return std::move(sel).value();
}

std::string format_label_selector(const json* selector) {
  std::optional<LabelSelector> sel = selector_of(selector);
  if (!sel) return "<error>";
  std::string out = sel->to_string();
  return out.empty() ? "<none>" : out;
}

std::string format_labels(const json* labels) {
  std::string out;
  for (const std::string& k : sorted_keys(labels)) {
    if (!out.empty()) out += ",";
    out += k + "=" + as_string(&(*labels)[k]);
  }
  return out.empty() ? "<none>" : out;
}

}  // namespace skiff::api::builtin
