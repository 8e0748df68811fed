#include "controllers/common/pod_template_hash.h"

#include "common/json.h"
#include "common/random.h"

namespace skiff::controllers::common {
namespace {

bool is_empty_value(const json& v) {
  return v.is_null() || ((v.is_object() || v.is_array()) && v.empty());
}

json normalize_rec(const json& value) {
  if (value.is_object()) {
    json out = json::object();
    for (auto it = value.begin(); it != value.end(); ++it) {
      json child = normalize_rec(it.value());
      if (!is_empty_value(child)) out[it.key()] = std::move(child);
    }
    return out;
  }
  if (value.is_array()) {
    json out = json::array();
    for (const json& element : value) out.push_back(normalize_rec(element));
    return out;
  }
  return value;
}

json without_hash_label(const json& pod_template) {
  json t = pod_template;
  if (t.is_object()) {
    auto meta = t.find("metadata");
    if (meta != t.end() && meta->is_object()) {
      auto labels = meta->find("labels");
      if (labels != meta->end() && labels->is_object()) labels->erase(kPodTemplateHashLabel);
    }
  }
  return semantic_normalize(t);
}

}  // namespace

json semantic_normalize(const json& value) { return normalize_rec(value); }

uint32_t fnv32a(std::string_view data, uint32_t hash) {
  for (unsigned char c : data) {
    hash ^= c;
    hash *= 16777619u;
  }
  return hash;
}

std::string safe_encode_string(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) out.push_back(kNameSuffixAlphabet[c % kNameSuffixAlphabet.size()]);
  return out;
}

std::string compute_hash(const json& pod_template, std::optional<int32_t> collision_count) {
  uint32_t h = fnv32a(to_json(semantic_normalize(pod_template)));
  if (collision_count) {
    uint32_t c = static_cast<uint32_t>(*collision_count);
    char bytes[4] = {static_cast<char>(c & 0xff), static_cast<char>((c >> 8) & 0xff),
                     static_cast<char>((c >> 16) & 0xff), static_cast<char>((c >> 24) & 0xff)};
    h = fnv32a(std::string_view(bytes, 4), h);
  }
  return safe_encode_string(std::to_string(h));
}

bool equal_ignore_hash(const json& template1, const json& template2) {
  return without_hash_label(template1) == without_hash_label(template2);
}

}  // namespace skiff::controllers::common
