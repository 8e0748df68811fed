#include "apiserver/object_bytes.h"

#include <algorithm>
#include <charconv>
#include <cstring>

#include "common/strings.h"

namespace skiff::apiserver {

namespace {

using nlohmann::json;

// Deeper documents take the DOM path, whose parser is not recursive.
constexpr int kMaxCanonicalDepth = 200;

// A single forward pass over canonical bytes. Every function returns false as soon as the
// bytes are not canonical; the position is then meaningless.
class Keys;

class CanonicalReader {
 public:
  explicit CanonicalReader(std::string_view bytes)
      : begin_(bytes.data()), p_(bytes.data()), end_(bytes.data() + bytes.size()) {}

  size_t offset() const { return static_cast<size_t>(p_ - begin_); }
  bool at_end() const { return p_ == end_; }
  bool peek(char c) const { return p_ != end_ && *p_ == c; }
  bool consume(char c) {
    if (!peek(c)) return false;
    ++p_;
    return true;
  }

  // A string as nlohmann dumps it. *raw is what lies between the quotes; *escaped tells
  // whether it holds escapes.
  bool string(std::string_view* raw, bool* escaped) {
    if (!consume('"')) return false;
    const char* start = p_;
    *escaped = false;
    while (p_ != end_) {
      unsigned char c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        *raw = std::string_view(start, static_cast<size_t>(p_ - start));
        ++p_;
        return true;
      }
      if (c < 0x20) return false;
      if (c == '\\') {
        *escaped = true;
        if (!escape()) return false;
        continue;
      }
      if (c >= 0x80) {
        size_t len;
        if (decode_utf8(std::string_view(p_, static_cast<size_t>(end_ - p_)), &len) < 0) {
          return false;
        }
        p_ += len;
        continue;
      }
      ++p_;
    }
    return false;
  }

  // Any value, checked to be canonical.
  bool skip_value(int depth);

  // A scalar; stored in *out (if not null) as nlohmann's parser would store it.
  bool scalar(json* out) {
    if (p_ == end_) return false;
    switch (*p_) {
      case '"': {
        std::string_view raw;
        bool escaped;
        if (!string(&raw, &escaped)) return false;
        if (out != nullptr) *out = decode(raw, escaped);
        return true;
      }
      case 't':
        return literal("true", json(true), out);
      case 'f':
        return literal("false", json(false), out);
      case 'n':
        return literal("null", json(nullptr), out);
      default:
        return integer(out);
    }
  }

  // The string a canonical string literal's contents stand for.
  static std::string decode(std::string_view raw, bool escaped) {
    if (!escaped) return std::string(raw);
    std::string out;
    out.reserve(raw.size());
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] != '\\') {
        out += raw[i];
        continue;
      }
      char e = raw[++i];
      switch (e) {
        case 'b':
          out += '\b';
          break;
        case 't':
          out += '\t';
          break;
        case 'n':
          out += '\n';
          break;
        case 'f':
          out += '\f';
          break;
        case 'r':
          out += '\r';
          break;
        case 'u': {
          // Canonical \u escapes are \u00XX for control characters only.
          int hi = hex(raw[i + 3]);
          int lo = hex(raw[i + 4]);
          out += static_cast<char>(hi * 16 + lo);
          i += 4;
          break;
        }
        default:
          out += e;
          break;  // '"' or '\\'
      }
    }
    return out;
  }

 private:
  static int hex(char c) { return c <= '9' ? c - '0' : c - 'a' + 10; }

  // The escapes nlohmann's dump writes, and no others.
  bool escape() {
    if (end_ - p_ < 2) return false;
    char e = p_[1];
    switch (e) {
      case '"':
      case '\\':
      case 'b':
      case 'f':
      case 'n':
      case 'r':
      case 't':
        p_ += 2;
        return true;
      case 'u': {
        if (end_ - p_ < 6 || p_[2] != '0' || p_[3] != '0') return false;
        char hi = p_[4];
        char lo = p_[5];
        bool lo_hex = (lo >= '0' && lo <= '9') || (lo >= 'a' && lo <= 'f');
        if ((hi != '0' && hi != '1') || !lo_hex) return false;
        int cp = hex(hi) * 16 + hex(lo);
        // These have short forms.
        if (cp == 0x08 || cp == 0x09 || cp == 0x0a || cp == 0x0c || cp == 0x0d) return false;
        p_ += 6;
        return true;
      }
      default:
        return false;
    }
  }

  bool literal(std::string_view word, json value, json* out) {
    if (static_cast<size_t>(end_ - p_) < word.size() ||
        std::memcmp(p_, word.data(), word.size()) != 0) {
      return false;
    }
    p_ += word.size();
    if (out != nullptr) *out = std::move(value);
    return true;
  }

  // Integers only: a float's text may not survive a parse and dump unchanged.
  bool integer(json* out) {
    const char* start = p_;
    bool negative = consume('-');
    if (p_ == end_ || *p_ < '0' || *p_ > '9') return false;
    if (*p_ == '0') {
      ++p_;
      if (negative) return false;  // "-0" dumps as "0"
    } else {
      while (p_ != end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    }
    if (p_ != end_ && (*p_ == '.' || *p_ == 'e' || *p_ == 'E')) return false;
    if (negative) {
      int64_t v;
      auto r = std::from_chars(start, p_, v);
      if (r.ec != std::errc() || r.ptr != p_) return false;
      if (out != nullptr) *out = v;
    } else {
      uint64_t v;
      auto r = std::from_chars(start, p_, v);
      if (r.ec != std::errc() || r.ptr != p_) return false;
      if (out != nullptr) *out = v;
    }
    return true;
  }

  const char* const begin_;
  const char* p_;
  const char* const end_;
};

// Reads an object's keys in turn, checking that they ascend as std::map orders them.
class Keys {
 public:
  explicit Keys(CanonicalReader& r) : r_(r) {}

  // `"key":`. *key stays valid until the next call.
  bool next(std::string_view* key) {
    std::string_view raw;
    bool escaped;
    if (!r_.string(&raw, &escaped)) return false;
    if (escaped) {
      // Two buffers: the previous key may live in the other one.
      buf_[cur_] = CanonicalReader::decode(raw, true);
      raw = buf_[cur_];
      cur_ ^= 1;
    }
    if (!first_ && !(last_ < raw)) return false;
    first_ = false;
    last_ = raw;
    *key = raw;
    return r_.consume(':');
  }

 private:
  CanonicalReader& r_;
  std::string buf_[2];
  int cur_ = 0;
  std::string_view last_;
  bool first_ = true;
};

bool CanonicalReader::skip_value(int depth) {
  if (p_ == end_) return false;
  switch (*p_) {
    case '{': {
      if (depth >= kMaxCanonicalDepth) return false;
      ++p_;
      if (consume('}')) return true;
      Keys keys(*this);
      for (;;) {
        std::string_view key;
        if (!keys.next(&key)) return false;
        if (!skip_value(depth + 1)) return false;
        if (consume(',')) continue;
        return consume('}');
      }
    }
    case '[': {
      if (depth >= kMaxCanonicalDepth) return false;
      ++p_;
      if (consume(']')) return true;
      for (;;) {
        if (!skip_value(depth + 1)) return false;
        if (consume(',')) continue;
        return consume(']');
      }
    }
    default:
      return scalar(nullptr);
  }
}

constexpr std::string_view kResourceVersion = "resourceVersion";

// The metadata object: what the cache keeps, and where resourceVersion goes.
bool read_metadata(CanonicalReader& r, ObjectBytesInfo* out, json& summary) {
  if (!r.consume('{')) return false;
  bool placed = false;  // rv_begin/rv_end are set
  if (r.consume('}')) {
    out->rv_begin = out->rv_end = r.offset() - 1;
    out->rv_prefix = "\"resourceVersion\":";
    out->rv_suffix = "";
    return true;
  }
  Keys keys(r);
  for (;;) {
    size_t key_begin = r.offset();
    std::string_view key;
    if (!keys.next(&key)) return false;
    if (!placed && key == kResourceVersion) {
      // Replace the value, whatever it is.
      size_t value_begin = r.offset();
      if (!r.skip_value(2)) return false;
      out->rv_begin = value_begin;
      out->rv_end = r.offset();
      out->rv_prefix = "";
      out->rv_suffix = "";
      placed = true;
    } else {
      if (!placed && key > kResourceVersion) {
        out->rv_begin = out->rv_end = key_begin;
        out->rv_prefix = "\"resourceVersion\":";
        out->rv_suffix = ",";
        placed = true;
      }
      if (key == "labels" && r.peek('{')) {
        r.consume('{');
        if (!r.consume('}')) {
          Keys label_keys(r);
          for (;;) {
            std::string_view label;
            if (!label_keys.next(&label)) return false;
            if (r.peek('"')) {
              json v;
              if (!r.scalar(&v)) return false;
              out->labels.emplace_back(std::string(label), v.get_ref<std::string&>());
            } else if (!r.skip_value(3)) {
              return false;
            }
            if (r.consume(',')) continue;
            if (!r.consume('}')) return false;
            break;
          }
        }
      } else if (r.peek('{') || r.peek('[')) {
        if (!r.skip_value(2)) return false;
        if (key == "deletionTimestamp") out->deleting = true;
      } else {
        json v;
        if (!r.scalar(&v)) return false;
        if (key == "name" && v.is_string()) out->name = v.get_ref<std::string&>();
        if (key == "namespace" && v.is_string()) out->ns = v.get_ref<std::string&>();
        if (key == "deletionTimestamp" && !v.is_null()) out->deleting = true;
        summary[std::string(key)] = std::move(v);
      }
    }
    if (r.consume(',')) continue;
    if (!r.consume('}')) return false;
    break;
  }
  if (!placed) {
    // After the last member: before the closing brace.
    out->rv_begin = out->rv_end = r.offset() - 1;
    out->rv_prefix = ",\"resourceVersion\":";
    out->rv_suffix = "";
  }
  return true;
}

// A top-level object other than metadata: its scalar members go into the summary.
bool read_section(CanonicalReader& r, json& summary) {
  if (!r.consume('{')) return false;
  summary = json::object();
  if (r.consume('}')) return true;
  Keys keys(r);
  for (;;) {
    std::string_view key;
    if (!keys.next(&key)) return false;
    if (r.peek('{') || r.peek('[')) {
      if (!r.skip_value(2)) return false;
    } else {
      json v;
      if (!r.scalar(&v)) return false;
      summary.get_ref<json::object_t&>().emplace_hint(summary.get_ref<json::object_t&>().end(),
                                                      std::string(key), std::move(v));
    }
    if (r.consume(',')) continue;
    return r.consume('}');
  }
}

}  // namespace

bool read_canonical_object(std::string_view bytes, ObjectBytesInfo* out) {
  CanonicalReader r(bytes);
  if (!r.consume('{')) return false;
  out->summary = json::object();
  auto& top = out->summary.get_ref<json::object_t&>();
  bool have_metadata = false;
  if (!r.consume('}')) {
    Keys keys(r);
    for (;;) {
      std::string_view key;
      if (!keys.next(&key)) return false;
      if (r.peek('[')) {
        if (!r.skip_value(1)) return false;
      } else {
        json& slot = top.emplace_hint(top.end(), std::string(key), nullptr)->second;
        if (key == "metadata") {
          if (!r.peek('{')) return false;
          slot = json::object();
          if (!read_metadata(r, out, slot)) return false;
          have_metadata = true;
        } else if (r.peek('{')) {
          if (!read_section(r, slot)) return false;
        } else if (!r.scalar(&slot)) {
          return false;
        }
      }
      if (r.consume(',')) continue;
      if (!r.consume('}')) return false;
      break;
    }
  }
  return have_metadata && r.at_end();
}

std::string with_resource_version(std::string_view bytes, const ObjectBytesInfo& info,
                                  int64_t revision) {
  char digits[24];
  auto res = std::to_chars(digits, digits + sizeof(digits), revision);
  std::string_view rv(digits, static_cast<size_t>(res.ptr - digits));
  std::string out;
  out.reserve(bytes.size() + info.rv_prefix.size() + rv.size() + 2 + info.rv_suffix.size() -
              (info.rv_end - info.rv_begin));
  out.append(bytes.substr(0, info.rv_begin));
  out.append(info.rv_prefix);
  out += '"';
  out.append(rv);
  out += '"';
  out.append(info.rv_suffix);
  out.append(bytes.substr(info.rv_end));
  return out;
}

bool read_members(std::string_view object, std::vector<MemberSpan>* out) {
  out->clear();
  CanonicalReader r(object);
  if (!r.consume('{')) return false;
  if (!r.consume('}')) {
    Keys keys(r);
    for (;;) {
      size_t key_begin = r.offset();
      std::string_view key;
      if (!keys.next(&key)) return false;
      size_t begin = r.offset();
      if (!r.skip_value(1)) return false;
      out->push_back(MemberSpan{std::string(key), key_begin, begin, r.offset()});
      if (r.consume(',')) continue;
      if (!r.consume('}')) return false;
      break;
    }
  }
  return r.at_end();
}

bool read_elements(std::string_view array, std::vector<std::pair<size_t, size_t>>* out) {
  out->clear();
  CanonicalReader r(array);
  if (!r.consume('[')) return false;
  if (!r.consume(']')) {
    for (;;) {
      size_t begin = r.offset();
      if (!r.skip_value(1)) return false;
      out->emplace_back(begin, r.offset());
      if (r.consume(',')) continue;
      if (!r.consume(']')) return false;
      break;
    }
  }
  return r.at_end();
}

std::string edit_members(std::string_view object, const std::vector<MemberSpan>& members,
                         std::vector<MemberEdit> edits) {
  std::sort(edits.begin(), edits.end(),
            [](const MemberEdit& a, const MemberEdit& b) { return a.key < b.key; });
  std::string out;
  out.reserve(object.size() + 64);
  out += '{';
  bool first = true;
  auto emit = [&](std::string_view key, std::string_view value) {
    if (!first) out += ',';
    first = false;
    out += '"';
    out.append(key);
    out += "\":";
    out.append(value);
  };
  auto e = edits.begin();
  for (const MemberSpan& m : members) {
    for (; e != edits.end() && e->key < m.key; ++e) {
      if (e->value) emit(e->key, *e->value);
    }
    if (e != edits.end() && e->key == m.key) {
      if (e->value) emit(e->key, *e->value);
      ++e;
      continue;
    }
    if (!first) out += ',';
    first = false;
    out.append(object.substr(m.key_begin, m.end - m.key_begin));  // key and value as they were
  }
  for (; e != edits.end(); ++e) {
    if (e->value) emit(e->key, *e->value);
  }
  out += '}';
  return out;
}

namespace {

const MemberSpan* find_member(const std::vector<MemberSpan>& members, std::string_view key) {
  for (const MemberSpan& m : members) {
    if (m.key == key) return &m;
  }
  return nullptr;
}

std::string_view value_of(std::string_view object, const MemberSpan& m) {
  return object.substr(m.begin, m.end - m.begin);
}

}  // namespace

BindResult bind_pod_bytes(std::string_view pod, const std::string& node, const std::string& now) {
  BindResult res;
  std::vector<MemberSpan> top;
  if (!read_members(pod, &top)) return res;
  const MemberSpan* meta = find_member(top, "metadata");
  if (meta == nullptr || pod[meta->begin] != '{') return res;
  std::vector<MemberEdit> edits;

  // spec.nodeName: refused when set, as the DOM path refuses it.
  std::string node_json = json(node).dump();
  std::vector<MemberSpan> members;
  if (const MemberSpan* spec = find_member(top, "spec")) {
    std::string_view spec_bytes = value_of(pod, *spec);
    if (spec_bytes[0] != '{' || !read_members(spec_bytes, &members)) return res;
    if (const MemberSpan* n = find_member(members, "nodeName")) {
      std::string_view current = value_of(spec_bytes, *n);
      if (current[0] != '"') return res;
      if (current != "\"\"") {
        res.kind = BindResult::Kind::kAssigned;
        res.assigned = json::parse(current).get<std::string>();
        return res;
      }
    }
    edits.push_back({"spec", edit_members(spec_bytes, members, {{"nodeName", node_json}})});
  } else {
    edits.push_back({"spec", "{\"nodeName\":" + node_json + "}"});
  }

  // status.conditions: PodScheduled made True, or added.
  json added = {{"type", "PodScheduled"},
                {"status", "True"},
                {"lastProbeTime", nullptr},
                {"lastTransitionTime", now}};
  std::string conditions;
  std::vector<MemberSpan> status_members;
  std::string_view status_bytes;
  const MemberSpan* status = find_member(top, "status");
  const MemberSpan* current = nullptr;
  if (status != nullptr) {
    status_bytes = value_of(pod, *status);
    if (status_bytes[0] != '{' || !read_members(status_bytes, &status_members)) return res;
    current = find_member(status_members, "conditions");
  }
  if (current == nullptr || status_bytes[current->begin] != '[') {
    conditions = "[" + added.dump() + "]";
  } else {
    std::string_view list = value_of(status_bytes, *current);
    std::vector<std::pair<size_t, size_t>> elements;
    if (!read_elements(list, &elements)) return res;
    conditions = "[";
    bool found = false;
    for (const auto& [begin, end] : elements) {
      std::string_view cond = list.substr(begin, end - begin);
      if (cond[0] != '{' || !read_members(cond, &members)) return res;
      if (conditions.size() > 1) conditions += ',';
      const MemberSpan* type = find_member(members, "type");
      if (type != nullptr && cond[type->begin] != '"') return res;
      if (type != nullptr && value_of(cond, *type) == "\"PodScheduled\"") {
        json c = json::parse(cond);
        c["status"] = "True";
        c["lastTransitionTime"] = now;
        c.erase("reason");
        c.erase("message");
        conditions += c.dump();
        found = true;
      } else {
        conditions.append(cond);
      }
    }
    if (!found) {
      if (conditions.size() > 1) conditions += ',';
      conditions += added.dump();
    }
    conditions += ']';
  }
  if (status != nullptr) {
    edits.push_back(
        {"status", edit_members(status_bytes, status_members, {{"conditions", conditions}})});
  } else {
    edits.push_back({"status", "{\"conditions\":" + conditions + "}"});
  }

  // What the store keeps: no resourceVersion (the revision is the key's), no selfLink.
  std::string_view meta_bytes = value_of(pod, *meta);
  if (!read_members(meta_bytes, &members)) return res;
  edits.push_back(
      {"metadata", edit_members(meta_bytes, members,
                                {{"resourceVersion", std::nullopt}, {"selfLink", std::nullopt}})});
  res.bytes = edit_members(pod, top, std::move(edits));
  res.kind = BindResult::Kind::kBound;
  return res;
}

}  // namespace skiff::apiserver
