#include "controllers/common/object_meta.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <limits>

namespace skiff::controllers::common {

const json* find_path(const json& obj, std::initializer_list<std::string_view> path) {
  const json* cur = &obj;
  for (std::string_view step : path) {
    if (!cur->is_object()) return nullptr;
    auto it = cur->find(step);
    if (it == cur->end()) return nullptr;
    cur = &*it;
  }
  return cur;
}

std::string string_at(const json& obj, std::initializer_list<std::string_view> path,
                      std::string_view def) {
  const json* v = find_path(obj, path);
  if (v == nullptr || !v->is_string()) return std::string(def);
  return v->get<std::string>();
}

int64_t int_at(const json& obj, std::initializer_list<std::string_view> path, int64_t def) {
  const json* v = find_path(obj, path);
  if (v == nullptr) return def;
  if (v->is_number_unsigned()) {
    uint64_t u = v->get<uint64_t>();
    return u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())
               ? std::numeric_limits<int64_t>::max()
               : static_cast<int64_t>(u);
  }
  if (v->is_number_integer()) return v->get<int64_t>();
  return def;
}

bool bool_at(const json& obj, std::initializer_list<std::string_view> path, bool def) {
  const json* v = find_path(obj, path);
  if (v == nullptr || !v->is_boolean()) return def;
  return v->get<bool>();
}

std::string name_of(const json& obj) { return string_at(obj, {"metadata", "name"}); }
std::string namespace_of(const json& obj) { return string_at(obj, {"metadata", "namespace"}); }
std::string uid_of(const json& obj) { return string_at(obj, {"metadata", "uid"}); }
std::string resource_version_of(const json& obj) {
  return string_at(obj, {"metadata", "resourceVersion"});
}
int64_t generation_of(const json& obj) { return int_at(obj, {"metadata", "generation"}); }

json object_reference(const json& obj, std::string_view api_version, std::string_view kind) {
  json ref = {{"apiVersion", api_version}, {"kind", kind}, {"name", name_of(obj)}};
  if (std::string ns = namespace_of(obj); !ns.empty()) ref["namespace"] = ns;
  if (std::string uid = uid_of(obj); !uid.empty()) ref["uid"] = uid;
  if (std::string rv = resource_version_of(obj); !rv.empty()) ref["resourceVersion"] = rv;
  return ref;
}

std::string key_of(const json& obj) {
  std::string ns = namespace_of(obj);
  return ns.empty() ? name_of(obj) : ns + "/" + name_of(obj);
}

bool being_deleted(const json& obj) {
  const json* ts = find_path(obj, {"metadata", "deletionTimestamp"});
  return ts != nullptr && !ts->is_null();
}

Labels string_map(const json* map) {
  Labels out;
  if (map == nullptr || !map->is_object()) return out;
  for (auto it = map->begin(); it != map->end(); ++it) {
    if (it.value().is_string()) out.emplace(it.key(), it.value().get<std::string>());
  }
  return out;
}

Labels labels_of(const json& obj) { return string_map(find_path(obj, {"metadata", "labels"})); }

Labels annotations_of(const json& obj) {
  return string_map(find_path(obj, {"metadata", "annotations"}));
}

std::optional<std::string> annotation(const json& obj, std::string_view key) {
  const json* annotations = find_path(obj, {"metadata", "annotations"});
  if (annotations == nullptr || !annotations->is_object()) return std::nullopt;
  auto it = annotations->find(key);
  if (it == annotations->end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

std::optional<Timestamp> time_at(const json& obj, std::initializer_list<std::string_view> path) {
  const json* v = find_path(obj, path);
  if (v == nullptr || !v->is_string()) return std::nullopt;
  auto t = parse_rfc3339_timestamp(v->get<std::string>());
  if (!t.ok()) return std::nullopt;
  return *t;
}

Timestamp creation_timestamp(const json& obj) {
  return time_at(obj, {"metadata", "creationTimestamp"}).value_or(Timestamp{});
}

Timestamp to_timestamp(TimePoint t) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  int64_t seconds = ns / 1'000'000'000;
  int64_t nanos = ns % 1'000'000'000;
  if (nanos < 0) {
    nanos += 1'000'000'000;
    --seconds;
  }
  return Timestamp{seconds, static_cast<int32_t>(nanos)};
}

TimePoint to_time_point(Timestamp t) {
  // TimePoint holds 64-bit nanoseconds: about ±292 years around 1970.
  constexpr int64_t kLimit = std::numeric_limits<int64_t>::max() / 1'000'000'000 - 1;
  int64_t seconds = std::clamp<int64_t>(t.seconds, -kLimit, kLimit);
  return TimePoint(std::chrono::duration_cast<TimePoint::duration>(
      std::chrono::seconds(seconds) + std::chrono::nanoseconds(t.nanos)));
}

std::string format_time(TimePoint t) { return format_rfc3339(t); }

bool created_before(const json& a, const json& b) {
  Timestamp ta = creation_timestamp(a);
  Timestamp tb = creation_timestamp(b);
  if (ta == tb) return name_of(a) < name_of(b);
  if (ta.seconds != tb.seconds) return ta.seconds < tb.seconds;
  return ta.nanos < tb.nanos;
}

std::optional<int64_t> parse_int64(std::string_view s) {
  if (!s.empty() && s[0] == '+') s.remove_prefix(1);
  if (s.empty() || s[0] == '+') return std::nullopt;
  int64_t v = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace skiff::controllers::common
