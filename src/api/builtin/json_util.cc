#include "api/builtin/json_util.h"

#include <algorithm>
#include <cmath>

namespace skiff::api::builtin {

const json* member(const json& obj, std::string_view key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

const json* at(const json& obj, std::initializer_list<std::string_view> keys) {
  const json* cur = &obj;
  for (std::string_view k : keys) {
    cur = member(*cur, k);
    if (cur == nullptr) return nullptr;
  }
  return cur;
}

json* mutable_at(json& obj, std::initializer_list<std::string_view> keys) {
  json* cur = &obj;
  for (std::string_view k : keys) {
    if (!cur->is_object()) return nullptr;
    auto it = cur->find(k);
    if (it == cur->end() || it->is_null()) return nullptr;
    cur = &*it;
  }
  return cur;
}

std::string str_at(const json& obj, std::initializer_list<std::string_view> keys,
                   std::string_view fallback) {
  const json* v = at(obj, keys);
  if (v == nullptr || !v->is_string()) return std::string(fallback);
  return v->get<std::string>();
}

std::optional<int64_t> as_int(const json* v) {
  if (v == nullptr) return std::nullopt;
  if (v->is_number_unsigned()) {
    uint64_t u = v->get<uint64_t>();
    if (u > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
    return static_cast<int64_t>(u);
  }
  if (v->is_number_integer()) return v->get<int64_t>();
  if (v->is_number_float()) {
    double d = v->get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.2e18) {
      return static_cast<int64_t>(d);
    }
  }
  return std::nullopt;
}

std::optional<int64_t> int_at(const json& obj, std::initializer_list<std::string_view> keys) {
  return as_int(at(obj, keys));
}

std::optional<bool> bool_at(const json& obj, std::initializer_list<std::string_view> keys) {
  const json* v = at(obj, keys);
  if (v == nullptr || !v->is_boolean()) return std::nullopt;
  return v->get<bool>();
}

const json* array_at(const json& obj, std::initializer_list<std::string_view> keys) {
  const json* v = at(obj, keys);
  return v != nullptr && v->is_array() ? v : nullptr;
}

const json* object_at(const json& obj, std::initializer_list<std::string_view> keys) {
  const json* v = at(obj, keys);
  return v != nullptr && v->is_object() ? v : nullptr;
}

std::string as_string(const json* v) {
  if (v == nullptr || !v->is_string()) return "";
  return v->get<std::string>();
}

size_t size_of(const json* v) {
  if (v == nullptr) return 0;
  if (v->is_object() || v->is_array()) return v->size();
  return 0;
}

std::optional<Quantity> quantity_of(const json* v) {
  if (v == nullptr || v->is_null()) return std::nullopt;
  Result<Quantity> q = Quantity::from_json(*v);
  if (!q.ok()) return std::nullopt;
  return std::move(q).value();
}

std::string quantity_text(const json* v) {
  if (v == nullptr || v->is_null()) return "0";
  if (auto q = quantity_of(v)) return q->to_string();
  return v->is_string() ? v->get<std::string>() : v->dump();
}

json& object_member(json& obj, std::string_view key) {
  json& m = obj[std::string(key)];
  if (!m.is_object()) m = json::object();
  return m;
}

bool has(const json& obj, std::string_view key) { return member(obj, key) != nullptr; }

void set_default(json& obj, std::string_view key, json value) {
  if (!obj.is_object()) return;
  if (has(obj, key)) return;
  obj[std::string(key)] = std::move(value);
}

std::vector<std::string> sorted_keys(const json* obj) {
  std::vector<std::string> out;
  if (obj == nullptr || !obj->is_object()) return out;
  for (auto it = obj->begin(); it != obj->end(); ++it) out.push_back(it.key());
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> string_list(const json* arr) {
  std::vector<std::string> out;
  if (arr == nullptr || !arr->is_array()) return out;
  for (const json& v : *arr) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

}  // namespace skiff::api::builtin
