// Base64 as Go's encoding/base64 does it, which is what Kubernetes uses for
// Secret `data` values and other []byte fields in JSON.
//
// All functions are pure and thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace skiff {

// Standard alphabet with padding (RFC 4648 section 4), as
// base64.StdEncoding.EncodeToString.
std::string base64_encode(std::string_view bytes);

// Decodes standard, padded base64 as base64.StdEncoding.DecodeString: '\r' and
// '\n' anywhere are ignored, padding is required, and unused trailing bits need
// not be zero. Errors are BadRequest with Go's wording, "illegal base64 data at
// input byte N", where N is the offset of the first byte that cannot be decoded
// (the input length when the input ends early).
Result<std::string> base64_decode(std::string_view text);

// URL-safe alphabet without padding (RFC 4648 section 5), as
// base64.RawURLEncoding; used by JWTs.
std::string base64url_encode(std::string_view bytes);
Result<std::string> base64url_decode(std::string_view text);

// Decoders for credentials (JWS segments, tokens), where every byte string must
// have exactly one accepted encoding: as above, and as Go's Encoding.Strict()
// (unused trailing bits must be zero), and also no '\r' or '\n' anywhere.
// Errors are the same BadRequest "illegal base64 data at input byte N".
Result<std::string> base64_decode_strict(std::string_view text);
Result<std::string> base64url_decode_strict(std::string_view text);

}  // namespace skiff
