#include "api/protobuf/protobuf.h"

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>

#include "common/base64.h"
#include "common/json.h"
#include "common/quantity.h"
#include "common/strings.h"
#include "common/time.h"

#ifdef SKIFF_HAVE_BUILTIN_SCHEMA
#include "api/schema/builtin.h"
#endif

namespace skiff::api {

using nlohmann::json;

namespace {

enum WireType : int {
  kVarint = 0,
  kFixed64 = 1,
  kLengthDelimited = 2,
  kStartGroup = 3,
  kEndGroup = 4,
  kFixed32 = 5,
};

Status proto_error(std::string message) { return Status::BadRequest("proto: " + message); }

Status depth_error() {
  return proto_error("message nesting exceeds the maximum depth of " +
                     std::to_string(kMaxNestingDepth));
}

// Reads one message's bytes. Offsets in errors are relative to the message being read.
class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}

  bool done() const { return pos_ >= data_.size(); }

  Status varint(uint64_t& out) {
    out = 0;
    const size_t start = pos_;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= data_.size()) {
        return proto_error("truncated varint at offset " + std::to_string(start));
      }
      const auto b = static_cast<uint8_t>(data_[pos_++]);
      // The tenth byte may only carry the 64th bit.
      if (shift == 63 && b > 1) {
        return proto_error("varint overflows 64 bits at offset " + std::to_string(start));
      }
      out |= static_cast<uint64_t>(b & 0x7F) << shift;
      if ((b & 0x80) == 0) return Status::Ok();
    }
    return proto_error("varint overflows 64 bits at offset " + std::to_string(start));
  }

  Status fixed(size_t n, uint64_t& out) {
    if (data_.size() - pos_ < n) {
      return proto_error("truncated fixed" + std::to_string(n * 8) + " at offset " +
                         std::to_string(pos_));
    }
    out = 0;
    for (size_t i = 0; i < n; i++) {
      out |= static_cast<uint64_t>(static_cast<uint8_t>(data_[pos_ + i])) << (8 * i);
    }
    pos_ += n;
    return Status::Ok();
  }

  Status bytes(std::string_view& out) {
    const size_t start = pos_;
    uint64_t len = 0;
    if (Status s = varint(len); !s.ok()) return s;
    if (len > data_.size() - pos_) {
      return proto_error("length " + std::to_string(len) + " at offset " + std::to_string(start) +
                         " runs past the end of the message (" +
                         std::to_string(data_.size() - pos_) + " bytes left)");
    }
    out = data_.substr(pos_, static_cast<size_t>(len));
    pos_ += static_cast<size_t>(len);
    return Status::Ok();
  }

  Status tag(int& number, int& wire) {
    const size_t start = pos_;
    uint64_t key = 0;
    if (Status s = varint(key); !s.ok()) return s;
    wire = static_cast<int>(key & 7);
    const uint64_t n = key >> 3;
    if (n == 0 || n > 536870911) {
      return proto_error("invalid field number " + std::to_string(n) + " at offset " +
                         std::to_string(start));
    }
    if (wire > kFixed32) {
      return proto_error("illegal wire type " + std::to_string(wire) + " at offset " +
                         std::to_string(start));
    }
    number = static_cast<int>(n);
    return Status::Ok();
  }

  // Skips the value of a field whose tag was just read.
  Status skip(int number, int wire, int depth) {
    uint64_t ignored = 0;
    std::string_view ignored_bytes;
    switch (wire) {
      case kVarint:
        return varint(ignored);
      case kFixed64:
        return fixed(8, ignored);
      case kFixed32:
        return fixed(4, ignored);
      case kLengthDelimited:
        return bytes(ignored_bytes);
      case kStartGroup: {
        if (depth > kMaxNestingDepth) return depth_error();
        while (true) {
          if (done()) return proto_error("unterminated group " + std::to_string(number));
          int n = 0, w = 0;
          if (Status s = tag(n, w); !s.ok()) return s;
          if (w == kEndGroup) {
            if (n != number) return proto_error("mismatched end of group " + std::to_string(n));
            return Status::Ok();
          }
          if (Status s = skip(n, w, depth + 1); !s.ok()) return s;
        }
      }
      default:
        return proto_error("unexpected end of group " + std::to_string(number));
    }
  }

 private:
  std::string_view data_;
  size_t pos_ = 0;
};

// The well-known apimachinery types, whether the schema spells them as a ValueKind or as an
// object type with the upstream OpenAPI name.
ValueKind effective_kind(const FieldDef& f) {
  if (f.kind != ValueKind::kObject || f.type == nullptr) return f.kind;
  const std::string& n = f.type->name;
  if (n == "io.k8s.apimachinery.pkg.api.resource.Quantity") return ValueKind::kQuantity;
  if (n == "io.k8s.apimachinery.pkg.apis.meta.v1.Time") return ValueKind::kTime;
  if (n == "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime") return ValueKind::kMicroTime;
  if (n == "io.k8s.apimachinery.pkg.apis.meta.v1.Duration") return ValueKind::kDuration;
  if (n == "io.k8s.apimachinery.pkg.util.intstr.IntOrString") return ValueKind::kIntOrString;
  if (n == "io.k8s.apimachinery.pkg.runtime.RawExtension" ||
      n == "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1") {
    return ValueKind::kRawExtension;
  }
  if (n == "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON") return ValueKind::kAny;
  return ValueKind::kObject;
}

const char* wire_name(int wire) {
  switch (wire) {
    case kVarint:
      return "varint";
    case kFixed64:
      return "fixed64";
    case kLengthDelimited:
      return "bytes";
    case kStartGroup:
      return "group";
    case kFixed32:
      return "fixed32";
    default:
      return "end-group";
  }
}

// Checks a JSON text's nesting before nlohmann's parser builds it.
bool json_depth_within(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); i++) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        i++;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > max_depth) return false;
    } else if (c == '}' || c == ']') {
      depth--;
    }
  }
  return true;
}

class Decoder {
 public:
  explicit Decoder(const TypeResolver* resolve) : resolve_(resolve) {}

  // Decodes a message of `type` into `out` (an object), merging with what it holds.
  Status message(std::string_view data, const TypeDef& type, json& out, int depth) {
    if (depth > kMaxNestingDepth) return depth_error();
    Reader r(data);
    while (!r.done()) {
      int number = 0, wire = 0;
      if (Status s = r.tag(number, wire); !s.ok()) return s;
      const FieldDef* f = type.field_by_number(number);
      if (f == nullptr) {
        if (Status s = r.skip(number, wire, depth + 1); !s.ok()) return s;
        continue;
      }
      if (Status s = field(r, wire, *f, type, out, depth); !s.ok()) return s;
    }
    return Status::Ok();
  }

  Status object(std::string_view body, json& out, int depth) {
    if (depth > kMaxNestingDepth) return depth_error();
    auto env = parse_protobuf_envelope(body);
    if (!env.ok()) return env.status();
    std::string group, version = env->api_version;
    if (size_t slash = env->api_version.find('/'); slash != std::string::npos) {
      group = env->api_version.substr(0, slash);
      version = env->api_version.substr(slash + 1);
    }
    const TypeDef* type =
        resolve_ != nullptr && *resolve_ ? (*resolve_)(group, version, env->kind) : nullptr;
    if (type == nullptr) {
      return Status::BadRequest("no kind " + json_quote(env->kind) + " is registered for version " +
                                json_quote(env->api_version));
    }
    out = json::object();
    if (Status s = message(env->raw, *type, out, depth + 1); !s.ok()) return s;
    out["apiVersion"] = replace_invalid_utf8(env->api_version);
    out["kind"] = replace_invalid_utf8(env->kind);
    return Status::Ok();
  }

 private:
  static Status wrong_wire(int wire, const FieldDef& f, const TypeDef& parent) {
    return proto_error("wrong wireType = " + std::to_string(wire) + " (" + wire_name(wire) +
                       ") for field " + f.name + " (number " + std::to_string(f.number) + ") of " +
                       parent.name);
  }

  static bool packable(ValueKind k) {
    return k == ValueKind::kBool || k == ValueKind::kInt32 || k == ValueKind::kInt64 ||
           k == ValueKind::kDouble;
  }

  // Go's JSON encoder drops these for optional (omitempty) fields; see protobuf.h.
  static bool omitted_when_optional(const json& v, ValueKind kind) {
    if (v.is_null()) return true;
    switch (kind) {
      case ValueKind::kString:
      case ValueKind::kBytes:
        return v.is_string() && v.get_ref<const std::string&>().empty();
      case ValueKind::kBool:
        return v.is_boolean() && !v.get<bool>();
      default:
        return false;
    }
  }

  // Appends the elements of a list wrapper message (a Go named slice: repeated field 1) to
  // `list`, creating the array on the first element.
  Status wrapper_items(std::string_view data, const FieldDef& f, ValueKind kind,
                       const TypeDef& parent, json& list, int depth) {
    if (depth > kMaxNestingDepth) return depth_error();
    Reader r(data);
    while (!r.done()) {
      int number = 0, wire = 0;
      if (Status s = r.tag(number, wire); !s.ok()) return s;
      if (number != 1) {
        if (Status s = r.skip(number, wire, depth + 1); !s.ok()) return s;
        continue;
      }
      if (!list.is_array()) list = json::array();
      if (wire == kLengthDelimited && packable(kind)) {
        std::string_view packed;
        if (Status s = r.bytes(packed); !s.ok()) return s;
        Reader pr(packed);
        const int element_wire = kind == ValueKind::kDouble ? kFixed64 : kVarint;
        while (!pr.done()) {
          json v;
          if (Status s = value(pr, element_wire, f, kind, parent, v, depth); !s.ok()) return s;
          list.push_back(std::move(v));
        }
        continue;
      }
      json v;
      if (Status s = value(r, wire, f, kind, parent, v, depth); !s.ok()) return s;
      if (v.is_null()) v = empty_value(kind);
      list.push_back(std::move(v));
    }
    return Status::Ok();
  }

  Status field(Reader& r, int wire, const FieldDef& f, const TypeDef& parent, json& out,
               int depth) {
    const ValueKind kind = effective_kind(f);
    if (f.list_wrapper && f.shape == Shape::kList) {
      // One wrapper message carries the whole list.
      if (wire != kLengthDelimited) return wrong_wire(wire, f, parent);
      std::string_view data;
      if (Status s = r.bytes(data); !s.ok()) return s;
      json items;
      if (Status s = wrapper_items(data, f, kind, parent, items, depth + 1); !s.ok()) return s;
      if (items.is_array()) {
        json& list = out[f.name];
        if (!list.is_array()) list = json::array();
        for (json& v : items) list.push_back(std::move(v));
      }
      return Status::Ok();
    }
    switch (f.shape) {
      case Shape::kList: {
        json& list = out[f.name];
        if (!list.is_array()) list = json::array();
        if (wire == kLengthDelimited && packable(kind)) {
          std::string_view packed;
          if (Status s = r.bytes(packed); !s.ok()) return s;
          Reader pr(packed);
          const int element_wire = kind == ValueKind::kDouble ? kFixed64 : kVarint;
          while (!pr.done()) {
            json v;
            if (Status s = value(pr, element_wire, f, kind, parent, v, depth); !s.ok()) return s;
            list.push_back(std::move(v));
          }
          return Status::Ok();
        }
        json v;
        if (Status s = value(r, wire, f, kind, parent, v, depth); !s.ok()) return s;
        if (v.is_null()) v = empty_value(kind);
        list.push_back(std::move(v));
        return Status::Ok();
      }
      case Shape::kMap: {
        if (wire != kLengthDelimited) return wrong_wire(wire, f, parent);
        std::string_view entry;
        if (Status s = r.bytes(entry); !s.ok()) return s;
        Reader er(entry);
        std::string key;
        json v;
        bool have_value = false;
        while (!er.done()) {
          int number = 0, ewire = 0;
          if (Status s = er.tag(number, ewire); !s.ok()) return s;
          if (number == 1) {
            if (ewire != kLengthDelimited) return wrong_wire(ewire, f, parent);
            std::string_view k;
            if (Status s = er.bytes(k); !s.ok()) return s;
            key = replace_invalid_utf8(k);
          } else if (number == 2 && f.list_wrapper) {
            // Each value is a wrapper message of strings (map[string]ExtraValue and the like).
            if (ewire != kLengthDelimited) return wrong_wire(ewire, f, parent);
            std::string_view data;
            if (Status s = er.bytes(data); !s.ok()) return s;
            v = json::array();
            if (Status s = wrapper_items(data, f, ValueKind::kString, parent, v, depth + 1);
                !s.ok()) {
              return s;
            }
            have_value = true;
          } else if (number == 2) {
            if (Status s = value(er, ewire, f, kind, parent, v, depth); !s.ok()) return s;
            have_value = true;
          } else if (Status s = er.skip(number, ewire, depth + 1); !s.ok()) {
            return s;
          }
        }
        if (!have_value || v.is_null()) v = empty_value(kind);
        json& map = out[f.name];
        if (!map.is_object()) map = json::object();
        map[key] = std::move(v);
        return Status::Ok();
      }
      case Shape::kScalar:
        break;
    }
    if (f.inline_fields && kind == ValueKind::kObject && f.type != nullptr) {
      if (wire != kLengthDelimited) return wrong_wire(wire, f, parent);
      std::string_view data;
      if (Status s = r.bytes(data); !s.ok()) return s;
      return message(data, *f.type, out, depth + 1);
    }
    if (kind == ValueKind::kObject && f.type != nullptr) {
      // A repeated occurrence of a message field merges into the earlier one.
      if (wire != kLengthDelimited) return wrong_wire(wire, f, parent);
      std::string_view data;
      if (Status s = r.bytes(data); !s.ok()) return s;
      json& target = out[f.name];
      if (!target.is_object()) target = json::object();
      return message(data, *f.type, target, depth + 1);
    }
    json v;
    if (Status s = value(r, wire, f, kind, parent, v, depth); !s.ok()) return s;
    if (f.optional && omitted_when_optional(v, kind)) {
      out.erase(f.name);
    } else {
      out[f.name] = std::move(v);
    }
    return Status::Ok();
  }

  // The JSON of a missing map value or list element of this kind.
  static json empty_value(ValueKind kind) {
    switch (kind) {
      case ValueKind::kString:
      case ValueKind::kBytes:
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
      default:
        return nullptr;
    }
  }

  // One value of `kind` (a scalar, a list element or a map value). Sets `v` to null for values
  // Go writes as null (the zero Time, an empty RawExtension).
  Status value(Reader& r, int wire, const FieldDef& f, ValueKind kind, const TypeDef& parent,
               json& v, int depth) {
    uint64_t u = 0;
    std::string_view data;
    switch (kind) {
      case ValueKind::kBool:
      case ValueKind::kInt32:
      case ValueKind::kInt64: {
        if (wire != kVarint) return wrong_wire(wire, f, parent);
        if (Status s = r.varint(u); !s.ok()) return s;
        if (kind == ValueKind::kBool) {
          v = u != 0;
        } else if (kind == ValueKind::kInt32) {
          v = static_cast<int32_t>(static_cast<uint32_t>(u));
        } else {
          v = static_cast<int64_t>(u);
        }
        return Status::Ok();
      }
      case ValueKind::kDouble: {
        double d;
        if (wire == kFixed64) {
          if (Status s = r.fixed(8, u); !s.ok()) return s;
          d = std::bit_cast<double>(u);
        } else if (wire == kFixed32) {
          if (Status s = r.fixed(4, u); !s.ok()) return s;
          d = std::bit_cast<float>(static_cast<uint32_t>(u));
        } else {
          return wrong_wire(wire, f, parent);
        }
        if (!std::isfinite(d)) {
          return proto_error("field " + f.name + " of " + parent.name + " is not a finite number");
        }
        v = d;
        return Status::Ok();
      }
      default:
        break;
    }
    if (wire != kLengthDelimited) return wrong_wire(wire, f, parent);
    if (Status s = r.bytes(data); !s.ok()) return s;
    switch (kind) {
      case ValueKind::kString:
        v = replace_invalid_utf8(data);
        return Status::Ok();
      case ValueKind::kBytes:
        v = base64_encode(data);
        return Status::Ok();
      case ValueKind::kObject:
        v = json::object();
        if (f.type == nullptr) return Status::Ok();
        return message(data, *f.type, v, depth + 1);
      case ValueKind::kQuantity:
        return quantity(data, f, v, depth);
      case ValueKind::kTime:
      case ValueKind::kMicroTime:
        return time(data, f, kind, v, depth);
      case ValueKind::kDuration:
        return duration(data, f, v, depth);
      case ValueKind::kIntOrString:
        return int_or_string(data, f, v, depth);
      case ValueKind::kRawExtension:
      case ValueKind::kAny:
        return raw_json(data, f, v, depth);
      default:
        return Status::Ok();
    }
  }

  // Iterates a small well-known message: `on_field(number, wire, reader)` returns
  // true when it consumed the field's value, false to skip it.
  template <typename OnField>
  Status well_known(std::string_view data, int depth, OnField on_field) {
    if (depth > kMaxNestingDepth) return depth_error();
    Reader r(data);
    while (!r.done()) {
      int number = 0, wire = 0;
      if (Status s = r.tag(number, wire); !s.ok()) return s;
      bool consumed = false;
      if (Status s = on_field(number, wire, r, consumed); !s.ok()) return s;
      if (!consumed) {
        if (Status s = r.skip(number, wire, depth + 1); !s.ok()) return s;
      }
    }
    return Status::Ok();
  }

  static Status expect_wire(int want, int got, const FieldDef& f, const char* type) {
    if (want == got) return Status::Ok();
    return proto_error("wrong wireType = " + std::to_string(got) + " inside " + type + " field " +
                       f.name);
  }

  Status quantity(std::string_view data, const FieldDef& f, json& v, int depth) {
    std::string text;
    Status s = well_known(data, depth + 1, [&](int n, int w, Reader& r, bool& consumed) {
      if (n != 1) return Status::Ok();
      consumed = true;
      if (Status e = expect_wire(kLengthDelimited, w, f, "Quantity"); !e.ok()) return e;
      std::string_view sv;
      if (Status e = r.bytes(sv); !e.ok()) return e;
      text.assign(sv);
      return Status::Ok();
    });
    if (!s.ok()) return s;
    if (text.empty()) text = "0";
    if (Result<Quantity> q = Quantity::parse(text); !q.ok()) {
      return Status::BadRequest("field " + f.name + ": " + q.status().message());
    }
    v = std::move(text);
    return Status::Ok();
  }

  Status time(std::string_view data, const FieldDef& f, ValueKind kind, json& v, int depth) {
    Timestamp t;
    uint64_t u = 0;
    Status s = well_known(data, depth + 1, [&](int n, int w, Reader& r, bool& consumed) {
      if (n != 1 && n != 2) return Status::Ok();
      consumed = true;
      if (Status e = expect_wire(kVarint, w, f, "Time"); !e.ok()) return e;
      if (Status e = r.varint(u); !e.ok()) return e;
      if (n == 1) {
        t.seconds = static_cast<int64_t>(u);
      } else {
        t.nanos = static_cast<int32_t>(static_cast<uint32_t>(u));
      }
      return Status::Ok();
    });
    if (!s.ok()) return s;
    if (t.seconds == kGoZeroTimeSeconds && t.nanos == 0) {
      v = nullptr;
      return Status::Ok();
    }
    auto text = format_rfc3339(t, kind == ValueKind::kMicroTime ? 6 : 0);
    if (!text) return Status::BadRequest("field " + f.name + ": time out of range");
    v = std::move(*text);
    return Status::Ok();
  }

  Status duration(std::string_view data, const FieldDef& f, json& v, int depth) {
    int64_t nanos = 0;
    Status s = well_known(data, depth + 1, [&](int n, int w, Reader& r, bool& consumed) {
      if (n != 1) return Status::Ok();
      consumed = true;
      if (Status e = expect_wire(kVarint, w, f, "Duration"); !e.ok()) return e;
      uint64_t u = 0;
      if (Status e = r.varint(u); !e.ok()) return e;
      nanos = static_cast<int64_t>(u);
      return Status::Ok();
    });
    if (!s.ok()) return s;
    v = format_go_duration(std::chrono::nanoseconds(nanos));
    return Status::Ok();
  }

  Status int_or_string(std::string_view data, const FieldDef& f, json& v, int depth) {
    int64_t type = 0;
    int32_t int_val = 0;
    std::string str_val;
    Status s = well_known(data, depth + 1, [&](int n, int w, Reader& r, bool& consumed) {
      if (n < 1 || n > 3) return Status::Ok();
      consumed = true;
      if (n == 3) {
        if (Status e = expect_wire(kLengthDelimited, w, f, "IntOrString"); !e.ok()) return e;
        std::string_view sv;
        if (Status e = r.bytes(sv); !e.ok()) return e;
        str_val = replace_invalid_utf8(sv);
        return Status::Ok();
      }
      if (Status e = expect_wire(kVarint, w, f, "IntOrString"); !e.ok()) return e;
      uint64_t u = 0;
      if (Status e = r.varint(u); !e.ok()) return e;
      if (n == 1) {
        type = static_cast<int64_t>(u);
      } else {
        int_val = static_cast<int32_t>(static_cast<uint32_t>(u));
      }
      return Status::Ok();
    });
    if (!s.ok()) return s;
    if (type == 1) {
      v = std::move(str_val);
    } else {
      v = int_val;
    }
    return Status::Ok();
  }

  Status raw_json(std::string_view data, const FieldDef& f, json& v, int depth) {
    std::string_view raw;
    Status s = well_known(data, depth + 1, [&](int n, int w, Reader& r, bool& consumed) {
      if (n != 1) return Status::Ok();
      consumed = true;
      if (Status e = expect_wire(kLengthDelimited, w, f, "RawExtension"); !e.ok()) return e;
      return r.bytes(raw);
    });
    if (!s.ok()) return s;
    if (raw.empty()) {
      v = nullptr;
      return Status::Ok();
    }
    if (raw.substr(0, kProtobufMagic.size()) == kProtobufMagic) return object(raw, v, depth + 1);
    if (!json_depth_within(raw, kMaxNestingDepth - depth)) return depth_error();
    v = json::parse(raw.begin(), raw.end(), nullptr, /*allow_exceptions=*/false);
    if (v.is_discarded()) {
      return Status::BadRequest("field " + f.name + ": embedded object is not valid JSON");
    }
    return Status::Ok();
  }

  const TypeResolver* resolve_;
};

}  // namespace

Result<ProtobufEnvelope> parse_protobuf_envelope(std::string_view body) {
  if (body.substr(0, kProtobufMagic.size()) != kProtobufMagic) {
    return Status::BadRequest(
        "protobuf body does not start with the Kubernetes magic prefix \"k8s\\x00\"");
  }
  ProtobufEnvelope env;
  Reader r(body.substr(kProtobufMagic.size()));
  while (!r.done()) {
    int number = 0, wire = 0;
    if (Status s = r.tag(number, wire); !s.ok()) return s;
    if (number >= 1 && number <= 4) {
      if (wire != kLengthDelimited) {
        return proto_error("wrong wireType = " + std::to_string(wire) + " for field " +
                           std::to_string(number) + " of runtime.Unknown");
      }
      std::string_view data;
      if (Status s = r.bytes(data); !s.ok()) return s;
      switch (number) {
        case 1: {
          Reader tr(data);
          while (!tr.done()) {
            int n = 0, w = 0;
            if (Status s = tr.tag(n, w); !s.ok()) return s;
            if ((n == 1 || n == 2) && w == kLengthDelimited) {
              std::string_view sv;
              if (Status s = tr.bytes(sv); !s.ok()) return s;
              (n == 1 ? env.api_version : env.kind).assign(sv);
            } else if (n == 1 || n == 2) {
              return proto_error("wrong wireType = " + std::to_string(w) + " for field " +
                                 std::to_string(n) + " of runtime.TypeMeta");
            } else if (Status s = tr.skip(n, w, 1); !s.ok()) {
              return s;
            }
          }
          break;
        }
        case 2:
          env.raw = data;
          break;
        case 3:
          env.content_encoding.assign(data);
          break;
        case 4:
          env.content_type.assign(data);
          break;
      }
    } else if (Status s = r.skip(number, wire, 1); !s.ok()) {
      return s;
    }
  }
  if (env.kind.empty()) return Status::BadRequest("Object 'Kind' is missing in protobuf body");
  if (env.api_version.empty()) {
    return Status::BadRequest("Object 'apiVersion' is missing in protobuf body");
  }
  if (!env.content_encoding.empty()) {
    return Status::BadRequest("unsupported protobuf contentEncoding " +
                              json_quote(env.content_encoding));
  }
  return env;
}

Result<json> decode_protobuf_object(std::string_view body, const TypeResolver& resolve) {
  Decoder d(&resolve);
  json out;
  if (Status s = d.object(body, out, 0); !s.ok()) return s;
  return out;
}

Result<json> decode_protobuf_object(std::string_view body, const Registry& registry) {
  TypeResolver resolve = [&registry](std::string_view group, std::string_view version,
                                     std::string_view kind) -> const TypeDef* {
    auto def = registry.find_kind(group, version, kind);
    if (def != nullptr) return def->type;
#ifdef SKIFF_HAVE_BUILTIN_SCHEMA
    // Bodies of subresources and options kinds (TokenRequest, Scale, DeleteOptions) are
    // built-in kinds without a resource of their own.
    return builtin_kind_type(group, version, kind);
#else
    return nullptr;
#endif
  };
  return decode_protobuf_object(body, resolve);
}

Result<json> decode_protobuf_message(std::string_view message, const TypeDef& type,
                                     const TypeResolver* resolve) {
  Decoder d(resolve);
  json out = json::object();
  if (Status s = d.message(message, type, out, 0); !s.ok()) return s;
  return out;
}

}  // namespace skiff::api
