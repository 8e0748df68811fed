#include "apiserver/pki/certificates.h"

#include <arpa/inet.h>
#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <set>
#include <utility>

#include "common/random.h"
#include "common/strings.h"

namespace skiff::apiserver::pki {
namespace {

using BignumPtr = std::unique_ptr<BIGNUM, OpenSslFree<&BN_free>>;
using GeneralNamePtr = std::unique_ptr<GENERAL_NAME, OpenSslFree<&GENERAL_NAME_free>>;
using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, OpenSslFree<&GENERAL_NAMES_free>>;
using ExtensionPtr = std::unique_ptr<X509_EXTENSION, OpenSslFree<&X509_EXTENSION_free>>;
using BioPtr = std::unique_ptr<BIO, OpenSslFree<&BIO_free>>;

// RFC 3629 UTF-8, rejecting overlong forms, surrogates and code points above U+10FFFF.
bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    uint8_t c = uint8_t(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    int extra;
    uint32_t cp;
    if ((c & 0xe0) == 0xc0) {
      extra = 1;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      extra = 2;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (s.size() - i <= size_t(extra)) return false;  // truncated sequence
    for (int k = 1; k <= extra; ++k) {
      uint8_t cc = uint8_t(s[i + size_t(k)]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[extra] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += size_t(extra) + 1;
  }
  return true;
}

bool valid_dns_name(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  size_t start = 0;
  bool first = true;
  while (true) {
    size_t dot = name.find('.', start);
    std::string_view label =
        name.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (first && label == "*") {
      // A wildcard must be followed by at least one more label.
      if (dot == std::string_view::npos) return false;
    } else {
      if (label.empty() || label.size() > 63) return false;
      if (label.front() == '-' || label.back() == '-') return false;
      for (char c : label) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
        if (!ok) return false;
      }
    }
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
    first = false;
  }
}

// Converts one subject name entry to UTF-8; nullopt when it cannot be or holds a control
// character (which a real identity never has and a log or header must never receive).
std::optional<std::string> entry_utf8(X509_NAME_ENTRY* entry) {
  unsigned char* out = nullptr;
  int len = ASN1_STRING_to_UTF8(&out, X509_NAME_ENTRY_get_data(entry));
  if (len < 0) {
    clear_openssl_errors();
    return std::nullopt;
  }
  std::string value(reinterpret_cast<char*>(out), size_t(len));
  OPENSSL_free(out);
  if (!valid_name_value(value)) return std::nullopt;
  return value;
}

Result<UserInfo> user_from_x509(const X509* cert) {
  if (cert == nullptr) return Status::Unauthorized("no client certificate");
  const X509_NAME* subject = X509_get_subject_name(cert);
  UserInfo user;
  int count = X509_NAME_entry_count(subject);
  bool have_cn = false;
  for (int i = 0; i < count; ++i) {
    X509_NAME_ENTRY* entry = X509_NAME_get_entry(subject, i);
    int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(entry));
    if (nid != NID_commonName && nid != NID_organizationName) continue;
    auto value = entry_utf8(entry);
    if (!value) return Status::Unauthorized("client certificate subject is not valid UTF-8 text");
    if (nid == NID_commonName) {
      // Two CNs would make the user ambiguous; a certificate from this CA never has them.
      if (have_cn) return Status::Unauthorized("client certificate has more than one CN");
      user.name = std::move(*value);
      have_cn = true;
    } else {
      user.groups.push_back(std::move(*value));
    }
  }
  if (!have_cn) return Status::Unauthorized("client certificate has no CN");
  return user;
}

Status add_extension(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
  ExtensionPtr ext(X509V3_EXT_nconf_nid(nullptr, ctx, nid, value));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1)
    return openssl_error(std::string("adding certificate extension ") + OBJ_nid2sn(nid));
  return Status::Ok();
}

Status add_sans(X509* cert, const std::vector<SubjectAltName>& sans) {
  GeneralNamesPtr names(sk_GENERAL_NAME_new_null());
  if (!names) return openssl_error("allocating subjectAltName");
  for (const SubjectAltName& san : sans) {
    GeneralNamePtr name(GENERAL_NAME_new());
    if (!name) return openssl_error("allocating subjectAltName");
    if (san.kind == SubjectAltName::Kind::kDns) {
      ASN1_IA5STRING* s = ASN1_IA5STRING_new();
      if (!s || ASN1_STRING_set(s, san.value.data(), int(san.value.size())) != 1) {
        ASN1_IA5STRING_free(s);
        return openssl_error("encoding subjectAltName");
      }
      GENERAL_NAME_set0_value(name.get(), GEN_DNS, s);
    } else {
      ASN1_OCTET_STRING* s = ASN1_OCTET_STRING_new();
      if (!s || ASN1_OCTET_STRING_set(s, reinterpret_cast<const unsigned char*>(san.bytes.data()),
                                      int(san.bytes.size())) != 1) {
        ASN1_OCTET_STRING_free(s);
        return openssl_error("encoding subjectAltName");
      }
      GENERAL_NAME_set0_value(name.get(), GEN_IPADD, s);
    }
    if (sk_GENERAL_NAME_push(names.get(), name.get()) <= 0)
      return openssl_error("encoding subjectAltName");
    (void)name.release();  // owned by `names` now
  }
  if (X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT) != 1)
    return openssl_error("adding subjectAltName");
  return Status::Ok();
}

Status add_name_entry(X509_NAME* name, int nid, const std::string& value) {
  // V_ASN1_UTF8STRING rather than MBSTRING_UTF8: the latter enforces X.520's 64-character
  // bound on CN, which Kubernetes names ("system:node:<253 characters>") exceed.
  if (X509_NAME_add_entry_by_NID(name, nid, V_ASN1_UTF8STRING,
                                 reinterpret_cast<const unsigned char*>(value.data()),
                                 int(value.size()), -1, 0) != 1)
    return openssl_error("setting certificate subject");
  return Status::Ok();
}

}  // namespace

std::string SubjectAltName::to_string() const {
  return (kind == Kind::kDns ? "DNS:" : "IP:") + value;
}

Result<SubjectAltName> classify_san(std::string_view entry) {
  entry = trim_space(entry);
  if (entry.empty()) return Status::Invalid("empty subject alternative name");
  std::string text(entry);
  bool bracketed = text.size() >= 2 && text.front() == '[' && text.back() == ']';
  std::string addr = bracketed ? text.substr(1, text.size() - 2) : text;
  unsigned char buf[16];
  char canon[INET6_ADDRSTRLEN];
  SubjectAltName san;
  if (!bracketed && inet_pton(AF_INET, addr.c_str(), buf) == 1) {
    san.kind = SubjectAltName::Kind::kIp;
    san.bytes.assign(reinterpret_cast<char*>(buf), 4);
    san.value = inet_ntop(AF_INET, buf, canon, sizeof(canon));
    return san;
  }
  if (inet_pton(AF_INET6, addr.c_str(), buf) == 1) {
    san.kind = SubjectAltName::Kind::kIp;
    san.bytes.assign(reinterpret_cast<char*>(buf), 16);
    san.value = inet_ntop(AF_INET6, buf, canon, sizeof(canon));
    return san;
  }
  std::string name = ascii_lower(text);
  if (bracketed || !valid_dns_name(name)) {
    return Status::Invalid("subject alternative name \"" + text +
                           "\" is neither an IP address nor a valid DNS name");
  }
  san.kind = SubjectAltName::Kind::kDns;
  san.value = std::move(name);
  return san;
}

std::vector<SubjectAltName> certificate_sans(X509* cert) {
  std::vector<SubjectAltName> out;
  GeneralNamesPtr names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  if (!names) {
    clear_openssl_errors();
    return out;
  }
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    int type = 0;
    auto* value = static_cast<const ASN1_STRING*>(GENERAL_NAME_get0_value(name, &type));
    if (value == nullptr) continue;
    std::string_view data(reinterpret_cast<const char*>(ASN1_STRING_get0_data(value)),
                          size_t(ASN1_STRING_length(value)));
    SubjectAltName san;
    if (type == GEN_DNS) {
      san.kind = SubjectAltName::Kind::kDns;
      san.value = ascii_lower(data);
    } else if (type == GEN_IPADD && (data.size() == 4 || data.size() == 16)) {
      char canon[INET6_ADDRSTRLEN];
      san.kind = SubjectAltName::Kind::kIp;
      san.bytes.assign(data);
      san.value =
          inet_ntop(data.size() == 4 ? AF_INET : AF_INET6, data.data(), canon, sizeof(canon));
    } else {
      continue;
    }
    out.push_back(std::move(san));
  }
  return out;
}

bool same_san_set(const std::vector<SubjectAltName>& a, const std::vector<SubjectAltName>& b) {
  auto keys = [](const std::vector<SubjectAltName>& v) {
    std::set<std::pair<int, std::string>> s;
    for (const auto& san : v) s.emplace(int(san.kind), san.value);
    return s;
  };
  return keys(a) == keys(b);
}

bool valid_name_value(std::string_view value) {
  if (value.empty() || value.size() > 1024 || !valid_utf8(value)) return false;
  return std::none_of(value.begin(), value.end(),
                      [](char c) { return uint8_t(c) < 0x20 || c == 0x7f; });
}

Result<X509Ptr> sign_certificate(const CertificateSpec& spec, EVP_PKEY* subject_key, X509* issuer,
                                 EVP_PKEY* issuer_key) {
  X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1)
    return openssl_error("allocating a certificate");

  std::string serial = random_bytes(16);
  // Positive (DER INTEGER), and never shorter than 16 bytes so it cannot be zero.
  serial[0] = char((uint8_t(serial[0]) & 0x7f) | 0x40);
  BignumPtr bn(BN_bin2bn(reinterpret_cast<const unsigned char*>(serial.data()), int(serial.size()),
                         nullptr));
  if (!bn || !BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert.get())))
    return openssl_error("setting the serial number");

  X509_NAME* subject = X509_get_subject_name(cert.get());
  for (const std::string& org : spec.organizations) {
    Status s = add_name_entry(subject, NID_organizationName, org);
    if (!s.ok()) return s;
  }
  Status s = add_name_entry(subject, NID_commonName, spec.common_name);
  if (!s.ok()) return s;
  if (X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : subject) != 1 ||
      X509_set_pubkey(cert.get(), subject_key) != 1)
    return openssl_error("setting certificate names");
  if (!ASN1_TIME_set(X509_getm_notBefore(cert.get()), time_t(spec.not_before)) ||
      !ASN1_TIME_set(X509_getm_notAfter(cert.get()), time_t(spec.not_after)))
    return openssl_error("setting the validity period");

  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer ? issuer : cert.get(), cert.get(), nullptr, nullptr, 0);
  std::vector<std::pair<int, std::string>> exts;
  if (spec.is_ca) {
    exts = {{NID_basic_constraints, "critical,CA:TRUE"},
            {NID_key_usage, "critical,digitalSignature,keyCertSign,cRLSign"},
            {NID_subject_key_identifier, "hash"}};
  } else {
    std::string usage = "critical,digitalSignature";
    // RSA key transport (TLS 1.2 RSA key exchange) needs keyEncipherment; ECDSA keys never do.
    if (EVP_PKEY_is_a(subject_key, "RSA")) usage += ",keyEncipherment";
    exts = {{NID_basic_constraints, "critical,CA:FALSE"}, {NID_key_usage, usage}};
    std::string eku;
    if (spec.server_auth) eku = "serverAuth";
    if (spec.client_auth) eku += eku.empty() ? "clientAuth" : ",clientAuth";
    if (!eku.empty()) exts.emplace_back(NID_ext_key_usage, eku);
    exts.emplace_back(NID_authority_key_identifier, "keyid");
  }
  for (const auto& [nid, value] : exts) {
    s = add_extension(cert.get(), &ctx, nid, value.c_str());
    if (!s.ok()) return s;
  }
  if (!spec.sans.empty()) {
    s = add_sans(cert.get(), spec.sans);
    if (!s.ok()) return s;
  }
  if (X509_sign(cert.get(), issuer_key, EVP_sha256()) <= 0)
    return openssl_error("signing a certificate");
  return cert;
}

bool leaf_reusable(X509* cert, EVP_PKEY* key, X509* ca, int64_t now) {
  bool ok = X509_check_private_key(cert, key) == 1 && X509_check_issued(ca, cert) == X509_V_OK;
  EVP_PKEY* ca_pub = ok ? X509_get0_pubkey(ca) : nullptr;
  ok = ok && ca_pub != nullptr && X509_verify(cert, ca_pub) == 1;
  time_t t_now = time_t(now);
  time_t t_renew = time_t(now + kRenewBeforeSeconds);
  // X509_cmp_time: -1 when the certificate's time is earlier, 1 when later, 0 on error.
  ok = ok && X509_cmp_time(X509_get0_notBefore(cert), &t_now) == -1 &&
       X509_cmp_time(X509_get0_notAfter(cert), &t_renew) == 1;
  clear_openssl_errors();
  return ok;
}

Result<IssuedCertificate> issue_certificate(const Pki& pki, const CertificateRequest& req,
                                            int64_t now) {
  if (!valid_name_value(req.common_name))
    return Status::Invalid("certificate common name must be non-empty UTF-8 text");
  for (const std::string& org : req.organizations) {
    if (!valid_name_value(org))
      return Status::Invalid("certificate organization must be non-empty UTF-8 text");
  }
  if (req.validity_seconds <= 0 || req.validity_seconds > kCaValiditySeconds)
    return Status::Invalid("certificate validity must be between 1 second and 10 years");
  CertificateSpec spec;
  spec.common_name = req.common_name;
  spec.organizations = req.organizations;
  for (const std::string& entry : req.sans) {
    auto san = classify_san(entry);
    if (!san.ok()) return san.status();
    spec.sans.push_back(std::move(*san));
  }
  spec.client_auth = req.client_auth;
  spec.server_auth = req.server_auth;
  spec.not_before = now - kBackdateSeconds;
  spec.not_after = now + req.validity_seconds;

  std::shared_ptr<const PkiKeys> keys = pki.keys;
  if (!keys) {
    auto loaded = load_keys(pki);
    if (!loaded.ok()) return loaded.status();
    keys = std::move(*loaded);
  }
  if (!keys->ca_key || !keys->ca_cert) return Status::Internal("the CA key is not available");
  auto key = generate_ec_key();
  if (!key.ok()) return key.status();
  auto cert = sign_certificate(spec, key->get(), keys->ca_cert.get(), keys->ca_key.get());
  if (!cert.ok()) return cert.status();
  IssuedCertificate out;
  auto cert_pem = certificate_to_pem(cert->get());
  if (!cert_pem.ok()) return cert_pem.status();
  auto key_pem = private_key_to_pem(key->get());
  if (!key_pem.ok()) return key_pem.status();
  out.cert_pem = std::move(*cert_pem);
  out.key_pem = std::move(*key_pem);
  return out;
}

Result<UserInfo> user_from_certificate(const x509_st* cert) { return user_from_x509(cert); }

Result<UserInfo> user_from_certificate(std::string_view der_or_pem) {
  if (der_or_pem.size() > kMaxCertificateBytes)
    return Status::BadRequest("client certificate is too large");
  X509Ptr cert;
  if (der_or_pem.find("-----BEGIN") != std::string_view::npos) {
    auto parsed = parse_certificate_pem(der_or_pem, "client certificate");
    if (!parsed.ok()) return Status::BadRequest(parsed.status().message());
    cert = std::move(*parsed);
  } else {
    const unsigned char* p = reinterpret_cast<const unsigned char*>(der_or_pem.data());
    cert.reset(d2i_X509(nullptr, &p, long(der_or_pem.size())));
    if (!cert) {
      clear_openssl_errors();
      return Status::BadRequest("client certificate is not DER or PEM");
    }
  }
  return user_from_x509(cert.get());
}

Status configure_server_tls(ssl_ctx_st* ctx, const Pki& pki) {
  if (ctx == nullptr) return Status::Internal("no SSL_CTX");
  auto cert = parse_certificate_pem(pki.serving_cert_pem, "serving certificate");
  if (!cert.ok()) return cert.status();
  auto key = parse_private_key_pem(pki.serving_key_pem, "serving key");
  if (!key.ok()) return key.status();
  auto ca = parse_certificate_pem(pki.ca_cert_pem, "CA certificate");
  if (!ca.ok()) return ca.status();
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
      SSL_CTX_use_certificate(ctx, cert->get()) != 1 ||
      SSL_CTX_use_PrivateKey(ctx, key->get()) != 1 || SSL_CTX_check_private_key(ctx) != 1)
    return openssl_error("installing the serving certificate");
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  if (store == nullptr || X509_STORE_add_cert(store, ca->get()) != 1 ||
      SSL_CTX_add_client_CA(ctx, ca->get()) != 1)
    return openssl_error("installing the client CA");
  // Like Go's VerifyClientCertIfGiven, which kube-apiserver uses: ask for a certificate, verify
  // one if sent, but let clients without one through to bearer-token authentication.
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  if (SSL_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT) != 1)
    return openssl_error("requiring clientAuth on client certificates");
  return Status::Ok();
}

}  // namespace skiff::apiserver::pki
