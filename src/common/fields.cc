#include "common/fields.h"

#include <algorithm>

#include "common/strings.h"

namespace skiff {
namespace {

// fields.splitTerms: split on commas that are not escaped; the escapes stay in
// the terms.
std::vector<std::string_view> split_terms(std::string_view selector) {
  std::vector<std::string_view> terms;
  if (selector.empty()) return terms;
  size_t start = 0;
  bool in_slash = false;
  for (size_t i = 0; i < selector.size(); ++i) {
    const char c = selector[i];
    if (in_slash) {
      in_slash = false;
    } else if (c == '\\') {
      in_slash = true;
    } else if (c == ',') {
      terms.push_back(selector.substr(start, i - start));
      start = i + 1;
    }
  }
  terms.push_back(selector.substr(start));
  return terms;
}

// fields.splitTerm: the first "!=", "==" or "=" splits the term (field names
// cannot escape).
bool split_term(std::string_view term, std::string_view* lhs, std::string_view* op,
                std::string_view* rhs) {
  static constexpr std::string_view kOperators[] = {"!=", "==", "="};
  for (size_t i = 0; i < term.size(); ++i) {
    for (const std::string_view o : kOperators) {
      if (term.substr(i, o.size()) == o) {
        *lhs = term.substr(0, i);
        *op = o;
        *rhs = term.substr(i + o.size());
        return true;
      }
    }
  }
  return false;
}

}  // namespace

std::string escape_field_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    if (c == '\\' || c == ',' || c == '=') out += '\\';
    out += c;
  }
  return out;
}

Result<std::string> unescape_field_value(std::string_view value) {
  if (value.find_first_of("\\,=") == std::string_view::npos) return std::string(value);
  std::string out;
  out.reserve(value.size());
  bool in_slash = false;
  size_t i = 0;
  while (i < value.size()) {
    size_t len;
    const int32_t r = decode_utf8(value.substr(i), &len);
    const int32_t rune = r < 0 ? 0xFFFD : r;
    if (in_slash) {
      if (rune == '\\' || rune == ',' || rune == '=') {
        out += static_cast<char>(rune);
      } else {
        std::string sequence = "\\";
        append_utf8(sequence, rune);
        return Status::BadRequest("invalid field selector: invalid escape sequence: " + sequence);
      }
      in_slash = false;
    } else if (rune == '\\') {
      in_slash = true;
    } else if (rune == ',' || rune == '=') {
      return Status::BadRequest("invalid field selector: unescaped character in value: " +
                                std::to_string(rune));
    } else {
      out.append(value.substr(i, len));
    }
    i += len;
  }
  if (in_slash) return Status::BadRequest("invalid field selector: invalid escape sequence: \\");
  return out;
}

std::string FieldRequirement::to_string() const {
  return field + (op == Op::kEquals ? "=" : "!=") + escape_field_value(value);
}

Result<FieldSelector> FieldSelector::parse(std::string_view selector) {
  std::vector<std::string_view> parts = split_terms(selector);
  std::sort(parts.begin(), parts.end());
  FieldSelector s;
  for (const std::string_view part : parts) {
    if (part.empty()) continue;
    std::string_view lhs, op, rhs;
    if (!split_term(part, &lhs, &op, &rhs)) {
      return Status::BadRequest("invalid selector: '" + std::string(selector) +
                                "'; can't understand '" + std::string(part) + "'");
    }
    auto value = unescape_field_value(rhs);
    if (!value.ok()) return value.status();
    // Kubernetes drops a term whose field and value are both empty ("=").
    if (lhs.empty() && value->empty()) continue;
    FieldRequirement r;
    r.field = std::string(lhs);
    r.op = op == "!=" ? FieldRequirement::Op::kNotEquals : FieldRequirement::Op::kEquals;
    r.value = std::move(value.value());
    s.requirements_.push_back(std::move(r));
  }
  return s;
}

bool FieldSelector::matches(const FieldLookup& lookup) const {
  for (const FieldRequirement& r : requirements_) {
    const std::string actual = lookup(r.field).value_or("");
    const bool equal = actual == r.value;
    if (equal != (r.op == FieldRequirement::Op::kEquals)) return false;
  }
  return true;
}

std::string FieldSelector::to_string() const {
  std::string out;
  for (size_t i = 0; i < requirements_.size(); ++i) {
    if (i) out += ',';
    out += requirements_[i].to_string();
  }
  return out;
}

std::optional<std::string> FieldSelector::requires_exact_match(std::string_view field) const {
  for (const FieldRequirement& r : requirements_) {
    if (r.field == field && r.op == FieldRequirement::Op::kEquals) return r.value;
  }
  return std::nullopt;
}

Status FieldSelector::check_supported(const std::vector<std::string>& supported) const {
  for (const FieldRequirement& r : requirements_) {
    if (std::find(supported.begin(), supported.end(), r.field) != supported.end()) continue;
    std::string message = go_quote(r.field) + " is not a known field selector: only ";
    for (size_t i = 0; i < supported.size(); ++i) {
      if (i) message += ", ";
      message += go_quote(supported[i]);
    }
    return Status::BadRequest(std::move(message));
  }
  return Status::Ok();
}

}  // namespace skiff
