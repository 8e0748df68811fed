#include "api/schema/proto_parser.h"

#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <utility>

namespace skiff::api {
namespace {

constexpr std::string_view kMetaPackage = "k8s.io.apimachinery.pkg.apis.meta.v1";

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// One "//" line of a comment block: [text, text_end) is the text after "//" and one space.
struct CommentLine {
  char* text;
  char* text_end;
};

// Markers found in one comment block. Copies, because formatting the block in place may
// overwrite the marker lines.
struct Markers {
  bool optional = false;
  bool required = false;
  bool inline_fields = false;
  bool type_meta = false;
  bool nullable = false;  // +protobuf.nullable=true
  std::optional<std::string> json;
  std::optional<std::string> group_name;
  std::string patch_merge_key;
  std::string patch_strategy;
  std::string list_type;
  std::vector<std::string> list_map_keys;
};

Markers read_markers(const std::vector<CommentLine>& lines) {
  Markers m;
  for (const CommentLine& line : lines) {
    std::string_view text = trim(std::string_view(line.text, line.text_end - line.text));
    if (!text.starts_with("+")) continue;
    text.remove_prefix(1);
    std::string_view key = text;
    std::string_view value;
    if (size_t eq = text.find('='); eq != std::string_view::npos) {
      key = text.substr(0, eq);
      value = text.substr(eq + 1);
    }
    if (key == "optional") {
      m.optional = true;
    } else if (key == "required") {
      m.required = true;
    } else if (key == "inline") {
      m.inline_fields = true;
    } else if (key == "typeMeta") {
      m.type_meta = true;
    } else if (key == "protobuf.nullable") {
      m.nullable = value == "true";
    } else if (key == "json") {
      m.json = std::string(value);
    } else if (key == "groupName") {
      m.group_name = std::string(value);
    } else if (key == "patchMergeKey") {
      m.patch_merge_key = std::string(value);
    } else if (key == "patchStrategy") {
      m.patch_strategy = std::string(value);
    } else if (key == "listType") {
      m.list_type = std::string(value);
    } else if (key == "listMapKey") {
      m.list_map_keys.emplace_back(value);
    }
  }
  return m;
}

// Rewrites a comment block in place into its description, with the rules of Kubernetes'
// OpenAPI generator (kube-openapi generateDescription), and returns a view of it. Output
// never outruns input: each line's output is shorter than the "//" line it came from, so
// writing at `out` never reaches bytes not yet read.
std::string_view format_description(char* block_begin, const std::vector<CommentLine>& lines) {
  char* out = block_begin;
  auto del_prev_char = [&] {
    if (out > block_begin) --out;
  };
  for (const CommentLine& line : lines) {
    char* b = line.text;
    char* e = line.text_end;
    while (e > b && e[-1] == ' ') --e;  // TrimRight(line, " ")
    std::string_view text(b, e - b);
    if (text == "---") break;
    std::string_view leading = text;
    while (!leading.empty() && leading.front() == ' ') leading.remove_prefix(1);
    if (text.empty()) {
      del_prev_char();
      *out++ = '\n';
      *out++ = '\n';
    } else if (leading.starts_with("TODO") || leading.starts_with("+")) {
      continue;
    } else if (text.front() == ' ' || text.front() == '\t') {
      del_prev_char();
      std::memmove(out + 1, b, text.size());
      *out = '\n';
      out += 1 + text.size();
      *out++ = '\n';
    } else {
      std::memmove(out, b, text.size());
      out += text.size();
      *out++ = ' ';
    }
  }
  std::string_view doc(block_begin, out - block_begin);
  while (!doc.empty() && doc.front() == '\n') doc.remove_prefix(1);
  while (!doc.empty() && doc.back() == '\n') doc.remove_suffix(1);
  while (!doc.empty() && doc.front() == ' ') doc.remove_prefix(1);
  while (!doc.empty() && doc.back() == ' ') doc.remove_suffix(1);
  return doc;
}

// A message being built, with what resolution needs.
struct Message {
  TypeDef* def = nullptr;
  std::string proto_name;  // package + "." + name
  std::string_view source;
  int line = 0;
  bool type_meta = false;
  bool nullable = false;
};

// A field whose type is a message, resolved once every source is read.
struct Reference {
  Message* owner;
  size_t field;
  std::string_view type;     // as written, with or without package
  std::string_view package;  // package of the file the field is in
  int line;
};

std::optional<ValueKind> scalar_kind(std::string_view type) {
  if (type == "string") return ValueKind::kString;
  if (type == "bool") return ValueKind::kBool;
  if (type == "int32" || type == "uint32" || type == "sint32" || type == "fixed32" ||
      type == "sfixed32") {
    return ValueKind::kInt32;
  }
  if (type == "int64" || type == "uint64" || type == "sint64" || type == "fixed64" ||
      type == "sfixed64") {
    return ValueKind::kInt64;
  }
  if (type == "double" || type == "float") return ValueKind::kDouble;
  if (type == "bytes") return ValueKind::kBytes;
  return std::nullopt;
}

// The value kind a well-known message stands for in JSON, if it is one.
std::optional<ValueKind> well_known_kind(std::string_view proto_name) {
  static const std::map<std::string_view, ValueKind, std::less<>> kKinds = {
      {"k8s.io.apimachinery.pkg.api.resource.Quantity", ValueKind::kQuantity},
      {"k8s.io.apimachinery.pkg.apis.meta.v1.Time", ValueKind::kTime},
      {"k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime", ValueKind::kMicroTime},
      {"k8s.io.apimachinery.pkg.apis.meta.v1.Duration", ValueKind::kDuration},
      {"k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1", ValueKind::kAny},
      {"k8s.io.apimachinery.pkg.util.intstr.IntOrString", ValueKind::kIntOrString},
      {"k8s.io.apimachinery.pkg.runtime.RawExtension", ValueKind::kRawExtension},
      {"k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSON", ValueKind::kAny},
      {"k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrArray",
       ValueKind::kAny},
      {"k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrBool",
       ValueKind::kAny},
      {"k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrStringArray",
       ValueKind::kAny},
  };
  auto it = kKinds.find(proto_name);
  if (it == kKinds.end()) return std::nullopt;
  return it->second;
}

// "k8s.io.api.core.v1" -> "io.k8s.api.core.v1"; '_' becomes '-'.
std::string openapi_prefix(std::string_view package) {
  std::string out;
  if (package.starts_with("k8s.io.")) {
    out = "io.k8s.";
    package.remove_prefix(7);
  }
  for (char c : package) out.push_back(c == '_' ? '-' : c);
  return out;
}

class Parser {
 public:
  Parser(Schema& schema, std::vector<SchemaKind>& kinds) : schema_(schema), kinds_(kinds) {}

  Status parse(const SchemaSource& source);
  Status resolve();

 private:
  Status error(std::string_view what) const {
    return Status::Invalid(std::string(source_) + ":" + std::to_string(line_) + ": " +
                           std::string(what));
  }
  Status start_message(std::string_view rest);
  Status add_field(std::string_view line);

  Schema& schema_;
  std::vector<SchemaKind>& kinds_;
  std::vector<std::unique_ptr<Message>> messages_;
  std::map<std::string, Message*, std::less<>> by_proto_name_;
  std::vector<Reference> references_;

  // Per source.
  std::string_view source_;
  int line_ = 0;
  std::string_view package_;
  std::optional<std::string> group_;
  std::vector<CommentLine> comment_;
  char* comment_begin_ = nullptr;
  Message* message_ = nullptr;
};

Status Parser::parse(const SchemaSource& source) {
  source_ = source.name;
  line_ = 0;
  package_ = {};
  group_.reset();
  comment_.clear();
  message_ = nullptr;
  char* p = source.data;
  char* end = source.data + source.size;
  while (p < end) {
    char* line_begin = p;
    char* nl = static_cast<char*>(std::memchr(p, '\n', end - p));
    char* line_end = nl ? nl : end;
    p = nl ? nl + 1 : end;
    ++line_;
    char* b = line_begin;
    while (b < line_end && is_space(*b)) ++b;
    char* e = line_end;
    while (e > b && is_space(e[-1])) --e;
    std::string_view text(b, e - b);
    if (text.empty()) {
      comment_.clear();  // a blank line detaches a comment from what follows
      continue;
    }
    if (text.starts_with("//")) {
      if (comment_.empty()) comment_begin_ = line_begin;
      char* t = b + 2;
      if (t < line_end && *t == ' ') ++t;
      char* te = line_end;
      if (te > t && te[-1] == '\r') --te;
      comment_.push_back({t, te});
      continue;
    }
    if (text.starts_with("package ")) {
      if (!text.ends_with(';')) return error("package line must end with ';'");
      package_ = trim(text.substr(8, text.size() - 9));
      Markers m = read_markers(comment_);
      if (m.group_name) group_ = std::move(m.group_name);
      comment_.clear();
      continue;
    }
    if (text.starts_with("syntax ") || text.starts_with("import ") || text.starts_with("option ")) {
      comment_.clear();
      continue;
    }
    if (text.starts_with("message ")) {
      if (message_ != nullptr) return error("nested messages are not supported");
      if (package_.empty()) return error("message before package");
      if (Status s = start_message(text.substr(8)); !s.ok()) return s;
      if (text.ends_with('}')) message_ = nullptr;  // "message Empty {}"
      continue;
    }
    if (text == "}") {
      if (message_ == nullptr) return error("'}' outside a message");
      message_ = nullptr;
      comment_.clear();
      continue;
    }
    if (message_ == nullptr) return error("unexpected line outside a message");
    if (Status s = add_field(text); !s.ok()) return s;
  }
  if (message_ != nullptr) return error("message not closed");
  return Status::Ok();
}

Status Parser::start_message(std::string_view rest) {
  size_t brace = rest.find('{');
  if (brace == std::string_view::npos) return error("message line must open '{'");
  std::string_view name = trim(rest.substr(0, brace));
  if (name.empty()) return error("message without a name");
  Markers m = read_markers(comment_);
  auto def = std::make_unique<TypeDef>();
  def->name = openapi_prefix(package_) + "." + std::string(name);
  if (!comment_.empty()) def->description = format_description(comment_begin_, comment_);
  comment_.clear();
  if (schema_.type(def->name) != nullptr) return error("duplicate message " + def->name);

  auto msg = std::make_unique<Message>();
  msg->proto_name = std::string(package_) + "." + std::string(name);
  msg->source = source_;
  msg->line = line_;
  msg->type_meta = m.type_meta;
  msg->nullable = m.nullable;
  msg->def = schema_.add(std::move(def));
  if (m.type_meta) {
    // Go embeds TypeMeta (json:",inline"); protobuf carries it outside the message.
    FieldDef f;
    f.name = "typeMeta";
    f.kind = ValueKind::kObject;
    f.inline_fields = true;
    f.optional = true;
    msg->def->fields.push_back(std::move(f));
    references_.push_back({msg.get(), 0, "TypeMeta", kMetaPackage, line_});
    if (group_) {
      std::string_view version = package_.substr(package_.rfind('.') + 1);
      kinds_.push_back({*group_, std::string(version), std::string(name), msg->def});
    }
  }
  message_ = msg.get();
  by_proto_name_.emplace(msg->proto_name, msg.get());
  messages_.push_back(std::move(msg));
  return Status::Ok();
}

Status Parser::add_field(std::string_view text) {
  if (!text.ends_with(';')) return error("field line must end with ';'");
  text.remove_suffix(1);
  size_t eq = text.rfind('=');
  if (eq == std::string_view::npos) return error("field without '= number'");
  std::string_view number_text = trim(text.substr(eq + 1));
  std::string_view decl = trim(text.substr(0, eq));
  int number = 0;
  for (char c : number_text) {
    if (c < '0' || c > '9') return error("bad field number");
    number = number * 10 + (c - '0');
    if (number > 536870911) return error("field number out of range");
  }
  if (number_text.empty() || number == 0) return error("bad field number");

  size_t name_at = decl.find_last_of(" \t");
  if (name_at == std::string_view::npos) return error("field without a type");
  std::string_view name = decl.substr(name_at + 1);
  std::string_view type_part = trim(decl.substr(0, name_at));

  FieldDef f;
  f.number = number;
  std::string_view type;
  if (type_part.starts_with("map<")) {
    if (!type_part.ends_with('>')) return error("bad map type");
    std::string_view args = type_part.substr(4, type_part.size() - 5);
    size_t comma = args.find(',');
    if (comma == std::string_view::npos) return error("bad map type");
    if (trim(args.substr(0, comma)) != "string") return error("map keys must be strings");
    type = trim(args.substr(comma + 1));
    f.shape = Shape::kMap;
  } else {
    size_t sp = type_part.find_first_of(" \t");
    if (sp == std::string_view::npos) return error("field without a label");
    std::string_view label = type_part.substr(0, sp);
    type = trim(type_part.substr(sp + 1));
    if (label == "repeated") {
      f.shape = Shape::kList;
    } else if (label != "optional" && label != "required") {
      return error("unknown field label '" + std::string(label) + "'");
    }
  }

  Markers m = read_markers(comment_);
  if (!comment_.empty()) f.description = format_description(comment_begin_, comment_);
  comment_.clear();
  if (m.type_meta || m.group_name || m.nullable) return error("message marker on a field");
  f.name = m.json ? *m.json : std::string(name);
  f.inline_fields = m.inline_fields;
  f.optional = f.inline_fields || (m.optional && !m.required);
  f.patch_merge_key = std::move(m.patch_merge_key);
  f.patch_strategy = std::move(m.patch_strategy);
  f.list_type = std::move(m.list_type);
  f.list_map_keys = std::move(m.list_map_keys);

  if (std::optional<ValueKind> k = scalar_kind(type)) {
    if (f.inline_fields) return error("+inline on a scalar field");
    f.kind = *k;
  } else {
    f.kind = ValueKind::kObject;
    references_.push_back({message_, message_->def->fields.size(), type, package_, line_});
  }
  message_->def->fields.push_back(std::move(f));
  return Status::Ok();
}

Status Parser::resolve() {
  for (const Reference& ref : references_) {
    std::string_view type = ref.type;
    if (type.starts_with(".")) type.remove_prefix(1);
    std::string proto_name = type.find('.') == std::string_view::npos
                                 ? std::string(ref.package) + "." + std::string(type)
                                 : std::string(type);
    FieldDef& f = ref.owner->def->fields[ref.field];
    auto where = [&] {
      return std::string(ref.owner->source) + ":" + std::to_string(ref.line) + ": ";
    };
    auto it = by_proto_name_.find(proto_name);
    if (it == by_proto_name_.end()) {
      return Status::Invalid(where() + "unknown message " + proto_name);
    }
    const Message& target = *it->second;
    if (std::optional<ValueKind> k = well_known_kind(proto_name)) {
      if (f.inline_fields) return Status::Invalid(where() + "+inline on a well-known type");
      f.kind = *k;
      continue;
    }
    if (target.nullable) {
      // A Go named slice: JSON shows the elements bare; see FieldDef::list_wrapper.
      const std::vector<FieldDef>& items = target.def->fields;
      if (items.size() != 1 || items[0].number != 1 || items[0].shape != Shape::kList ||
          items[0].kind == ValueKind::kObject) {
        return Status::Invalid(where() + proto_name +
                               " is +protobuf.nullable but not a list of scalars");
      }
      if (f.shape == Shape::kList || f.inline_fields) {
        return Status::Invalid(where() + "list wrapper used as a list element or inline");
      }
      f.list_wrapper = true;
      if (f.shape == Shape::kMap) {
        f.kind = ValueKind::kAny;
      } else {
        f.shape = Shape::kList;
        f.kind = items[0].kind;
      }
      continue;
    }
    f.type = target.def;
  }
  for (const auto& msg : messages_) msg->def->finalize();
  return Status::Ok();
}

}  // namespace

Status parse_schema_sources(std::span<const SchemaSource> sources, Schema& schema,
                            std::vector<SchemaKind>& kinds) {
  Parser parser(schema, kinds);
  for (const SchemaSource& source : sources) {
    if (Status s = parser.parse(source); !s.ok()) return s;
  }
  return parser.resolve();
}

}  // namespace skiff::api
