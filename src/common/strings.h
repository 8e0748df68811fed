// String helpers shared by the common layer and the layers above it:
// Go-compatible quoting (for messages that must read exactly like Kubernetes'
// `%q`), UTF-8 validation, and ASCII case and whitespace handling.
//
// All functions are pure and thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace skiff {

// Quotes `s` as Go's strconv.Quote (and fmt's %q) does: double quotes, `\"` and
// `\\`,
// `\a \b \f \n \r \t \v`, `\xNN` for other ASCII control bytes and for bytes
// that are not valid UTF-8, `\uNNNN` / `\UNNNNNNNN` for non-printable code
// points; printable UTF-8 is kept as is. Printability of non-ASCII code points
// follows Go's unicode.IsPrint for the common cases (C1 controls, format
// characters, non-ASCII spaces, private use); rarer unassigned code points are
// kept as is.
std::string go_quote(std::string_view s);

// Decodes one UTF-8 sequence at the start of `s`. Returns the code point and
// sets `*len` to the number of bytes consumed. For invalid or truncated input
// (including overlong forms, surrogates and values above U+10FFFF) returns -1
// and sets `*len` to 1, as Go's utf8.DecodeRune does. REQUIRES: !s.empty().
int32_t decode_utf8(std::string_view s, size_t* len);

// Appends the UTF-8 encoding of code point `cp` (U+FFFD for invalid code
// points).
void append_utf8(std::string& out, int32_t cp);

// Index of the first byte that is not part of valid UTF-8, or npos if `s` is
// valid UTF-8.
size_t find_invalid_utf8(std::string_view s);

// Returns `s` with every byte that is not part of valid UTF-8 replaced by
// U+FFFD, as Go's JSON decoder does inside strings.
std::string replace_invalid_utf8(std::string_view s);

// `s` with ASCII letters lowercased and every other byte kept, as Go's
// strings.ToLower does for ASCII text.
std::string ascii_lower(std::string_view s);

// `s` without leading and trailing ASCII whitespace (" \t\n\v\f\r"), as Go's
// strings.TrimSpace does for ASCII text.
std::string_view trim_space(std::string_view s);

}  // namespace skiff
