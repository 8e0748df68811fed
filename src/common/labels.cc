#include "common/labels.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>
#include <variant>

#include "common/names.h"
#include "common/strings.h"

namespace skiff {
namespace {

using nlohmann::json;

// strconv.ParseInt(s, 10, 64).
std::optional<int64_t> parse_int64(std::string_view s) {
  if (!s.empty() && s[0] == '+') s.remove_prefix(1);
  if (s.empty() || s[0] == '+') return std::nullopt;
  int64_t v = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

std::string join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out += sep;
    out += parts[i];
  }
  return out;
}

// Go's %#v of a []string, as field.Invalid prints it.
std::string go_string_slice(const std::vector<std::string>& values) {
  if (values.empty()) return "[]string(nil)";
  std::string out = "[]string{";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) out += ", ";
    out += go_quote(values[i]);
  }
  return out + "}";
}

// field.Error.Error() for an Invalid error: "<path>: Invalid value: <value>:
// <detail>".
std::string invalid(std::string_view path, const std::string& printed_value,
                    const std::string& detail) {
  return std::string(path) + ": Invalid value: " + printed_value + ": " + detail;
}

// utilerrors.NewAggregate(errs).Error(): one message as is, several as "[a, b]"
// without repeats.
std::string aggregate(const std::vector<std::string>& errs) {
  if (errs.size() == 1) return errs[0];
  std::vector<std::string> unique;
  std::set<std::string> seen;
  for (const auto& e : errs) {
    if (seen.insert(e).second) unique.push_back(e);
  }
  if (unique.size() == 1) return unique[0];
  return "[" + join(unique, ", ") + "]";
}

std::optional<std::string> validate_key(const std::string& key, std::string_view path) {
  const auto errs = is_qualified_name(key);
  if (errs.empty()) return std::nullopt;
  return invalid(path, go_quote(key), join(errs, "; "));
}

// labels.NewRequirement's checks and messages. Kubernetes builds the
// requirement without a field path, so the key is reported at "key" and values
// at "values", "values[i]" and "values[i][<key>]".
Status new_requirement(const std::string& key, LabelOperator op,
                       const std::vector<std::string>& values) {
  std::vector<std::string> errs;
  if (auto e = validate_key(key, "key")) errs.push_back(*e);
  switch (op) {
    case LabelOperator::kIn:
    case LabelOperator::kNotIn:
      if (values.empty()) {
        errs.push_back(invalid("values", go_string_slice(values),
                               "for 'in', 'notin' operators, values set can't be empty"));
      }
      break;
    case LabelOperator::kEquals:
    case LabelOperator::kDoubleEquals:
    case LabelOperator::kNotEquals:
      if (values.size() != 1) {
        errs.push_back(invalid("values", go_string_slice(values),
                               "exact-match compatibility requires one single value"));
      }
      break;
    case LabelOperator::kExists:
    case LabelOperator::kDoesNotExist:
      if (!values.empty()) {
        errs.push_back(invalid("values", go_string_slice(values),
                               "values set must be empty for exists and does not exist"));
      }
      break;
    case LabelOperator::kGreaterThan:
    case LabelOperator::kLessThan:
      if (values.size() != 1) {
        errs.push_back(invalid("values", go_string_slice(values),
                               "for 'Gt', 'Lt' operators, exactly one value is required"));
      }
      for (size_t i = 0; i < values.size(); ++i) {
        if (!parse_int64(values[i])) {
          errs.push_back(invalid("values[" + std::to_string(i) + "]", go_quote(values[i]),
                                 "for 'Gt', 'Lt' operators, the value must be an integer"));
        }
      }
      break;
  }
  for (size_t i = 0; i < values.size(); ++i) {
    const auto msgs = is_valid_label_value(values[i]);
    if (!msgs.empty()) {
      errs.push_back(invalid("values[" + std::to_string(i) + "][" + key + "]", go_quote(values[i]),
                             join(msgs, "; ")));
    }
  }
  if (errs.empty()) return Status::Ok();
  return Status::BadRequest(aggregate(errs));
}

// ---------------------------------------------------------------------------------------------
// A port of labels.Lexer / labels.Parser, so that accepted input and error
// messages match.

enum class Token {
  kError,
  kEnd,
  kClosedPar,
  kComma,
  kDoesNotExist,
  kDoubleEquals,
  kEquals,
  kGreaterThan,
  kIdentifier,
  kIn,
  kLessThan,
  kNotEquals,
  kNotIn,
  kOpenPar,
};

struct Item {
  Token tok;
  std::string literal;
};

bool is_whitespace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

bool is_special(char c) {
  switch (c) {
    case '=':
    case '!':
    case '(':
    case ')':
    case ',':
    case '>':
    case '<':
      return true;
    default:
      return false;
  }
}

std::optional<Token> keyword(std::string_view s) {
  if (s == ")") return Token::kClosedPar;
  if (s == ",") return Token::kComma;
  if (s == "!") return Token::kDoesNotExist;
  if (s == "==") return Token::kDoubleEquals;
  if (s == "=") return Token::kEquals;
  if (s == ">") return Token::kGreaterThan;
  if (s == "in") return Token::kIn;
  if (s == "<") return Token::kLessThan;
  if (s == "!=") return Token::kNotEquals;
  if (s == "notin") return Token::kNotIn;
  if (s == "(") return Token::kOpenPar;
  return std::nullopt;
}

class Lexer {
 public:
  explicit Lexer(std::string_view s) : s_(s) {}

  Item lex() {
    char ch = read();
    while (is_whitespace(ch)) ch = read();
    if (ch == 0) return {Token::kEnd, ""};
    unread();
    return is_special(ch) ? scan_special() : scan_id_or_keyword();
  }

 private:
  // Go's lexer reads a NUL byte for the end of input; an embedded NUL ends it
  // as well.
  char read() { return pos_ < s_.size() ? s_[pos_++] : (++pos_, '\0'); }
  void unread() { --pos_; }

  Item scan_id_or_keyword() {
    std::string buffer;
    for (;;) {
      const char ch = read();
      if (ch == 0) break;
      if (is_special(ch) || is_whitespace(ch)) {
        unread();
        break;
      }
      buffer += ch;
    }
    if (auto k = keyword(buffer)) return {*k, buffer};
    return {Token::kIdentifier, buffer};
  }

  Item scan_special() {
    std::string buffer;
    std::optional<Item> last;
    for (;;) {
      const char ch = read();
      if (ch == 0) break;
      if (!is_special(ch)) {
        unread();
        break;
      }
      buffer += ch;
      if (auto k = keyword(buffer)) {
        last = Item{*k, buffer};
      } else if (last) {
        unread();
        break;
      }
    }
    if (!last) return {Token::kError, "error expected: keyword found '" + buffer + "'"};
    return *last;
  }

  std::string_view s_;
  size_t pos_ = 0;
};

class Parser {
 public:
  explicit Parser(std::string_view s) {
    Lexer lexer(s);
    for (;;) {
      items_.push_back(lexer.lex());
      if (items_.back().tok == Token::kEnd) break;
    }
  }

  // Returns the requirements or an error message.
  std::variant<std::vector<LabelRequirement>, std::string> parse() {
    std::vector<LabelRequirement> reqs;
    for (;;) {
      const Item& next = lookahead(true);
      if (next.tok == Token::kIdentifier || next.tok == Token::kDoesNotExist) {
        LabelRequirement r;
        if (auto err = parse_requirement(&r)) return "unable to parse requirement: " + *err;
        reqs.push_back(std::move(r));
        const Item t = consume(true);
        if (t.tok == Token::kEnd) return reqs;
        if (t.tok == Token::kComma) {
          const Item& t2 = lookahead(true);
          if (t2.tok != Token::kIdentifier && t2.tok != Token::kDoesNotExist) {
            return "found '" + t2.literal + "', expected: identifier after ','";
          }
        } else {
          return "found '" + t.literal + "', expected: ',' or 'end of string'";
        }
      } else if (next.tok == Token::kEnd) {
        return reqs;
      } else {
        return "found '" + next.literal + "', expected: !, identifier, or 'end of string'";
      }
    }
  }

 private:
  // In the value context "in" and "notin" are ordinary identifiers ("a in
  // (in)").
  Item adjust(const Item& item, bool values) const {
    Item out = item;
    if (values && (out.tok == Token::kIn || out.tok == Token::kNotIn)) out.tok = Token::kIdentifier;
    return out;
  }
  const Item& at(size_t i) const { return i < items_.size() ? items_[i] : items_.back(); }
  Item lookahead(bool values) const { return adjust(at(pos_), values); }
  Item consume(bool values) {
    const Item item = adjust(at(pos_), values);
    if (pos_ < items_.size()) ++pos_;
    return item;
  }

  std::optional<std::string> parse_requirement(LabelRequirement* r) {
    std::optional<LabelOperator> op;
    Item t = consume(true);
    if (t.tok == Token::kDoesNotExist) {
      op = LabelOperator::kDoesNotExist;
      t = consume(true);
    }
    if (t.tok != Token::kIdentifier) return "found '" + t.literal + "', expected: identifier";
    // Kubernetes validates the key here with a nil field path, which prints as
    // "<nil>".
    if (auto err = validate_key(t.literal, "<nil>")) return err;
    r->key = t.literal;
    const Token after = lookahead(true).tok;
    if ((after == Token::kEnd || after == Token::kComma) && !op) op = LabelOperator::kExists;
    if (op) {
      r->op = *op;
      return std::nullopt;
    }
    const Item o = consume(false);
    switch (o.tok) {
      case Token::kIn:
        r->op = LabelOperator::kIn;
        break;
      case Token::kEquals:
        r->op = LabelOperator::kEquals;
        break;
      case Token::kDoubleEquals:
        r->op = LabelOperator::kDoubleEquals;
        break;
      case Token::kGreaterThan:
        r->op = LabelOperator::kGreaterThan;
        break;
      case Token::kLessThan:
        r->op = LabelOperator::kLessThan;
        break;
      case Token::kNotIn:
        r->op = LabelOperator::kNotIn;
        break;
      case Token::kNotEquals:
        r->op = LabelOperator::kNotEquals;
        break;
      default:
        return "found '" + o.literal + "', expected: in, notin, =, ==, !=, gt, lt";
    }
    std::set<std::string> values;
    std::optional<std::string> err;
    if (r->op == LabelOperator::kIn || r->op == LabelOperator::kNotIn) {
      err = parse_values(&values);
    } else {
      err = parse_exact_value(&values);
    }
    if (err) return err;
    r->values.assign(values.begin(), values.end());
    const Status st = new_requirement(r->key, r->op, r->values);
    if (!st.ok()) return st.message();
    return std::nullopt;
  }

  std::optional<std::string> parse_values(std::set<std::string>* values) {
    Item t = consume(true);
    if (t.tok != Token::kOpenPar) return "found '" + t.literal + "' expected: '('";
    t = lookahead(true);
    switch (t.tok) {
      case Token::kIdentifier:
      case Token::kComma: {
        if (auto err = parse_identifiers_list(values)) return err;
        if (consume(true).tok != Token::kClosedPar) {
          return "found '" + t.literal + "', expected: ')'";
        }
        return std::nullopt;
      }
      case Token::kClosedPar:
        consume(true);
        values->insert("");
        return std::nullopt;
      default:
        return "found '" + t.literal + "', expected: ',', ')' or identifier";
    }
  }

  std::optional<std::string> parse_identifiers_list(std::set<std::string>* values) {
    for (;;) {
      const Item t = consume(true);
      if (t.tok == Token::kIdentifier) {
        values->insert(t.literal);
        const Item t2 = lookahead(true);
        if (t2.tok == Token::kComma) continue;
        if (t2.tok == Token::kClosedPar) return std::nullopt;
        return "found '" + t2.literal + "', expected: ',' or ')'";
      }
      if (t.tok == Token::kComma) {
        if (values->empty()) values->insert("");
        const Token t2 = lookahead(true).tok;
        if (t2 == Token::kClosedPar) {
          values->insert("");
          return std::nullopt;
        }
        if (t2 == Token::kComma) {
          consume(true);
          values->insert("");
        }
        continue;
      }
      return "found '" + t.literal + "', expected: ',', or identifier";
    }
  }

  std::optional<std::string> parse_exact_value(std::set<std::string>* values) {
    const Token next = lookahead(true).tok;
    if (next == Token::kEnd || next == Token::kComma) {
      values->insert("");
      return std::nullopt;
    }
    const Item t = consume(true);
    if (t.tok == Token::kIdentifier) {
      values->insert(t.literal);
      return std::nullopt;
    }
    return "found '" + t.literal + "', expected: identifier";
  }

  std::vector<Item> items_;
  size_t pos_ = 0;
};

void sort_by_key(std::vector<LabelRequirement>& reqs) {
  std::stable_sort(
      reqs.begin(), reqs.end(),
      [](const LabelRequirement& a, const LabelRequirement& b) { return a.key < b.key; });
}

std::string join_path(std::string_view base, std::string_view child) {
  if (base.empty()) return std::string(child);
  return std::string(base) + "." + std::string(child);
}

StatusCause invalid_cause(const std::string& field, const std::string& printed_value,
                          const std::string& detail) {
  return {"FieldValueInvalid", "Invalid value: " + printed_value + ": " + detail, field};
}

void validate_label_name(const std::string& key, const std::string& field,
                         std::vector<StatusCause>& out) {
  for (const std::string& msg : is_qualified_name(key)) {
    out.push_back(invalid_cause(field, go_quote(key), msg));
  }
}

}  // namespace

bool LabelRequirement::matches(const LabelLookup& lookup) const {
  const std::optional<std::string_view> v = lookup(key);
  const auto has_value = [&](std::string_view x) {
    return std::find(values.begin(), values.end(), x) != values.end();
  };
  switch (op) {
    case LabelOperator::kIn:
    case LabelOperator::kEquals:
    case LabelOperator::kDoubleEquals:
      return v && has_value(*v);
    case LabelOperator::kNotIn:
    case LabelOperator::kNotEquals:
      return !v || !has_value(*v);
    case LabelOperator::kExists:
      return v.has_value();
    case LabelOperator::kDoesNotExist:
      return !v.has_value();
    case LabelOperator::kGreaterThan:
    case LabelOperator::kLessThan: {
      if (!v || values.size() != 1) return false;
      const auto have = parse_int64(*v);
      const auto want = parse_int64(values[0]);
      if (!have || !want) return false;
      return op == LabelOperator::kGreaterThan ? *have > *want : *have < *want;
    }
  }
  return false;
}

std::string LabelRequirement::to_string() const {
  std::string out;
  if (op == LabelOperator::kDoesNotExist) out += '!';
  out += key;
  switch (op) {
    case LabelOperator::kEquals:
      out += "=";
      break;
    case LabelOperator::kDoubleEquals:
      out += "==";
      break;
    case LabelOperator::kNotEquals:
      out += "!=";
      break;
    case LabelOperator::kIn:
      out += " in ";
      break;
    case LabelOperator::kNotIn:
      out += " notin ";
      break;
    case LabelOperator::kGreaterThan:
      out += ">";
      break;
    case LabelOperator::kLessThan:
      out += "<";
      break;
    case LabelOperator::kExists:
    case LabelOperator::kDoesNotExist:
      return out;
  }
  const bool set = op == LabelOperator::kIn || op == LabelOperator::kNotIn;
  if (set) out += '(';
  if (values.size() == 1) {
    out += values[0];
  } else {
    std::vector<std::string> sorted = values;
    std::sort(sorted.begin(), sorted.end());
    out += join(sorted, ",");
  }
  if (set) out += ')';
  return out;
}

LabelSelector LabelSelector::nothing() {
  LabelSelector s;
  s.nothing_ = true;
  return s;
}

Result<LabelSelector> LabelSelector::parse(std::string_view selector) {
  auto parsed = Parser(selector).parse();
  if (auto* err = std::get_if<std::string>(&parsed)) return Status::BadRequest(std::move(*err));
  LabelSelector s;
  s.requirements_ = std::move(std::get<std::vector<LabelRequirement>>(parsed));
  sort_by_key(s.requirements_);
  return s;
}

Result<LabelSelector> LabelSelector::from_json(const json& selector) {
  if (selector.is_null()) return nothing();
  if (!selector.is_object()) return Status::BadRequest("label selector must be an object");
  LabelSelector s;
  if (const auto it = selector.find("matchLabels"); it != selector.end() && !it->is_null()) {
    if (!it->is_object()) return Status::BadRequest("matchLabels must be an object");
    for (const auto& [k, v] : it->items()) {
      if (!v.is_string()) {
        return Status::BadRequest("matchLabels values must be strings (key " + go_quote(k) + ")");
      }
      LabelRequirement r{k, LabelOperator::kEquals, {v.get<std::string>()}};
      if (Status st = new_requirement(r.key, r.op, r.values); !st.ok()) return st;
      s.requirements_.push_back(std::move(r));
    }
  }
  if (const auto it = selector.find("matchExpressions"); it != selector.end() && !it->is_null()) {
    if (!it->is_array()) return Status::BadRequest("matchExpressions must be an array");
    for (const json& expr : *it) {
      if (!expr.is_object()) return Status::BadRequest("matchExpressions items must be objects");
      LabelRequirement r;
      const json key = expr.value("key", json(""));
      const json op = expr.value("operator", json(""));
      if (!key.is_string() || !op.is_string()) {
        return Status::BadRequest("matchExpressions key and operator must be strings");
      }
      r.key = key.get<std::string>();
      const std::string op_name = op.get<std::string>();
      if (op_name == "In") {
        r.op = LabelOperator::kIn;
      } else if (op_name == "NotIn") {
        r.op = LabelOperator::kNotIn;
      } else if (op_name == "Exists") {
        r.op = LabelOperator::kExists;
      } else if (op_name == "DoesNotExist") {
        r.op = LabelOperator::kDoesNotExist;
      } else {
        return Status::BadRequest(go_quote(op_name) + " is not a valid label selector operator");
      }
      if (const auto v = expr.find("values"); v != expr.end() && !v->is_null()) {
        if (!v->is_array()) return Status::BadRequest("matchExpressions values must be an array");
        for (const json& x : *v) {
          if (!x.is_string()) return Status::BadRequest("matchExpressions values must be strings");
          r.values.push_back(x.get<std::string>());
        }
      }
      if (Status st = new_requirement(r.key, r.op, r.values); !st.ok()) return st;
      s.requirements_.push_back(std::move(r));
    }
  }
  sort_by_key(s.requirements_);
  return s;
}

LabelSelector LabelSelector::from_set(const Labels& set) {
  LabelSelector s;
  for (const auto& [k, v] : set) s.requirements_.push_back({k, LabelOperator::kEquals, {v}});
  return s;
}

bool LabelSelector::matches_lookup(const LabelLookup& lookup) const {
  if (nothing_) return false;
  for (const LabelRequirement& r : requirements_) {
    if (!r.matches(lookup)) return false;
  }
  return true;
}

bool LabelSelector::matches(const Labels& labels) const {
  if (nothing_) return false;
  if (requirements_.empty()) return true;
  return matches_lookup([&](std::string_view key) -> std::optional<std::string_view> {
    const auto it = labels.find(std::string(key));
    if (it == labels.end()) return std::nullopt;
    return std::string_view(it->second);
  });
}

bool LabelSelector::matches_json(const json& labels) const {
  if (nothing_) return false;
  if (requirements_.empty()) return true;
  return matches_lookup([&](std::string_view key) -> std::optional<std::string_view> {
    if (!labels.is_object()) return std::nullopt;
    const auto it = labels.find(key);
    if (it == labels.end() || !it->is_string()) return std::nullopt;
    return std::string_view(it->get_ref<const std::string&>());
  });
}

std::string LabelSelector::to_string() const {
  std::string out;
  for (size_t i = 0; i < requirements_.size(); ++i) {
    if (i) out += ',';
    out += requirements_[i].to_string();
  }
  return out;
}

std::optional<std::string> LabelSelector::requires_exact_match(std::string_view key) const {
  for (const LabelRequirement& r : requirements_) {
    if (r.key != key) continue;
    if ((r.op == LabelOperator::kEquals || r.op == LabelOperator::kDoubleEquals ||
         r.op == LabelOperator::kIn) &&
        r.values.size() == 1) {
      return r.values[0];
    }
    return std::nullopt;
  }
  return std::nullopt;
}

std::vector<StatusCause> validate_labels(const json& labels, std::string_view field_path) {
  std::vector<StatusCause> out;
  if (labels.is_null()) return out;
  const std::string field(field_path);
  if (!labels.is_object()) {
    out.push_back(
        invalid_cause(field, labels.dump(), "must be a map of string keys to string values"));
    return out;
  }
  for (const auto& [k, v] : labels.items()) {
    validate_label_name(k, field, out);
    if (!v.is_string()) {
      out.push_back(invalid_cause(field, v.dump(), "label values must be strings"));
      continue;
    }
    const std::string& value = v.get_ref<const std::string&>();
    for (const std::string& msg : is_valid_label_value(value)) {
      out.push_back(invalid_cause(field, go_quote(value), msg));
    }
  }
  return out;
}

std::vector<StatusCause> validate_label_selector(const json& selector,
                                                 std::string_view field_path) {
  std::vector<StatusCause> out;
  if (selector.is_null()) return out;
  const std::string base(field_path);
  if (!selector.is_object()) {
    out.push_back(invalid_cause(base, selector.dump(), "must be a label selector object"));
    return out;
  }
  if (const auto it = selector.find("matchLabels"); it != selector.end()) {
    auto causes = validate_labels(*it, join_path(base, "matchLabels"));
    out.insert(out.end(), causes.begin(), causes.end());
  }
  const auto exprs = selector.find("matchExpressions");
  if (exprs == selector.end() || exprs->is_null()) return out;
  const std::string exprs_path = join_path(base, "matchExpressions");
  if (!exprs->is_array()) {
    out.push_back(invalid_cause(exprs_path, exprs->dump(), "must be a list"));
    return out;
  }
  for (size_t i = 0; i < exprs->size(); ++i) {
    const json& expr = (*exprs)[i];
    const std::string path = exprs_path + "[" + std::to_string(i) + "]";
    if (!expr.is_object()) {
      out.push_back(invalid_cause(path, expr.dump(), "must be an object"));
      continue;
    }
    std::vector<std::string> values;
    bool values_ok = true;
    if (const auto v = expr.find("values"); v != expr.end() && !v->is_null()) {
      if (!v->is_array()) {
        values_ok = false;
      } else {
        for (const json& x : *v) {
          if (x.is_string()) {
            values.push_back(x.get<std::string>());
          } else {
            values_ok = false;
          }
        }
      }
      if (!values_ok) {
        out.push_back(invalid_cause(path + ".values", v->dump(), "must be a list of strings"));
      }
    }
    const json op = expr.value("operator", json(""));
    const std::string op_name = op.is_string() ? op.get<std::string>() : op.dump();
    if (op_name == "In" || op_name == "NotIn") {
      if (values.empty() && values_ok) {
        out.push_back({"FieldValueRequired",
                       "Required value: must be specified when `operator` is "
                       "'In' or 'NotIn'",
                       path + ".values"});
      }
    } else if (op_name == "Exists" || op_name == "DoesNotExist") {
      if (!values.empty()) {
        out.push_back({"FieldValueForbidden",
                       "Forbidden: may not be specified when `operator` is 'Exists' or "
                       "'DoesNotExist'",
                       path + ".values"});
      }
    } else {
      out.push_back(
          invalid_cause(path + ".operator", go_quote(op_name), "not a valid selector operator"));
    }
    const json key = expr.value("key", json(""));
    if (key.is_string()) {
      validate_label_name(key.get<std::string>(), path + ".key", out);
    } else {
      out.push_back(invalid_cause(path + ".key", key.dump(), "must be a string"));
    }
    for (size_t j = 0; j < values.size(); ++j) {
      for (const std::string& msg : is_valid_label_value(values[j])) {
        out.push_back(
            invalid_cause(path + ".values[" + std::to_string(j) + "]", go_quote(values[j]), msg));
      }
    }
  }
  return out;
}

}  // namespace skiff
