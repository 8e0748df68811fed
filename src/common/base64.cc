#include "common/base64.h"

#include <array>
#include <cstdint>
#include <optional>

namespace skiff {
namespace {

constexpr char kStdAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr char kUrlAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr uint8_t kInvalid = 0xFF;

using DecodeMap = std::array<uint8_t, 256>;

constexpr DecodeMap make_decode_map(const char* alphabet) {
  DecodeMap m{};
  for (auto& v : m) v = kInvalid;
  for (int i = 0; i < 64; ++i) m[static_cast<unsigned char>(alphabet[i])] = static_cast<uint8_t>(i);
  return m;
}

constexpr DecodeMap kStdMap = make_decode_map(kStdAlphabet);
constexpr DecodeMap kUrlMap = make_decode_map(kUrlAlphabet);

std::string encode(std::string_view in, const char* alphabet, bool pad) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    const uint32_t v = static_cast<uint32_t>(static_cast<unsigned char>(in[i])) << 16 |
                       static_cast<uint32_t>(static_cast<unsigned char>(in[i + 1])) << 8 |
                       static_cast<uint32_t>(static_cast<unsigned char>(in[i + 2]));
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  const size_t rest = in.size() - i;
  if (rest > 0) {
    uint32_t v = static_cast<uint32_t>(static_cast<unsigned char>(in[i])) << 16;
    if (rest == 2) v |= static_cast<uint32_t>(static_cast<unsigned char>(in[i + 1])) << 8;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    if (rest == 2) {
      out += alphabet[(v >> 6) & 63];
    } else if (pad) {
      out += '=';
    }
    if (pad) out += '=';
  }
  return out;
}

Status corrupt(size_t at) {
  return Status::BadRequest("illegal base64 data at input byte " + std::to_string(at));
}

bool is_newline(char c) { return c == '\n' || c == '\r'; }

// A port of Go's Encoding.Decode/decodeQuantum, so that the accepted inputs and
// the reported offsets are the same. `strict` is Go's Strict() plus newlines
// counted as illegal bytes.
Result<std::string> decode(std::string_view src, const DecodeMap& map, bool padded, bool strict) {
  const auto skippable = [strict](char c) { return !strict && is_newline(c); };
  std::string out;
  out.reserve(src.size() / 4 * 3 + 3);
  size_t si = 0;
  for (;;) {
    uint8_t dbuf[4] = {0, 0, 0, 0};
    int dlen = 4;
    bool done = false;
    std::optional<size_t> trailing_error;
    for (int j = 0; j < 4; ++j) {
      if (si == src.size()) {
        if (j == 0) return out;
        if (j == 1 || padded) return corrupt(si - static_cast<size_t>(j));
        dlen = j;
        done = true;
        break;
      }
      const char in = src[si++];
      const uint8_t v = map[static_cast<unsigned char>(in)];
      if (v != kInvalid) {
        dbuf[j] = v;
        continue;
      }
      if (skippable(in)) {
        --j;
        continue;
      }
      if (!padded || in != '=') return corrupt(si - 1);
      // Padding: only after two or three data characters.
      if (j == 0 || j == 1) return corrupt(si - 1);
      if (j == 2) {
        while (si < src.size() && skippable(src[si])) ++si;
        if (si == src.size()) return corrupt(src.size());
        if (src[si] != '=') return corrupt(si - 1);
        ++si;
      }
      while (si < src.size() && skippable(src[si])) ++si;
      if (si < src.size()) trailing_error = si;
      dlen = j;
      done = true;
      break;
    }
    const uint32_t val = static_cast<uint32_t>(dbuf[0]) << 18 |
                         static_cast<uint32_t>(dbuf[1]) << 12 |
                         static_cast<uint32_t>(dbuf[2]) << 6 | static_cast<uint32_t>(dbuf[3]);
    // Strict: the bits of a partial quantum that no output byte uses must be zero.
    if (strict && dlen == 3 && (val & 0xFF) != 0) return corrupt(si - 1);
    if (strict && dlen == 2 && (val & 0xFFFF) != 0) return corrupt(si - 2);
    const char bytes[3] = {static_cast<char>(val >> 16), static_cast<char>(val >> 8),
                           static_cast<char>(val)};
    out.append(bytes, static_cast<size_t>(dlen - 1));
    if (trailing_error) return corrupt(*trailing_error);
    if (done) return out;
  }
}

}  // namespace

std::string base64_encode(std::string_view bytes) { return encode(bytes, kStdAlphabet, true); }

Result<std::string> base64_decode(std::string_view text) {
  return decode(text, kStdMap, true, false);
}

std::string base64url_encode(std::string_view bytes) { return encode(bytes, kUrlAlphabet, false); }

Result<std::string> base64url_decode(std::string_view text) {
  return decode(text, kUrlMap, false, false);
}

Result<std::string> base64_decode_strict(std::string_view text) {
  return decode(text, kStdMap, true, true);
}

Result<std::string> base64url_decode_strict(std::string_view text) {
  return decode(text, kUrlMap, false, true);
}

}  // namespace skiff
