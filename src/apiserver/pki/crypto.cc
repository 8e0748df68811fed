#include "apiserver/pki/crypto.h"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace skiff::apiserver::pki {
namespace {

using BioPtr = std::unique_ptr<BIO, OpenSslFree<&BIO_free>>;

constexpr char kBase64Std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr char kBase64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string base64_encode_with(std::string_view in, const char* alphabet, bool pad) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    uint32_t v = (uint32_t(uint8_t(in[i])) << 16) | (uint32_t(uint8_t(in[i + 1])) << 8) |
                 uint32_t(uint8_t(in[i + 2]));
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  size_t rest = in.size() - i;
  if (rest == 1) {
    uint32_t v = uint32_t(uint8_t(in[i])) << 16;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    if (pad) out += "==";
  } else if (rest == 2) {
    uint32_t v = (uint32_t(uint8_t(in[i])) << 16) | (uint32_t(uint8_t(in[i + 1])) << 8);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    if (pad) out += '=';
  }
  return out;
}

// Decodes unpadded base64 over `alphabet`. Rejects a length of 1 mod 4 (no byte can end
// there) and non-zero unused trailing bits, so every byte string has exactly one encoding.
std::optional<std::string> base64_decode_unpadded(std::string_view in, const char* alphabet) {
  std::array<int8_t, 256> table;
  table.fill(-1);
  for (int i = 0; i < 64; ++i) table[uint8_t(alphabet[i])] = int8_t(i);
  if (in.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(in.size() / 4 * 3 + 2);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int8_t v = table[uint8_t(c)];
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += char((acc >> bits) & 0xff);
    }
  }
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

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

std::string random_bytes(size_t n) {
  std::string out(n, '\0');
  if (n > 0 && RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), int(n)) != 1) {
    // No key, serial, secret or jti may be made from a failed RNG; see the header.
    std::fputs("skiff: the OpenSSL random number generator failed\n", stderr);
    std::abort();
  }
  return out;
}

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

std::string base64_encode(std::string_view bytes) {
  return base64_encode_with(bytes, kBase64Std, true);
}

std::string base64url_encode(std::string_view bytes) {
  return base64_encode_with(bytes, kBase64Url, false);
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  size_t pad = 0;
  while (pad < 2 && pad < text.size() && text[text.size() - 1 - pad] == '=') ++pad;
  return base64_decode_unpadded(text.substr(0, text.size() - pad), kBase64Std);
}

std::optional<std::string> base64url_decode(std::string_view text) {
  return base64_decode_unpadded(text, kBase64Url);
}

std::string random_uuid() {
  std::string b = random_bytes(16);
  b[6] = char((uint8_t(b[6]) & 0x0f) | 0x40);  // version 4
  b[8] = char((uint8_t(b[8]) & 0x3f) | 0x80);  // RFC 4122 variant
  std::string h = hex_encode(b);
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
         "-" + h.substr(20);
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
