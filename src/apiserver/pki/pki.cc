#include "apiserver/pki/pki.h"

#include <arpa/inet.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <functional>

#include "apiserver/pki/certificates.h"
#include "apiserver/pki/crypto.h"
#include "apiserver/pki/files.h"
#include "common/random.h"
#include "common/strings.h"

namespace skiff::apiserver::pki {
namespace {

constexpr mode_t kPrivateFileMode = 0600;
constexpr mode_t kPublicFileMode = 0644;
constexpr mode_t kDirectoryMode = 0700;
constexpr size_t kJoinSecretBytes = 16;  // as K3s: 128 random bits, hex

// The first address after the network address of a CIDR: the `kubernetes` Service's
// ClusterIP. Like Go's net.ParseCIDR, host bits in the address are ignored.
Result<SubjectAltName> first_service_ip(std::string_view cidr) {
  auto invalid = [&] {
    return Status::Invalid("service CIDR \"" + std::string(cidr) + "\" is not a valid CIDR");
  };
  size_t slash = cidr.find('/');
  if (slash == std::string_view::npos) return invalid();
  std::string addr(cidr.substr(0, slash));
  std::string_view prefix_text = cidr.substr(slash + 1);
  if (prefix_text.empty() || prefix_text.size() > 3) return invalid();
  int prefix = 0;
  for (char c : prefix_text) {
    if (c < '0' || c > '9') return invalid();
    prefix = prefix * 10 + (c - '0');
  }
  unsigned char bytes[16] = {};
  int family = AF_INET;
  size_t len = 4;
  if (inet_pton(AF_INET, addr.c_str(), bytes) != 1) {
    if (inet_pton(AF_INET6, addr.c_str(), bytes) != 1) return invalid();
    family = AF_INET6;
    len = 16;
  }
  // At least one host bit is needed for a first address after the network address.
  if (prefix >= int(len * 8)) {
    return Status::Invalid("service CIDR \"" + std::string(cidr) + "\" has no room for addresses");
  }
  for (size_t i = 0; i < len; ++i) {
    int keep = std::clamp(prefix - int(i * 8), 0, 8);
    bytes[i] &= uint8_t(0xff00 >> keep);
  }
  bytes[len - 1] |= 1;  // the network address has its host bits zero, so +1 cannot carry
  char text[INET6_ADDRSTRLEN];
  return classify_san(inet_ntop(family, bytes, text, sizeof(text)));
}

Result<std::vector<SubjectAltName>> wanted_serving_sans(const PkiOptions& opts) {
  std::vector<SubjectAltName> sans;
  auto add = [&](const SubjectAltName& san) {
    for (const auto& have : sans) {
      if (have == san) return;
    }
    sans.push_back(san);
  };
  auto add_text = [&](std::string_view text) -> Status {
    auto san = classify_san(text);
    if (!san.ok()) return san.status();
    add(*san);
    return Status::Ok();
  };
  for (const char* name :
       {"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local", "127.0.0.1", "::1"}) {
    Status s = add_text(name);
    if (!s.ok()) return s;
  }
  if (!opts.host_name.empty()) {
    Status s = add_text(opts.host_name);
    if (!s.ok()) return Status::Invalid("host name: " + s.message());
  } else {
    char host[256] = {};
    // A system host name that is not a DNS name (rare, and not fixable by this call) is left
    // out rather than failing start-up; host_name can name the machine instead.
    if (gethostname(host, sizeof(host) - 1) == 0) (void)add_text(host);
  }
  std::string_view cidrs = opts.service_cidr;
  while (!cidrs.empty()) {
    size_t comma = cidrs.find(',');
    std::string_view one = trim_space(cidrs.substr(0, comma));
    cidrs = comma == std::string_view::npos ? std::string_view() : cidrs.substr(comma + 1);
    if (one.empty()) continue;
    auto ip = first_service_ip(one);
    if (!ip.ok()) return ip.status();
    add(*ip);
  }
  std::string_view bind = trim_space(opts.bind_address);
  if (!bind.empty() && bind != "0.0.0.0" && bind != "::" && bind != "[::]") {
    auto ip = classify_san(bind);
    if (!ip.ok() || ip->kind != SubjectAltName::Kind::kIp) {
      return Status::Invalid("bind address \"" + std::string(bind) + "\" is not an IP address");
    }
    add(*ip);
  }
  for (const std::string& entry : opts.tls_sans) {
    if (trim_space(entry).empty()) continue;
    Status s = add_text(entry);
    if (!s.ok()) return Status::Invalid("tls-san: " + s.message());
  }
  // DNS names first, then IPs, each in the order added: what `openssl x509 -text` readers
  // expect, and stable across restarts.
  std::stable_partition(sans.begin(), sans.end(), [](const SubjectAltName& s) {
    return s.kind == SubjectAltName::Kind::kDns;
  });
  return sans;
}

struct LoadedPair {
  PkeyPtr key;
  X509Ptr cert;
};

Status write_key_and_cert(EVP_PKEY* key, X509* cert, const std::string& key_path,
                          const std::string& cert_path, std::string* key_pem,
                          std::string* cert_pem) {
  auto k = private_key_to_pem(key);
  if (!k.ok()) return k.status();
  auto c = certificate_to_pem(cert);
  if (!c.ok()) return c.status();
  // Key first: a crash in between leaves a key without (or not matching) its certificate,
  // which the next start detects and repairs.
  Status s = write_file_atomic(key_path, *k, kPrivateFileMode);
  if (!s.ok()) return s;
  s = write_file_atomic(cert_path, *c, kPublicFileMode);
  if (!s.ok()) return s;
  *key_pem = std::move(*k);
  *cert_pem = std::move(*c);
  return Status::Ok();
}

Status ensure_ca(Pki* pki, int64_t now, LoadedPair* ca) {
  auto key_file = read_file(pki->ca_key_path, true);
  if (!key_file.ok()) return key_file.status();
  auto cert_file = read_file(pki->ca_cert_path, false);
  if (!cert_file.ok()) return cert_file.status();
  if (cert_file->has_value() && !key_file->has_value()) {
    return Status::Internal(pki->ca_cert_path + " exists but " + pki->ca_key_path +
                            " does not; restore the key (or remove both to start a new cluster)");
  }
  if (key_file->has_value() && cert_file->has_value()) {
    auto key = parse_private_key_pem(**key_file, pki->ca_key_path);
    if (!key.ok()) return key.status();
    auto cert = parse_certificate_pem(**cert_file, pki->ca_cert_path);
    if (!cert.ok()) return cert.status();
    if (X509_check_private_key(cert->get(), key->get()) != 1) {
      clear_openssl_errors();
      return Status::Internal(pki->ca_key_path + " does not match " + pki->ca_cert_path);
    }
    if (X509_check_ca(cert->get()) < 1)
      return Status::Internal(pki->ca_cert_path + " is not a CA certificate");
    ca->key = std::move(*key);
    ca->cert = std::move(*cert);
    pki->ca_key_pem = std::move(**key_file);
    pki->ca_cert_pem = std::move(**cert_file);
    return Status::Ok();
  }
  // Neither file, or a key alone (a first start interrupted before the certificate was
  // written: nothing can have been issued by it yet): make a new CA.
  auto key = generate_ec_key();
  if (!key.ok()) return key.status();
  CertificateSpec spec;
  spec.common_name = "skiff-server-ca@" + std::to_string(now);
  spec.is_ca = true;
  spec.not_before = now - kBackdateSeconds;
  spec.not_after = now + kCaValiditySeconds;
  auto cert = sign_certificate(spec, key->get(), nullptr, key->get());
  if (!cert.ok()) return cert.status();
  Status s = write_key_and_cert(key->get(), cert->get(), pki->ca_key_path, pki->ca_cert_path,
                                &pki->ca_key_pem, &pki->ca_cert_pem);
  if (!s.ok()) return s;
  ca->key = std::move(*key);
  ca->cert = std::move(*cert);
  return Status::Ok();
}

Status ensure_service_account_key(Pki* pki) {
  auto key_file = read_file(pki->sa_key_path, true);
  if (!key_file.ok()) return key_file.status();
  PkeyPtr key;
  if (key_file->has_value()) {
    auto parsed = parse_private_key_pem(**key_file, pki->sa_key_path);
    if (!parsed.ok()) return parsed.status();
    key = std::move(*parsed);
    if (!jws_algorithm(key.get())) {
      return Status::Internal(pki->sa_key_path +
                              " is neither an ECDSA P-256 key nor an RSA key of 2048+ bits");
    }
    pki->sa_key_pem = std::move(**key_file);
  } else {
    auto generated = generate_ec_key();
    if (!generated.ok()) return generated.status();
    key = std::move(*generated);
    auto pem = private_key_to_pem(key.get());
    if (!pem.ok()) return pem.status();
    Status s = write_file_atomic(pki->sa_key_path, *pem, kPrivateFileMode);
    if (!s.ok()) return s;
    pki->sa_key_pem = std::move(*pem);
  }
  // sa.pub is derived from sa.key; keep an existing one only if it is that key's public half.
  auto pub_file = read_file(pki->sa_pub_path, false);
  if (!pub_file.ok()) return pub_file.status();
  if (pub_file->has_value()) {
    auto pub = parse_public_key_pem(**pub_file, pki->sa_pub_path);
    if (pub.ok() && EVP_PKEY_eq(pub->get(), key.get()) == 1) {
      pki->sa_pub_pem = std::move(**pub_file);
      return Status::Ok();
    }
    clear_openssl_errors();
  }
  auto pem = public_key_to_pem(key.get());
  if (!pem.ok()) return pem.status();
  Status s = write_file_atomic(pki->sa_pub_path, *pem, kPublicFileMode);
  if (!s.ok()) return s;
  pki->sa_pub_pem = std::move(*pem);
  return Status::Ok();
}

// Keeps the leaf at cert_path/key_path if it is reusable and `matches` it, else issues a new
// one from `spec` with a fresh key. An unreadable leaf is replaced, not an error: leaves can
// always be re-issued.
Status ensure_leaf(const std::string& cert_path, const std::string& key_path,
                   const CertificateSpec& spec, const LoadedPair& ca, int64_t now,
                   const std::function<bool(X509*)>& matches, std::string* cert_pem,
                   std::string* key_pem) {
  auto key_file = read_file(key_path, true);
  if (!key_file.ok()) return key_file.status();
  auto cert_file = read_file(cert_path, false);
  if (!cert_file.ok()) return cert_file.status();
  if (key_file->has_value() && cert_file->has_value()) {
    auto key = parse_private_key_pem(**key_file, key_path);
    auto cert = parse_certificate_pem(**cert_file, cert_path);
    if (key.ok() && cert.ok() && leaf_reusable(cert->get(), key->get(), ca.cert.get(), now) &&
        matches(cert->get())) {
      *key_pem = std::move(**key_file);
      *cert_pem = std::move(**cert_file);
      return Status::Ok();
    }
  }
  auto key = generate_ec_key();
  if (!key.ok()) return key.status();
  auto cert = sign_certificate(spec, key->get(), ca.cert.get(), ca.key.get());
  if (!cert.ok()) return cert.status();
  return write_key_and_cert(key->get(), cert->get(), key_path, cert_path, key_pem, cert_pem);
}

Status ensure_join_token(const std::optional<JoinToken>& flag_token, Pki* pki) {
  auto file = read_file(pki->token_path, true);
  if (!file.ok()) return file.status();
  std::string secret;
  if (flag_token) {
    secret = flag_token->secret;
  } else if (file->has_value()) {
    auto parsed = parse_join_token(trim_space(**file));
    if (!parsed.ok()) {
      return Status::Internal(pki->token_path +
                              " does not hold a join token: " + parsed.status().message());
    }
    secret = parsed->secret;
  } else {
    secret = random_hex(kJoinSecretBytes);
  }
  // The hash is recomputed each start so the file always names the CA actually in use.
  std::string token = "K10" + hex_encode(sha256(pki->ca_cert_pem)) + "::server:" + secret;
  if (!file->has_value() || trim_space(**file) != token) {
    Status s = write_file_atomic(pki->token_path, token + "\n", kPrivateFileMode);
    if (!s.ok()) return s;
  }
  pki->join_token = std::move(token);
  return Status::Ok();
}

}  // namespace

Status ensure_pki(const PkiOptions& opts, Pki* out) {
  if (out == nullptr) return Status::Internal("ensure_pki: no output");
  if (opts.data_dir.empty()) return Status::Invalid("data dir must not be empty");
  const int64_t now = opts.now != 0 ? opts.now : int64_t(std::time(nullptr));

  // Every option is checked before anything is written.
  auto sans = wanted_serving_sans(opts);
  if (!sans.ok()) return sans.status();
  std::optional<JoinToken> flag_token;
  if (!opts.token.empty()) {
    auto parsed = parse_join_token(opts.token);
    if (!parsed.ok()) return Status::Invalid("token: " + parsed.status().message());
    if (!parsed->username.empty() && parsed->username != "server")
      return Status::Invalid("token: a server token's user must be \"server\"");
    flag_token = std::move(*parsed);
  }

  Pki pki;
  pki.data_dir = opts.data_dir;
  pki.tls_dir = opts.data_dir + "/tls";
  pki.ca_cert_path = pki.tls_dir + "/ca.crt";
  pki.ca_key_path = pki.tls_dir + "/ca.key";
  pki.serving_cert_path = pki.tls_dir + "/serving-kube-apiserver.crt";
  pki.serving_key_path = pki.tls_dir + "/serving-kube-apiserver.key";
  pki.admin_cert_path = pki.tls_dir + "/client-admin.crt";
  pki.admin_key_path = pki.tls_dir + "/client-admin.key";
  pki.sa_key_path = pki.tls_dir + "/sa.key";
  pki.sa_pub_path = pki.tls_dir + "/sa.pub";
  pki.token_path = opts.data_dir + "/token";

  Status s = ensure_directory(pki.data_dir, kDirectoryMode, false);
  if (!s.ok()) return s;
  s = ensure_directory(pki.tls_dir, kDirectoryMode, true);
  if (!s.ok()) return s;

  LoadedPair ca;
  s = ensure_ca(&pki, now, &ca);
  if (!s.ok()) return s;
  if (flag_token && !flag_token->ca_hash.empty() &&
      !ca_matches_hash(pki.ca_cert_pem, flag_token->ca_hash))
    return Status::Invalid("token: its CA hash does not match " + pki.ca_cert_path);

  s = ensure_service_account_key(&pki);
  if (!s.ok()) return s;

  CertificateSpec serving;
  serving.common_name = "kube-apiserver";
  serving.sans = *sans;
  serving.server_auth = true;
  serving.not_before = now - kBackdateSeconds;
  serving.not_after = now + kLeafValiditySeconds;
  s = ensure_leaf(
      pki.serving_cert_path, pki.serving_key_path, serving, ca, now,
      [&](X509* cert) { return same_san_set(certificate_sans(cert), *sans); },
      &pki.serving_cert_pem, &pki.serving_key_pem);
  if (!s.ok()) return s;

  CertificateSpec admin;
  admin.common_name = "system:admin";
  admin.organizations = {"system:masters"};
  admin.client_auth = true;
  admin.not_before = now - kBackdateSeconds;
  admin.not_after = now + kLeafValiditySeconds;
  s = ensure_leaf(
      pki.admin_cert_path, pki.admin_key_path, admin, ca, now,
      [&](X509* cert) {
        auto user = user_from_certificate(cert);
        return user.ok() && user->name == admin.common_name && user->groups == admin.organizations;
      },
      &pki.admin_cert_pem, &pki.admin_key_pem);
  if (!s.ok()) return s;

  s = ensure_join_token(flag_token, &pki);
  if (!s.ok()) return s;

  for (const SubjectAltName& san : *sans) pki.serving_sans.push_back(san.value);
  auto keys = load_keys(pki);
  if (!keys.ok()) return keys.status();
  pki.keys = std::move(*keys);
  *out = std::move(pki);
  return Status::Ok();
}

}  // namespace skiff::apiserver::pki
