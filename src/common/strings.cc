#include "common/strings.h"

#include <cstring>

namespace skiff {
namespace {

constexpr char kHex[] = "0123456789abcdef";

// Go's unicode.IsPrint for code points >= 0x80, restricted to the ranges that
// appear in practice: C1 controls, non-ASCII spaces, format and bidi controls,
// private use and non-characters.
bool is_print_non_ascii(int32_t r) {
  if (r < 0xA0) return false;                      // C1 controls
  if (r == 0xA0 || r == 0xAD) return false;        // no-break space, soft hyphen
  if (r == 0x061C || r == 0x180E) return false;    // Arabic letter mark, Mongolian vowel separator
  if (r == 0x1680) return false;                   // Ogham space mark
  if (r >= 0x2000 && r <= 0x200F) return false;    // spaces, zero-width and direction marks
  if (r >= 0x2028 && r <= 0x202F) return false;    // separators, bidi embedding, narrow nbsp
  if (r >= 0x205F && r <= 0x206F) return false;    // math space, invisible operators
  if (r == 0x3000) return false;                   // ideographic space
  if (r >= 0xD800 && r <= 0xDFFF) return false;    // surrogates
  if (r >= 0xE000 && r <= 0xF8FF) return false;    // private use
  if (r == 0xFEFF) return false;                   // byte order mark
  if (r >= 0xFFF0 && r <= 0xFFFB) return false;    // unassigned, interlinear annotation
  if ((r & 0xFFFE) == 0xFFFE) return false;        // non-characters U+xxFFFE/U+xxFFFF
  if (r >= 0xE0000 && r <= 0xE007F) return false;  // tags
  if (r >= 0xF0000) return false;                  // supplementary private use
  return true;
}

void append_hex_escape(std::string& out, char kind, uint32_t v, int digits) {
  out += '\\';
  out += kind;
  for (int shift = (digits - 1) * 4; shift >= 0; shift -= 4) out += kHex[(v >> shift) & 0xF];
}

}  // namespace

int32_t decode_utf8(std::string_view s, size_t* len) {
  const auto b0 = static_cast<unsigned char>(s[0]);
  *len = 1;
  if (b0 < 0x80) return b0;
  int need;
  int32_t cp;
  int32_t min;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1, cp = b0 & 0x1F, min = 0x80;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2, cp = b0 & 0x0F, min = 0x800;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3, cp = b0 & 0x07, min = 0x10000;
  } else {
    return -1;
  }
  if (s.size() < static_cast<size_t>(need) + 1) return -1;
  for (int i = 1; i <= need; ++i) {
    const auto b = static_cast<unsigned char>(s[i]);
    if ((b & 0xC0) != 0x80) return -1;
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return -1;
  *len = static_cast<size_t>(need) + 1;
  return cp;
}

void append_utf8(std::string& out, int32_t cp) {
  if (cp < 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

size_t find_invalid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    // Eight ASCII bytes at a time: most text is ASCII.
    while (i + 8 <= s.size()) {
      uint64_t word;
      std::memcpy(&word, s.data() + i, sizeof(word));
      if ((word & 0x8080808080808080ULL) != 0) break;
      i += 8;
    }
    if (i >= s.size()) break;
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    if (decode_utf8(s.substr(i), &len) < 0) return i;
    i += len;
  }
  return std::string_view::npos;
}

std::string replace_invalid_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 8);
  size_t i = 0;
  while (i < s.size()) {
    size_t len;
    const int32_t cp = decode_utf8(s.substr(i), &len);
    if (cp < 0) {
      append_utf8(out, 0xFFFD);
    } else {
      out.append(s.substr(i, len));
    }
    i += len;
  }
  return out;
}

std::string go_quote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '"';
  size_t i = 0;
  while (i < s.size()) {
    size_t len;
    const int32_t r = decode_utf8(s.substr(i), &len);
    if (r < 0) {
      append_hex_escape(out, 'x', static_cast<unsigned char>(s[i]), 2);
      i += len;
      continue;
    }
    i += len;
    if (r == '"' || r == '\\') {
      out += '\\';
      out += static_cast<char>(r);
    } else if (r >= 0x20 && r < 0x7F) {
      out += static_cast<char>(r);
    } else if (r >= 0x80 && is_print_non_ascii(r)) {
      append_utf8(out, r);
    } else {
      switch (r) {
        case '\a':
          out += "\\a";
          break;
        case '\b':
          out += "\\b";
          break;
        case '\f':
          out += "\\f";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        case '\v':
          out += "\\v";
          break;
        default:
          if (r < 0x80) {
            append_hex_escape(out, 'x', static_cast<uint32_t>(r), 2);
          } else if (r < 0x10000) {
            append_hex_escape(out, 'u', static_cast<uint32_t>(r), 4);
          } else {
            append_hex_escape(out, 'U', static_cast<uint32_t>(r), 8);
          }
      }
    }
  }
  out += '"';
  return out;
}

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string_view trim_space(std::string_view s) {
  constexpr std::string_view kSpace = " \t\n\v\f\r";
  const size_t first = s.find_first_not_of(kSpace);
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(kSpace) - first + 1);
}

}  // namespace skiff
