// Randomness for identifiers and secrets, from the kernel's CSPRNG
// (getrandom(2)).
//
// Everything here is thread-safe and suitable for security-relevant values
// (bootstrap and service-account tokens, TLS serials, metadata.uid). There is
// no seeding and no state to share. If the kernel cannot supply random bytes
// the process aborts: continuing would hand out guessable identifiers and
// tokens.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace skiff {

// Fills out[0..n) with random bytes.
void fill_random(void* out, size_t n);
// n random bytes.
std::string random_bytes(size_t n);
// A uniformly distributed value in [0, bound); 0 when bound is 0.
uint64_t random_below(uint64_t bound);

// An RFC 4122 version 4 UUID, lowercase: "3f1c2b9e-8a4d-4f6b-9c3e-1a2b3c4d5e6f"
// (metadata.uid).
std::string new_uuid();

// n characters drawn uniformly from `alphabet` ("" if the alphabet is empty).
std::string random_string(size_t n, std::string_view alphabet);
// 2*n lowercase hex characters from n random bytes.
std::string random_hex(size_t n);

// k8s.io/apimachinery/pkg/util/rand's alphabet: no vowels (no accidental words)
// and no look-alike characters.
inline constexpr std::string_view kNameSuffixAlphabet = "bcdfghjklmnpqrstvwxz2456789";
// The 5-character suffix Kubernetes appends for metadata.generateName
// ("web-7d9f4").
std::string generate_name_suffix();
// names.SimpleNameGenerator: `base` cut to 58 characters, plus the 5-character
// suffix, so the result fits a 63-character DNS label.
std::string generate_name(std::string_view base);

}  // namespace skiff
