// Private to apiserver/pki: building, signing and inspecting X.509 certificates.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "apiserver/pki/crypto.h"
#include "common/status.h"

namespace skiff::apiserver::pki {

inline constexpr int64_t kCaValiditySeconds = 10LL * 365 * 24 * 3600;
inline constexpr int64_t kLeafValiditySeconds = 365LL * 24 * 3600;
// A leaf certificate this close to expiry is re-issued at start-up, as K3s does.
inline constexpr int64_t kRenewBeforeSeconds = 90LL * 24 * 3600;
// notBefore is backdated by this much, so that a machine whose clock is slightly behind
// still accepts a certificate issued a moment ago.
inline constexpr int64_t kBackdateSeconds = 5 * 60;
// Largest certificate accepted from a client (real ones are a few kilobytes).
inline constexpr size_t kMaxCertificateBytes = 64 * 1024;

struct SubjectAltName {
  enum class Kind { kDns, kIp };
  Kind kind = Kind::kDns;
  std::string value;  // DNS: lowercase name; IP: canonical text (inet_ntop)
  std::string bytes;  // IP only: 4 or 16 network-order bytes

  // "DNS:<name>" or "IP:<address>", for messages.
  std::string to_string() const;
  bool operator==(const SubjectAltName& o) const { return kind == o.kind && value == o.value; }
};

// Classifies one --tls-san style entry: an IPv4 or IPv6 address (optionally in brackets) is
// an IP, anything else must be a DNS name (letters, digits, '-', '_', dot-separated labels
// of at most 63, at most 253 in all, optionally "*." in front). Surrounding whitespace is
// ignored. Returns Invalid otherwise.
Result<SubjectAltName> classify_san(std::string_view entry);

// The DNS and IP subject alternative names of a certificate, in certificate order.
std::vector<SubjectAltName> certificate_sans(X509* cert);

// Whether two SAN lists hold the same set of names (order and duplicates ignored).
bool same_san_set(const std::vector<SubjectAltName>& a, const std::vector<SubjectAltName>& b);

// Whether a subject name value is fit for a certificate: non-empty, at most 1024 bytes of
// valid UTF-8 without control characters.
bool valid_name_value(std::string_view value);

struct CertificateSpec {
  std::string common_name;
  std::vector<std::string> organizations;
  std::vector<SubjectAltName> sans;
  bool is_ca = false;
  bool client_auth = false;
  bool server_auth = false;
  int64_t not_before = 0;  // seconds since the epoch
  int64_t not_after = 0;
};

// Builds and signs a certificate for `subject_key`. With a null issuer the certificate is
// self-signed (issuer_key must then be subject_key's private key). The serial number is 16
// random bytes, made positive. REQUIRES: every name value passed valid_name_value.
Result<X509Ptr> sign_certificate(const CertificateSpec& spec, EVP_PKEY* subject_key, X509* issuer,
                                 EVP_PKEY* issuer_key);

// Whether an existing leaf can be kept: it matches `key`, was issued and signed by `ca`, and
// is valid at `now` until at least now + kRenewBeforeSeconds.
bool leaf_reusable(X509* cert, EVP_PKEY* key, X509* ca, int64_t now);

}  // namespace skiff::apiserver::pki
