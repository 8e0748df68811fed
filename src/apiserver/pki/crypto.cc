#include "apiserver/pki/crypto.h"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "common/base64.h"

namespace skiff::apiserver::pki {
namespace {

using BioPtr = std::unique_ptr<BIO, OpenSslFree<&BIO_free>>;

}  // namespace

Status openssl_error(std::string_view what) {
  std::string msg(what);
  bool first = true;
  while (unsigned long code = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof(buf));
    msg += first ? ": " : "; ";
    msg += buf;
    first = false;
  }
  return Status::Internal(std::move(msg));
}

void clear_openssl_errors() { ERR_clear_error(); }

std::string sha256(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr) != 1) {
    // SHA-256 from the default provider cannot fail on valid arguments; a failure means the
    // library itself is unusable.
    std::fputs("skiff: OpenSSL SHA-256 failed\n", stderr);
    std::abort();
  }
  return std::string(reinterpret_cast<char*>(md), len);
}

std::string hex_encode(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) {
    out += kDigits[uint8_t(c) >> 4];
    out += kDigits[uint8_t(c) & 15];
  }
  return out;
}

std::optional<std::string> hex_decode(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = nibble(hex[i]);
    int lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += char((hi << 4) | lo);
  }
  return out;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    // Compare digests so that the time taken reveals nothing about where the inputs differ.
    std::string da = sha256(a);
    std::string db = sha256(b);
    (void)CRYPTO_memcmp(da.data(), db.data(), da.size());
    return false;
  }
  return a.empty() || CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

namespace {

// A read-only memory BIO over `pem`; BIO_new_mem_buf takes an int length.
Result<BioPtr> memory_bio(std::string_view pem, std::string_view what) {
  if (pem.size() > (1u << 30)) return Status::Internal(std::string(what) + ": too large");
  BioPtr bio(BIO_new_mem_buf(pem.data(), int(pem.size())));
  if (!bio) return openssl_error(what);
  return bio;
}

Result<std::string> bio_contents(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  if (len < 0 || (len > 0 && data == nullptr)) return openssl_error("reading a memory BIO");
  return std::string(data, size_t(len));
}

}  // namespace

Result<PkeyPtr> parse_private_key_pem(std::string_view pem, std::string_view what) {
  auto bio = memory_bio(pem, what);
  if (!bio.ok()) return bio.status();
  PkeyPtr key(PEM_read_bio_PrivateKey(bio->get(), nullptr, nullptr, nullptr));
  if (!key) return openssl_error(std::string(what) + ": not a PEM private key");
  return key;
}

Result<PkeyPtr> parse_public_key_pem(std::string_view pem, std::string_view what) {
  auto bio = memory_bio(pem, what);
  if (!bio.ok()) return bio.status();
  PkeyPtr key(PEM_read_bio_PUBKEY(bio->get(), nullptr, nullptr, nullptr));
  if (!key) return openssl_error(std::string(what) + ": not a PEM public key");
  return key;
}

Result<X509Ptr> parse_certificate_pem(std::string_view pem, std::string_view what) {
  auto bio = memory_bio(pem, what);
  if (!bio.ok()) return bio.status();
  X509Ptr cert(PEM_read_bio_X509(bio->get(), nullptr, nullptr, nullptr));
  if (!cert) return openssl_error(std::string(what) + ": not a PEM certificate");
  return cert;
}

Result<std::string> private_key_to_pem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1)
    return openssl_error("encoding a private key");
  return bio_contents(bio.get());
}

Result<std::string> public_key_to_pem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), key) != 1)
    return openssl_error("encoding a public key");
  return bio_contents(bio.get());
}

Result<std::string> certificate_to_pem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1)
    return openssl_error("encoding a certificate");
  return bio_contents(bio.get());
}

Result<PkeyPtr> generate_ec_key() {
  PkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return openssl_error("generating an ECDSA P-256 key");
  return key;
}

Result<std::string> key_id(EVP_PKEY* key) {
  unsigned char* der = nullptr;
  int len = i2d_PUBKEY(key, &der);
  if (len <= 0) return openssl_error("encoding a public key as DER");
  std::string digest = sha256(std::string_view(reinterpret_cast<char*>(der), size_t(len)));
  OPENSSL_free(der);
  return base64url_encode(digest);
}

std::optional<std::string> jws_algorithm(EVP_PKEY* key) {
  if (EVP_PKEY_is_a(key, "EC")) {
    char group[64] = {};
    size_t len = 0;
    if (EVP_PKEY_get_group_name(key, group, sizeof(group), &len) != 1) {
      clear_openssl_errors();
      return std::nullopt;
    }
    std::string_view name(group, len);
    if (name == "prime256v1" || name == "P-256") return "ES256";
    return std::nullopt;
  }
  if (EVP_PKEY_is_a(key, "RSA") && EVP_PKEY_get_bits(key) >= 2048) return "RS256";
  return std::nullopt;
}

Result<std::shared_ptr<const PkiKeys>> load_keys(const Pki& pki) {
  auto keys = std::make_shared<PkiKeys>();
  if (!pki.ca_key_pem.empty()) {
    auto k = parse_private_key_pem(pki.ca_key_pem, "CA key");
    if (!k.ok()) return k.status();
    keys->ca_key = std::move(*k);
  }
  if (!pki.ca_cert_pem.empty()) {
    auto c = parse_certificate_pem(pki.ca_cert_pem, "CA certificate");
    if (!c.ok()) return c.status();
    keys->ca_cert = std::move(*c);
  }
  if (!pki.sa_key_pem.empty()) {
    auto k = parse_private_key_pem(pki.sa_key_pem, "service-account key");
    if (!k.ok()) return k.status();
    keys->sa_signing_key = std::move(*k);
  }
  if (!pki.sa_pub_pem.empty()) {
    auto k = parse_public_key_pem(pki.sa_pub_pem, "service-account public key");
    if (!k.ok()) return k.status();
    keys->sa_verify_key = std::move(*k);
    if (keys->sa_signing_key &&
        EVP_PKEY_eq(keys->sa_signing_key.get(), keys->sa_verify_key.get()) != 1) {
      clear_openssl_errors();
      return Status::Internal("the service-account public key does not match its private key");
    }
  } else if (keys->sa_signing_key) {
    if (EVP_PKEY_up_ref(keys->sa_signing_key.get()) != 1)
      return openssl_error("referencing the service-account key");
    keys->sa_verify_key.reset(keys->sa_signing_key.get());
  }
  if (keys->sa_verify_key) {
    auto alg = jws_algorithm(keys->sa_verify_key.get());
    if (!alg) {
      return Status::Internal(
          "the service-account key is neither ECDSA P-256 nor RSA of at least 2048 bits");
    }
    keys->sa_alg = *alg;
    auto kid = key_id(keys->sa_verify_key.get());
    if (!kid.ok()) return kid.status();
    keys->sa_kid = std::move(*kid);
  }
  return std::shared_ptr<const PkiKeys>(std::move(keys));
}

}  // namespace skiff::apiserver::pki
