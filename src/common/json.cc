#include "common/json.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/mark.h>
#include <yaml-cpp/parser.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <istream>
#include <limits>
#include <new>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <streambuf>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/base64.h"
#include "common/strings.h"

namespace skiff {
namespace {

using nlohmann::json;

std::string too_deep_message(int max_depth) {
  return "nesting too deep: objects and arrays may be nested at most " + std::to_string(max_depth) +
         " levels";
}

// Integers are always stored as int64 (number_integer), as Kubernetes'
// unstructured decoding does; values beyond int64 become doubles.
json integer_json(uint64_t v) {
  if (v <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return json(static_cast<int64_t>(v));
  }
  return json(static_cast<double>(v));
}

// ---------------------------------------------------------------------------------------------
// JSON syntax errors worded as Go's encoding/json reports them. nlohmann's
// parser decides whether the input is valid; when it is not, this scanner (a
// port of the state machine in Go's encoding/json/scanner.go) finds the first
// offending byte and describes it the way Kubernetes clients are used to
// reading ("invalid character 'x' looking for beginning of value").

struct SyntaxError {
  std::string message;
  size_t offset;  // index of the offending byte; the input length for a
                  // premature end
};

std::string quote_char(unsigned char c) {
  if (c == '\'') return R"('\'')";
  if (c == '"') return R"('"')";
  // Go converts the byte to the code point of the same value before quoting it.
  std::string utf8;
  append_utf8(utf8, c);
  const std::string q = go_quote(utf8);
  return "'" + q.substr(1, q.size() - 2) + "'";
}

bool is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
bool is_hex(unsigned char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

class GoJsonScanner {
 public:
  // Returns the first syntax error in `data`, or nullopt if Go would accept it.
  std::optional<SyntaxError> check(std::string_view data) {
    for (size_t i = 0; i < data.size(); ++i) {
      if (!step(static_cast<unsigned char>(data[i]), i)) return error_;
    }
    if (end_top_) return std::nullopt;
    if (!step(' ', data.size())) return error_;
    if (end_top_) return std::nullopt;
    return SyntaxError{"unexpected end of JSON input", data.size()};
  }

 private:
  enum State {
    kBeginValue,
    kBeginValueOrEmpty,
    kBeginStringOrEmpty,
    kBeginString,
    kEndValue,
    kEndTop,
    kInString,
    kInStringEsc,
    kEscU,
    kEscU1,
    kEscU12,
    kEscU123,
    kNeg,
    k1,
    k0,
    kDot,
    kDot0,
    kE,
    kESign,
    kE0,
    kT,
    kTr,
    kTru,
    kF,
    kFa,
    kFal,
    kFals,
    kN,
    kNu,
    kNul,
  };
  enum Parse : char { kObjectKey, kObjectValue, kArrayValue };

  bool fail(unsigned char c, const char* context, size_t at) {
    error_ = SyntaxError{"invalid character " + quote_char(c) + " " + context, at};
    return false;
  }

  void pop() {
    parse_.pop_back();
    if (parse_.empty()) {
      state_ = kEndTop;
      end_top_ = true;
    } else {
      state_ = kEndValue;
    }
  }

  bool literal(unsigned char c, unsigned char want, State next, const char* context, size_t at) {
    if (c != want) return fail(c, context, at);
    state_ = next;
    return true;
  }

  bool step(unsigned char c, size_t at) {
    for (;;) {
      switch (state_) {
        case kBeginValueOrEmpty:
          if (is_space(c)) return true;
          state_ = c == ']' ? kEndValue : kBeginValue;
          continue;
        case kBeginValue:
          if (is_space(c)) return true;
          switch (c) {
            case '{':
              state_ = kBeginStringOrEmpty;
              parse_.push_back(kObjectKey);
              return true;
            case '[':
              state_ = kBeginValueOrEmpty;
              parse_.push_back(kArrayValue);
              return true;
            case '"':
              state_ = kInString;
              return true;
            case '-':
              state_ = kNeg;
              return true;
            case '0':
              state_ = k0;
              return true;
            case 't':
              state_ = kT;
              return true;
            case 'f':
              state_ = kF;
              return true;
            case 'n':
              state_ = kN;
              return true;
            default:
              break;
          }
          if (c >= '1' && c <= '9') {
            state_ = k1;
            return true;
          }
          return fail(c, "looking for beginning of value", at);
        case kBeginStringOrEmpty:
          if (is_space(c)) return true;
          if (c == '}') {
            parse_.back() = kObjectValue;
            state_ = kEndValue;
          } else {
            state_ = kBeginString;
          }
          continue;
        case kBeginString:
          if (is_space(c)) return true;
          if (c == '"') {
            state_ = kInString;
            return true;
          }
          return fail(c, "looking for beginning of object key string", at);
        case kEndValue:
          if (parse_.empty()) {
            state_ = kEndTop;
            end_top_ = true;
            continue;
          }
          if (is_space(c)) return true;
          switch (parse_.back()) {
            case kObjectKey:
              if (c == ':') {
                parse_.back() = kObjectValue;
                state_ = kBeginValue;
                return true;
              }
              return fail(c, "after object key", at);
            case kObjectValue:
              if (c == ',') {
                parse_.back() = kObjectKey;
                state_ = kBeginString;
                return true;
              }
              if (c == '}') {
                pop();
                return true;
              }
              return fail(c, "after object key:value pair", at);
            case kArrayValue:
              if (c == ',') {
                state_ = kBeginValue;
                return true;
              }
              if (c == ']') {
                pop();
                return true;
              }
              return fail(c, "after array element", at);
          }
          return true;
        case kEndTop:
          if (!is_space(c)) return fail(c, "after top-level value", at);
          return true;
        case kInString:
          if (c == '"') {
            state_ = kEndValue;
          } else if (c == '\\') {
            state_ = kInStringEsc;
          } else if (c < 0x20) {
            return fail(c, "in string literal", at);
          }
          return true;
        case kInStringEsc:
          switch (c) {
            case 'b':
            case 'f':
            case 'n':
            case 'r':
            case 't':
            case '\\':
            case '/':
            case '"':
              state_ = kInString;
              return true;
            case 'u':
              state_ = kEscU;
              return true;
            default:
              return fail(c, "in string escape code", at);
          }
        case kEscU:
        case kEscU1:
        case kEscU12:
        case kEscU123:
          if (!is_hex(c)) return fail(c, "in \\u hexadecimal character escape", at);
          state_ = state_ == kEscU123 ? kInString : static_cast<State>(state_ + 1);
          return true;
        case kNeg:
          if (c == '0') {
            state_ = k0;
            return true;
          }
          if (c >= '1' && c <= '9') {
            state_ = k1;
            return true;
          }
          return fail(c, "in numeric literal", at);
        case k1:
          if (is_digit(c)) return true;
          state_ = k0;
          continue;
        case k0:
          if (c == '.') {
            state_ = kDot;
            return true;
          }
          if (c == 'e' || c == 'E') {
            state_ = kE;
            return true;
          }
          state_ = kEndValue;
          continue;
        case kDot:
          if (is_digit(c)) {
            state_ = kDot0;
            return true;
          }
          return fail(c, "after decimal point in numeric literal", at);
        case kDot0:
          if (is_digit(c)) return true;
          if (c == 'e' || c == 'E') {
            state_ = kE;
            return true;
          }
          state_ = kEndValue;
          continue;
        case kE:
          if (c == '+' || c == '-') {
            state_ = kESign;
            return true;
          }
          state_ = kESign;
          continue;
        case kESign:
          if (is_digit(c)) {
            state_ = kE0;
            return true;
          }
          return fail(c, "in exponent of numeric literal", at);
        case kE0:
          if (is_digit(c)) return true;
          state_ = kEndValue;
          continue;
        case kT:
          return literal(c, 'r', kTr, "in literal true (expecting 'r')", at);
        case kTr:
          return literal(c, 'u', kTru, "in literal true (expecting 'u')", at);
        case kTru:
          return literal(c, 'e', kEndValue, "in literal true (expecting 'e')", at);
        case kF:
          return literal(c, 'a', kFa, "in literal false (expecting 'a')", at);
        case kFa:
          return literal(c, 'l', kFal, "in literal false (expecting 'l')", at);
        case kFal:
          return literal(c, 's', kFals, "in literal false (expecting 's')", at);
        case kFals:
          return literal(c, 'e', kEndValue, "in literal false (expecting 'e')", at);
        case kN:
          return literal(c, 'u', kNu, "in literal null (expecting 'u')", at);
        case kNu:
          return literal(c, 'l', kNul, "in literal null (expecting 'l')", at);
        case kNul:
          return literal(c, 'l', kEndValue, "in literal null (expecting 'l')", at);
      }
    }
  }

  State state_ = kBeginValue;
  std::vector<Parse> parse_;
  bool end_top_ = false;
  SyntaxError error_;
};

Status syntax_status(const SyntaxError& e) {
  return Status::BadRequest(e.message + " (at byte offset " + std::to_string(e.offset) + ")");
}

// ---------------------------------------------------------------------------------------------
// Builds the DOM from nlohmann's SAX events, enforcing the depth limit as
// containers open (so the limit is hit after at most max_depth+1 bytes of
// nesting) and, optionally, unique keys. nlohmann's SAX parser is iterative, so
// no input can exhaust the stack.
class DomBuilder {
 public:
  explicit DomBuilder(const ParseOptions& opts) : opts_(opts) {}

  bool null() { return put(json(nullptr)); }
  bool boolean(bool v) { return put(json(v)); }
  bool number_integer(json::number_integer_t v) { return put(json(v)); }
  bool number_unsigned(json::number_unsigned_t v) { return put(integer_json(v)); }
  bool number_float(json::number_float_t v, const std::string& text) {
    if (!std::isfinite(v)) {
      return fail("json: cannot unmarshal number " + text + " into Go value of type float64");
    }
    return put(json(v));
  }
  bool string(std::string& v) { return put(json(std::move(v))); }
  bool binary(json::binary_t&) { return fail("json: unexpected binary value"); }
  bool start_object(std::size_t) { return open(json::object()); }
  bool key(std::string& k) {
    if (opts_.reject_duplicate_keys && stack_.back()->contains(k)) {
      return fail("json: duplicate field " + go_quote(k));
    }
    key_ = std::move(k);
    return true;
  }
  bool end_object() { return close(); }
  bool start_array(std::size_t) { return open(json::array()); }
  bool end_array() { return close(); }
  bool parse_error(std::size_t, const std::string& token, const nlohmann::detail::exception& ex) {
    if (ex.id == 406) {  // out_of_range.406: a number too large for a double
      return fail("json: cannot unmarshal number " + token + " into Go value of type float64");
    }
    // "[json.exception.parse_error.101] parse error at line 1, column 2: ..."
    // without the id.
    std::string what = ex.what();
    if (const size_t p = what.find("] "); p != std::string::npos) what.erase(0, p + 2);
    syntax_message_ = std::move(what);
    return false;
  }

  json& root() { return root_; }
  const std::optional<Status>& limit_error() const { return limit_error_; }
  const std::string& syntax_message() const { return syntax_message_; }

 private:
  bool fail(std::string message) {
    limit_error_ = Status::BadRequest(std::move(message));
    return false;
  }

  json* place(json&& v) {
    if (stack_.empty()) {
      root_ = std::move(v);
      return &root_;
    }
    json& parent = *stack_.back();
    if (parent.is_array()) {
      parent.push_back(std::move(v));
      return &parent.back();
    }
    json& slot = parent[key_];
    slot = std::move(v);
    return &slot;
  }

  bool put(json&& v) {
    place(std::move(v));
    return true;
  }

  bool open(json&& container) {
    if (static_cast<int>(stack_.size()) >= opts_.max_depth) {
      return fail("json: " + too_deep_message(opts_.max_depth));
    }
    stack_.push_back(place(std::move(container)));
    return true;
  }

  bool close() {
    stack_.pop_back();
    return true;
  }

  const ParseOptions& opts_;
  json root_;
  // Containers being filled, innermost last. Pointers stay valid: a container
  // only grows while it is innermost, when no pointer to one of its elements is
  // held.
  std::vector<json*> stack_;
  std::string key_;
  std::optional<Status> limit_error_;
  std::string syntax_message_;
};

// ---------------------------------------------------------------------------------------------
// YAML, read the way Kubernetes reads it: sigs.k8s.io/yaml, i.e. go-yaml v2
// (YAML 1.1 scalar resolution) followed by conversion to JSON.

constexpr char kYamlPrefix[] = "error converting YAML to JSON: yaml: ";
constexpr std::string_view kLongTag = "tag:yaml.org,2002:";

// Thrown from inside yaml-cpp's event callbacks to abandon the parse; caught in
// parse_yaml*.
struct YamlAbort {
  Status status;
};

std::string location(const YAML::Mark& mark) {
  if (mark.is_null()) return "";
  return "line " + std::to_string(mark.line + 1) + ", column " + std::to_string(mark.column + 1) +
         ": ";
}

[[noreturn]] void abort_yaml(const YAML::Mark& mark, const std::string& message) {
  throw YamlAbort{Status::BadRequest(kYamlPrefix + location(mark) + message)};
}

// A read-only streambuf over caller memory, so the input is not copied for
// yaml-cpp.
class MemoryBuf : public std::streambuf {
 public:
  MemoryBuf(const char* data, size_t size) {
    char* p = const_cast<char*>(data);  // get area only: never written through
    setg(p, p, p + size);
  }
};

// A plain scalar resolved as go-yaml v2's resolve() does.
struct Resolved {
  enum Kind { kNull, kBool, kInt, kUint, kFloat, kString } kind = kString;
  bool b = false;
  int64_t i = 0;
  uint64_t u = 0;
  double f = 0;
  std::string s;
};

// strconv.ParseUint(s, 0, 64) after underscores were removed. Returns 0 on
// success, 1 on a syntax error, 2 when the digits are valid but overflow uint64
// (`*approx` then holds the value).
int parse_go_uint(std::string_view s, uint64_t* out, double* approx) {
  if (s.empty()) return 1;
  int base = 10;
  if (s[0] == '0') {
    const char p = s.size() >= 3 ? static_cast<char>(s[1] | 0x20) : 0;
    if (p == 'x') {
      base = 16, s.remove_prefix(2);
    } else if (p == 'b') {
      base = 2, s.remove_prefix(2);
    } else if (p == 'o') {
      base = 8, s.remove_prefix(2);
    } else {
      base = 8, s.remove_prefix(1);
    }
  }
  uint64_t v = 0;
  double d = 0;
  bool overflow = false;
  for (const char ch : s) {
    int digit;
    if (ch >= '0' && ch <= '9') {
      digit = ch - '0';
    } else if ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z') {
      digit = (ch | 0x20) - 'a' + 10;
    } else {
      return 1;
    }
    if (digit >= base) return 1;
    d = d * base + digit;
    if (!overflow) {
      if (v > (std::numeric_limits<uint64_t>::max() - static_cast<uint64_t>(digit)) / base) {
        overflow = true;
      } else {
        v = v * base + static_cast<uint64_t>(digit);
      }
    }
  }
  *out = v;
  *approx = d;
  return overflow ? 2 : 0;
}

// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
bool matches_yaml_float(std::string_view s) {
  size_t i = 0;
  auto digits = [&] {
    const size_t start = i;
    while (i < s.size() && is_digit(static_cast<unsigned char>(s[i]))) ++i;
    return i - start;
  };
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (digits() == 0) return false;
  } else {
    if (digits() == 0) return false;
    if (i < s.size() && s[i] == '.') {
      ++i;
      digits();
    }
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (digits() == 0) return false;
  }
  return i == s.size();
}

// strconv.ParseFloat for input already known to be a decimal float literal.
// Overflow fails, as in Go; underflow yields zero or a subnormal.
bool parse_float_literal(std::string_view s, double* out) {
  const std::string copy(s);
  char* end = nullptr;
  const double v = std::strtod(copy.c_str(), &end);
  if (end != copy.c_str() + copy.size() || std::isinf(v)) return false;
  *out = v;
  return true;
}

Resolved resolve_plain(std::string_view in) {
  Resolved r;
  static const std::unordered_map<std::string_view, int> kWords = {
      {"y", 1},     {"Y", 1},     {"yes", 1},   {"Yes", 1},   {"YES", 1},   {"true", 1},
      {"True", 1},  {"TRUE", 1},  {"on", 1},    {"On", 1},    {"ON", 1},    {"n", 0},
      {"N", 0},     {"no", 0},    {"No", 0},    {"NO", 0},    {"false", 0}, {"False", 0},
      {"FALSE", 0}, {"off", 0},   {"Off", 0},   {"OFF", 0},   {"", 2},      {"~", 2},
      {"null", 2},  {"Null", 2},  {"NULL", 2},  {".nan", 3},  {".NaN", 3},  {".NAN", 3},
      {".inf", 4},  {".Inf", 4},  {".INF", 4},  {"+.inf", 4}, {"+.Inf", 4}, {"+.INF", 4},
      {"-.inf", 5}, {"-.Inf", 5}, {"-.INF", 5},
  };
  char hint = 'N';
  if (!in.empty()) {
    const char c = in[0];
    if (c == '+' || c == '-') {
      hint = 'S';
    } else if (is_digit(static_cast<unsigned char>(c))) {
      hint = 'D';
    } else if (c == '.') {
      hint = '.';
    } else if (std::string_view("yYnNtTfFoO~").find(c) != std::string_view::npos) {
      hint = 'M';
    } else {
      hint = 0;
    }
  }
  if (hint != 0) {
    if (const auto it = kWords.find(in); it != kWords.end()) {
      switch (it->second) {
        case 0:
          r.kind = Resolved::kBool, r.b = false;
          return r;
        case 1:
          r.kind = Resolved::kBool, r.b = true;
          return r;
        case 2:
          r.kind = Resolved::kNull;
          return r;
        case 3:
          r.kind = Resolved::kFloat, r.f = std::numeric_limits<double>::quiet_NaN();
          return r;
        case 4:
          r.kind = Resolved::kFloat, r.f = std::numeric_limits<double>::infinity();
          return r;
        default:
          r.kind = Resolved::kFloat, r.f = -std::numeric_limits<double>::infinity();
          return r;
      }
    }
    if (hint == '.') {
      double f;
      if (matches_yaml_float(in) && parse_float_literal(in, &f)) {
        r.kind = Resolved::kFloat, r.f = f;
        return r;
      }
    } else if (hint == 'D' || hint == 'S') {
      std::string plain;
      plain.reserve(in.size());
      for (const char c : in) {
        if (c != '_') plain += c;
      }
      std::string_view digits = plain;
      bool negative = false;
      if (!digits.empty() && (digits[0] == '+' || digits[0] == '-')) {
        negative = digits[0] == '-';
        digits.remove_prefix(1);
      }
      uint64_t u = 0;
      double approx = 0;
      const int rc = parse_go_uint(digits, &u, &approx);
      const uint64_t int64_limit = uint64_t{1} << 63;
      if (rc == 0 && (negative ? u <= int64_limit : u < int64_limit)) {
        r.kind = Resolved::kInt;
        r.i = negative ? static_cast<int64_t>(0 - u) : static_cast<int64_t>(u);
        return r;
      }
      if (rc == 0 && !negative && plain[0] != '+') {
        r.kind = Resolved::kUint, r.u = u;
        return r;
      }
      double f;
      if (matches_yaml_float(plain) && parse_float_literal(plain, &f)) {
        r.kind = Resolved::kFloat, r.f = f;
        return r;
      }
      if (rc == 2 && !negative && plain[0] != '+') {
        // Valid unsigned digits beyond 64 bits: go-yaml keeps a big integer,
        // which JSON carries as a number and Kubernetes then decodes as a
        // float.
        r.kind = Resolved::kFloat, r.f = negative ? -approx : approx;
        return r;
      }
    }
  }
  r.kind = Resolved::kString;
  r.s = std::string(in);
  return r;
}

// strconv.FormatFloat(f, 'g', -1, 32), with go-yaml's spellings of the special
// values; this is how sigs.k8s.io/yaml turns a float mapping key into a string.
std::string format_float_key(double d) {
  if (std::isnan(d)) return ".nan";
  if (std::isinf(d)) return d > 0 ? ".inf" : "-.inf";
  const float f = static_cast<float>(d);
  if (std::isinf(f)) return f > 0 ? ".inf" : "-.inf";
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof(buf), f, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<size_t>(res.ptr - buf));
  std::string out;
  if (!sci.empty() && sci[0] == '-') {
    out += '-';
    sci.remove_prefix(1);
  }
  const size_t e = sci.find('e');
  std::string digits;
  for (const char c : sci.substr(0, e)) {
    if (c != '.') digits += c;
  }
  int exp10 = 0;
  std::from_chars(sci.data() + e + 1 + (sci[e + 1] == '+' ? 1 : 0), sci.data() + sci.size(), exp10);
  if (digits == "0") return out + "0";
  const int nd = static_cast<int>(digits.size());
  const int dp = exp10 + 1;
  const int exp = dp - 1;
  if (exp < -4 || exp >= 6) {
    out += digits[0];
    if (nd > 1) {
      out += '.';
      out += digits.substr(1);
    }
    out += 'e';
    out += exp < 0 ? '-' : '+';
    const int ae = exp < 0 ? -exp : exp;
    if (ae < 10) out += '0';
    out += std::to_string(ae);
    return out;
  }
  if (dp > 0) {
    for (int i = 0; i < dp; ++i) out += i < nd ? digits[i] : '0';
  } else {
    out += '0';
  }
  const int prec = std::max(nd - dp, 0);
  if (prec > 0) {
    out += '.';
    for (int i = 0; i < prec; ++i) {
      const int j = dp + i;
      out += (j < 0 || j >= nd) ? '0' : digits[j];
    }
  }
  return out;
}

// A scalar as written, resolved once; it becomes a JSON value or a mapping key
// depending on where it appears (and an anchored scalar may later be used as
// either).
struct Scalar {
  Resolved r;
  bool merge_key = false;  // a plain, untagged "<<"
};

std::string kind_tag(Resolved::Kind k) {
  switch (k) {
    case Resolved::kNull:
      return "!!null";
    case Resolved::kBool:
      return "!!bool";
    case Resolved::kInt:
    case Resolved::kUint:
      return "!!int";
    case Resolved::kFloat:
      return "!!float";
    case Resolved::kString:
      return "!!str";
  }
  return "!!str";
}

Scalar resolve_scalar(const YAML::Mark& mark, const std::string& tag, const std::string& value) {
  Scalar s;
  if (tag == "?") {
    if (value == "<<") {
      s.merge_key = true;
      s.r.s = value;
      return s;
    }
    s.r = resolve_plain(value);
    return s;
  }
  if (tag.compare(0, kLongTag.size(), kLongTag) != 0) {
    // "!" (quoted, block or explicitly non-specific) and unknown tags: go-yaml
    // keeps the text.
    s.r.s = value;
    return s;
  }
  const std::string_view name = std::string_view(tag).substr(kLongTag.size());
  if (name == "str" || name == "timestamp" || name == "merge") {
    s.r.s = value;
    return s;
  }
  if (name == "binary") {
    auto decoded = base64_decode(value);
    if (!decoded.ok()) abort_yaml(mark, "!!binary value contains invalid base64 data");
    s.r.s = std::move(decoded.value());
    return s;
  }
  if (name != "null" && name != "bool" && name != "int" && name != "float") {
    s.r.s = value;
    return s;
  }
  s.r = resolve_plain(value);
  const Resolved::Kind k = s.r.kind;
  bool ok = false;
  if (name == "null") ok = k == Resolved::kNull;
  if (name == "bool") ok = k == Resolved::kBool;
  if (name == "int") ok = k == Resolved::kInt || k == Resolved::kUint;
  if (name == "float") {
    ok = k == Resolved::kFloat || k == Resolved::kInt || k == Resolved::kUint;
    if (k == Resolved::kInt) s.r.f = static_cast<double>(s.r.i);
    if (k == Resolved::kUint) s.r.f = static_cast<double>(s.r.u);
    if (ok) s.r.kind = Resolved::kFloat;
  }
  if (!ok) {
    abort_yaml(mark,
               "cannot decode " + kind_tag(k) + " `" + value + "` as a !!" + std::string(name));
  }
  return s;
}

json scalar_value(const Scalar& s, const YAML::Mark& mark) {
  const Resolved& r = s.r;
  switch (r.kind) {
    case Resolved::kNull:
      return json(nullptr);
    case Resolved::kBool:
      return json(r.b);
    case Resolved::kInt:
      return json(r.i);
    case Resolved::kUint:
      return integer_json(r.u);
    case Resolved::kFloat:
      if (std::isnan(r.f)) abort_yaml(mark, "json: unsupported value: NaN");
      if (std::isinf(r.f))
        abort_yaml(mark,
                   r.f > 0 ? "json: unsupported value: +Inf" : "json: unsupported value: -Inf");
      // Go writes an integral float without a fraction ("1.0" -> 1), and
      // Kubernetes reads that back as an integer.
      if (r.f == std::trunc(r.f) && r.f >= -9223372036854775808.0 && r.f < 9223372036854775808.0) {
        return json(static_cast<int64_t>(r.f));
      }
      return json(r.f);
    case Resolved::kString:
      return json(r.s);
  }
  return json(nullptr);
}

std::string scalar_key(const Scalar& s, const YAML::Mark& mark) {
  const Resolved& r = s.r;
  switch (r.kind) {
    case Resolved::kNull:
      abort_yaml(mark, "invalid map key: null cannot be a key");
    case Resolved::kBool:
      return r.b ? "true" : "false";
    case Resolved::kInt:
      return std::to_string(r.i);
    case Resolved::kUint:
      return std::to_string(r.u);
    case Resolved::kFloat:
      return format_float_key(r.f);
    case Resolved::kString:
      return r.s;
  }
  return r.s;
}

// yaml-cpp 0.7 can report the same empty document forever without consuming
// input (for example for a stream starting with ','); every document must start
// further into the input.
class DocumentProgress {
 public:
  void on_document_start(const YAML::Mark& mark) {
    if (mark.pos <= last_pos_) abort_yaml(mark, "did not find expected node content");
    last_pos_ = mark.pos;
  }

 private:
  int last_pos_ = -1;
};

// Builds one document from yaml-cpp's events. Depth and the alias-expanded node
// count are checked as events arrive, so yaml-cpp's recursion never goes deeper
// than max_depth + 1 and no more than kMaxYamlNodes values are ever
// materialized.
class YamlDocumentBuilder final : public YAML::EventHandler {
 public:
  YamlDocumentBuilder(const ParseOptions& opts, size_t* nodes, DocumentProgress* progress)
      : opts_(opts), nodes_(*nodes), progress_(*progress) {}

  json take() { return std::move(root_); }

  void OnDocumentStart(const YAML::Mark& mark) override { progress_.on_document_start(mark); }
  void OnDocumentEnd() override {}

  void OnAnchor(const YAML::Mark&, const std::string& name) override { pending_name_ = name; }

  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    Scalar s;
    s.r.kind = Resolved::kNull;
    on_scalar(mark, anchor, std::move(s));
  }

  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                const std::string& value) override {
    on_scalar(mark, anchor, resolve_scalar(mark, tag, value));
  }

  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    const auto it = anchors_.find(anchor);
    if (it == anchors_.end()) {
      abort_yaml(mark, "anchor '" + anchor_name(anchor) + "' value contains itself");
    }
    const Anchored& a = it->second;
    count(a.nodes, mark);
    if (a.is_scalar) {
      if (at_key()) {
        set_key(scalar_key(a.scalar, mark), a.scalar.merge_key, mark);
      } else {
        add_value(scalar_value(a.scalar, mark), 0, mark);
      }
      return;
    }
    if (at_key()) abort_yaml(mark, "invalid map key: a mapping or sequence cannot be a key");
    if (static_cast<int>(stack_.size()) + a.height > opts_.max_depth) {
      abort_yaml(mark, too_deep_message(opts_.max_depth));
    }
    add_value(json(a.value), a.height, mark);
  }

  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    open(mark, anchor, json::array());
  }
  void OnSequenceEnd() override { close(); }

  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    open(mark, anchor, json::object());
  }
  void OnMapEnd() override { close(); }

 private:
  struct Frame {
    json value;
    YAML::Mark mark;
    YAML::anchor_t anchor = 0;
    size_t nodes_at_start = 0;
    int child_height = 0;
    bool has_key = false;
    bool key_is_merge = false;
    std::string key;
    YAML::Mark key_mark;
    std::set<std::string> explicit_keys;  // only filled when duplicates are rejected
  };
  struct Anchored {
    bool is_scalar = false;
    Scalar scalar;
    json value;
    size_t nodes = 1;
    int height = 0;
  };

  std::string anchor_name(YAML::anchor_t anchor) const {
    const auto it = names_.find(anchor);
    return it == names_.end() ? std::to_string(anchor) : it->second;
  }

  void note_anchor(YAML::anchor_t anchor) {
    if (anchor != 0 && !pending_name_.empty()) names_[anchor] = std::move(pending_name_);
    pending_name_.clear();
  }

  void count(size_t n, const YAML::Mark& mark) {
    nodes_ += n;
    if (nodes_ > kMaxYamlNodes) {
      abort_yaml(mark, "document expands to more than " + std::to_string(kMaxYamlNodes) +
                           " values (aliases are expanded); refusing to process it");
    }
  }

  bool at_key() const {
    return !stack_.empty() && stack_.back().value.is_object() && !stack_.back().has_key;
  }

  void on_scalar(const YAML::Mark& mark, YAML::anchor_t anchor, Scalar s) {
    note_anchor(anchor);
    count(1, mark);
    if (anchor != 0) {
      Anchored a;
      a.is_scalar = true;
      a.scalar = s;
      anchors_[anchor] = std::move(a);
    }
    if (at_key()) {
      set_key(scalar_key(s, mark), s.merge_key, mark);
    } else {
      add_value(scalar_value(s, mark), 0, mark);
    }
  }

  void open(const YAML::Mark& mark, YAML::anchor_t anchor, json container) {
    note_anchor(anchor);
    if (at_key()) abort_yaml(mark, "invalid map key: a mapping or sequence cannot be a key");
    count(1, mark);
    if (static_cast<int>(stack_.size()) >= opts_.max_depth) {
      abort_yaml(mark, too_deep_message(opts_.max_depth));
    }
    Frame f;
    f.value = std::move(container);
    f.mark = mark;
    f.anchor = anchor;
    f.nodes_at_start = nodes_ - 1;
    stack_.push_back(std::move(f));
  }

  void close() {
    Frame f = std::move(stack_.back());
    stack_.pop_back();
    const int height = f.child_height + 1;
    if (f.anchor != 0) {
      Anchored a;
      a.nodes = nodes_ - f.nodes_at_start;
      a.height = height;
      // The stored copy counts against the budget too, so nested anchors cannot
      // multiply the copying work beyond it.
      count(a.nodes, f.mark);
      a.value = f.value;
      anchors_[f.anchor] = std::move(a);
    }
    add_value(std::move(f.value), height, f.mark);
  }

  void set_key(std::string key, bool merge, const YAML::Mark& mark) {
    Frame& f = stack_.back();
    f.key = std::move(key);
    f.key_is_merge = merge;
    f.key_mark = mark;
    f.has_key = true;
  }

  void add_value(json value, int height, const YAML::Mark& mark) {
    if (stack_.empty()) {
      root_ = std::move(value);
      return;
    }
    Frame& f = stack_.back();
    f.child_height = std::max(f.child_height, height);
    if (f.value.is_array()) {
      f.value.push_back(std::move(value));
      return;
    }
    f.has_key = false;
    if (f.key_is_merge) {
      merge(f, std::move(value), mark);
      return;
    }
    if (opts_.reject_duplicate_keys && !f.explicit_keys.insert(f.key).second) {
      throw YamlAbort{Status::BadRequest(std::string(kYamlPrefix) + "unmarshal errors:\n  line " +
                                         std::to_string(f.key_mark.line + 1) + ": key " +
                                         go_quote(f.key) + " already set in map")};
    }
    f.value[f.key] = std::move(value);
  }

  // go-yaml v2 merge keys: the merged mapping's entries are assigned in place,
  // so they override keys written before "<<" and are overridden by keys
  // written after it; in a sequence of mappings, earlier mappings take
  // precedence.
  void merge(Frame& f, json value, const YAML::Mark& mark) {
    auto merge_one = [&](json& from) {
      for (auto& [k, v] : from.items()) f.value[k] = std::move(v);
    };
    if (value.is_object()) {
      merge_one(value);
      return;
    }
    if (value.is_array()) {
      for (const json& m : value) {
        if (!m.is_object())
          abort_yaml(mark, "map merge requires map or sequence of maps as the value");
      }
      for (auto it = value.rbegin(); it != value.rend(); ++it) merge_one(*it);
      return;
    }
    abort_yaml(mark, "map merge requires map or sequence of maps as the value");
  }

  const ParseOptions& opts_;
  size_t& nodes_;
  DocumentProgress& progress_;
  json root_;
  std::vector<Frame> stack_;
  std::unordered_map<YAML::anchor_t, Anchored> anchors_;
  std::unordered_map<YAML::anchor_t, std::string> names_;
  std::string pending_name_;
};

// Accepts only documents without content ("---" with nothing after it), which
// is how a trailing separator shows up; content means the request carried more
// than one object.
class EmptyDocumentChecker final : public YAML::EventHandler {
 public:
  explicit EmptyDocumentChecker(DocumentProgress* progress) : progress_(*progress) {}
  void OnDocumentStart(const YAML::Mark& mark) override { progress_.on_document_start(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { reject(mark); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                const std::string&) override {
    reject(mark);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    reject(mark);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    reject(mark);
  }
  void OnMapEnd() override {}

 private:
  DocumentProgress& progress_;

  [[noreturn]] static void reject(const YAML::Mark& mark) {
    throw YamlAbort{
        Status::BadRequest(std::string(kYamlPrefix) + "line " + std::to_string(mark.line + 1) +
                           ": expected a single document, but another document starts here; send "
                           "one object per "
                           "request (or a List)")};
  }
};

// go-yaml reads UTF-8 (optionally with a BOM) or UTF-16 with a BOM, and rejects
// malformed UTF-8.
Status check_yaml_encoding(std::string_view text) {
  if (text.size() >= 2) {
    const auto b0 = static_cast<unsigned char>(text[0]);
    const auto b1 = static_cast<unsigned char>(text[1]);
    if ((b0 == 0xFE && b1 == 0xFF) || (b0 == 0xFF && b1 == 0xFE)) return Status::Ok();
  }
  if (const size_t bad = find_invalid_utf8(text); bad != std::string_view::npos) {
    return Status::BadRequest(std::string(kYamlPrefix) + "invalid UTF-8 at byte offset " +
                              std::to_string(bad));
  }
  return Status::Ok();
}

Status yaml_exception_status(const YAML::Exception& e) {
  return Status::BadRequest(kYamlPrefix + location(e.mark) + e.msg);
}

// Runs `body` (which drives yaml-cpp) and turns every way it can fail into a
// BadRequest.
template <typename T, typename Body>
Result<T> guard_yaml(std::string_view text, Body&& body) {
  try {
    if (Status st = check_yaml_encoding(text); !st.ok()) return st;
    MemoryBuf buf(text.data(), text.size());
    std::istream in(&buf);
    YAML::Parser parser(in);
    return body(parser);
  } catch (YamlAbort& abort) {
    return std::move(abort.status);
  } catch (const YAML::Exception& e) {
    return yaml_exception_status(e);
  } catch (const std::bad_alloc&) {
    return Status::TooLarge("error converting YAML to JSON: document too large to process");
  } catch (const std::exception& e) {
    return Status::BadRequest(std::string(kYamlPrefix) + e.what());
  } catch (...) {
    return Status::BadRequest(std::string(kYamlPrefix) + "unreadable document");
  }
}

// ---------------------------------------------------------------------------------------------
// The fast path of parse_json: a recursive-descent reader that builds the DOM directly from the
// bytes. It accepts exactly the documents the SAX path above accepts without error and builds
// the same values; on anything else (a syntax error, a depth or duplicate-key violation, a
// number that is not finite) it gives up and the SAX path runs, so that every error is worded
// and located as before. Most bodies and stored objects are valid, and this path costs a
// fraction of nlohmann's lexer (which copies every token character by character).
constexpr int kMaxFastDepth = 1000;

class FastReader {
 public:
  FastReader(std::string_view text, const ParseOptions& opts)
      : p_(text.data()), end_(text.data() + text.size()), opts_(opts) {}

  // The value, or nullopt when the SAX path must decide.
  std::optional<json> read() {
    json out;
    skip_space();
    if (!value(out, 0)) return std::nullopt;
    skip_space();
    if (p_ != end_) return std::nullopt;
    return out;
  }

 private:
  void skip_space() {
    while (p_ != end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }

  bool value(json& out, int depth) {
    if (p_ == end_) return false;
    switch (*p_) {
      case '{': return object(out, depth + 1);
      case '[': return array(out, depth + 1);
      case '"': {
        std::string s;
        if (!string(s)) return false;
        out = std::move(s);
        return true;
      }
      case 't': return literal("true", json(true), out);
      case 'f': return literal("false", json(false), out);
      case 'n': return literal("null", json(nullptr), out);
      default: return number(out);
    }
  }

  bool literal(std::string_view word, json v, json& out) {
    if (static_cast<size_t>(end_ - p_) < word.size() || std::string_view(p_, word.size()) != word) {
      return false;
    }
    p_ += word.size();
    out = std::move(v);
    return true;
  }

  bool object(json& out, int depth) {
    if (depth > opts_.max_depth) return false;
    ++p_;  // '{'
    out = json::object();
    auto& map = out.get_ref<json::object_t&>();
    skip_space();
    if (p_ != end_ && *p_ == '}') {
      ++p_;
      return true;
    }
    std::string key;
    for (;;) {
      skip_space();
      if (p_ == end_ || *p_ != '"') return false;
      key.clear();
      if (!string(key)) return false;
      skip_space();
      if (p_ == end_ || *p_ != ':') return false;
      ++p_;
      skip_space();
      // Objects usually arrive with their keys in order (this server writes them sorted).
      auto hint = map.end();
      json* slot;
      if (map.empty() || map.rbegin()->first < key) {
        slot = &map.emplace_hint(hint, std::move(key), nullptr)->second;
      } else {
        auto [it, inserted] = map.try_emplace(std::move(key));
        if (!inserted) {
          if (opts_.reject_duplicate_keys) return false;
          it->second = nullptr;
        }
        slot = &it->second;
      }
      if (!value(*slot, depth)) return false;
      skip_space();
      if (p_ == end_) return false;
      if (*p_ == ',') {
        ++p_;
        continue;
      }
      if (*p_ != '}') return false;
      ++p_;
      return true;
    }
  }

  bool array(json& out, int depth) {
    if (depth > opts_.max_depth) return false;
    ++p_;  // '['
    out = json::array();
    auto& vec = out.get_ref<json::array_t&>();
    skip_space();
    if (p_ != end_ && *p_ == ']') {
      ++p_;
      return true;
    }
    for (;;) {
      skip_space();
      vec.emplace_back();
      if (!value(vec.back(), depth)) return false;
      skip_space();
      if (p_ == end_) return false;
      if (*p_ == ',') {
        ++p_;
        continue;
      }
      if (*p_ != ']') return false;
      ++p_;
      return true;
    }
  }

  static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  bool hex4(uint32_t* out) {
    if (end_ - p_ < 4) return false;
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      int d = hex_digit(p_[i]);
      if (d < 0) return false;
      v = v * 16 + static_cast<uint32_t>(d);
    }
    p_ += 4;
    *out = v;
    return true;
  }

  // REQUIRES: *p_ == '"'. The input is valid UTF-8 (parse_json repairs it first).
  bool string(std::string& out) {
    ++p_;
    for (;;) {
      const char* run = p_;
      while (p_ != end_ && *p_ != '"' && *p_ != '\\' && static_cast<unsigned char>(*p_) >= 0x20) {
        ++p_;
      }
      out.append(run, p_);
      if (p_ == end_) return false;
      char c = *p_;
      if (c == '"') {
        ++p_;
        return true;
      }
      if (c != '\\') return false;  // a raw control character
      ++p_;
      if (p_ == end_) return false;
      char e = *p_++;
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          uint32_t cp;
          if (!hex4(&cp)) return false;
          if (cp >= 0xDC00 && cp <= 0xDFFF) return false;
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            uint32_t low;
            if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') return false;
            p_ += 2;
            if (!hex4(&low) || low < 0xDC00 || low > 0xDFFF) return false;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          append_utf8(out, cp);
          break;
        }
        default: return false;
      }
    }
  }

  static bool digit(char c) { return c >= '0' && c <= '9'; }

  // As nlohmann's lexer: an integer that fits int64 (negative) or uint64 (otherwise) is an
  // integer, anything else a double; then as DomBuilder stores them.
  bool number(json& out) {
    const char* start = p_;
    bool negative = false;
    if (*p_ == '-') {
      negative = true;
      ++p_;
    }
    if (p_ == end_ || !digit(*p_)) return false;
    if (*p_ == '0') {
      ++p_;
    } else {
      while (p_ != end_ && digit(*p_)) ++p_;
    }
    bool integral = true;
    if (p_ != end_ && *p_ == '.') {
      integral = false;
      ++p_;
      if (p_ == end_ || !digit(*p_)) return false;
      while (p_ != end_ && digit(*p_)) ++p_;
    }
    if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) {
      integral = false;
      ++p_;
      if (p_ != end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (p_ == end_ || !digit(*p_)) return false;
      while (p_ != end_ && digit(*p_)) ++p_;
    }
    if (integral) {
      if (negative) {
        int64_t v;
        auto r = std::from_chars(start, p_, v);
        if (r.ec == std::errc() && r.ptr == p_) {
          out = v;
          return true;
        }
      } else {
        uint64_t v;
        auto r = std::from_chars(start, p_, v);
        if (r.ec == std::errc() && r.ptr == p_) {
          out = integer_json(v);
          return true;
        }
      }
    }
    // strtod needs a terminated copy; numbers are short.
    std::string token(start, p_);
    double d = std::strtod(token.c_str(), nullptr);
    if (!std::isfinite(d)) return false;
    out = d;
    return true;
  }

  const char* p_;
  const char* const end_;
  const ParseOptions& opts_;
};

}  // namespace

Result<nlohmann::json> parse_json(std::string_view text, const ParseOptions& opts) {
  // nlohmann skips a UTF-8 byte-order mark; Go (and so Kubernetes) rejects it.
  if (text.size() >= 3 && text.substr(0, 3) == "\xEF\xBB\xBF") {
    return syntax_status(*GoJsonScanner().check(text));
  }
  // Go replaces malformed UTF-8 in strings with U+FFFD instead of failing; do
  // the same.
  std::string repaired;
  std::string_view input = text;
  if (find_invalid_utf8(text) != std::string_view::npos) {
    repaired = replace_invalid_utf8(text);
    input = repaired;
  }
  try {
    // Deep limits would let the recursive fast path exhaust the stack; the SAX path is
    // iterative.
    if (opts.max_depth <= kMaxFastDepth) {
      if (auto fast = FastReader(input, opts).read()) return std::move(*fast);
    }
    DomBuilder builder(opts);
    if (json::sax_parse(input.begin(), input.end(), &builder, json::input_format_t::json,
                        /*strict=*/true, /*ignore_comments=*/false)) {
      return std::move(builder.root());
    }
    if (builder.limit_error()) return *builder.limit_error();
    if (auto err = GoJsonScanner().check(text)) return syntax_status(*err);
    return Status::BadRequest("json: " + builder.syntax_message());
  } catch (const std::bad_alloc&) {
    return Status::TooLarge("json: document too large to process");
  } catch (const std::exception& e) {
    return Status::BadRequest(std::string("json: ") + e.what());
  }
}

Result<nlohmann::json> parse_yaml(std::string_view text, const ParseOptions& opts) {
  return guard_yaml<json>(text, [&](YAML::Parser& parser) -> Result<json> {
    size_t nodes = 0;
    DocumentProgress progress;
    YamlDocumentBuilder builder(opts, &nodes, &progress);
    if (!parser.HandleNextDocument(builder)) return json(nullptr);
    json doc = builder.take();
    EmptyDocumentChecker rest(&progress);
    while (parser.HandleNextDocument(rest)) {
    }
    return doc;
  });
}

Result<std::vector<nlohmann::json>> parse_yaml_documents(std::string_view text,
                                                         const ParseOptions& opts) {
  auto read_all = [&](YAML::Parser& parser) -> Result<std::vector<json>> {
    std::vector<json> docs;
    size_t nodes = 0;
    DocumentProgress progress;
    for (;;) {
      YamlDocumentBuilder builder(opts, &nodes, &progress);
      if (!parser.HandleNextDocument(builder)) break;
      json doc = builder.take();
      if (!doc.is_null()) docs.push_back(std::move(doc));
    }
    return docs;
  };
  return guard_yaml<std::vector<json>>(text, read_all);
}

std::string to_json(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string json_quote(std::string_view s) { return to_json(json(std::string(s))); }

}  // namespace skiff
