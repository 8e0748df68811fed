// Private to apiserver/pki: owning handles for OpenSSL objects, digests, hex, and the parsed-key
// cache. Randomness (random_bytes, new_uuid) is common/random.h's and base64 common/base64.h's.
//
// Every function that fails because of OpenSSL drains the thread's OpenSSL error queue into
// the returned Status, so no stale error is left behind to confuse a later SSL_get_error on
// the same thread.
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "apiserver/pki/pki.h"
#include "common/status.h"

namespace skiff::apiserver::pki {

template <auto Free>
struct OpenSslFree {
  template <typename T>
  void operator()(T* p) const {
    Free(p);
  }
};

using PkeyPtr = std::unique_ptr<EVP_PKEY, OpenSslFree<&EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, OpenSslFree<&X509_free>>;

// A Status carrying `what` and every queued OpenSSL error (the queue is left empty).
Status openssl_error(std::string_view what);
// Drops queued OpenSSL errors after a failure that was expected and handled.
void clear_openssl_errors();

std::string sha256(std::string_view data);
std::string hex_encode(std::string_view bytes);               // lowercase
std::optional<std::string> hex_decode(std::string_view hex);  // either case

// Compares in time that depends only on the lengths (equal lengths) or not at all on the
// contents (different lengths, by comparing digests).
bool constant_time_equal(std::string_view a, std::string_view b);

// PEM <-> OpenSSL objects. Parsers return Internal naming `what` on failure.
Result<PkeyPtr> parse_private_key_pem(std::string_view pem, std::string_view what);
Result<PkeyPtr> parse_public_key_pem(std::string_view pem, std::string_view what);
Result<X509Ptr> parse_certificate_pem(std::string_view pem, std::string_view what);
Result<std::string> private_key_to_pem(EVP_PKEY* key);  // PKCS#8
Result<std::string> public_key_to_pem(EVP_PKEY* key);   // SubjectPublicKeyInfo
Result<std::string> certificate_to_pem(X509* cert);

// A fresh ECDSA P-256 key.
Result<PkeyPtr> generate_ec_key();

// Kubernetes' key id: base64url(SHA-256(DER SubjectPublicKeyInfo)).
Result<std::string> key_id(EVP_PKEY* key);

// The JWS algorithm for a signing key: "ES256" (EC P-256) or "RS256" (RSA >= 2048 bits);
// nullopt for any other key.
std::optional<std::string> jws_algorithm(EVP_PKEY* key);

// The parsed form of a Pki's keys. Constant after construction; EVP_PKEY and X509 are safe to
// use from many threads at once for signing and verifying.
struct PkiKeys {
  PkeyPtr ca_key;
  X509Ptr ca_cert;
  PkeyPtr sa_signing_key;  // private half; null when the Pki has only sa_pub_pem
  PkeyPtr sa_verify_key;   // public half (or the private key, which verifies too)
  std::string sa_alg;      // jws_algorithm(sa_verify_key)
  std::string sa_kid;      // key_id(sa_verify_key)
};

// Parses whatever of pki's CA and SA PEMs are present (a missing one stays null). Returns
// Internal when a present PEM does not parse, sa_key_pem and sa_pub_pem are not one pair, or
// the SA key has no JWS algorithm.
Result<std::shared_ptr<const PkiKeys>> load_keys(const Pki& pki);

}  // namespace skiff::apiserver::pki
