#include "api/patch/field_set.h"

#include <algorithm>

#include "api/patch/patch_util.h"
#include "common/json.h"

namespace skiff::api::patch_internal {
namespace {

// Key JSON inside a path element is tiny in practice; refusing deep nesting keeps the parser
// and everything after it shallow whatever a client stored in managedFields.
constexpr int kMaxKeyDepth = 16;

bool parse_small_json(std::string_view text, json* out) {
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') in_string = true;
    if (c == '{' || c == '[') {
      if (++depth > kMaxKeyDepth) return false;
    }
    if (c == '}' || c == ']') --depth;
  }
  *out = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  return !out->is_discarded();
}

// Canonical form of one FieldsV1 path element; false when it is not one.
bool normalize_element(const std::string& raw, std::string* out) {
  if (raw.size() < 2 || raw[1] != ':') return false;
  std::string_view rest(raw);
  rest.remove_prefix(2);
  switch (raw[0]) {
    case 'f':
      *out = raw;
      return true;
    case 'k': {
      json key;
      if (!parse_small_json(rest, &key) || !key.is_object()) return false;
      *out = "k:" + to_json(key);
      return true;
    }
    case 'v': {
      json value;
      if (!parse_small_json(rest, &value)) return false;
      *out = "v:" + to_json(value);
      return true;
    }
    case 'i': {
      if (rest.empty() || rest.size() > 18) return false;
      for (char c : rest) {
        if (c < '0' || c > '9') return false;
      }
      *out = raw;
      return true;
    }
    default:
      return false;
  }
}

bool parse_node(const json& v, FieldSet* node, std::string* error) {
  if (!v.is_object()) {
    *error = "FieldsV1 nodes must be objects, got " + std::string(type_name(v));
    return false;
  }
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (it.key() == ".") {
      node->member = true;
      continue;
    }
    std::string element;
    if (!normalize_element(it.key(), &element)) {
      *error = "invalid FieldsV1 path element \"" + it.key() + "\"";
      return false;
    }
    FieldSet& child = node->children[element];
    if (!parse_node(it.value(), &child, error)) return false;
    if (it.value().empty()) child.member = true;
  }
  return true;
}

json node_to_json(const FieldSet& node) {
  json out = json::object();
  auto& members = out.get_ref<json::object_t&>();
  // "." sorts before every path element ("f:", "i:", "k:", "v:"): both maps are in order.
  if (node.member && !node.children.empty()) {
    members.emplace_hint(members.end(), ".", json::object());
  }
  for (const auto& [element, child] : node.children) {
    members.emplace_hint(members.end(), element, node_to_json(child));
  }
  return out;
}

// structured-merge-diff orders path elements: field names, then keys, then values, then
// indices.
int element_rank(const std::string& element) {
  switch (element.empty() ? ' ' : element[0]) {
    case 'f':
      return 0;
    case 'k':
      return 1;
    case 'v':
      return 2;
    default:
      return 3;
  }
}

std::vector<const std::pair<const std::string, FieldSet>*> ordered_children(const FieldSet& node) {
  std::vector<const std::pair<const std::string, FieldSet>*> out;
  out.reserve(node.children.size());
  for (const auto& entry : node.children) out.push_back(&entry);
  std::stable_sort(out.begin(), out.end(), [](const auto* a, const auto* b) {
    return element_rank(a->first) < element_rank(b->first);
  });
  return out;
}

void collect_paths(const FieldSet& node, const std::string& prefix, std::vector<std::string>* out) {
  const auto children = ordered_children(node);
  for (const auto* entry : children) {
    if (entry->second.member) out->push_back(prefix + render_path_element(entry->first));
  }
  for (const auto* entry : children) {
    if (!entry->second.children.empty()) {
      collect_paths(entry->second, prefix + render_path_element(entry->first), out);
    }
  }
}

}  // namespace

const FieldSet* FieldSet::find(const std::string& element) const {
  auto it = children.find(element);
  return it == children.end() ? nullptr : &it->second;
}

void FieldSet::merge_from(const FieldSet& other) {
  member = member || other.member;
  for (const auto& [element, child] : other.children) children[element].merge_from(child);
}

void FieldSet::subtract(const FieldSet& other) {
  if (other.member) member = false;
  for (const auto& [element, child] : other.children) {
    auto it = children.find(element);
    if (it == children.end()) continue;
    it->second.subtract(child);
    if (it->second.empty()) children.erase(it);
  }
}

FieldSet FieldSet::intersect(const FieldSet& other) const {
  FieldSet out;
  out.member = member && other.member;
  for (const auto& [element, child] : children) {
    const FieldSet* theirs = other.find(element);
    if (theirs == nullptr) continue;
    FieldSet both = child.intersect(*theirs);
    if (!both.empty()) out.children.emplace(element, std::move(both));
  }
  return out;
}

json FieldSet::to_fields_v1() const {
  json out = json::object();
  auto& members = out.get_ref<json::object_t&>();
  for (const auto& [element, child] : children) {
    members.emplace_hint(members.end(), element, node_to_json(child));
  }
  return out;
}

bool FieldSet::from_fields_v1(const json& v, FieldSet* out, std::string* error) {
  *out = FieldSet();
  if (!parse_node(v, out, error)) return false;
  out->member = false;
  return true;
}

std::vector<std::string> FieldSet::member_paths() const {
  std::vector<std::string> out;
  collect_paths(*this, "", &out);
  return out;
}

std::string render_path_element(const std::string& element) {
  if (element.size() < 2) return element;
  std::string_view rest(element);
  rest.remove_prefix(2);
  switch (element[0]) {
    case 'f':
      return "." + std::string(rest);
    case 'i':
      return "[" + std::string(rest) + "]";
    case 'v': {
      json value;
      if (!parse_small_json(rest, &value)) return "[=" + std::string(rest) + "]";
      return "[=" + to_json(value) + "]";
    }
    case 'k': {
      json key;
      if (!parse_small_json(rest, &key) || !key.is_object()) return "[" + std::string(rest) + "]";
      std::string out = "[";
      bool first = true;
      for (auto it = key.begin(); it != key.end(); ++it) {
        if (!first) out += ',';
        first = false;
        out += it.key() + "=" + to_json(it.value());
      }
      return out + "]";
    }
    default:
      return element;
  }
}

}  // namespace skiff::api::patch_internal
